"""``open_tick_store``: pick a TickStore backend from a URL."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from trademk.domain.ports import TickStore
from trademk.storage.ticks.duckdb_store import DuckDBTickStore
from trademk.storage.ticks.postgres_store import PostgresTickStore
from trademk.storage.ticks.questdb_store import QuestDBTickStore

ACCEPTED_URLS: Final = (
    "duckdb:///relative/path.duckdb",
    "duckdb:////absolute/path.duckdb",
    "duckdb:///:memory:",
    "postgresql://user@host:port/db (also postgres:// and postgresql+asyncpg://)",
    "questdb://host:9000?pg_port=8812&user=admin&password=quest&database=qdb",
)
_POSTGRES_SCHEMES: Final = ("postgresql", "postgres", "postgresql+asyncpg")
_QUESTDB_PARAMS: Final = {"pg_port": int, "user": str, "password": str, "database": str}


def open_tick_store(url: str, **options: Any) -> TickStore:
    """Build (but do not start) the TickStore a URL names; ``options`` go to its constructor.

    Call ``await store.start()`` before use and ``await store.close()`` after.
    """
    if not isinstance(url, str):
        raise ValueError(f"tick store URL must be a string, not {url!r}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        scheme = ""
    if scheme == "duckdb":
        return DuckDBTickStore(_duckdb_path(url, rest), **options)
    if scheme in _POSTGRES_SCHEMES:
        return PostgresTickStore(f"postgresql://{rest}", **options)
    if scheme == "questdb":
        return _questdb_store(url, options)
    raise ValueError(
        f"unsupported tick store URL {_redact(url)!r}; accepted: " + "; ".join(ACCEPTED_URLS)
    )


def _duckdb_path(url: str, rest: str) -> str:
    # duckdb:///x -> rest "/x" -> path "x"; duckdb:////x -> rest "//x" -> path "/x".
    if not rest.startswith("/") or len(rest) < 2:
        raise ValueError(
            f"invalid DuckDB URL {url!r}: use duckdb:///relative/path.duckdb, "
            "duckdb:////absolute/path.duckdb or duckdb:///:memory:"
        )
    return rest[1:]


def _questdb_store(url: str, options: dict[str, Any]) -> QuestDBTickStore:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"invalid QuestDB URL {_redact(url)!r}: a host is required")
    kwargs: dict[str, Any] = {"http_port": parts.port or 9000}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        convert = _QUESTDB_PARAMS.get(name)
        if convert is None:
            raise ValueError(
                f"unknown QuestDB URL parameter {name!r}; accepted: {', '.join(_QUESTDB_PARAMS)}"
            )
        try:
            kwargs[name] = convert(value)
        except ValueError as err:
            raise ValueError(f"invalid QuestDB URL parameter {name}={value!r}") from err
    kwargs.update(options)
    return QuestDBTickStore(parts.hostname, **kwargs)


def _redact(url: str) -> str:
    """The URL without a password, for error messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
