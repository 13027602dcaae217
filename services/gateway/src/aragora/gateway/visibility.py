"""Who may see a debate: its creator, admins and owners, and everyone when it is public.

A debate belongs to the caller that started it: ``requested_by`` in its events and view
(the account's email, or ``service`` for the service token). Any other user is told the
debate does not exist (404), so ids cannot be probed; ``"public": true`` at creation
opens it to every authenticated user.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException

from aragora.gateway.auth import Identity

View = dict[str, Any]


def identity_of(scope: Any) -> Identity | None:
    identity = scope.get("state", {}).get("identity")
    return identity if isinstance(identity, Identity) else None


def owner_key(identity: Identity | None) -> str:
    """What a debate records as its creator (``requested_by``)."""
    if identity is None:
        return ""
    return identity.email or identity.subject


def sees_all(identity: Identity | None) -> bool:
    """Admins and owners see every debate; so does an app run without auth (tests only)."""
    return identity is None or identity.is_admin


def can_see(identity: Identity | None, view: View) -> bool:
    if sees_all(identity) or view.get("public"):
        return True
    return bool(view.get("requested_by")) and view.get("requested_by") == owner_key(identity)


def can_change(identity: Identity | None, view: View) -> bool:
    """Cancel: the creator or an admin (seeing a public debate is not owning it)."""
    return sees_all(identity) or view.get("requested_by") == owner_key(identity)


def list_filter(identity: Identity | None) -> str | None:
    """The owner key to filter a listing by; None when the caller sees everything."""
    return None if sees_all(identity) else owner_key(identity)


def visible(request: Request[Any, Any, Any], debate_id: str, view: View | None) -> View:
    """The view if this caller may see it, else 404 (the same answer as no such debate)."""
    if view is None or not can_see(identity_of(request.scope), view):
        raise NotFoundException(f"no debate {debate_id}")
    return view
