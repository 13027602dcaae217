"""Docs that must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from aragora.cli.main import configuration_markdown
from aragora.runtime.settings import settings_fields

ROOT = Path(__file__).parent.parent.parent


def test_configuration_doc_is_generated_from_the_settings() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == configuration_markdown(), "run: aragora config --markdown > docs/configuration.md"


def test_readme_opens_with_the_two_quick_start_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S)
    assert first_block is not None
    commands = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["make serve", "make test"]


def test_readme_points_to_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/configuration.md" in readme
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for env, _, _ in settings_fields():
        assert f"`{env}`" in documented
