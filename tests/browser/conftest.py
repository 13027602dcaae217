"""Fixtures of the browser tier: the whole stack, a user, and Debian's Chromium via Playwright.

Playwright drives the system browser (``/usr/bin/chromium``, installed by
``scripts/install-browser.sh``); it never downloads one. Screenshots go to
``tests/browser/artifacts/`` (gitignored), which CI keeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
ADMIN_EMAIL = "ada@example.org"
MEMBER_EMAIL = "grace@example.org"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# Sync Playwright keeps an event loop running on this thread while it is open, which
# asyncio tests cannot share: it lives per module, so tests run after this tier still can.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (make test does)")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the whole tier (starting one is the slow part)."""
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    assert running.stop() == 0, running.log()


def create_user(stack: Stack, email: str, role: str) -> None:
    """As an operator does: ``aragora users create`` against the stack's database."""
    done = subprocess.run(
        [sys.executable, "-m", "aragora.cli", "users", "create", "--email", email,
         "--role", role, "--password-stdin"],
        input=PASSWORD + "\n", text=True, capture_output=True, timeout=60,
        env={**stack.env, "ARAGORA_DATA_DIR": str(stack.data_dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="session")
def users(stack: Stack) -> dict[str, str]:
    """An owner made from the shell, and a member registered through the API."""
    create_user(stack, ADMIN_EMAIL, "owner")
    made = stack.http.post(
        f"{stack.url}/api/auth/register", json={"email": MEMBER_EMAIL, "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    return {"owner": ADMIN_EMAIL, "member": MEMBER_EMAIL}


@pytest.fixture(scope="session")
def finished_debate(stack: Stack) -> dict[str, Any]:
    """A debate of demo agents run to its end through the API (for history, ratings...)."""
    debate_id = stack.post_debate(
        topic="Should the team adopt trunk-based development?",
        agents=["demo-stubborn", "demo-agreeable", "demo-contrarian"],
        domain="engineering",
        protocol={"preset": "light"},
    )
    view = stack.wait_finished(debate_id)
    assert view["status"] == "consensus", view
    return view


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (its own sessionStorage), desktop-sized."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any script error or console error."""
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: Any) -> None:
        # 401/403/404 answers are part of what these pages show; script errors are not.
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(f"console: {message.text}")

    opened.on("console", console)
    yield opened
    assert not problems, problems


def log_in(page: Page, stack: Stack, email: str, path: str = "/ui") -> None:
    page.goto(f"{stack.url}{path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for()
