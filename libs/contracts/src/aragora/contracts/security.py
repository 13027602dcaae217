"""Security events and the audit service's request/reply messages.

Every security-relevant fact (a login, a token issued or revoked, an API key made or
deleted, an admin or debug action, a breaker reset, a configuration loaded in emergency
mode...) is one :class:`SecurityEvent`, published by the service that saw it on
``aragora.evt.security.<area>.<verb>`` (stream ARAGORA_EVENTS, ``Nats-Msg-Id`` = its
``event_id``). The audit service records each one once in its append-only, hash-chained
``audit_log``. ``action`` is ``<area>.<verb>`` (``auth.login``, ``token.revoke``,
``admin.request``...), an open set: new actions need no new type.

Events never carry a secret: no password, token, API key or signing key, only their ids
(a JWT's ``jti``, an API key's id, a key's ``kid``).

The gateway asks the audit service (queue group ``audit``) for pages of the log
(:class:`AuditQuery`) and for a verification of the chain (:class:`AuditVerifyRequest`)
over core NATS request/reply (``aragora.rpc.audit.*``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from aragora.contracts.messages import _Base
from aragora.contracts.subjects import PREFIX, subject_token

SECURITY_EVENTS = f"{PREFIX}.evt.security.>"
"""Every security event (inside stream ARAGORA_EVENTS)."""
AUDIT_QUERY_RPC = f"{PREFIX}.rpc.audit.query"
"""Request/reply: a page of the audit log (:class:`AuditQuery` -> :class:`AuditPage`)."""
AUDIT_VERIFY_RPC = f"{PREFIX}.rpc.audit.verify"
"""Request/reply: recompute the hash chain (-> :class:`AuditVerifyReply`)."""
AUDIT_RPC_QUEUE = "audit"
"""Queue group of the audit services' RPC subscriptions: one replica answers."""
AUTH_BUCKET = "ARAGORA_AUTH"
"""NATS KV bucket every gateway watches: revoked token ids, not-before marks, the sealed
JWT key ring (see ``aragora.gateway.revocation``)."""

Outcome = Literal["success", "failure", "denied", "error"]
"""``success``; ``failure`` (a bad request, a wrong password); ``denied`` (401/403: no or
insufficient credentials); ``error`` (the server failed)."""
MAX_QUERY_LIMIT = 1000


class SecurityEvent(_Base, frozen=True, kw_only=True, tag="security.event"):
    """Something security-relevant happened (who did what to what, from where, how it ended).

    ``actor`` is the readable caller (an email, ``service``, or the email a failed login
    named); ``actor_id`` its account id when known. ``detail`` holds small, non-secret
    context (method, path, status, counts).
    """

    action: str
    outcome: Outcome
    actor: str = ""
    actor_id: str = ""
    actor_role: str = ""
    actor_kind: str = ""  # user, api_key, service, anonymous
    target: str = ""
    ip: str = ""
    service: str = "gateway"
    detail: dict[str, str] = {}


SECURITY_EVENT_TYPES: tuple[type[SecurityEvent], ...] = (SecurityEvent,)


def security_event_subject(action: str) -> str:
    """``aragora.evt.security.<area>.<verb>`` for ``action`` ``<area>.<verb>``."""
    area, _, verb = action.partition(".")
    return f"{PREFIX}.evt.security.{subject_token(area)}.{subject_token(verb or 'event')}"


# --- audit RPC ----------------------------------------------------------------------------


class _Rpc(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``audit_log``: the event's fields, its position and its chain link.

    ``hash`` = SHA-256 of the row's canonical form, which includes ``prev_hash`` (the
    previous row's ``hash``; 64 zeros for the first row)."""

    seq: int
    event_id: str
    occurred_at: str
    recorded_at: str
    action: str
    outcome: str
    actor: str
    actor_id: str
    actor_role: str
    actor_kind: str
    target: str
    ip: str
    correlation_id: str
    service: str
    detail: dict[str, str]
    prev_hash: str
    hash: str


class AuditQuery(_Rpc, frozen=True, kw_only=True, tag="rpc.audit.query"):
    """Entries matching every given filter, ``limit`` at most, from ``cursor`` on.

    ``actor`` matches the actor or the actor id; ``action`` an action exactly, or a prefix
    when it ends with ``*`` (``token.*``). ``order`` ``desc``: newest first (the default);
    ``asc``: oldest first (exports). ``cursor`` is the ``next_cursor`` of the previous page.
    """

    limit: int = 100
    actor: str = ""
    action: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None
    cursor: str = ""
    order: Literal["asc", "desc"] = "desc"


class AuditPage(_Rpc, frozen=True, kw_only=True, tag="rpc.audit.page"):
    """``next_cursor`` is empty on the last page."""

    entries: list[AuditEntry]
    next_cursor: str = ""


class AuditVerifyRequest(_Rpc, frozen=True, kw_only=True, tag="rpc.audit.verify"):
    pass


class ChainBreak(msgspec.Struct, frozen=True, kw_only=True):
    """Where the chain first fails: the row (``seq``) and why."""

    seq: int
    event_id: str = ""
    problem: str


class AuditVerifyReply(_Rpc, frozen=True, kw_only=True, tag="rpc.audit.verify_reply"):
    """``ok``: every row matches its hash and links to the previous one, no row is
    missing. ``checked`` rows were read; ``head_hash`` is the last row's hash."""

    ok: bool
    checked: int
    last_seq: int = 0
    head_hash: str = ""
    first_break: ChainBreak | None = None
    verified_at: datetime


class AuditError(_Rpc, frozen=True, kw_only=True, tag="rpc.audit.error"):
    """The request was refused (``detail`` says why; safe to show)."""

    detail: str


AuditRequest = AuditQuery | AuditVerifyRequest
AuditReply = AuditPage | AuditVerifyReply | AuditError
