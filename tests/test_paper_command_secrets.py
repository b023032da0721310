"""``genesis paper-exchange`` never takes its API secret on the command line (every user of the
machine can read a process's arguments): ``--secret`` is refused with the alternatives named;
the secret comes from ``GENESIS_API_SECRET`` or a private ``--secret-file``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main as cli
from genesis.paper.local import free_port, get_json

REPO = Path(__file__).resolve().parent.parent
SECRET = "paper-secret-0123456789abcdef"


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["paper-exchange", *args], env=env or {})


def test_secret_on_the_command_line_is_refused_naming_the_alternatives(tmp_path: Path) -> None:
    result = invoke("--state", str(tmp_path / "paper.db"), "--secret", SECRET)
    assert result.exit_code == 2
    assert "--secret is refused" in result.output and "ps" in result.output
    assert "GENESIS_API_SECRET" in result.output and "--secret-file" in result.output
    assert not (tmp_path / "paper.db").exists()  # refused before anything was created


@pytest.mark.parametrize("file_mode, content, why", [
    (0o644, SECRET, "has mode 0644: other users may read it"),
    (0o600, " \n", "is empty"),
    (None, SECRET, "does not exist"),
])
def test_a_secret_file_must_be_private_and_hold_a_secret(tmp_path: Path, file_mode: int | None,
                                                          content: str, why: str) -> None:
    path = tmp_path / "secret"
    if file_mode is not None:
        path.write_text(content)
        path.chmod(file_mode)
    result = invoke("--state", str(tmp_path / "paper.db"), "--secret-file", str(path))
    assert result.exit_code == 2 and "--secret-file" in result.output and why in result.output
    if file_mode == 0o644:
        assert f"chmod 600 {path}" in result.output
    assert SECRET not in result.output


def test_the_help_offers_the_secret_file_not_the_secret() -> None:
    result = invoke("--help")
    assert "--secret-file" in result.output and "--secret " not in result.output


def test_the_secret_from_a_private_file_serves_and_stays_off_the_command_line(tmp_path: Path) -> None:
    secret_file, state = tmp_path / "secret", tmp_path / "paper.db"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "GENESIS_API_KEY": "", "GENESIS_API_SECRET": ""}
    proc = subprocess.Popen([sys.executable, "-m", "genesis", "paper-exchange", "--port", str(port),
                             "--state", str(state), "--secret-file", str(secret_file)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                get_json(f"http://127.0.0.1:{port}/admin/clock")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()[0].decode()
                time.sleep(0.05)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert SECRET not in cmdline
        stored = json.loads(Path(str(state) + ".credentials.json").read_text())
        assert stored["secret"] == SECRET
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=10)[0].decode()
    assert proc.returncode == 0, output
    assert SECRET not in output
