"""Aragora."""
