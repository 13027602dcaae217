"""How a debate request becomes a protocol: request, then preset, then server settings."""

from __future__ import annotations

import msgspec
import pytest
from litestar.exceptions import ValidationException

from aragora.gateway.requests import CreateDebate, resolve_protocol
from aragora.runtime.settings import load_settings

SETTINGS = load_settings(
    {
        "ARAGORA_DEFAULT_ROUNDS": "4",
        "ARAGORA_CONSENSUS_THRESHOLD": "0.7",
        "ARAGORA_AGENT_TIMEOUT_SECONDS": "45",
        "ARAGORA_DEBATE_TIMEOUT_SECONDS": "900",
    }
)


def request(body: dict[str, object]) -> CreateDebate:
    return msgspec.convert({"topic": "t", **body}, CreateDebate)


def test_defaults_come_from_the_server_settings() -> None:
    p = resolve_protocol(request({}), SETTINGS)
    assert (p.rounds, p.threshold, p.consensus, p.topology) == (4, 0.7, "majority", "all-to-all")
    assert (p.turn_timeout_seconds, p.debate_timeout_seconds) == (45, 900)


@pytest.mark.parametrize(("preset", "rounds"), [("light", 2), ("standard", 3), ("thorough", 6)])
def test_presets_set_rounds(preset: str, rounds: int) -> None:
    p = resolve_protocol(request({"protocol": {"preset": preset}}), SETTINGS)
    assert (p.rounds, p.preset) == (rounds, preset)


def test_explicit_fields_beat_the_preset_and_top_level_aliases_work() -> None:
    p = resolve_protocol(
        request({"rounds": 5, "consensus": "judge", "protocol": {"preset": "light"}}), SETTINGS
    )
    assert (p.rounds, p.consensus) == (5, "judge")
    p = resolve_protocol(
        request({"protocol": {"topology": "ring", "weighted": True, "threshold": 0.5}}), SETTINGS
    )
    assert (p.topology, p.weighted, p.threshold) == ("ring", True, 0.5)


def test_contradicting_values_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationException, match="rounds"):
        resolve_protocol(request({"rounds": 2, "protocol": {"rounds": 3}}), SETTINGS)


@pytest.mark.parametrize(
    "body",
    [
        {"protocol": {"rounds": 13}},
        {"protocol": {"topology": "mesh"}},
        {"protocol": {"threshold": 1.5}},
        {"protocol": {"turn_timeout_seconds": 0}},
        {"protocol": {"colour": "red"}},
        {"domain": "Not A Slug"},
    ],
)
def test_bad_protocol_values_do_not_convert(body: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        request(body)
