"""Failures a command cannot fix itself end in one line naming the problem and exit status 2,
never a traceback: risk refusing a backtest's order, windows past the calendar, a database
on a read-only or full file system."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main
from tests.migrated import migrated_sqlite

pytestmark = pytest.mark.usefixtures("restore_logging")  # backtest configures logging
CANDLES = Path(__file__).parent / "data" / "BTC_USDT-1m-20250520-20250611.csv.gz"
BACKTEST = ["backtest", "--candles", str(CANDLES), "--symbol", "BTC/USDT", "--side", "buy", "--algo", "twap"]
SUBMIT = ["submit", "--symbol", "BTC/USDT", "--side", "buy", "--qty", "1", "--duration", "15m"]


def one_line_error(output: str) -> str:
    """The ``Error: ...`` line, after checking there is exactly one and no traceback."""
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


@pytest.mark.parametrize("changes,expected", [
    (["--qty", "100", "--start", "2025-06-10T00:00:00Z", "--duration", "1h"],
     "risk: parent notional"),
    (["--qty", "1", "--start", "2025-06-10T00:00:00Z", "--duration", "99999999d"],
     "--duration: 8639999913600s is longer than a backtest runs"),
    (["--qty", "1", "--start", "9999-12-31T23:00:00Z", "--duration", "1h"], "--start: 9999-12-31T23:00:00+00:00"),
    (["--qty", "1", "--start", "0001-01-01T00:00:00Z", "--duration", "1h"], "--history-days: 20 days before"),
    (["--qty", "1", "--start", "2025-06-10T00:00:00Z", "--duration", "1h", "--history-days", "0"], "--history-days"),
])
def test_backtest_refusals_are_one_line_with_exit_status_2(changes, expected):
    result = CliRunner().invoke(main, [*BACKTEST, *changes])
    assert result.exit_code == 2, result.output
    assert expected in one_line_error(result.output)


def namespaced(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` (sh) in its own user and mount namespace, so it may mount file systems."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("needs unshare with user and mount namespaces")
    return subprocess.run(["unshare", "-rm", "sh", "-ec", script], capture_output=True, text=True, timeout=120)


def genesis_command(db: Path, *args: str) -> str:
    return " ".join([sys.executable, "-m", "genesis", *args, "--db", str(db)])


def test_submit_to_a_database_on_a_read_only_file_system(short_tmp_path):
    directory = short_tmp_path / "ro"
    directory.mkdir()
    migrated_sqlite(directory / "genesis.db")
    proc = namespaced(f"mount --bind -o ro {directory} {directory}\n"
                      f"{genesis_command(directory / 'genesis.db', *SUBMIT)}\n")
    assert proc.returncode == 2, proc.stderr
    assert str(directory / "genesis.db") in one_line_error(proc.stderr)


def test_submit_to_a_database_on_a_full_file_system(short_tmp_path):
    directory = short_tmp_path / "full"
    directory.mkdir()
    template = short_tmp_path / "template.db"
    migrated_sqlite(template)
    db = directory / "genesis.db"
    proc = namespaced(f"mount -t tmpfs -o size=1m tmpfs {directory}\n"
                      f"cp {template} {db}\n"
                      f"dd if=/dev/zero of={directory}/filler bs=4k 2>/dev/null || true\n"
                      f"rm {directory}/filler\n"  # leave room for the -shm file, not for the new pages
                      f"dd if=/dev/zero of={directory}/filler bs=1k count=$(( $(df -k {directory} | "
                      "awk 'NR==2 {print $4}') - 40 )) 2>/dev/null\n"
                      f"{genesis_command(db, *SUBMIT)}\n")
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc.stderr)
    assert str(db) in line and "full" in line, line
