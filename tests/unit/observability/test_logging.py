import json
import logging

import pytest
import structlog

from trademk.observability.logging import MASK, SecretRedactor, configure_logging


def test_redactor_masks_known_secrets_inside_text() -> None:
    redactor = SecretRedactor(["s3cr3t-value"])
    event = redactor(None, "info", {"event": "connecting with s3cr3t-value now"})
    assert event["event"] == f"connecting with {MASK} now"


def test_redactor_masks_url_passwords_and_sensitive_keys() -> None:
    redactor = SecretRedactor()
    event = redactor(
        None,
        "info",
        {"event": "db", "url": "postgresql://user:hunter22@db:5432/x", "api_key": "abc", "n": 3},
    )
    assert event["url"] == f"postgresql://user:{MASK}@db:5432/x"
    assert event["api_key"] == MASK
    assert event["n"] == 3


def test_configured_logging_emits_json_without_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=True, secrets=["topsecret-token-1"])
    structlog.get_logger("t").info("login", detail="token topsecret-token-1 used")
    logging.getLogger("uvicorn.error").info("stdlib line with topsecret-token-1")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert [line["event"] for line in lines] == [
        "login",
        f"stdlib line with {MASK}",
    ]
    assert lines[0]["detail"] == f"token {MASK} used"
    assert all("topsecret-token-1" not in json.dumps(line) for line in lines)
