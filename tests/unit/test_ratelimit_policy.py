"""Rate-limit policy: classes, tiers, keys, client IP through trusted proxies, config."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from aragora.contracts import subjects
from aragora.contracts.ratelimit import (
    Caller,
    RateLimitCheck,
    RateLimitDecision,
    RateLimitRequest,
    RateLimitStatsRequest,
    RateLimitStatusRequest,
)
from aragora.ratelimit.policy import (
    Identity,
    Policy,
    caller_for,
    classify,
    client_ip,
    config_document,
    identity_of,
    key_hash,
)
from aragora.runtime.settings import SettingsError, load_settings, parse_networks


def test_subjects_and_messages_round_trip() -> None:
    assert subjects.RATE_LIMIT_CHECK_RPC == "aragora.rpc.ratelimit.check"
    assert subjects.RATE_LIMIT_RPC_QUEUE == "ratelimit"
    decoder = msgspec.json.Decoder(RateLimitRequest)
    caller = Caller(key="ip:192.0.2.1", key_type="ip", ip="192.0.2.1")
    for request in (
        RateLimitCheck(caller=caller, endpoint_class="read"),
        RateLimitStatusRequest(caller=caller),
        RateLimitStatusRequest(),
        RateLimitStatsRequest(top=3),
    ):
        assert decoder.decode(msgspec.json.encode(request)) == request
    decision = RateLimitDecision(allowed=True, limit=5, remaining=4, reset_seconds=12.0)
    raw = msgspec.json.encode(decision)
    assert msgspec.json.decode(raw, type=RateLimitDecision) == decision
    assert b'"type":"rpc.ratelimit.decision"' in raw


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/debates", "debate_create"),
        ("POST", "/api/debates/", "debate_create"),
        ("GET", "/api/debates", "read"),
        ("POST", "/api/debates/abc/cancel", "write"),
        ("POST", "/api/auth/login", "auth"),
        ("GET", "/api/system/rate-limits", "admin"),
        ("POST", "/api/debug/agent-test", "admin"),
        ("POST", "/api/agents/claude/reset-circuit", "admin"),
        ("GET", "/api/agents/leaderboard", "read"),
    ],
)
def test_classify(method: str, path: str, expected: str) -> None:
    assert classify(method, path) == expected


def test_tiers_order_and_emergency() -> None:
    policy = Policy.from_settings(load_settings({"ARAGORA_RATE_LIMIT_DEBATE_RPM": "20"}))
    limits = [policy.limit("debate_create", t) for t in ("anonymous", "authenticated", "admin")]
    assert limits == [20, 80, 200]
    assert policy.mode == "normal"
    emergency = Policy.from_settings(
        load_settings(
            {"ARAGORA_RATE_LIMIT_EMERGENCY": "1", "ARAGORA_RATE_LIMIT_EMERGENCY_RPM": "3"}
        )
    )
    assert emergency.mode == "emergency"
    assert {emergency.limit("read", t) for t in ("anonymous", "authenticated", "admin")} == {3}
    assert emergency.ip_ceiling() <= 30
    assert Policy.from_settings(load_settings({"ARAGORA_RATE_LIMIT_DISABLED": "1"})).mode == (
        "disabled"
    )


def test_defaults_exempt_loopback_only() -> None:
    policy = Policy.from_settings(load_settings({}))
    assert policy.whitelisted("127.0.0.1") and policy.whitelisted("::1")
    assert not policy.whitelisted("192.0.2.1") and not policy.whitelisted("not-an-ip")
    none = Policy.from_settings(load_settings({"ARAGORA_RATE_LIMIT_WHITELIST": "none"}))
    assert not none.whitelisted("127.0.0.1")
    runbook = load_settings({"ARAGORA_RATE_LIMIT_WHITELIST": "10.0.0.0/8,192.168.0.0/16"})
    assert Policy.from_settings(runbook).whitelisted("192.168.4.4")


def test_bad_cidrs_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="ARAGORA_TRUSTED_PROXIES"):
        load_settings({"ARAGORA_TRUSTED_PROXIES": "10.0.0.0/33"})
    with pytest.raises(SettingsError, match="ARAGORA_RATE_LIMIT_\\*_RPM"):
        load_settings({"ARAGORA_RATE_LIMIT_READ_RPM": "0"})


TRUSTED = parse_networks("10.0.0.0/8")


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("198.51.100.1", "1.2.3.4", "198.51.100.1"),  # untrusted peer: header ignored
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # left of the first untrusted hop: lies
        ("10.0.0.2", "1.2.3.4, 10.0.0.7", "1.2.3.4"),  # two proxies
        ("10.0.0.2", "garbage, 1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "1.2.3.4, garbage", "10.0.0.2"),  # stop where the trust chain breaks
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),  # all trusted: the left-most
        ("10.0.0.2", None, "10.0.0.2"),
        ("::ffff:198.51.100.1", None, "198.51.100.1"),
        ("testclient", None, "127.0.0.1"),  # no IP (unix socket, test client): local
        (None, None, "127.0.0.1"),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, expected: str) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected


def test_callers_are_keyed_without_secrets() -> None:
    token = "sk-very-secret"
    caller = caller_for("192.0.2.1", f"Bearer {token}", None)
    assert caller.key == f"token:{key_hash(token)}" and token not in caller.key
    assert caller.key_type == "token" and caller.tier == "anonymous"
    assert caller_for("192.0.2.1", "Basic abc", None).key == "ip:192.0.2.1"
    assert caller_for("192.0.2.1", None, None).key_type == "ip"
    user = caller_for("192.0.2.1", f"Bearer {token}", Identity(key_type="user", id="u-1"))
    assert (user.key, user.tier) == ("user:u-1", "authenticated")
    key = caller_for("192.0.2.1", None, Identity(key_type="api_key", id="ara_x", tier="admin"))
    assert key.key == f"api_key:{key_hash('ara_x')}" and key.tier == "admin"


def test_identities_of_the_auth_middleware_set_key_and_tier() -> None:
    @dataclasses.dataclass
    class AuthIdentity:  # the shape the auth middleware stores in scope["state"]
        subject: str
        role: str
        kind: str
        token_id: str = ""

    user = identity_of(AuthIdentity(subject="u-7", role="member", kind="user"))
    assert user == Identity(key_type="user", id="u-7", tier="authenticated")
    admin = identity_of(AuthIdentity(subject="u-1", role="owner", kind="user"))
    assert admin is not None and admin.tier == "admin"
    key = identity_of(AuthIdentity(subject="u-7", role="viewer", kind="api_key", token_id="k1"))
    assert key == Identity(key_type="api_key", id="k1", tier="authenticated")
    assert identity_of(None) is None and identity_of(object()) is None


def test_config_says_where_each_value_comes_from() -> None:
    env = {"ARAGORA_RATE_LIMIT_DEBATE_RPM": "20"}
    doc = config_document(load_settings(env), env)
    assert doc["classes"]["debate_create"]["value"] == 20
    assert doc["classes"]["debate_create"]["source"] == "env"
    assert doc["classes"]["read"]["source"] == "default"
    assert doc["whitelist"] == {
        "value": "127.0.0.0/8,::1/128",
        "env": "ARAGORA_RATE_LIMIT_WHITELIST",
        "source": "default",
    }
    assert doc["backend"] == "memory" and doc["mode"] == "normal"


def test_aragora_serve_runs_a_ratelimit_service_in_memory_by_default() -> None:
    from aragora.cli.supervisor import Supervisor

    settings = load_settings({})
    names = [child.name for child in Supervisor(settings, {}).children]
    assert names.index("ratelimit") < names.index("gateway")
    assert not settings.enable_redis_rate_limit  # the machine's Redis is left alone
