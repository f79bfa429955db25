"""config.yaml validation and secret loading (hedge_strategy.config)."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from hedge_strategy.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_mapping,
    load_config,
    load_secret,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config.yaml"
SECRET_A = "ab" * 40
SECRET_B = "0123456789" * 8


def shipped() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text())


def problems_of(data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data)
    return str(info.value)


def test_shipped_config_loads_with_typed_values() -> None:
    config = load_config(SHIPPED)
    assert config.pair == "demo"
    assert config.accounts["a"].account_index == 101 and config.accounts["b"].account_index == 102
    assert config.accounts["a"].key_id == "101:3"
    assert config.strategy.quantity == Decimal("0.0002")
    assert isinstance(config.strategy.flat_tolerance, Decimal)
    assert config.strategy.retry_times == 5 and config.strategy.on_imbalance == "hedge"
    assert config.exchange.ws_backoff_min_s == 0.25 and config.exchange.tier == "premium"
    assert config.redis.url == "redis://127.0.0.1:6379/0"
    assert config.secrets_file == Path("var/secrets.json")
    assert config.journal.path_for(101) == Path("var/journal_101.sqlite")
    assert config.logging.rotation == "20 MB" and config.logging.retention == 10
    assert config.sim["enabled"] is True  # kept, not validated here


def test_defaults_mirror_the_shipped_file() -> None:
    """A config of only the required keys equals the shipped one: the declared defaults match the YAML."""
    data = shipped()
    minimal = {"pair": data["pair"], "accounts": data["accounts"], "secrets_file": data["secrets_file"],
               "exchange": {k: data["exchange"][k] for k in ("url", "ws_url")},
               "redis": {"url": data["redis"]["url"]},
               "strategy": {k: data["strategy"][k] for k in ("market", "quantity")}}
    full, bare = config_from_mapping(data), config_from_mapping(minimal)
    for section in ("exchange", "redis", "strategy", "journal", "logging"):
        assert getattr(bare, section) == getattr(full, section), section
    assert {f.name for f in dataclasses.fields(Config)} == set(data)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("strategy", "retry_times"), "x", "strategy.retry_times: expected an integer >= 1, got 'x'"),
        (("strategy", "retry_times"), 0, "strategy.retry_times: expected an integer >= 1, got 0"),
        (("strategy", "retry_times"), True, "strategy.retry_times: expected an integer >= 1, got True"),
        (("strategy", "quantity"), "-0.1", "strategy.quantity: expected a decimal number"),
        (("strategy", "quantity"), "abc", "strategy.quantity: expected a decimal number"),
        (("strategy", "flat_tolerance"), None, "strategy.flat_tolerance: expected a decimal number"),
        (("strategy", "hedge_from_trade_feed_after_s"), 0,
         "strategy.hedge_from_trade_feed_after_s: expected a number > 0, got 0"),
        (("strategy", "hedge_from_trade_feed_after_s"), 30,
         "strategy.hedge_from_trade_feed_after_s: must be below half of "
         "strategy.hedge_confirm_timeout_s (60)"),
        (("strategy", "hedge_from_trade_feed_first"), "yes",
         "strategy.hedge_from_trade_feed_first: expected true or false, got 'yes'"),
        (("strategy", "on_imbalance"), "ignore", "strategy.on_imbalance: expected one of hedge, pause"),
        (("exchange", "request_timeout_s"), 0, "exchange.request_timeout_s: expected a number > 0, got 0"),
        (("exchange", "tier"), "gold", "exchange.tier: expected one of standard, premium, got 'gold'"),
        (("exchange", "url"), "127.0.0.1:8765", "exchange.url: expected a URL starting with http:// or https://"),
        (("exchange", "ws_backoff_max_s"), 0.1, "exchange.ws_backoff_max_s: must be >= exchange.ws_backoff"),
        (("exchange", "auth_token_ttl_s"), 28801,  # the venue refuses a 9 h token (accountLimits capture)
         "exchange.auth_token_ttl_s: expected an integer between 60 and 28800, got 28801"),
        (("accounts", "a", "api_key_index"), 255, "accounts.a.api_key_index: expected an integer between"),
        (("accounts", "b", "account_index"), 101, "accounts.b.account_index: must differ"),
        (("redis", "start_local"), "yes", "redis.start_local: expected true or false, got 'yes'"),
        (("redis", "url"), "http://x", "redis.url: expected a URL starting with redis://"),
        (("redis", "sentinels"), ["sentinel-1"], """expected a list of "host:port", got ['sentinel-1']"""),
        (("redis", "sentinels"), "h:26379", 'redis.sentinels: expected a list of "host:port"'),
        (("redis", "socket_timeout_s"), 1, "redis.socket_timeout_s: expected a number > 1, got 1"),
        (("redis", "retries"), -1, "redis.retries: expected an integer >= 0, got -1"),
        (("logging", "level"), "LOUD", "logging.level: expected one of TRACE"),
        (("logging", "rotation"), "20 parsecs", "logging.rotation: expected a size"),
        (("logging", "retention"), 0, "logging.retention: expected a number of files >= 1"),
        (("pair",), "my pair", "pair: expected a name of letters"),
        (("pair",), "a:b", "pair: expected a name of letters"),
        (("sim",), [1, 2], "sim: expected a mapping"),
    ],
)
def test_bad_value_names_the_key(path: tuple[str, ...], value: Any, expected: str) -> None:
    data = shipped()
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert expected in problems_of(data)


def test_unknown_keys_are_named_at_every_level() -> None:
    data = shipped()
    data["colour"] = "blue"
    data["exchange"]["foo"] = 1
    data["accounts"]["a"]["nickname"] = "maker"
    data["accounts"]["c"] = {"account_index": 1, "api_key_index": 1}
    message = problems_of(data)
    for line in ("colour: unknown key", "exchange.foo: unknown key", "accounts.a.nickname: unknown key",
                 "accounts.c: unknown key"):
        assert line in message.splitlines()


def test_missing_required_keys_are_named() -> None:
    data = shipped()
    del data["pair"]
    del data["strategy"]["quantity"]
    del data["accounts"]["b"]
    del data["exchange"]
    lines = problems_of(data).splitlines()
    for line in ("pair: missing required key", "strategy.quantity: missing required key",
                 "accounts.b: missing required key", "exchange.url: missing required key",
                 "exchange.ws_url: missing required key"):
        assert line in lines
    # A missing section is reported once, not once more for each of its keys.
    assert not any(line.startswith("accounts.b.") for line in lines)


def test_every_problem_is_reported_together() -> None:
    data = shipped()
    data["strategy"]["depth"] = 0
    data["strategy"]["max_slippage_bps"] = "wide"
    assert len(problems_of(data).splitlines()) == 2


def test_load_config_reports_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pair: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_overrides_replace_and_validate() -> None:
    config = load_config(SHIPPED)
    changed = apply_overrides(config, market="ETH", quantity="0.01", depth=3)
    strategy = changed.strategy
    assert (strategy.market, strategy.quantity, strategy.depth) == ("ETH", Decimal("0.01"), 3)
    assert changed.strategy.retry_times == config.strategy.retry_times
    assert apply_overrides(config) == config
    with pytest.raises(ConfigError, match=r"strategy\.quantity: .*got '0'") as info:
        apply_overrides(config, quantity="0", depth=0)
    assert "strategy.depth: expected an integer >= 1, got 0" in str(info.value)



def load_in_a_process(tmp_path: Path, data: dict) -> subprocess.CompletedProcess[str]:
    """Write `data` as a config and load it in a fresh Python, as an entry point does (exit 2 on errors)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    script = (
        "import sys; from pathlib import Path; from hedge_strategy.config import *\n"
        "try:\n    load_config(Path(sys.argv[1]))\nexcept ConfigError as e:\n    exit_on_config_error(e)\n"
    )
    return subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)

def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    data = shipped()
    data["strategy"]["retry_times"] = "x"
    done = load_in_a_process(tmp_path, data)
    assert done.returncode == 2
    assert "strategy.retry_times: expected an integer >= 1, got 'x'" in done.stderr


# --- secrets ---------------------------------------------------------------------------------------------


@pytest.fixture
def config_with_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LIGHTER_API_SECRET_A", raising=False)
    monkeypatch.delenv("LIGHTER_API_SECRET_B", raising=False)
    data = copy.deepcopy(shipped())
    data["secrets_file"] = str(tmp_path / "secrets.json")
    return config_from_mapping(data)


def write_secrets(path: Path, keys: dict[str, str], mode: int = 0o600) -> None:
    path.write_text(json.dumps({"keys": keys}))
    os.chmod(path, mode)


def test_secret_from_environment_wins(config_with_secrets, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTER_API_SECRET_A", "0x" + SECRET_A.upper())
    assert load_secret(config_with_secrets, "a") == SECRET_A  # no file needed, 0x stripped
    monkeypatch.setenv("LIGHTER_API_SECRET_B", "12")
    with pytest.raises(ConfigError, match="LIGHTER_API_SECRET_B: expected 80 hex characters") as info:
        load_secret(config_with_secrets, "B")
    assert "12" not in str(info.value).replace("LIGHTER", "")


def test_secret_from_0600_file(config_with_secrets) -> None:
    write_secrets(config_with_secrets.secrets_file, {"101:3": "0x" + SECRET_A, "102:3": SECRET_B})
    assert load_secret(config_with_secrets, "a") == SECRET_A
    assert load_secret(config_with_secrets, "b") == SECRET_B


def test_group_readable_secrets_file_is_refused(config_with_secrets) -> None:
    write_secrets(config_with_secrets.secrets_file, {"101:3": SECRET_A}, mode=0o644)
    with pytest.raises(ConfigError, match=r"mode 0644.*chmod 600") as info:
        load_secret(config_with_secrets, "a")
    assert SECRET_A not in str(info.value)


def test_missing_file_and_missing_key_say_what_to_run(config_with_secrets) -> None:
    expected = r"does not exist; for the simulator run `python -m lighter_sim keygen`.*_SECRET_A"
    with pytest.raises(ConfigError, match=expected):
        load_secret(config_with_secrets, "a")
    write_secrets(config_with_secrets.secrets_file, {"101:3": SECRET_A})
    with pytest.raises(ConfigError, match=r'no key "102:3" .*python -m lighter_sim keygen'):
        load_secret(config_with_secrets, "b")


def test_malformed_secret_in_file_is_not_echoed(config_with_secrets) -> None:
    bad = "zz" + SECRET_A[2:]
    write_secrets(config_with_secrets.secrets_file, {"101:3": bad})
    with pytest.raises(ConfigError, match="non-hex") as info:
        load_secret(config_with_secrets, "a")
    assert SECRET_A[2:] not in str(info.value)


# --- credentials in config errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "shown", "hidden"),
    [
        (("redis", "url"), "http://user:hunter2secret@10.0.0.5:6379/0", "'http://user:***@10.0.0.5:6379/0'",
         "hunter2secret"),
        (("redis", "url"), "user:hunter2secret@localhost:6379", "'user:***@localhost:6379'", "hunter2secret"),
        (("redis", "url"), "http://:pa/ss?w0rd@localhost:6379", "'http://:***@localhost:6379'", "w0rd"),
        (("alerts", "webhook_url"), "ftp://hooks.slack.com/services/T000/B000/XXXXSECRET?token=abc",
         "'ftp://hooks.slack.com/***'", "XXXXSECRET"),
        (("alerts", "webhook_url"), "hooks.example.com/hook?token=s3cr3tTOKEN", "got 'hooks.example.com/",
         "s3cr3tTOKEN"),
        (("alerts", "telegram_api_url"), "tg://api.telegram.org/bot123:SECRETTOKEN", "'tg://api.telegram.org/***'",
         "SECRETTOKEN"),
        (("alerts",), "https://hooks.example.com/services/SECRETPATH", "alerts: expected a mapping, got "
         "'https://hooks.example.com/***'", "SECRETPATH"),
        (("redis",), {"url": "https://u:hunter2secret@h/0", "start_local": "yes"},
         "redis.url: expected a URL starting with redis://", "hunter2secret"),
        (("accounts", "a", "api_key_index"), SECRET_A, "<masked-hex80>", SECRET_A),
    ],
)
def test_config_errors_mask_credentials(path: tuple[str, ...], value: Any, shown: str, hidden: str) -> None:
    data = shipped()
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    message = problems_of(data)
    assert shown in message and hidden not in message
    assert path[0] in message  # the key is still named


def test_a_valid_redis_url_keeps_its_database_number_when_quoted() -> None:
    data = shipped()
    data["redis"] = "redis://default:hunter2secret@localhost:6379/3"  # a URL where a section belongs
    assert "got 'redis://default:***@localhost:6379/3'" in problems_of(data)


@pytest.mark.parametrize(
    "text",
    [
        "redis: {url: redis://u:yamlsecret@h/0, start_local: [x}\n",
        'redis:\n  url: "redis://u:yamlsecret@h/0\n',
        "alerts:\n  webhook_url: https://hooks.example.com/services/yamlsecret: x: y\n",
    ],
)
def test_bad_yaml_is_located_without_quoting_the_line(tmp_path: Path, text: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+, column \d+: ") as info:
        load_config(bad)
    assert "yamlsecret" not in str(info.value)


def test_exit_on_config_error_prints_masked_values(tmp_path: Path) -> None:
    data = shipped()
    data["alerts"]["webhook_url"] = "ftp://hooks.example.com/T000/B000/XXXXSECRET"
    data["redis"]["url"] = "http://admin:hunter2secret@redis.internal:6379/0"
    done = load_in_a_process(tmp_path, data)
    assert done.returncode == 2
    assert "alerts.webhook_url:" in done.stderr and "ftp://hooks.example.com/***" in done.stderr
    assert "redis.url:" in done.stderr and "http://admin:***@redis.internal:6379/0" in done.stderr
    assert "XXXXSECRET" not in done.stderr and "hunter2secret" not in done.stderr


def test_the_hedge_from_the_trade_feed_is_on_by_default_and_null_turns_it_off() -> None:
    data = shipped()
    assert config_from_mapping(data).strategy.hedge_from_trade_feed_after_s == 2
    data["strategy"]["hedge_from_trade_feed_after_s"] = None
    assert config_from_mapping(data).strategy.hedge_from_trade_feed_after_s is None


def test_b_hedges_from_the_trade_feed_first_by_default_and_follows_the_feed_for_either_use() -> None:
    data = shipped()
    assert config_from_mapping(data).strategy.hedge_from_trade_feed_first is True
    data["strategy"]["hedge_from_trade_feed_after_s"] = None
    assert config_from_mapping(data).strategy.follows_trade_feed  # feed first alone still needs the feed
    data["strategy"]["hedge_from_trade_feed_first"] = False
    assert not config_from_mapping(data).strategy.follows_trade_feed
    data["strategy"]["hedge_from_trade_feed_after_s"] = 2
    assert config_from_mapping(data).strategy.follows_trade_feed
