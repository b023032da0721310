"""The config file as an attacker or a slip of the hand may give it: a symlink to a secrets
file, a YAML error on a secret line, a FIFO, a duration no datetime can hold. Errors name the
key or the line, never the content; nothing blocks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from genesis.config import MAX_WINDOW_SECONDS, ConfigError, load_config, parse_config

SECRET = "SECRETHASHabcdef"
SHADOW_LIKE = f"root:$6$salt${SECRET}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_a_config_linked_to_a_secrets_file_is_refused_without_its_content(tmp_path: Path):
    secrets = tmp_path / "shadow"
    secrets.write_text(SHADOW_LIKE)
    secrets.chmod(0o600)
    link = tmp_path / "runtime.yaml"
    link.symlink_to(secrets)
    message = _error(link)
    assert SECRET not in message and "root:" not in message and "daemon:" not in message, message
    assert "line 1" in message and "line 2" in message and "unknown key" in message


@pytest.mark.parametrize("text, line", [
    (f"risk:\n  kill_switch: [{SECRET}\n", 3),
    (f"risk:\n  kill_switch: true\n {SECRET}: 1\n", 3),
    (f"risk: {{kill_switch: true}}\n{SECRET}:x: 1\nrisk: 1\n", 3),
])
def test_a_yaml_error_gives_the_line_not_the_content(tmp_path: Path, text: str, line: int):
    path = tmp_path / "runtime.yaml"
    path.write_text(text)
    message = _error(path)
    assert SECRET not in message, message
    assert f"line {line}" in message


def test_config_keys_symbols_and_duplicates_are_still_named(tmp_path: Path):
    path = tmp_path / "runtime.yaml"
    path.write_text("risk:\n  kil_switch: true\n")
    assert "risk.kil_switch: unknown key" in _error(path)
    path.write_text("risk:\n  max_position_base:\n    BTC/USDT: -1\n")
    assert "risk.max_position_base" in _error(path) and "BTC/USDT" in _error(path)
    path.write_text("risk:\n  kill_switch: true\nrisk:\n  kill_switch: false\n")
    assert "duplicate key 'risk' (line 3)" in _error(path)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_config_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path: Path, kind: str):
    path = tmp_path / "runtime.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes to it: reading would block forever
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")  # reading would never end
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_config(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(30)  # a guard against hanging the suite, not a timing assertion
    assert not reader.is_alive(), f"load_config blocked on a {kind}"
    assert isinstance(outcome[0], ConfigError) and "not a regular file" in str(outcome[0])


@pytest.mark.parametrize("section, key", [
    ("twap", "max_duration_seconds"), ("twap", "min_duration_seconds"), ("twap", "default_duration_seconds"),
    ("vwap", "max_duration_seconds"), ("vwap", "min_duration_seconds"), ("vwap", "default_duration_seconds"),
    ("twap", "early_interval_seconds"),
])
def test_durations_are_bounded_to_what_datetime_arithmetic_holds(section: str, key: str):
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: Input should be less than or equal to"):
        parse_config({section: {key: 999_999_999_999_999}})
    # the longest window allowed is accepted and fits in datetime arithmetic
    config = parse_config({section: {"max_duration_seconds": MAX_WINDOW_SECONDS}})
    assert getattr(config, section).max_duration_seconds == MAX_WINDOW_SECONDS
