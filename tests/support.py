"""Test helpers that hold on a busy machine: wait for events, own every process started.

- :func:`wait_for` polls a predicate until it returns something truthy, with a generous
  deadline, and says what it waited for when it gives up (never a fixed sleep);
- :class:`Processes` (the ``procs`` fixture in conftest) starts commands in their own
  process group, with output to files (a full pipe never blocks them), and kills every
  group it started on teardown, whatever happened;
- :func:`free_port`, :func:`wait_for_port` and :func:`cpu_hog` for servers and load.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

__all__ = [
    "DEADLINE",
    "Processes",
    "cpu_hog",
    "free_port",
    "replen_exe",
    "small_disk",
    "wait_for",
    "wait_for_port",
]

T = TypeVar("T")

# Generous on purpose: on a loaded 2-core machine a process start takes 10 s or more.
DEADLINE = float(os.environ.get("REPLEN_TEST_DEADLINE", "180"))


def wait_for(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout: float = DEADLINE,
    interval: float = 0.1,
    while_alive: subprocess.Popen | None = None,
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that value.

    Raises AssertionError naming ``what`` after ``timeout`` seconds, or as soon as
    ``while_alive`` (a process the event depends on) has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if while_alive is not None and while_alive.poll() is not None:
            raise AssertionError(
                f"process {while_alive.pid} exited with {while_alive.returncode} "
                f"while waiting for {what}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, host: str = "127.0.0.1", timeout: float = DEADLINE, proc=None
) -> None:
    def accepting() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            return sock.connect_ex((host, port)) == 0

    wait_for(accepting, what=f"a server on {host}:{port}", timeout=timeout, while_alive=proc)


def replen_exe() -> str:
    exe = shutil.which("replen") or str(Path(sys.executable).with_name("replen"))
    assert Path(exe).exists(), "the `replen` console script is not installed"
    return exe


class Processes:
    """Starts processes in their own groups and stops them all on :meth:`close`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(
        self, args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen:
        n = len(self.started)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"proc{n}.out", "w")  # noqa: SIM115  (closed with the proc)
        err = open(self.log_dir / f"proc{n}.err", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True, text=True
        )
        proc.out_path = out.name  # type: ignore[attr-defined]
        proc.err_path = err.name  # type: ignore[attr-defined]
        proc._files = (out, err)  # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    @staticmethod
    def output(proc: subprocess.Popen) -> tuple[str, str]:
        """What the process wrote so far to stdout and stderr."""
        return Path(proc.out_path).read_text(), Path(proc.err_path).read_text()  # type: ignore[attr-defined]

    @staticmethod
    def signal(proc: subprocess.Popen, sig: int) -> None:
        """Send ``sig`` to the process's whole group (it and any children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def stop(self, proc: subprocess.Popen, *, grace: float = 30.0) -> int:
        """SIGTERM the group, then SIGKILL it after ``grace`` seconds; returns the exit code."""
        if proc.poll() is None:
            self.signal(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        self.signal(proc, signal.SIGKILL)  # children left behind, if any
        code = proc.wait()
        for handle in proc._files:  # type: ignore[attr-defined]
            handle.close()
        return code

    def close(self) -> None:
        for proc in reversed(self.started):
            self.signal(proc, signal.SIGKILL)
        for proc in self.started:
            with contextlib.suppress(Exception):
                proc.wait(30)
            for handle in proc._files:  # type: ignore[attr-defined]
                handle.close()


@contextlib.contextmanager
def cpu_hog(workers: int | None = None) -> Iterator[list[subprocess.Popen]]:
    """Keep every core busy (one spinning process per core) for the duration."""
    n = workers or os.cpu_count() or 2
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(n)
    ]
    try:
        yield hogs
    finally:
        for hog in hogs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(hog.pid, signal.SIGKILL)
            hog.wait()


@contextlib.contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Callable[[bool], None]]:
    """A real tmpfs of ``size`` mounted at ``path`` (needs root; skips the test otherwise).

    Yields ``read_only(flag)`` that remounts it read-only or writable again.
    """
    import pytest

    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or 'not root'}")

    def read_only(flag: bool) -> None:
        mode = "ro" if flag else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)

    try:
        yield read_only
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
