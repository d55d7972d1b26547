"""Start the fake ERP as a child process, wait for its port, talk to its admin routes, and
stop it (its whole process group) whatever happens."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from replen.fake_erp.server import WEBHOOK_PATH

__all__ = ["FakeErp"]


class FakeErp:
    """``with FakeErp(folder, secret=…) as erp: erp.webhook_url …`` — a fake ERP process."""

    def __init__(
        self,
        folder: Path,
        *,
        secret: str | None = "fake-erp-secret",
        odoo: tuple[str, str, str] | None = ("erp", "replen", "fake-odoo-key"),
        start_timeout: float = 60.0,
    ) -> None:
        self.folder = Path(folder)
        self.secret = secret
        self.odoo = odoo
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    # Life cycle ----------------------------------------------------------------------------
    def start(self) -> FakeErp:
        self.folder.mkdir(parents=True, exist_ok=True)
        port_file = self.folder / "port"
        port_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "replen.fake_erp",
            "--db",
            str(self.folder / "erp.db"),
            "--port-file",
            str(port_file),
        ]
        if self.secret:
            cmd += ["--secret", self.secret]
        if self.odoo:
            cmd += [
                "--odoo-db",
                self.odoo[0],
                "--odoo-user",
                self.odoo[1],
                "--odoo-key",
                self.odoo[2],
            ]
        log = open(self.folder / "fake_erp.log", "ab")  # noqa: SIM115  (owned by the child)
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if port_file.exists():
                self.port = int(port_file.read_text())
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"the fake ERP exited: see {self.folder / 'fake_erp.log'}")
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"the fake ERP did not start within {self.start_timeout:g}s")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> FakeErp:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.port is not None, "the fake ERP is not running"
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    # Admin (what happens inside the ERP) ---------------------------------------------------
    def _post(self, path: str, data: dict[str, Any]) -> Any:
        response = httpx.post(self.url + path, json=data, timeout=60)
        response.raise_for_status()
        return response.json()

    def _get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/_admin/faults", faults)
        return result

    def seed(self, **data: Any) -> dict[str, int]:
        result: dict[str, int] = self._post("/_admin/seed", data)
        return result

    def orders(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/_admin/orders")["orders"]
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/_admin/requests")["requests"]
        return result

    def confirm(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._post("/_admin/confirm", {})["acks"]
        return result

    def receive(self, delays: list[int] | None = None, seed: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._post(
            "/_admin/receive", {"delays": delays or [0], "seed": seed}
        )["receipts"]
        return result

    def stock(self, as_of: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/_admin/stock", as_of=as_of)["positions"]
        return result
