"""Every CLI command on an empty data directory: it works, or it exits non-zero with one line
that says what to do first. Never a traceback. New commands are covered automatically."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from replen.cli import app

pytestmark = pytest.mark.slow

# Commands that run until stopped, or run the whole pipeline: tested by their own tests.
ELSEWHERE = {
    "serve": "tests/integration/test_serve_process.py",
    "scheduler": "tests/integration/test_scheduler_crash.py",
    "demo": "tests/e2e/test_demo.py",
    "push-velocity": "tests/integration/test_velocity_sync.py",
    "consume pos": "tests/integration/test_pos_stream.py",
}
# Argument values a user would type; an argument not listed gets one by its type.
ARGUMENTS = {
    "features show": ["S001", "SKU00001"],
    "quarantine show": ["E1"],
    "orders show": ["1"],
    "orders approve": ["1"],
    "orders reject": ["1", "--reason", "too many"],
    "orders edit": ["1", "SKU00001", "5", "--reason", "promo"],
    "jobs run": ["monitor"],
    "jobs history": [],
    # Access: the first identity of an empty database is an admin made without signing in;
    # signing in as nobody, or a correction without a sign-in, is one line saying why.
    "users create": ["ana", "--role", "admin", "--generate"],
    "login": ["--username", "ana", "--password-stdin"],
    "corrections void": ["--batch", "B1", "--reason", "mistaken upload"],
}


# Typer ships its own copy of click: commands and parameters are recognised by their shape.
def _commands(group, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if hasattr(cmd, "commands"):
            found += _commands(cmd, path + " ")
        else:
            found.append((path, cmd))
    return found


COMMANDS = _commands(typer.main.get_command(app))  # type: ignore[arg-type]


def _args(path: str, cmd, files: Path) -> list[str]:
    if path in ARGUMENTS:
        return ARGUMENTS[path]
    args: list[str] = []
    for param in cmd.params:
        if param.param_type_name != "argument" or not param.required:
            continue
        annotation = str(param.type_descriptor.annotation)
        if "Path" in annotation:
            # An input file a user might pass before anything else exists: an empty one;
            # an output file: a new one.
            if param.type_descriptor.parameter_info.exists or "list" in annotation:
                args.append(str(files / "empty.csv"))
            else:
                args.append(str(files / f"{param.name}.csv"))
        elif "int" in annotation:
            args.append("1")
        else:
            args.append("x")
    return args


def test_every_command_is_known_to_this_test() -> None:
    assert len(COMMANDS) > 30
    assert {p for p, _ in COMMANDS} >= {*ELSEWHERE, *ARGUMENTS}


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_on_an_empty_data_directory(path, cmd, tmp_path, monkeypatch) -> None:
    if path in ELSEWHERE:
        pytest.skip(f"runs until stopped or runs everything: see {ELSEWHERE[path]}")
    for name in [k for k in __import__("os").environ if k.startswith(("REPLEN_", "MLFLOW_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPLEN_DATA_DIR", str(tmp_path / "fresh"))
    files = tmp_path / "files"
    files.mkdir()
    (files / "empty.csv").write_text("")
    args = [*path.split(), *_args(path, cmd, files)]
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    err = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"`replen {' '.join(args)}` raised") from result.exception
    assert "Traceback" not in err + result.stdout
    if result.exit_code != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, f"`replen {' '.join(args)}` said:\n{err}"
        assert lines[0].startswith("error: "), lines[0]
        if result.exit_code == 5:  # not ready: say which command comes first
            assert "`replen " in lines[0], f"`replen {' '.join(args)}`: {lines[0]}"
