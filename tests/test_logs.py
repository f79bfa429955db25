"""Logging setup and the secret-masking safety net (hedge_strategy.logs)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from loguru import logger

from hedge_strategy.config import LoggingConfig, config_from_mapping
from hedge_strategy.logs import SECRET_MASK, TOKEN_MASK, log_path, mask_secrets, setup_logging

SECRET = "9f" * 40
TOKEN = "1795251597:101:3:" + "570aa9d6" * 10


@pytest.fixture(autouse=True)
def restore_loguru() -> Iterator[None]:
    yield
    logger.remove()
    logger.configure(extra={}, patcher=lambda record: None)
    logger.add(sys.stderr)


def logging_config(tmp_path: Path, **overrides: Any) -> LoggingConfig:
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    data["logging"].update({"dir": str(tmp_path / "logs"), **overrides})
    return config_from_mapping(data).logging


def test_mask_secrets_hides_keys_and_token_signatures() -> None:
    text = f"key={SECRET} prefixed=0x{SECRET.upper()} token={TOKEN} run={SECRET}ab short={'ab' * 32}"
    masked = mask_secrets(text)
    assert SECRET not in masked.lower() and "570aa9d6" not in masked
    assert masked.count(SECRET_MASK) == 3
    assert f"token=1795251597:101:3:{TOKEN_MASK}" in masked
    assert f"short={'ab' * 32}" in masked  # a 64-hex hash is not a key: left alone


def test_log_lines_carry_role_and_are_masked_in_file_and_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = logging_config(tmp_path)
    setup_logging("A", cfg)
    logger.info("signer ready with key {} and token {}", SECRET, TOKEN)
    logger.debug("below the configured level")
    try:
        raise RuntimeError(f"sendTx refused for {SECRET}")
    except RuntimeError:
        logger.exception("hedge request failed; pausing")
    logger.remove()  # closes the file sink, flushing it

    lines = log_path("A", cfg).read_text().splitlines()
    assert log_path("A", cfg) == tmp_path / "logs" / "main_A.log"
    assert " | INFO     | A | " in lines[0] and f"key {SECRET_MASK} and token" in lines[0]
    assert not any("below the configured level" in line for line in lines)
    text = "\n".join(lines)
    assert "RuntimeError: sendTx refused for " + SECRET_MASK in text
    assert SECRET not in text and "570aa9d6" not in text
    err = capsys.readouterr().err
    assert "hedge request failed; pausing" in err and SECRET not in err


@pytest.mark.parametrize(
    ("rotation", "retention"),
    [("1 day", "10 days"), ("00:00", 3), (1_048_576, "1 week"), ("daily", 1), ("500 KB", "12 hours")],
)
def test_every_rotation_and_retention_the_config_accepts_works_in_loguru(
    tmp_path: Path, rotation: Any, retention: Any
) -> None:
    cfg = logging_config(tmp_path, rotation=rotation, retention=retention)
    setup_logging("B", cfg)
    logger.info("started")
    logger.remove()
    assert "started" in log_path("B", cfg).read_text()


def test_braces_in_messages_and_exceptions_are_not_template_fields(tmp_path: Path) -> None:
    cfg = logging_config(tmp_path)
    setup_logging("B", cfg)
    try:
        raise ValueError("bad body {'code': 21120}")
    except ValueError:
        logger.exception("outcome {extra[nothing]} kept literally")
    logger.remove()
    text = log_path("B", cfg).read_text()
    assert "outcome {extra[nothing]} kept literally" in text
    assert "ValueError: bad body {'code': 21120}" in text


def test_url_passwords_are_masked_and_urls_stay_readable() -> None:
    line = "redis at redis://hedger:s3cret@10.0.0.5:6379/0 unreachable; sim at http://127.0.0.1:8765/stream"
    masked = mask_secrets(line)
    assert "s3cret" not in masked
    assert "redis://hedger:***@10.0.0.5:6379/0" in masked and "http://127.0.0.1:8765/stream" in masked
