import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.storage import database, migrate

APP_TABLES = {"users", "symbols", "configs", "orders", "positions"}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_reaches_head_and_models_agree_with_migrations(
    migrated_engine: AsyncEngine,
) -> None:
    assert await migrate.current_revision(migrated_engine) == migrate.head_revision()
    assert await _tables(migrated_engine) >= APP_TABLES
    assert await migrate.schema_drift(migrated_engine) == []


async def test_upgrade_twice_is_a_no_op(migrated_engine: AsyncEngine) -> None:
    await migrate.upgrade(migrated_engine)
    assert await migrate.current_revision(migrated_engine) == migrate.head_revision()


async def test_downgrade_to_base_and_back(migrated_engine: AsyncEngine) -> None:
    await migrate.downgrade(migrated_engine, "base")
    assert not APP_TABLES & await _tables(migrated_engine)
    await migrate.upgrade(migrated_engine)
    assert await migrate.schema_drift(migrated_engine) == []


async def test_every_table_has_uuid_id_and_timestamps(migrated_engine: AsyncEngine) -> None:
    def columns(conn, table: str) -> set[str]:  # type: ignore[no-untyped-def]
        return {c["name"] for c in inspect(conn).get_columns(table)}

    async with migrated_engine.connect() as conn:
        for table in APP_TABLES:
            assert {"id", "created_at", "updated_at"} <= await conn.run_sync(columns, table)


@pytest.mark.parametrize("app_db_url", ["postgresql"], indirect=True)
async def test_postgres_money_columns_are_numeric(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'orders' "
                "AND column_name IN ('qty', 'price', 'filled_avg_price')"
            )
        )
        assert {row.data_type for row in rows} == {"numeric"}


async def test_migrate_fails_clearly_on_unreachable_database(closed_port: int) -> None:
    engine = database.create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/x")
    with pytest.raises(OSError):
        await migrate.upgrade(engine)
    await engine.dispose()
