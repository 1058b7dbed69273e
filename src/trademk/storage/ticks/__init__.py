"""TickStore backends (DESIGN.md §3): DuckDB (embedded default), PostgreSQL, QuestDB.

Pick one by URL with :func:`open_tick_store`; every backend passes the contract
suite in ``tests/contracts/test_tickstore_contract.py``.
"""

from trademk.storage.ticks.duckdb_store import DuckDBTickStore
from trademk.storage.ticks.errors import (
    TickStoreError,
    TickStoreNotStartedError,
    TickStoreUnavailableError,
)
from trademk.storage.ticks.factory import ACCEPTED_URLS, open_tick_store
from trademk.storage.ticks.postgres_store import PostgresTickStore
from trademk.storage.ticks.questdb_store import QuestDBTickStore

__all__ = [
    "ACCEPTED_URLS",
    "DuckDBTickStore",
    "PostgresTickStore",
    "QuestDBTickStore",
    "TickStoreError",
    "TickStoreNotStartedError",
    "TickStoreUnavailableError",
    "open_tick_store",
]
