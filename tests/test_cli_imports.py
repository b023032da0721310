"""``genesis`` pays only for what a command needs: importing the CLI (every call does) loads
none of the heavy libraries, and a read command on a database at head does not load Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.migrated import migrated_sqlite

HEAVY = ("alembic", "ccxt", "aiohttp", "matplotlib", "genesis.paper",
         "genesis.algorithms")  # the registry brings the engine's market data: only submit and backtest need it


def loaded_heavy_modules(code: str) -> list[str]:
    """The HEAVY modules (or their submodules) in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = (f"{code}\nimport sys\n"
             f"print(' '.join(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert loaded_heavy_modules("import genesis.cli") == []


def test_help_lists_the_paper_exchange_without_importing_it() -> None:
    code = ("from click.testing import CliRunner\nfrom genesis.cli import main\n"
            "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0 and 'paper-exchange' in r.output, r.output")
    assert loaded_heavy_modules(code) == []


def test_status_on_a_database_at_head_does_not_load_alembic(tmp_path: Path) -> None:
    db = tmp_path / "genesis.db"
    migrated_sqlite(db)
    code = ("from click.testing import CliRunner\nfrom genesis.cli import main\n"
            f"r = CliRunner().invoke(main, ['status', '--db', {str(db)!r}])\nassert r.exit_code == 0, r.output")
    assert loaded_heavy_modules(code) == []


def test_the_paper_exchange_command_still_runs_through_genesis() -> None:
    from click.testing import CliRunner

    from genesis.cli import main

    result = CliRunner().invoke(main, ["paper-exchange", "--help"])
    assert result.exit_code == 0 and "--faults" in result.output
