"""DDL helpers for migrations: the trigger that keeps ``updated_at`` current."""

from __future__ import annotations

from alembic import op

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION trademk_set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = clock_timestamp();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def _dialect() -> str:
    return op.get_bind().dialect.name


def create_updated_at_function() -> None:
    if _dialect() == "postgresql":
        op.execute(_PG_FUNCTION)


def drop_updated_at_function() -> None:
    if _dialect() == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS trademk_set_updated_at()")


def create_updated_at_trigger(table: str) -> None:
    """On every UPDATE of ``table`` set updated_at to the current time."""
    name = f"trg_{table}_updated_at"
    if _dialect() == "postgresql":
        op.execute(
            f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION trademk_set_updated_at()"
        )
    elif _dialect() == "sqlite":
        # Fires only when the statement did not set updated_at itself, so it
        # does not recurse and does not overwrite an explicit value.
        op.execute(
            f"CREATE TRIGGER {name} AFTER UPDATE ON {table} FOR EACH ROW "
            "WHEN NEW.updated_at IS OLD.updated_at BEGIN "
            f"UPDATE {table} SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') "
            "WHERE id = NEW.id; END"
        )


def drop_updated_at_trigger(table: str) -> None:
    name = f"trg_{table}_updated_at"
    if _dialect() == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    elif _dialect() == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
