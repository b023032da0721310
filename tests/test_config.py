"""The runtime config file: every mistake is a ``ConfigError`` naming the key, nothing is
guessed, and a daemon never starts on a bad file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from genesis.cli import main
from genesis.config import ConfigError, RuntimeConfig, load_config, parse_config
from genesis.defaults import RUNTIME_YAML as PACKAGED

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "runtime.yaml"

BAD_CONFIGS = [
    ("risk: [unclosed", "not valid YAML"),
    ("risk:\n  kill_switch: true\n risk_typo_indent: 1\n", "not valid YAML"),
    ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("- engine\n- risk\n", "top level must be a mapping"),
    ("42\n", "top level must be a mapping"),
    ("just some words\n", "top level must be a mapping"),
    ("bogus_section: 1\n", "bogus_section: unknown key"),
    ("risk:\n  kil_switch: true\n", "risk.kil_switch: unknown key"),
    ("risk:\n  kill_switch: true\nrisk:\n  kill_switch: false\n", "duplicate key 'risk'"),
    ("risk: 5\n", "risk:"),
    ("risk:\n  kill_switch: maybe\n", "risk.kill_switch"),
    ("engine:\n  command_poll_seconds: fast\n", "engine.command_poll_seconds"),
    ("engine:\n  max_venue_retries: 2.5\n", "engine.max_venue_retries"),
    ("engine:\n  max_venue_retries: true\n", "max_venue_retries"),
    ("twap:\n  pause_policy: stop\n", "twap.pause_policy"),
    ("logging:\n  level: loud\n", "logging.level"),
    ("risk:\n  max_position_base: [1, 2]\n", "risk.max_position_base"),
    ("engine:\n  drain_timeout_seconds: -1\n", "engine.drain_timeout_seconds"),
    ("engine:\n  command_poll_seconds: 0\n", "engine.command_poll_seconds"),
    ("risk:\n  price_collar_bps: -5\n", "risk.price_collar_bps"),
    ("risk:\n  max_parent_notional_usdt: 0\n", "risk.max_parent_notional_usdt"),
    ("risk:\n  max_position_base:\n    BTC/USDT: -1\n", "risk.max_position_base"),
    ("sim:\n  balances:\n    USDT: -5\n", "sim.balances"),
    ("sim:\n  half_spread_bps: -1\n", "sim.half_spread_bps"),
    ("sim:\n  half_spread_bps: 1.0e+300\n", "sim.half_spread_bps"),
    ("twap:\n  min_duration_seconds: -300\n", "twap.min_duration_seconds"),
    ("engine:\n  command_poll_seconds: .nan\n", "engine.command_poll_seconds"),
    ("engine:\n  venue_retry_seconds: .inf\n", "engine.venue_retry_seconds"),
    ("risk:\n  price_collar_bps: .nan\n", "risk.price_collar_bps"),
    ("risk:\n  price_collar_bps: 'NaN'\n", "risk.price_collar_bps"),
    ("risk:\n  max_parent_notional_usdt: .inf\n", "risk.max_parent_notional_usdt"),
    ("risk:\n  max_position_base:\n    BTC/USDT: .nan\n", "risk.max_position_base"),
    ("sim:\n  limit_fill_share: -.inf\n", "sim.limit_fill_share"),
    ("twap:\n  min_duration_seconds: 900\n  max_duration_seconds: 600\n", "min_duration_seconds must be <="),
    ("twap:\n  default_duration_seconds: 100\n", "default_duration_seconds"),
]


@pytest.mark.parametrize("text,expected", BAD_CONFIGS, ids=[t[:30] for t, _ in BAD_CONFIGS])
def test_invalid_config_is_a_config_error_naming_the_key(tmp_path, text, expected):
    path = tmp_path / "runtime.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message, message


def test_unreadable_bytes_and_deep_nesting_are_config_errors(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"risk:\n  kill_switch: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 1500 + "]" * 1500)
    with pytest.raises(ConfigError, match="nested too deeply|top level must be a mapping"):
        load_config(deep)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)  # a directory


def test_missing_explicit_file_is_an_error_and_no_file_means_defaults(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    assert load_config(None) == RuntimeConfig()
    empty = tmp_path / "empty.yaml"
    empty.write_text("# every key is optional\n")
    assert load_config(empty) == RuntimeConfig()


def test_the_shipped_config_is_valid_and_spells_out_the_defaults():
    config = load_config(SHIPPED)
    assert config.risk.kill_switch is False
    assert config.twap.min_duration_seconds == 300 and config.twap.max_duration_seconds == 1800
    assert config.risk.max_position_base["BTC/USDT"] == Decimal("100")
    assert isinstance(config.risk.price_collar_bps, Decimal)
    changed = parse_config({"risk": {"kill_switch": True}, "twap": {"pause_policy": "compress"}})
    assert changed.risk.kill_switch is True and changed.twap.pause_policy == "compress"
    assert changed.engine == RuntimeConfig().engine


def test_the_package_ships_the_repository_config_unchanged():
    """One file in two places: the repository's (what developers edit and the docs name) and
    the package's (what an installed wheel falls back to). They must not drift apart."""
    assert PACKAGED.read_bytes() == SHIPPED.read_bytes(), (
        "config/runtime.yaml changed: cp config/runtime.yaml genesis/defaults/runtime.yaml")


def test_cli_uses_the_default_file_when_present_and_the_packaged_one_when_absent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    order = ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1"]

    def duration_of_new_submission(db: str) -> int:
        result = CliRunner().invoke(main, [*order, "--db", db], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        conn = sqlite3.connect(db)
        try:
            payload = conn.execute("SELECT payload FROM commands").fetchone()[0]
        finally:
            conn.close()
        return yaml.safe_load(payload)["duration_seconds"]

    assert duration_of_new_submission("a.db") == RuntimeConfig().twap.default_duration_seconds
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "runtime.yaml").write_text("twap:\n  default_duration_seconds: 600\n")
    assert duration_of_new_submission("b.db") == 600


def test_cli_refuses_a_bad_or_missing_config_and_stores_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk:\n  kill_switch: maybe\n")
    for config, expected in ((bad, "risk.kill_switch"), (tmp_path / "missing.yaml", "config file not found")):
        result = CliRunner().invoke(main, ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1",
                                           "--db", str(tmp_path / "x.db"), "--config", str(config)])
        assert result.exit_code != 0 and expected in result.output, result.output
    assert not (tmp_path / "x.db").exists()


def test_run_with_a_bad_config_exits_nonzero_and_creates_no_database(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine:\n  command_poll_seconds: .nan\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("NOTIFY_SOCKET", None)
    runs = []
    for config, expected in ((bad, "engine.command_poll_seconds"), (tmp_path / "missing.yaml", "not found")):
        db = tmp_path / f"{config.stem}.db"
        proc = subprocess.Popen([sys.executable, "-m", "genesis", "run", "--db", str(db), "--config", str(config)],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((proc, db, expected))
    for proc, db, expected in runs:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode not in (0, None)
        assert expected in err and "Traceback" not in err, err
        assert not db.exists() and not db.with_suffix(".pid").exists()


# -- property: any data is either a valid config or a ConfigError ---------------------------------

def _keys(model: type[BaseModel]) -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        out.append(name)
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out += _keys(info.annotation)
    return out


KEYS = sorted(set(_keys(RuntimeConfig))) + ["BTC/USDT", "USDT", "bogus"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**20, max_value=10**20),
                    st.floats(), st.text(max_size=10), st.sampled_from(["extend", "info", "0.5", "nan", "1e999"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=5)))
def test_any_data_is_a_config_or_a_config_error(data):
    try:
        config = parse_config(data)
    except ConfigError as exc:
        assert str(exc).startswith("config: ")
        return
    assert isinstance(config, RuntimeConfig)
    assert config.twap.min_duration_seconds <= config.twap.default_duration_seconds <= config.twap.max_duration_seconds


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=80), st.builds(yaml.safe_dump, values)))
def test_any_file_is_a_config_or_a_config_error(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "prop.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        assert isinstance(load_config(path), RuntimeConfig)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))
