"""Shell completion as the README documents it: click's ``_GENESIS_COMPLETE`` protocol on the
installed ``genesis`` script (subcommands, lazy ones included, and options)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GENESIS = Path(sys.executable).with_name("genesis")


def _complete(instruction: str, words: str = "", cword: int = 0) -> str:
    env = {**os.environ, "_GENESIS_COMPLETE": instruction, "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    done = subprocess.run([GENESIS], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_source_prints_a_completion_function_for_genesis() -> None:
    script = _complete("bash_source")
    assert "_genesis_completion()" in script and "-F _genesis_completion genesis" in script


def test_bash_completes_commands_and_options() -> None:
    assert _complete("bash_complete", "genesis su", 1).split() == ["plain,submit"]
    assert set(_complete("bash_complete", "genesis pa", 1).split()) == {"plain,pause", "plain,paper-exchange"}
    assert _complete("bash_complete", "genesis submit --al", 2).split() == ["plain,--algo"]
