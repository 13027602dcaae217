"""deploy/systemd: `systemd-analyze verify` accepts the unit; its command is a real one."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from aragora.cli.main import build_parser
from tests.deploy.conftest import DEPLOY, ROOT, run
from tests.deploy.manifests import check_env_names

UNIT = DEPLOY / "systemd" / "aragora.service"
INSTALLED = "/opt/aragora/current/.venv/bin/aragora"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_systemd_analyze_verifies_the_unit(systemd_analyze: str, tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists: point it at this checkout's.
    local = ROOT / ".venv" / "bin" / "aragora"
    copy = tmp_path / "aragora.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED, str(local)))
    result = run([systemd_analyze, "verify", copy])
    assert result.stdout.strip() == result.stderr.strip() == ""


def test_the_unit_runs_the_runbooks_command_and_stops_gracefully() -> None:
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == INSTALLED
    assert argv[1:] == ["serve", "--api-port", "8080", "--ws-port", "8766"]
    args = build_parser().parse_args(argv[1:])  # flags `aragora serve` accepts
    assert (args.api_port, args.ws_port) == (8080, 8766)
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > 3 * 25  # the supervisor's stop: 3 groups x 25 s
    assert service["EnvironmentFile"] == "-/etc/aragora/aragora.env"


def test_the_example_environment_file_names_real_settings() -> None:
    names = set()
    for line in (DEPLOY / "systemd" / "aragora.env").read_text().splitlines():
        line = line.strip().lstrip("#")
        if "=" in line and " " not in line.split("=", 1)[0]:
            names.add(line.split("=", 1)[0])
    assert "ARAGORA_DATABASE_URL" in names
    check_env_names(names)
