"""A moto server in its own process, shared by several `orders serve` processes (AWS_ENDPOINT_URL).

Usage: python moto_launcher.py PORT

moto checks a ConditionExpression and then stores the item without a lock, so two requests that
arrive together (werkzeug serves each on its own thread) can both pass `attribute_not_exists` on
the same key. DynamoDB never allows that, and the event store's optimistic concurrency relies on
it. `orders serve` installs a write lock in the moto it embeds; `moto_server -p PORT` would not,
so this launcher installs the same lock before it starts the server.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType


def main() -> int:
    port = int(sys.argv[1])
    from orders_local.moto_server import (
        dynamodb_write_lock_installed,
        install_dynamodb_write_lock,
        start_moto,
    )

    install_dynamodb_write_lock()
    assert dynamodb_write_lock_installed()
    server, endpoint = start_moto(port)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"moto ready at {endpoint} (DynamoDB writes serialized)", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
