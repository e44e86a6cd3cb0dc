"""Lambda's instances, locally: a pool of processes per function, each handling one invocation
at a time with its own warm cache (orders_local.instance is one of them).

Processes, not threads: Powertools' resolvers keep the current request in class attributes that
every resolver of a process shares, so one process can only run one request at a time; and the
GIL would let threads share one core anyway. The gateway hands each invocation to an idle
instance of its function and waits for the answer; when every instance is busy the request waits
for the next one to be free, as invocations queue behind a function's concurrency limit. An
instance that dies fails its request (API Gateway's 500) and is replaced; one that overruns
API Gateway's 30 s is killed and replaced too (API Gateway's 503).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from orders_local.gateway import IntegrationTimeout, LambdaHandler
from orders_local.helper_processes import Helper, HelperFailed, start_all
from orders_local.instance import RAISED
from orders_local.lambda_events import INTEGRATION_TIMEOUT_SECONDS

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0


class InstanceCrashed(Exception):
    """The instance's process died during the invocation (or no instance could be started)."""


class FunctionError(Exception):
    """The handler raised; the instance logged the traceback, this carries its type and message."""


class _Instance:
    def __init__(self, function: str, number: int) -> None:
        self.function = function
        self.helper = Helper(f"{function} instance {number}", "orders_local.instance", function)


class InstancePool:
    """``per_function`` instances of each function; ``start()``, then ``handlers()`` for the gateway."""

    def __init__(
        self,
        functions: Iterable[str],
        *,
        per_function: int,
        timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
        start_timeout_seconds: float = START_TIMEOUT_SECONDS,
    ) -> None:
        if per_function < 1:
            raise ValueError("an instance pool needs at least one instance per function")
        self.functions = tuple(sorted(set(functions)))
        self.per_function = per_function
        self._timeout = timeout_seconds
        self._start_timeout = start_timeout_seconds
        self._changed = threading.Condition()
        self._idle: dict[str, list[_Instance]] = {f: [] for f in self.functions}
        self._members: dict[str, set[_Instance]] = {f: set() for f in self.functions}
        self._starting: dict[str, int] = dict.fromkeys(self.functions, 0)
        self._busy: set[_Instance] = set()
        self._numbers = dict.fromkeys(self.functions, 0)
        self._stopping = False
        self._replacements: set[threading.Thread] = set()

    # -- lifecycle ----------------------------------------------------------------------------------

    def launch(self) -> None:
        """Start every instance's process without waiting (their imports overlap whatever comes next)."""
        with self._changed:
            for function in self.functions:
                for _ in range(self.per_function):
                    self._members[function].add(self._new_instance(function))

    def wait_ready(self) -> None:
        """Wait until every launched instance is through its init phase; HelperFailed otherwise."""
        with self._changed:
            instances = [i for members in self._members.values() for i in members]
        start_all([i.helper for i in instances], self._start_timeout)
        with self._changed:
            for instance in instances:
                self._idle[instance.function].append(instance)
            self._changed.notify_all()

    def start(self) -> InstancePool:
        self.launch()
        self.wait_ready()
        return self

    def stop(self) -> None:
        """Stop every instance: an idle one exits when its line closes; a busy one is killed, and
        its request answered 500. Waiting requests get API Gateway's 503."""
        with self._changed:
            self._stopping = True
            busy = set(self._busy)
            everyone = {i for members in self._members.values() for i in members}
            for instances in self._idle.values():
                instances.clear()
            for members in self._members.values():
                members.clear()
            replacements = set(self._replacements)
            self._changed.notify_all()
        for thread in replacements:
            thread.join(self._start_timeout)  # it stops its instance, seeing that the pool stops
        for instance in busy:
            instance.helper.kill(close=False)  # its request's thread reads the end and answers 500
        idle = everyone - busy
        for instance in idle:
            instance.helper.connection.close()  # all at once: each exits when it reads the end
        for instance in idle:
            instance.helper.stop()

    def pids(self, function: str | None = None) -> list[int]:
        """The processes of the live instances (of one function, or of all)."""
        with self._changed:
            functions = [function] if function is not None else list(self.functions)
            return sorted(i.helper.pid for f in functions for i in self._members[f])

    # -- invocations --------------------------------------------------------------------------------

    def handlers(self) -> dict[str, LambdaHandler]:
        return {function: self._handler_for(function) for function in self.functions}

    def _handler_for(self, function: str) -> LambdaHandler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            return self.invoke(function, event, context)

        return invoke

    def invoke(self, function: str, event: dict[str, Any], context: Any) -> Any:
        deadline = time.monotonic() + self._timeout
        instance = self._acquire(function, deadline)
        connection = instance.helper.connection
        try:
            connection.send((event, context))
            if not connection.poll(max(0.0, deadline - time.monotonic())):
                logger.error("%s overran %g s: replacing it", instance.helper.name, self._timeout)
                self._replace(instance)
                raise IntegrationTimeout(f"{function} did not answer within {self._timeout:g} s")
            kind, value = connection.recv()
        except (EOFError, OSError) as exc:
            code = instance.helper.process.poll()
            self._replace(instance)
            raise InstanceCrashed(f"{instance.helper.name} died (exit code {code})") from exc
        self._release(instance)
        if kind == RAISED:
            raise FunctionError(value)
        return value

    def _acquire(self, function: str, deadline: float) -> _Instance:
        with self._changed:
            while True:
                if self._stopping:
                    raise IntegrationTimeout("the local run is stopping")
                idle = self._idle[function]
                for dead in [i for i in idle if i.helper.process.poll() is not None]:
                    # Killed or crashed between invocations: Lambda routes nothing to a dead one.
                    logger.warning("%s exited while idle: replacing it", dead.helper.name)
                    idle.remove(dead)
                    self._replace(dead)  # the lock is re-entrant; a dead process is reaped at once
                if idle:
                    # The most recently used first: its caches are the warmest.
                    instance = idle.pop()
                    self._busy.add(instance)
                    return instance
                if not self._members[function] and not self._starting[function]:
                    raise InstanceCrashed(f"no instance of {function} could be started")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise IntegrationTimeout(f"no instance of {function} was free for {self._timeout:g} s")
                self._changed.wait(remaining)

    def _release(self, instance: _Instance) -> None:
        with self._changed:
            self._busy.discard(instance)
            member = instance in self._members[instance.function]
            if member:
                self._idle[instance.function].append(instance)
                self._changed.notify()
        if not member:  # the pool stopped during the invocation
            instance.helper.stop()

    def _replace(self, instance: _Instance) -> None:
        with self._changed:
            self._busy.discard(instance)
            self._members[instance.function].discard(instance)
            replace = not self._stopping
            if replace:
                self._starting[instance.function] += 1
                # In the background: this request has its answer; the next ones wait for the new one.
                thread = threading.Thread(
                    target=self._start_replacement,
                    args=(instance.function,),
                    name=f"replace-{instance.function}",
                    daemon=True,
                )
                self._replacements.add(thread)
                thread.start()
        instance.helper.kill()

    def _start_replacement(self, function: str) -> None:
        with self._changed:
            replacement: _Instance | None = self._new_instance(function)
        assert replacement is not None
        try:
            replacement.helper.wait_ready(self._start_timeout)
        except HelperFailed:
            logger.exception("could not replace an instance of %s", function)
            replacement.helper.kill()
            replacement = None
        with self._changed:
            self._starting[function] -= 1
            self._replacements.discard(threading.current_thread())
            keep = replacement is not None and not self._stopping
            if keep and replacement is not None:
                self._members[function].add(replacement)
                self._idle[function].append(replacement)
            self._changed.notify_all()
        if replacement is not None and not keep:
            replacement.helper.stop()

    def _new_instance(self, function: str) -> _Instance:
        # The caller holds self._changed.
        self._numbers[function] += 1
        return _Instance(function, self._numbers[function])
