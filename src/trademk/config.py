"""Settings: the one place environment variables are read (DESIGN.md §6.9).

Values come from the environment, then from a ``.env`` file in the working
directory, then from the defaults below. ``.env.example`` documents each one.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me-in-production"  # noqa: S105 - the known default we refuse in production

DEFAULT_CRYPTO_SYMBOLS = (
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "TRXUSDT",
    "AVAXUSDT", "LINKUSDT", "DOTUSDT", "LTCUSDT", "BCHUSDT", "XLMUSDT", "UNIUSDT",
)  # fmt: skip
DEFAULT_STOCK_SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "JPM", "V",
    "LLY", "WMT", "XOM", "MA", "COST",
)  # fmt: skip

Environment = Literal["development", "test", "production"]
FeedName = Literal["sim", "binance", "alpaca", "replay"]
BrokerName = Literal["paper", "alpaca"]


class ConfigError(ValueError):
    """The configuration cannot be used; the message says what to change."""


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


def async_database_url(url: str) -> str:
    """The SQLAlchemy async URL for a plain database URL (adds the async driver)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"DATABASE_URL {url!r} is not a URL (expected sqlite:/// or postgresql://)"
        )
    drivers = {
        "sqlite": "sqlite+aiosqlite",
        "postgres": "postgresql+asyncpg",
        "postgresql": "postgresql+asyncpg",
    }
    if scheme in drivers:
        return f"{drivers[scheme]}://{rest}"
    if scheme in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        return url
    raise ConfigError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:/// or postgresql://"
    )


class Settings(BaseSettings):
    """Typed platform settings. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    app_name: str = "Trademk"
    debug: bool = False
    environment: Environment = "development"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"]
    )
    cors_allow_credentials: bool = True

    host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    database_url: str | None = None
    redis_url: str | None = None
    redis_namespace: str = Field(default="trademk", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    questdb_url: str | None = None
    tickstore_url: str | None = None

    feed: FeedName = "sim"
    broker: BrokerName = "paper"
    crypto_symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_CRYPTO_SYMBOLS)
    )
    stock_symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_STOCK_SYMBOLS)
    )
    sim_seed: int = 42
    sim_ticks_per_second: float = Field(default=200.0, gt=0)
    replay_source: str | None = None
    replay_speed: float = Field(default=1.0, ge=0)

    default_strategies: bool = True

    paper_starting_cash: Decimal = Field(default=Decimal("100000"), gt=0)
    paper_fee_bps: Decimal = Field(default=Decimal("1"), ge=0)
    paper_slippage_bps: Decimal = Field(default=Decimal("0"), ge=0)

    binance_api_url: str = "wss://stream.binance.com:9443"
    alpaca_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALPACA_API_KEY", "ALPACA_KEY_ID")
    )
    alpaca_api_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALPACA_API_SECRET", "ALPACA_SECRET_KEY")
    )
    alpaca_base_url: str = "https://api.alpaca.markets"
    alpaca_paper_base_url: str = "https://paper-api.alpaca.markets"
    alpaca_paper: bool = True
    alpaca_data_ws_url: str = "wss://stream.data.alpaca.markets"
    alpaca_data_feed: Literal["iex", "sip"] = "iex"

    ingest_batch_size: int = Field(default=5000, gt=0)
    ingest_flush_interval: float = Field(default=0.1, gt=0)
    ingest_queue_capacity: int = Field(default=200_000, gt=0)
    ingest_memory_bound: int = Field(default=1_000_000, gt=0)

    secret_key_previous: SecretStr | None = None
    access_token_minutes: int = Field(default=15, ge=1, le=1440)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    public_market_data: bool = False
    trademk_admin_email: str | None = None
    trademk_admin_password: SecretStr | None = None
    password_hash_memory_kib: int = Field(default=65536, ge=1024, le=4_194_304)
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_ip_per_minute: int = Field(default=1200, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    login_failure_window_seconds: int = Field(default=300, ge=1)
    security_redis_prefix: str = Field(default="trademk:security", min_length=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    _split_lists = field_validator(
        "cors_origins", "crypto_symbols", "stock_symbols", mode="before"
    )(_comma_list)

    @field_validator("crypto_symbols", "stock_symbols")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        return [symbol.upper() for symbol in value]

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        if self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY:
            raise ValueError(
                "ENVIRONMENT=production refuses the default SECRET_KEY: set SECRET_KEY to a "
                "long random value, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        if len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("ENVIRONMENT=production needs a SECRET_KEY of at least 32 characters")
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError(
                "ENVIRONMENT=production refuses CORS_ORIGINS='*' together with credentials: "
                "list the dashboard origins in CORS_ORIGINS or set CORS_ALLOW_CREDENTIALS=false"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def app_database_url(self) -> str:
        """SQLAlchemy async URL of the application database."""
        if self.database_url:
            return async_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir / 'trademk.db'}"

    @property
    def tick_store_url(self) -> str:
        """The tick store URL: TICKSTORE_URL, else QuestDB if QUESTDB_URL is set, else DuckDB."""
        if self.tickstore_url:
            return self.tickstore_url
        if self.questdb_url:
            parts = urlsplit(self.questdb_url)
            return f"questdb://{parts.netloc or parts.path}"
        return f"duckdb:///{self.data_dir / 'ticks.duckdb'}"

    @property
    def engine_label(self) -> str:
        """The app database backend and location, without credentials."""
        from sqlalchemy.engine.url import make_url

        return make_url(self.app_database_url).render_as_string(hide_password=True)

    @property
    def symbols(self) -> list[str]:
        return [*self.crypto_symbols, *self.stock_symbols]

    def secret_values(self) -> list[str]:
        """Every secret this configuration holds, for log redaction."""
        values = [self.secret_key.get_secret_value()]
        for secret in (
            self.alpaca_api_key,
            self.alpaca_api_secret,
            self.secret_key_previous,
            self.trademk_admin_password,
        ):
            if secret is not None:
                values.append(secret.get_secret_value())
        for url in (self.database_url, self.redis_url, self.questdb_url, self.tickstore_url):
            password = urlsplit(url).password if url else None
            if password:
                values.append(password)
        return [value for value in values if len(value) >= 4]


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one readable ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        lines = []
        for error in err.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{where.upper()}: {message}" if error["loc"] else message)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
