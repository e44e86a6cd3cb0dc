"""The local API (`LocalSystem`, what `orders serve` runs) without its projection workers.

Usage: AWS_ENDPOINT_URL=... ORDERS_LOCAL_JWT_SECRET=... python api_only_server.py PORT

The limits tests write thousands of synthetic commits straight into the events table; with the
stream pollers running, four projections would fold them while load times are being measured.
Everything else is the same gateway, the same handlers and the same tables as `orders serve`.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType


def main() -> int:
    port = int(sys.argv[1])
    from orders_local.system import LocalSystem

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    system = LocalSystem(port=port, projections=False)
    system.start()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"Orders API      {system.url}", flush=True)
    print(f"AWS endpoint    {system.endpoint_url}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        system.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
