"""Password checks of the accounts module (pure: no database)."""

from __future__ import annotations

from argon2 import PasswordHasher

from aragora.gateway import accounts

USER = accounts.User(id="u1", email="a@example.org", role="member", created_at="2026-01-01")


def test_check_login_accepts_the_password_and_refuses_others() -> None:
    stored = accounts.hash_password("correct horse battery")
    assert accounts.check_login((USER, stored), "correct horse battery") == USER
    assert accounts.check_login((USER, stored), "wrong horse battery") is None
    assert accounts.check_login(None, "correct horse battery") is None  # unknown email
    disabled = accounts.User(**{**USER.public(), "role": "member", "disabled": True})
    assert accounts.check_login((disabled, stored), "correct horse battery") is None
    assert accounts.check_login((USER, "not-a-hash"), "correct horse battery") is None


def test_an_outdated_hash_still_logs_in_and_asks_to_be_rehashed() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse battery")
    assert accounts.check_login((USER, weak), "correct horse battery") == USER
    assert accounts.needs_rehash(weak)
    assert not accounts.needs_rehash(accounts.hash_password("correct horse battery"))
