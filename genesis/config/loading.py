"""Reading a config: the YAML file (a regular file, not world-writable, no key given twice)
validated into ``RuntimeConfig``, with errors that name the key and never quote the file."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from genesis.config.runtime import RuntimeConfig
from genesis.config.strict import _SHOWABLE_KEY, ConfigError


def parse_config(data: Any, source: str = "config", key_lines: dict[str, int] | None = None) -> RuntimeConfig:
    """Validate parsed YAML. ``key_lines`` (key -> line), given for data read from a file, hides
    the keys that do not look like config keys behind their line numbers."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + _describe(exc, key_lines)) from None


def load_config(path: str | Path | None) -> RuntimeConfig:
    """Load and validate a YAML config. A missing *default* file means all defaults; an
    explicitly named file that does not exist is an error."""
    if path is None:
        return RuntimeConfig()
    p = Path(path)
    try:
        text = _read_regular_file(p).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    loader: _UniqueKeyLoader | None = None
    try:
        loader = _UniqueKeyLoader(text)
        data = loader.get_single_data()
    except _DuplicateKey as exc:
        raise ConfigError(f"{p}: duplicate key {_shown(exc.key, exc.line)} (line {exc.line}): "
                          f"YAML would keep only the last") from None
    except yaml.YAMLError as exc:  # never the parser's own message: it quotes the file
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where} (content not shown)") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return parse_config(data, str(p), loader.key_lines)


def _read_regular_file(p: Path) -> bytes:
    """The file's bytes; a FIFO, device or directory is refused without blocking on it."""
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a special file"
            raise ConfigError(f"{p}: cannot read config file: not a regular file ({kind}); "
                              f"point --config at a YAML file")
        _refuse_world_writable(p, st.st_mode)
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def _refuse_world_writable(p: Path, st_mode: int) -> None:
    """Any user could change the risk limits in a world-writable config: refuse it."""
    mode = stat.S_IMODE(st_mode)
    if mode & stat.S_IWOTH:
        raise ConfigError(f"{p}: config file is world-writable (mode {mode:04o}): any user could change the "
                          f"risk limits. Refusing to use it; fix with: chmod o-w {p}")


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int):
        super().__init__(f"duplicate key at line {line}")
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)
    and records the line of every string key (``key_lines``)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.key_lines: dict[str, int] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable key: the base class reports it
            if duplicate:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            if isinstance(key, str):
                self.key_lines.setdefault(key, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def _shown(key: Any, line: int | None) -> str:
    """``key`` when it looks like a config key, a symbol or an asset; else only where it is."""
    if isinstance(key, str) and _SHOWABLE_KEY.fullmatch(key):
        return repr(key)
    return f"<a key at line {line}, not shown>" if line else "<a key, not shown>"


def _describe(exc: ValidationError, key_lines: dict[str, int] | None) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(x) if key_lines is None or isinstance(x, int) or _SHOWABLE_KEY.fullmatch(str(x))
                       else _shown(x, key_lines.get(str(x))) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config/runtime.yaml for the known keys)"
        parts.append(f"{key}: {msg}")
    return "; ".join(parts)
