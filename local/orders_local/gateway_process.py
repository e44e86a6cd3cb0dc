"""The local API Gateway in a process of its own, in front of the functions' instances:
``python -m orders_local.gateway_process``.

The main process keeps moto, and every DynamoDB, Streams, SQS and Step Functions request of the
run is served there under one GIL (a raw conditional put costs it about 2.5 ms of CPU, most of it
HTTP and dispatch). Serving the API beside it cost as much again per request, parsing,
checking tokens and handing invocations over, and every request waited for the GIL behind moto.
Here the gateway has a process and a GIL of its own; its instances (orders_local.instances) are
its child processes. It serves on the socket the main process bound, and stops when its line to
the main process closes: first the server, then the instances.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any

from werkzeug.serving import make_server

from orders_local.helper_processes import READY, Helper, connect_to_main, send_or_exit

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 90.0  # the instances start together with it
_PIDS = "pids"


class GatewayProcess:
    """The main process's handle on the gateway process."""

    def __init__(
        self,
        *,
        listening_fd: int,
        host: str,
        port: int,
        secret: str,
        cors_origins: Sequence[str],
        functions: Sequence[str],
        per_function: int,
    ) -> None:
        self._listening_fd = listening_fd
        self._settings: dict[str, Any] = {
            "listening_fd": listening_fd,
            "host": host,
            "port": port,
            # Over the line, not on the command line, where anyone could read it with ps.
            "secret": secret,
            "cors_origins": list(cors_origins),
            "functions": list(functions),
            "per_function": per_function,
        }
        self.helper: Helper | None = None
        self._line = threading.Lock()

    def launch(self) -> None:
        """Start it without waiting (its instances' imports overlap whatever comes next)."""
        self.helper = Helper("the gateway", "orders_local.gateway_process", pass_fds=(self._listening_fd,))
        self.helper.connection.send(self._settings)

    def wait_ready(self) -> None:
        """Returns once it serves, every instance through its init phase; HelperFailed otherwise."""
        assert self.helper is not None, "launch() first"
        self.helper.wait_ready(START_TIMEOUT_SECONDS)

    def instance_pids(self, function: str | None = None) -> list[int]:
        """The live instances' processes (of one function, or of every function)."""
        if self.helper is None:
            return []
        with self._line:
            self.helper.connection.send((_PIDS, function))
            pids: list[int] = self.helper.connection.recv()
        return pids

    @property
    def pid(self) -> int | None:
        return self.helper.pid if self.helper is not None else None

    def stop(self) -> None:
        if self.helper is not None:
            # It stops serving, then stops its instances (their own waits included), then exits.
            self.helper.stop(timeout=30.0)
        self.helper = None


def main(argv: Sequence[str]) -> int:
    connection, _ = connect_to_main(argv)
    # The gateway logs a line per request itself; werkzeug's own access log would double it.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    settings: dict[str, Any] = connection.recv()
    # Imported here, after the line is up: the instances' imports overlap these.
    from orders_local.gateway import ApiApplication, LocalGateway
    from orders_local.instances import InstancePool

    pool = InstancePool(settings["functions"], per_function=settings["per_function"])
    application = ApiApplication()
    try:
        pool.launch()
        server = make_server(
            settings["host"], settings["port"], application, threaded=True, fd=settings["listening_fd"]
        )
        pool.wait_ready()
        application.gateway = LocalGateway(
            pool.handlers(),
            secret=settings["secret"],
            cors_origins=settings["cors_origins"],
            one_at_a_time=False,
        )
        serving = threading.Thread(target=server.serve_forever, name="orders-local-gateway", daemon=True)
        serving.start()
        send_or_exit(connection, READY)
        while True:
            try:
                request, function = connection.recv()
            except (EOFError, OSError):
                break  # the main process closed the line: stopping, or gone
            if request != _PIDS:
                raise ValueError(f"unknown request {request!r}")
            send_or_exit(connection, pool.pids(function))
        server.shutdown()  # serve_forever closes the socket on its way out
        serving.join()
    finally:
        pool.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
