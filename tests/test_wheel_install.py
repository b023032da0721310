"""genesis as a user installs it: the wheel built from this source, installed into a fresh
virtualenv, run from a directory that is not the checkout (no ``alembic.ini``, no
``config/runtime.yaml``, nothing of the source tree on ``sys.path``).

The virtualenv is made with ``--without-pip``; the wheel goes in with ``pip --python ...
install --no-deps``, and then a ``.pth`` file puts the site-packages of the interpreter
running the tests after the venv's own, for the dependencies only: downloading numpy,
matplotlib and ccxt for every run would make the test slow and network-bound. A ``.pth`` line
is a plain path, so the ``.pth`` files in that directory (the editable install of the
checkout) are not run, and ``import genesis`` finds the wheel's copy, which the test checks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from genesis.store import migrate

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "genesis")  # what the wheel is built from
STATE_TIMEOUT = 60.0  # a hang guard, not a measurement


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _copy_sources(dest: Path) -> None:
    """The files the wheel is made of, without caches or build leftovers of the checkout."""
    import shutil

    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel installed; returns its ``bin`` directory."""
    work = tmp_path_factory.mktemp("wheel")
    (work / "src").mkdir()
    _copy_sources(work / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", work / "dist", work / "src"], cwd=work)
    wheels = list((work / "dist").glob("genesis-*.whl"))
    assert len(wheels) == 1, wheels
    _run([sys.executable, "-m", "venv", "--without-pip", work / "venv"], cwd=work)
    python = work / "venv" / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q",
          wheels[0]], cwd=work)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work).strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "zz_test_dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    return python.parent


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the checkout and an environment that does not point into it."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "GENESIS_DB", "NOTIFY_SOCKET", "WATCHDOG_USEC", "VIRTUAL_ENV")}
    return tmp_path, env


def test_the_installed_genesis_is_the_wheel_and_prints_its_version(venv: Path, elsewhere) -> None:
    cwd, env = elsewhere
    where = _run([venv / "python", "-c", "import genesis; print(genesis.__file__)"], cwd, env)
    assert Path(where.strip()).is_relative_to(venv.parent), where
    assert _run([venv / "genesis", "--version"], cwd, env).split()[-1] == VERSION
    assert _run([venv / "python", "-c", "import genesis; print(genesis.__version__)"], cwd, env).strip() == VERSION


def test_installed_wheel_migrates_takes_an_order_and_trades_it(venv: Path, elsewhere) -> None:
    """db upgrade, submit and the daemon on the simulated venue, with the defaults shipped in
    the package: ``--algo auto`` routes 0.01 BTC (about 1,000 USD, above the shipped 500 USD
    threshold) to a TWAP of the shipped 4 slices; built-in defaults would send one order."""
    cwd, env = elsewhere
    db = cwd / "wheel.db"
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    upgraded = _run([venv / "genesis", "db", "upgrade", "--db", db], cwd, env)
    assert upgraded.strip().endswith(f"at revision {head}"), upgraded

    execution_id = _run([venv / "genesis", "submit", "--db", db, "--symbol", "BTC/USDT", "--side", "buy",
                         "--qty", "0.01", "--algo", "auto", "--id", "wheel-1"], cwd, env).strip()
    assert len(execution_id) == 12, execution_id

    log = (cwd / "daemon.log").open("w")
    daemon = subprocess.Popen([venv / "genesis", "run", "--db", db, "--venue", "sim", "--speed", "20"],
                              cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        status = _wait_for_end(venv, cwd, env, db, execution_id, daemon)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=STATE_TIMEOUT) == 0, (cwd / "daemon.log").read_text()[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.close()
    assert (status["state"], status["algo"], Decimal(status["filled_qty"])) == ("completed", "twap", Decimal("0.01"))
    assert status["slice_count"] == 4, status


def _wait_for_end(venv: Path, cwd: Path, env: dict[str, str], db: Path, execution_id: str,
                  daemon: subprocess.Popen) -> dict:
    """``genesis status ID --json`` of the installed CLI once the execution has ended."""
    deadline = time.monotonic() + STATE_TIMEOUT
    while time.monotonic() < deadline and daemon.poll() is None:
        status = json.loads(_run([venv / "genesis", "status", execution_id, "--json", "--db", db], cwd, env))
        status = status[0] if isinstance(status, list) else status
        if status["state"] in ("completed", "expired", "cancelled", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"execution {execution_id} did not end (daemon exit code {daemon.poll()}): "
                         + (cwd / "daemon.log").read_text()[-3000:])
