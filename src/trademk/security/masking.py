"""Configuration for display: every secret masked.

Whatever shows configuration (an API route, the dashboard, the CLI) renders
:func:`masked_settings` rather than the settings themselves, so keys such as
Alpaca's never leave the process in clear.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from trademk.config import Settings

MASK = "****"
_VISIBLE_TAIL = 4
_MIN_LENGTH_FOR_TAIL = 16


def mask_secret(value: str | None) -> str | None:
    """``****`` plus the last 4 characters of long secrets (enough to tell keys apart)."""
    if value is None or value == "":
        return value
    if len(value) >= _MIN_LENGTH_FOR_TAIL:
        return MASK + value[-_VISIBLE_TAIL:]
    return MASK


def mask_url(url: str | None) -> str | None:
    """The URL with its password replaced."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by environment name as JSON values, secrets masked, URLs without passwords."""
    plain = settings.model_dump(mode="json")
    shown: dict[str, Any] = {}
    for name, value in plain.items():
        raw = getattr(settings, name)
        if isinstance(raw, SecretStr):
            value = mask_secret(raw.get_secret_value())
        elif isinstance(value, str) and name.endswith("_url"):
            value = mask_url(value)
        shown[name.upper()] = value
    return shown
