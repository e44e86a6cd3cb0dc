"""The local run's helper processes (Lambda instances, the projector's poller): how the main
process starts them and talks to them, and how a helper sets itself up.

A helper is ``python -m <module> <fd> ...``, holding one end of a socket pair as its line to the
main process (multiprocessing's ``Connection``: pickled messages, each with its length). Not
multiprocessing's own "spawn" start method: that imports the main program again in every helper
(``orders``, pytest or the bench, moto and all), a second or so of CPU per process for nothing.

A helper inherits the environment as it is when it starts (tables, endpoint, credentials), the
terminal's output and its process group. It ignores Ctrl-C, which the terminal sends to the whole
group: the main process stops its helpers itself, after it has stopped taking requests. It exits
when its line closes, so that it never outlives the main process, however that ends.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

logger = logging.getLogger(__name__)

READY = "ready"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class HelperFailed(Exception):
    """A helper process exited, or did not answer in time."""


class Helper:
    """One helper process and the main process's end of its line."""

    def __init__(self, name: str, module: str, *args: str, pass_fds: Sequence[int] = ()) -> None:
        """``pass_fds``: descriptors the helper inherits as they are (a listening socket)."""
        self.name = name
        parent_end, child_end = socket.socketpair()
        with child_end:
            fd = child_end.fileno()
            # The helper logs orders_local's records at this process's level (orders serve: INFO).
            level = logging.getLogger("orders_local").getEffectiveLevel()
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, str(fd), str(level), *args],
                pass_fds=(fd, *pass_fds),
                stdin=subprocess.DEVNULL,
            )
        self.connection = Connection(parent_end.detach())

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float) -> None:
        """Wait for the helper's READY; HelperFailed if it exits or takes longer than ``timeout``."""
        try:
            if self.connection.poll(timeout):
                message = self.connection.recv()
                if message == READY:
                    return
                raise HelperFailed(f"{self.name} said {message!r} instead of {READY!r}")
        except (EOFError, OSError) as exc:
            # Its traceback, if any, went to the terminal (stderr is inherited).
            code = self.process.wait(timeout=5)
            raise HelperFailed(f"{self.name} exited with code {code} while starting") from exc
        raise HelperFailed(f"{self.name} was not ready within {timeout:g} s")

    def stop(self, timeout: float = 5.0) -> int | None:
        """Close its line (it exits when it reads the end), wait for it, kill it if it lingers."""
        with contextlib.suppress(OSError):
            self.connection.close()
        return self._reap(timeout)

    def kill(self, *, close: bool = True) -> None:
        """For a helper that is stuck or being replaced: no goodbye. ``close=False`` leaves its
        line to the thread that is reading it (it reads the end of it)."""
        with contextlib.suppress(OSError):
            self.process.kill()
        self._reap(5.0)
        if close:
            with contextlib.suppress(OSError):
                self.connection.close()

    def _reap(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %d) did not exit within %g s: killing it", self.name, self.pid, timeout)
            self.process.kill()
            try:
                return self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                return None


def start_all(helpers: Sequence[Helper], timeout: float) -> None:
    """Wait until every helper (started together, so their imports overlap) is ready."""
    deadline = time.monotonic() + timeout
    for helper in helpers:
        helper.wait_ready(max(0.0, deadline - time.monotonic()))


# -- inside a helper --------------------------------------------------------------------------------


def connect_to_main(argv: Sequence[str]) -> tuple[Connection, list[str]]:
    """The line to the main process and the helper's own arguments, from ``<fd> <log level> ...``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, level, *rest = argv
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("orders_local").setLevel(int(level))
    return Connection(int(fd)), rest


def send_or_exit(connection: Connection, message: Any) -> None:
    """Send to the main process; if it is gone, this helper has nobody left to work for."""
    try:
        connection.send(message)
    except OSError:
        raise SystemExit(0) from None
