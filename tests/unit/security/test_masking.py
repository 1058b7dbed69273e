"""Configuration shown anywhere has its secrets masked."""

from __future__ import annotations

import json

from trademk.config import Settings
from trademk.security.masking import mask_secret, mask_url, masked_settings


def test_alpaca_keys_and_other_secrets_are_masked_in_shown_configuration() -> None:
    settings = Settings(
        _env_file=None,
        secret_key="a-very-long-secret-key-value-0123456789",
        alpaca_api_key="PKABCDEFGHIJKLMNOP12",
        alpaca_api_secret="alpaca-secret-value-xyz-0123456789",
        trademk_admin_password="admin password 123",
        database_url="postgresql://trademk:dbpass-123@db.internal:5432/trademk",
        redis_url="redis://:redispass-456@cache:6379/0",
    )
    shown = masked_settings(settings)
    text = json.dumps(shown)
    for secret in settings.secret_values():
        assert secret not in text
    assert shown["ALPACA_API_KEY"] == "****OP12"
    assert shown["DATABASE_URL"] == "postgresql://trademk:****@db.internal:5432/trademk"
    assert shown["REDIS_URL"] == "redis://:****@cache:6379/0"
    assert shown["FEED"] == "sim" and shown["SECRET_KEY_PREVIOUS"] is None


def test_short_secrets_show_nothing_and_urls_without_password_are_unchanged() -> None:
    assert mask_secret("short") == "****"
    assert mask_secret(None) is None
    assert mask_url("redis://cache:6379/0") == "redis://cache:6379/0"
