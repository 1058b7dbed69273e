from pathlib import Path

import pytest

from trademk.config import DEFAULT_SECRET_KEY, ConfigError, Settings, load_settings

STRONG_KEY = "k" * 48


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("ENVIRONMENT", "SECRET_KEY", "CORS_ORIGINS", "DATABASE_URL", "ALPACA_KEY_ID"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_run_on_embedded_storage_under_data_dir() -> None:
    settings = Settings(data_dir=Path("/data"))
    assert settings.app_database_url == "sqlite+aiosqlite:////data/trademk.db"
    assert settings.tick_store_url == "duckdb:////data/ticks.duckdb"
    assert settings.feed == "sim" and settings.broker == "paper"
    assert len(settings.crypto_symbols) == 15 and len(settings.stock_symbols) == 15


def test_plain_database_urls_get_async_drivers() -> None:
    assert (
        Settings(database_url="postgresql://u:p@h:5432/db").app_database_url
        == "postgresql+asyncpg://u:p@h:5432/db"
    )
    assert Settings(database_url="sqlite:///x.db").app_database_url == "sqlite+aiosqlite:///x.db"


def test_unsupported_database_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        _ = Settings(database_url="mysql://h/db").app_database_url


def test_questdb_url_selects_questdb_tick_store_unless_tickstore_url_set() -> None:
    assert Settings(questdb_url="http://qdb:9000").tick_store_url == "questdb://qdb:9000"
    assert (
        Settings(questdb_url="http://qdb:9000", tickstore_url="duckdb:///t.db").tick_store_url
        == "duckdb:///t.db"
    )


def test_env_lists_accept_commas_and_alpaca_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CRYPTO_SYMBOLS", "btcusdt,ethusdt")
    monkeypatch.setenv("ALPACA_KEY_ID", "PKTESTKEY")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret-value")
    settings = load_settings()
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.crypto_symbols == ["BTCUSDT", "ETHUSDT"]
    assert settings.alpaca_api_key is not None
    assert settings.alpaca_api_key.get_secret_value() == "PKTESTKEY"
    assert "secret-value" not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("APP_NAME=FromDotenv\nPORT=9001\n")
    settings = load_settings()
    assert settings.app_name == "FromDotenv" and settings.port == 9001


def test_production_refuses_default_secret_key() -> None:
    with pytest.raises(ConfigError, match="default SECRET_KEY"):
        load_settings(environment="production", secret_key=DEFAULT_SECRET_KEY)


def test_production_refuses_wildcard_cors_with_credentials() -> None:
    with pytest.raises(ConfigError, match="CORS_ORIGINS='\\*'"):
        load_settings(environment="production", secret_key=STRONG_KEY, cors_origins=["*"])
    allowed = load_settings(
        environment="production",
        secret_key=STRONG_KEY,
        cors_origins=["*"],
        cors_allow_credentials=False,
    )
    assert allowed.is_production


def test_invalid_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="PORT"):
        load_settings(port=70000)
    with pytest.raises(ConfigError, match="FEED"):
        load_settings(feed="nasdaq")


def test_secret_values_include_keys_and_url_passwords() -> None:
    settings = Settings(
        secret_key=STRONG_KEY,
        alpaca_api_secret="alpaca-secret",
        database_url="postgresql://user:dbpass123@h/db",
    )
    secrets = settings.secret_values()
    assert {STRONG_KEY, "alpaca-secret", "dbpass123"} <= set(secrets)
