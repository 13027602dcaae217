"""The web UI: page shells and their static assets, served by the gateway itself.

Plain HTML, CSS and JavaScript modules shipped as package data in ``web/`` (no build
step). The shells are public and hold no data and no secret: every panel is filled by the
page calling the API with the user's own credential (a login's access token, an API key,
or the local owner token handed over as ``#token=…`` in the URL fragment, which browsers
never send to a server). See docs/ui.md.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

# Every page is the same shell; the page's script picks the view from the path.
PAGES = [
    "/ui",
    "/ui/history",
    "/ui/leaderboard",
    "/ui/debates/{debate_id:str}",
    "/admin",
    "/portal",
]
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg)$")
_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
# Same-origin scripts, styles and API calls only ('self' covers ws:// to the same host and
# port); no inline script, so injected markup could not run even if some slipped through.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a new gateway version must not mix old assets
}


@functools.cache
def _read(relative: str) -> bytes:
    """A file of the ``web`` package data, read once per process (a few KB from the local
    package: cheap enough to do on the event loop the first time, then served from memory)."""
    return (files("aragora.gateway") / "web" / relative).read_bytes()


@get(PAGES, include_in_schema=False, sync_to_thread=False)
def page() -> Response[bytes]:
    """The HTML shell of every page (public: it has no data)."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


@get("/ui/static/{name:str}", include_in_schema=False, sync_to_thread=False)
def asset(name: FromPath[str]) -> Response[bytes]:
    """A script, stylesheet or icon of the UI; only plain names, never a path."""
    match = _ASSET_NAME.match(name)
    if match is None:
        raise NotFoundException(f"no asset {name}")
    try:
        body = _read(f"static/{name}")
    except (FileNotFoundError, IsADirectoryError):
        raise NotFoundException(f"no asset {name}") from None
    return Response(body, media_type=_TYPES[match.group(1)], headers=_HEADERS)


ROUTES = [page, asset]
