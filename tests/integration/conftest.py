"""Fixtures of the integration tier shared across modules."""

from tests.integration.gateway_harness import gateway

__all__ = ["gateway"]
