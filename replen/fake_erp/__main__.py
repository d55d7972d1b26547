"""``python -m replen.fake_erp``: run the fake ERP until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from replen.fake_erp.server import FakeErpServer
from replen.fake_erp.store import ErpBooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replen.fake_erp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback by default")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file of its books")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here")
    parser.add_argument("--secret", help="webhook HMAC key (signatures are checked if set)")
    parser.add_argument("--odoo-db", default="erp", help="Odoo database name it accepts")
    parser.add_argument("--odoo-user", default="replen", help="Odoo login it accepts")
    parser.add_argument("--odoo-key", help="Odoo API key it accepts (Odoo API off if unset)")
    args = parser.parse_args(argv)

    args.db.parent.mkdir(parents=True, exist_ok=True)
    odoo = (args.odoo_db, args.odoo_user, args.odoo_key) if args.odoo_key else None
    server = FakeErpServer((args.host, args.port), ErpBooks(args.db), secret=args.secret, odoo=odoo)
    port = server.server_address[1]
    stop = threading.Event()

    def shutdown(*_: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    print(f"fake ERP listening on http://{args.host}:{port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
