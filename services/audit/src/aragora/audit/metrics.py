"""Prometheus metrics of the audit service (served on ARAGORA_AUDIT_METRICS_PORT).

``aragora_audit_lag_events`` is what the log does not hold yet: security events in the
stream not yet delivered to the service plus those delivered and not yet recorded.
``aragora_audit_chain_ok`` is 1 while the last verification found the chain intact, 0
when it found a break (alert on it), -1 before the first verification.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

recorded = Counter(
    "aragora_audit_entries", "Security events recorded in audit_log", ["action", "outcome"]
)
duplicates = Counter(
    "aragora_audit_duplicates", "Redelivered security events recognised and not recorded again"
)
lag = Gauge(
    "aragora_audit_lag_events",
    "Security events published but not yet recorded in audit_log (sampled every 5 s)",
)
chain_ok = Gauge(
    "aragora_audit_chain_ok",
    "1: the last verification found the hash chain intact; 0: broken; -1: not verified yet",
)
chain_ok.set(-1)
chain_rows = Gauge("aragora_audit_chain_rows", "Rows checked by the last chain verification")
chain_verified = Gauge(
    "aragora_audit_chain_verified_timestamp_seconds", "When the chain was last verified (epoch)"
)
