"""JSON log lines carry the journald priority, so `journalctl -p err` selects errors."""

from __future__ import annotations

import io
import json
import os
import tempfile

import pytest
import structlog

from genesis.log import configure_logging


@pytest.fixture(autouse=True)
def restore_logging():
    previous = structlog.get_config()
    yield
    structlog.configure(**previous)


def lines_of(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_json_lines_carry_the_syslog_priority_of_their_level():
    out = io.StringIO()
    configure_logging("debug", json=True, stream=out)
    log = structlog.get_logger("t")
    log.error("boom", execution_id="abc")
    log.warning("careful")
    log.info("fine")
    log.debug("detail")
    try:
        raise ValueError("x")
    except ValueError:
        log.exception("failed")
    log.critical("dying")
    records = [json.loads(line) for line in lines_of(out)]  # plain JSON: no prefix off the journal
    assert [(r["event"], r["PRIORITY"]) for r in records] == [
        ("boom", 3), ("careful", 4), ("fine", 6), ("detail", 7), ("failed", 3), ("dying", 2)]


def test_on_the_journal_each_line_starts_with_its_priority_prefix(monkeypatch):
    with tempfile.TemporaryFile("w+") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        configure_logging("info", json=True, stream=stream)
        structlog.get_logger("t").error("store failed")
        structlog.get_logger("t").info("ready")
        stream.seek(0)
        error, info = stream.read().splitlines()
    assert error.startswith("<3>{") and json.loads(error[3:])["PRIORITY"] == 3
    assert info.startswith("<6>{")


def test_another_journal_stream_gets_no_prefix(monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    with tempfile.TemporaryFile("w+") as stream:
        configure_logging("info", json=True, stream=stream)
        structlog.get_logger("t").error("boom")
        stream.seek(0)
        assert json.loads(stream.read())["PRIORITY"] == 3
