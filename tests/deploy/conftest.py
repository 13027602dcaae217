"""Fixtures of the deploy tier: repository paths and the validators' binaries.

helm, kubectl and promtool are installed into .tools/bin by ``scripts/install-deploy-tools.sh``
(``make deploy-tools``, which ``make test`` runs first); a test run without them
installs them once, here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS_BIN = ROOT / ".tools" / "bin"
INSTALLER = ROOT / "scripts" / "install-deploy-tools.sh"


def _tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        result = subprocess.run(
            ["bash", str(INSTALLER)], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            pytest.fail(f"{INSTALLER.name} failed:\n{result.stdout}\n{result.stderr}")
    return path


@pytest.fixture(scope="session")
def helm() -> Path:
    return _tool("helm")


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return _tool("kubectl")


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _tool("promtool")


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return found


def load_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a (multi-document) manifest."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def run(cmd: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; fail the test with its output unless it exits 0."""
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result
