"""argon2 password hashing and the password policy."""

from __future__ import annotations

import pytest

from trademk.security.passwords import (
    PasswordHasher,
    WeakPasswordError,
    check_password_policy,
    generate_password,
)

FAST = {"memory_kib": 1024, "time_cost": 1}


def test_hash_is_argon2id_salted_and_verifies_only_the_right_password() -> None:
    hasher = PasswordHasher(**FAST)
    first, second = hasher.hash("a long passphrase"), hasher.hash("a long passphrase")
    assert first.startswith("$argon2id$") and first != second
    assert "a long passphrase" not in first
    assert hasher.verify(first, "a long passphrase")
    assert not hasher.verify(first, "a long passphrase!")


def test_unreadable_hashes_do_not_verify_and_need_rehash() -> None:
    hasher = PasswordHasher(**FAST)
    assert not hasher.verify("not-a-hash", "anything at all")
    assert hasher.needs_rehash("not-a-hash")


def test_hashes_made_with_other_costs_verify_and_ask_for_rehash() -> None:
    cheap, stronger = PasswordHasher(**FAST), PasswordHasher(memory_kib=2048, time_cost=2)
    old_hash = cheap.hash("a long passphrase")
    assert stronger.verify(old_hash, "a long passphrase")
    assert stronger.needs_rehash(old_hash)
    assert not cheap.needs_rehash(old_hash)


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 10"), ("x" * 257, "at most 256"), (" " * 12, "whitespace")],
)
def test_policy_refuses_weak_passwords(password: str, message: str) -> None:
    with pytest.raises(WeakPasswordError, match=message):
        check_password_policy(password)


def test_generated_passwords_are_long_random_and_pass_the_policy() -> None:
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        check_password_policy(password)
        assert len(password) >= 20


async def test_async_helpers_hash_and_verify_off_the_event_loop() -> None:
    hasher = PasswordHasher(**FAST)
    hashed = await hasher.hash_async("a long passphrase")
    assert await hasher.verify_async(hashed, "a long passphrase")
    await hasher.burn_time_async("anything at all")
