"""The ``trademk`` command."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from trademk import __version__
from trademk.cli_backtest import register_backtest_commands
from trademk.cli_users import announce_first_admin, user_app
from trademk.config import ConfigError, Settings, load_settings
from trademk.observability.logging import configure_logging

app = typer.Typer(
    name="trademk",
    help="Trademk: autonomous trading for U.S. stocks and the top cryptocurrencies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(user_app, name="user")
register_backtest_commands(app)
out = Console()


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    json_logs = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.is_production
    )
    configure_logging(settings.log_level, json_output=json_logs, secrets=settings.secret_values())
    return settings


async def _migrate(settings: Settings) -> str:
    from trademk.storage import database, migrate
    from trademk.storage.seed import seed_defaults

    engine = database.create_engine(settings.app_database_url)
    try:
        await migrate.upgrade(engine)
        await seed_defaults(
            database.session_factory(engine), settings.crypto_symbols, settings.stock_symbols
        )
        return await migrate.current_revision(engine) or "base"
    finally:
        await engine.dispose()


@app.command()
def migrate() -> None:
    """Upgrade the application database to the newest schema and seed defaults."""
    settings = _settings()
    try:
        revision = asyncio.run(_migrate(settings))
    except (OSError, DBAPIError) as err:
        raise ConfigError(f"cannot reach the database: {err}") from None
    out.print(f"database at revision [bold]{revision}[/bold] ({settings.engine_label})")


@app.command()
def version() -> None:
    """Print the Trademk version."""
    out.print(f"trademk {__version__}")


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Interface to serve the API on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to serve the API on.")] = None,
    feed: Annotated[
        str | None, typer.Option(help="Market data feed: sim, binance, alpaca or replay.")
    ] = None,
) -> None:
    """Run the whole platform in one process: API, feeds, ingestion, trading."""
    from trademk.wiring.processes import serve_api

    settings = _settings(host=host, port=port, feed=feed)
    base = f"http://{settings.host}:{settings.port}"
    out.print(
        f"[bold]Trademk {__version__}[/bold] starting "
        f"(feed: {settings.feed}, broker: {settings.broker})"
    )
    out.print(f"  Dashboard {base}/app")
    out.print(f"  API      {base}/api")
    out.print(f"  API docs {base}/docs")
    out.print(f"  Health   {base}/api/health")
    announce_first_admin(settings, out)
    asyncio.run(serve_api(settings))


@app.command()
def ingest(
    feed: Annotated[
        str | None, typer.Option(help="Market data feed: sim, binance, alpaca or replay.")
    ] = None,
) -> None:
    """Run ingestion alone: the feed's ticks into the tick store, until Ctrl-C."""
    from trademk.wiring.processes import run_ingest

    settings = _settings(feed=feed)
    out.print(f"ingesting {settings.feed} into {settings.tick_store_url} (Ctrl-C stops)")
    asyncio.run(run_ingest(settings))


WORKER_ROLES = ("ingest", "execution", "strategies")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface to serve the API on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to serve the API on.")] = None,
) -> None:
    """Serve the API, WebSocket and dashboard alone; trading runs in the workers.

    Needs Redis and shared storage (PostgreSQL).
    """
    from trademk.wiring.processes import require_shared_storage, serve_api

    settings = _settings(host=host, port=port)
    require_shared_storage(settings, "api")
    base = f"http://{settings.host}:{settings.port}"
    out.print(f"[bold]Trademk {__version__}[/bold] API starting (trading in the workers)")
    out.print(f"  Dashboard {base}/app")
    out.print(f"  API      {base}/api")
    announce_first_admin(settings, out)
    asyncio.run(serve_api(settings, role="api"))


@app.command()
def worker(
    role: Annotated[
        str, typer.Option(help="What this process does: ingest, execution or strategies.")
    ],
) -> None:
    """Run one part of the platform as its own process (needs Redis and shared storage)."""
    from trademk.wiring.processes import require_shared_storage, run_ingest, run_worker

    if role not in WORKER_ROLES:
        raise ConfigError(f"unknown worker role {role!r}: use one of {', '.join(WORKER_ROLES)}")
    settings = _settings()
    require_shared_storage(settings, role)
    out.print(f"trademk worker ({role}) starting")
    asyncio.run(run_ingest(settings) if role == "ingest" else run_worker(settings, role))


def main() -> None:
    """Console entry point: clear messages and exit codes instead of tracebacks."""
    try:
        app()
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(0)  # Ctrl-C is how a user stops `trademk run`: a clean stop, not a failure
