"""The UI's routes over plain HTTP: public shells without data, strict headers, and an
asset route that serves plain file names only."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.stack import Stack

PAGES = [
    "/ui",
    "/ui/",
    "/ui/history",
    "/ui/leaderboard",
    "/ui/debates/anything",
    "/admin",
    "/portal",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_shell_is_public_and_locked_down(stack: Stack, path: str) -> None:
    page = httpx.get(f"{stack.url}{path}")  # no token
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<script type="module" src="/ui/static/main.js">' in page.text
    assert stack.token not in page.text


def test_assets_are_served_by_plain_name_only(stack: Stack) -> None:
    script = httpx.get(f"{stack.url}/ui/static/main.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    style = httpx.get(f"{stack.url}/ui/static/app.css")
    assert style.headers["content-type"].startswith("text/css")
    for name in ("ui.py", "..%2Fui.py", "..%2F..%2Fapp.py", "nothing.js", "MAIN.JS", "%2e%2e"):
        refused = httpx.get(f"{stack.url}/ui/static/{name}")
        assert refused.status_code == 404, name
    # The API stays behind its token: only the shells and assets became public.
    assert httpx.get(f"{stack.url}/api/debates").status_code == 401
    assert httpx.get(f"{stack.url}/admin/anything").status_code in (401, 404)
