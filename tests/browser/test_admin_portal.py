"""The admin console, the developer portal, sign-in by URL fragment, the Unauthorized and
Forbidden states, a narrow screen and the keyboard, in a real browser."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import nats
from playwright.sync_api import BrowserContext, Page, expect

from aragora.runtime.breakers import BreakerState, KVBreakerStore
from tests.browser.conftest import PASSWORD, log_in
from tests.e2e.stack import Stack


def open_breaker(stack: Stack, agent: str) -> None:
    """Trip an agent's circuit breaker in the shared KV bucket, as a failing runner would."""

    async def trip() -> None:
        nc = await nats.connect(f"nats://127.0.0.1:{stack.nats_port}")
        try:
            now = time.time()
            opened = BreakerState(
                state="open", consecutive_failures=5, opened_at=now, open_until=now + 600,
                updated_at=now,
            )  # fmt: skip
            await KVBreakerStore(nc.jetstream()).update(agent, lambda _: opened, reason="test")
        finally:
            await nc.close()

    # Sync Playwright keeps an event loop on this thread: run the bus client on another.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, trip()).result(timeout=30)


def test_admin_console_resets_an_open_breaker(
    page: Page,
    stack: Stack,
    users: dict[str, str],
    finished_debate: dict[str, Any],
    artifacts: Path,
) -> None:
    open_breaker(stack, "demo-1")
    log_in(page, stack, users["owner"], "/admin")
    expect(page.get_by_role("heading", name="Admin console")).to_be_visible()
    health = page.get_by_role("region", name="Health")
    expect(health.locator(".badge.healthy")).to_be_visible()
    for part in ("database", "nats", "websocket", "rate limiting"):
        expect(health.get_by_role("cell", name=part, exact=True)).to_be_visible()

    breakers = page.get_by_role("region", name="Circuit breakers")
    expect(breakers.locator('[data-breaker="demo-1"] .badge')).to_have_text("open")
    breakers.get_by_role("button", name="Reset demo-1's breaker").click()
    expect(breakers.get_by_role("status").filter(has_text="demo-1:")).to_have_text(
        "demo-1: open → closed"
    )
    expect(breakers.locator('[data-breaker="demo-1"] .badge')).to_have_text("closed")
    after = stack.http.get(f"{stack.url}/api/system/circuit-breakers").json()
    assert {b["agent"]: b["state"] for b in after["agents"]}["demo-1"] == "closed"

    # Every other panel shows data, an empty state, or "not available" (routes not built
    # yet): never Unauthorized or Forbidden for an owner.
    for name in ("Recent errors", "Rate limits", "WebSocket connections", "Audit log",
                 "Revoked tokens"):  # fmt: skip
        panel = page.get_by_role("region", name=name)
        expect(panel.locator("table, .empty, [data-state=unavailable]").first).to_be_visible()
        expect(panel.locator("[data-state=unauthorized], [data-state=forbidden]")).to_have_count(0)
    expect(page.get_by_role("region", name="Rate limits")).to_contain_text("backend")
    page.screenshot(path=artifacts / "admin.png", full_page=True)


def test_admin_console_says_why_a_member_or_a_stale_session_is_refused(
    page: Page, stack: Stack, users: dict[str, str], artifacts: Path
) -> None:
    log_in(page, stack, users["member"], "/admin")
    breakers = page.get_by_role("region", name="Circuit breakers")
    refused = breakers.locator("[data-state=forbidden]")
    expect(refused).to_contain_text("Forbidden")
    expect(refused).to_contain_text("admin or owner role")
    # Public health still answers; the WebSocket stats need only a viewer.
    expect(page.get_by_role("region", name="Health").locator(".badge.healthy")).to_be_visible()
    page.screenshot(path=artifacts / "admin-forbidden.png", full_page=True)

    # An access token about to expire is refreshed first (the refresh token rotates).
    session = "JSON.parse(sessionStorage.getItem('aragora.session'))"
    before = page.evaluate(session)
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem("aragora.session"));
            sessionStorage.setItem("aragora.session", JSON.stringify({...s, expiresAt: 0}));
        }"""
    )
    page.get_by_role("button", name="Refresh all").click()
    expect(breakers.locator("[data-state=forbidden]")).to_be_visible()
    after = page.evaluate(session)
    assert after["refresh"] != before["refresh"] and after["token"] != before["token"]
    assert after["expiresAt"] > before["expiresAt"] - 5

    # A session the server no longer accepts (logged out elsewhere): Unauthorized, log in.
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem("aragora.session"));
            sessionStorage.setItem("aragora.session",
                JSON.stringify({...s, token: "expired.or.revoked", refresh: null}));
        }"""
    )
    page.reload()
    expect(page.locator("[data-state=unauthorized]")).to_contain_text("Unauthorized")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_the_owner_token_in_the_url_fragment_signs_in_and_leaves_the_address_bar(
    page: Page, stack: Stack
) -> None:
    page.goto(f"{stack.url}/ui/#token={stack.token}")  # as `aragora serve` prints it
    expect(page.get_by_role("heading", name="Start a debate")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("owner token (owner)")
    assert page.url == f"{stack.url}/ui/"
    page.get_by_role("navigation").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Admin console")).to_be_visible()
    assert page.url == f"{stack.url}/admin"
    stored = page.evaluate("sessionStorage.getItem('aragora.session')")
    assert stack.token in stored
    expect(page.get_by_role("region", name="Circuit breakers").locator("table")).to_be_visible()


def test_portal_creates_shows_once_and_revokes_an_api_key(
    page: Page,
    stack: Stack,
    users: dict[str, str],
    finished_debate: dict[str, Any],
    artifacts: Path,
) -> None:
    log_in(page, stack, users["owner"], "/portal")
    page.get_by_label("Role of the key").select_option("viewer")
    page.get_by_role("button", name="Create API key").click()
    key = page.get_by_label("New API key").input_value()
    assert key.startswith("ara_")
    me = httpx.get(f"{stack.url}/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    assert me.json()["user"]["role"] == "viewer"

    keys = page.get_by_role("region", name="API keys")
    expect(keys.get_by_role("row").filter(has_text=key[:12])).to_have_count(1)
    usage = page.get_by_role("region", name="Usage and cost")
    expect(usage.get_by_role("img", name=re.compile("Tokens per day"))).to_be_visible()
    expect(usage.get_by_role("link", name=finished_debate["topic"])).to_be_visible()
    examples = page.get_by_role("region", name="Examples")
    expect(examples).to_contain_text(f"curl -X POST {stack.url}/api/debates")
    expect(examples).to_contain_text(f"ws://127.0.0.1:{stack.api_port}/ws/debates/")
    page.screenshot(path=artifacts / "portal.png", full_page=True)

    page.reload()  # shown once: after a reload only its prefix remains
    expect(page.get_by_role("region", name="API keys").locator("table")).to_be_visible()
    assert key not in page.content()
    keys.get_by_role("button", name=re.compile(f"Revoke key {re.escape(key[:12])}")).click()
    expect(keys.get_by_role("status").filter(has_text="Key revoked")).to_be_visible()
    expect(keys.get_by_role("row").filter(has_text=key[:12])).to_have_count(0)
    refused = httpx.get(f"{stack.url}/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401


def test_every_page_fits_a_narrow_screen_and_works_by_keyboard(
    context: BrowserContext, stack: Stack, users: dict[str, str], finished_debate: dict[str, Any],
    artifacts: Path,
) -> None:  # fmt: skip
    page = context.new_page()
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{stack.url}/ui")
    # Keyboard only: the email field has focus, Tab moves on, Enter submits.
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(users["owner"])
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Start debate")).to_be_visible()
    # Tabbing from the top reaches the start button through real controls only.
    page.locator("body").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => [document.activeElement.tagName, document.activeElement.textContent.trim()]"
        )
        assert focused[0] in ("A", "BUTTON", "INPUT", "SELECT", "TEXTAREA"), focused
        if focused == ["BUTTON", "Start debate"]:
            break
    else:
        raise AssertionError("Tab never reached the Start debate button")

    pages = {
        "debate": "/ui",
        "live": f"/ui/debates/{finished_debate['id']}",
        "history": "/ui/history",
        "leaderboard": "/ui/leaderboard",
        "admin": "/admin",
        "portal": "/portal",
    }
    for name, path in pages.items():
        page.goto(f"{stack.url}{path}")
        page.locator("h1").first.wait_for()
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the screen"
        page.screenshot(path=artifacts / f"narrow-{name}.png", full_page=False)
    page.close()
