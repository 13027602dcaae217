"""A provider goes down, another runs out of quota: the debate still ends, and says so.

The whole stack runs as processes (`aragora serve`) with agents from an agents file: two
served by a healthy fake provider, one by a fake that answers 500 to everything (its
breaker opens), one by a fake that is out of quota (its turns go to the fallback agent).
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import assert_exactly_once
from tests.e2e.stack import Stack
from tests.plugins.fake_provider import FakeProviderProcess, start_fake_provider


def _agent(name: str, base_url: str, extra: str = "") -> str:
    return (
        f"[[agents]]\nname = '{name}'\nprovider = 'openai-compatible'\n"
        f"model = 'fake-model'\nbase_url = '{base_url}'\n{extra}"
    )


def test_a_down_provider_and_an_exhausted_quota_are_visible_and_the_debate_ends(
    tmp_path: Path, fake_provider: FakeProviderProcess
) -> None:
    with start_fake_provider() as down, start_fake_provider() as broke:
        down.configure(fail_mode="500")
        broke.configure(fail_mode="quota")
        agents_file = tmp_path / "agents.toml"
        agents_file.write_text(
            "default = ['up-a', 'up-b', 'down-c', 'broke-d']\n"
            + _agent("up-a", fake_provider.base_url)
            + _agent("up-b", fake_provider.base_url)
            + _agent("down-c", down.base_url, "fallback = []\n")
            + _agent("broke-d", broke.base_url, "fallback = ['up-b']\n")
        )
        env = {
            "ARAGORA_AGENTS_FILE": str(agents_file),
            # A local server uses the default policy. An agent whose proposal failed sits out
            # the rest of the debate, so one failed turn must be enough to open its breaker.
            "ARAGORA_BREAKER_DEFAULT_FAILURES": "1",
            "ARAGORA_BREAKER_DEFAULT_COOLDOWN_SECONDS": "600",
        }
        stack = Stack(tmp_path, env=env).start()
        try:
            debate_id = stack.post_debate(topic="Should we keep a second provider?", rounds=1)
            view = stack.wait_finished(debate_id, timeout=90)
            assert view["status"] in ("consensus", "no_consensus"), view
            assert_exactly_once(stack.events(debate_id))

            failed = [t for t in view["turns"] if t["status"] == "failed"]
            assert failed and {t["agent"] for t in failed} == {"down-c"}
            assert {f["agent"] for f in view["failures"]} == {"down-c"}
            details = [t["detail"] for t in failed]
            assert all("HTTP 500" in d for d in details), details

            substituted = [t for t in view["turns"] if t.get("served_by")]
            assert substituted and {t["agent"] for t in substituted} == {"broke-d"}
            assert all(t["served_by"] == "up-b" for t in substituted)
            reasons = [t["fallback_reason"] for t in substituted]
            assert reasons[0].startswith("broke-d is out of quota"), reasons
            # The quota failure also opened broke-d's breaker: later turns skip the call.
            assert all(
                r.startswith(("broke-d is out of quota", "circuit breaker open for broke-d"))
                for r in reasons
            ), reasons
            assert all(t["status"] == "completed" for t in view["turns"] if t["agent"] == "up-a")

            breakers = stack.http.get(f"{stack.url}/api/agents/circuit-breakers").json()
            by_agent = {b["agent"]: b for b in breakers["agents"]}
            assert by_agent["down-c"]["state"] == "open", breakers
            assert by_agent["broke-d"]["state"] == "open", breakers
            assert by_agent["up-a"]["state"] == "closed", breakers
            health = stack.http.get(f"{stack.url}/api/health").json()
            assert health["checks"]["circuit_breakers"]["open"] >= 1

            receipt = stack.http.get(f"{stack.url}/api/debates/{debate_id}/receipt").json()
            body = receipt["receipt"]
            assert {f["agent"] for f in body["failures"]} == {"down-c"}
            assert {s["agent"] for s in body["substitutions"]} == {"broke-d"}
            assert down.stats()["requests"] == 3  # one turn, retried twice, then given up
        finally:
            stack.stop()
