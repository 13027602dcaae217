"""The audit service: an append-only, hash-chained audit log of every security event."""
