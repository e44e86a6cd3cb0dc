"""Start moto's server in-process, make its DynamoDB conditional writes atomic, and take off the
costs moto adds to every command of the local run: table copies in transactions, a JSONPath parser
per EventBridge event, a queue count per SQS send, a shape walk per stream record, a directory
listing per request."""

from __future__ import annotations

import base64
import copy
import datetime
import errno
import functools
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar, cast

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.server import ThreadedMotoServer

_F = TypeVar("_F", bound=Callable[..., Any])

# Every backend method that can check a condition and then write. moto's batch_write_item on the
# backend is a stub (the response layer calls put_item/delete_item per request), so it is covered
# twice over; the PartiQL entry points write through their own code paths and need the lock too.
DYNAMODB_WRITE_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)

# Re-entrant because transact_write_items and the PartiQL methods may call put_item and friends.
_WRITE_LOCK = threading.RLock()
_INSTALL_LOCK = threading.Lock()
_LOCKED_MARKER = "__orders_local_write_lock__"
_LIGHT_MARKER = "__orders_local_light_transactions__"
_TRANSACT_ACTIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})

# One reason per transaction action, as moto's TransactionCanceledException takes them:
# (code, message, item), all None for an action that would have succeeded.
_Reason = tuple[str | None, str | None, dict[str, Any] | None]
_PASSED: _Reason = (None, None, None)


def install_dynamodb_write_lock() -> None:
    """Serialize moto's DynamoDB writes process-wide; calling it again changes nothing.

    moto evaluates a ConditionExpression and stores the item without holding any lock, so two
    threads can both pass ``attribute_not_exists`` on the same key. DynamoDB never allows that, and
    the optimistic-concurrency code of the event store depends on it not happening.

    It also installs the light transactions (``install_light_transactions``): whoever serializes
    writes runs long enough for moto's own transactions to exhaust memory.
    """
    with _INSTALL_LOCK:
        _install_light_transactions()
        for name in DYNAMODB_WRITE_METHODS:
            method = getattr(DynamoDBBackend, name, None)
            if method is None or getattr(method, _LOCKED_MARKER, False):
                continue
            setattr(DynamoDBBackend, name, _locked(method))


def install_cached_event_paths() -> None:
    """Compile each JSONPath of moto's EventBridge once; calling it again changes nothing.

    moto delivers every event to every matching rule's target (the integration events' archive and
    the followers' queue, ADR 15) through an input template whose paths it parses again, with a
    freshly generated parser, for each event and path: 50-70 ms of the moto process per PutEvents
    of three events, more than every other request of a command together. The parsed expressions
    are immutable, so one per path text serves every event.
    """
    from jsonpath_ng import ext

    with _INSTALL_LOCK:
        if getattr(ext.parse, _CACHED_MARKER, False):
            return
        cached = functools.lru_cache(maxsize=256)(ext.parse)
        setattr(cached, _CACHED_MARKER, True)
        ext.parse = cached


_CACHED_MARKER = "_orders_cached"


def install_light_queue_sends() -> None:
    """Let moto's SQS send a message without listing every message the queue holds; calling it
    again changes nothing.

    moto's send_message reads ``queue.attributes`` for one FIFO setting, and that property counts
    the queue's messages (visible, in flight, delayed) one by one: a send costs time in proportion
    to the queue's backlog, so a local queue nobody reads (the integration events' followers'
    queue, ADR 15) slowed every PutEvents, and so every command, as it grew. A standard queue has
    no such setting (the property leaves it out): during a send it answers an empty mapping.
    """
    from moto.sqs.models import Queue, SQSBackend

    with _INSTALL_LOCK:
        if getattr(SQSBackend.send_message, _CACHED_MARKER, False):
            return
        full_attributes = Queue.attributes
        original_send = SQSBackend.send_message

        def attributes(queue: Queue) -> dict[str, Any]:
            if getattr(_sending, "active", False) and not queue.fifo_queue:
                return {}
            return full_attributes.fget(queue)  # type: ignore[attr-defined]

        @functools.wraps(original_send)
        def send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
            _sending.active = True
            try:
                return original_send(self, *args, **kwargs)
            finally:
                _sending.active = False

        setattr(send_message, _CACHED_MARKER, True)
        Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
        SQSBackend.send_message = send_message  # type: ignore[method-assign]


_sending = threading.local()


def install_light_stream_reads() -> None:
    """Answer DynamoDB Streams' GetRecords without moto's generic response serializer; calling it
    again changes nothing.

    moto's stream records are already in the wire format (``{"S": ...}`` attribute values, the
    keys DynamoDB Streams sends), but its serializer walks each against the service model: about
    0.7 ms of the moto process per record, which every DynamoDB request waits behind. A record is
    plain JSON but for its creation time (epoch seconds on the wire) and binary values (base64).
    """
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    with _INSTALL_LOCK:
        if getattr(DynamoDBStreamsHandler.get_records, _CACHED_MARKER, False):
            return

        def get_records(self: DynamoDBStreamsHandler) -> str:
            limit = self._get_param("Limit")
            result = self.backend.get_records(
                self._get_param("ShardIterator"), 1000 if limit is None else limit
            )
            return json.dumps(result, default=_wire_value)

        setattr(get_records, _CACHED_MARKER, True)
        DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign,assignment]


def _wire_value(value: object) -> float | str:
    """What the JSON protocol sends for the two non-JSON values a record holds."""
    if isinstance(value, datetime.datetime):
        # moto keeps naive UTC times; the protocol sends epoch seconds.
        aware = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return aware.timestamp()
    if isinstance(value, bytes):  # a binary attribute (B, BS): base64 on the wire
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def install_cached_service_lookup() -> None:
    """Let moto find a request's service without listing its own package directory; calling it
    again changes nothing.

    For every request moto's dispatcher asks whether the host names one of its modules, and the
    answer is built by listing moto's package directory and stat-ing each of its ~250 entries,
    under the dispatcher's one lock. Each of those system calls lets another thread take the GIL,
    so under concurrent clients the lock's holder waits behind every other request: the lock,
    not the work, set the pace. The directory does not change while the server runs.
    """
    from moto import backends

    with _INSTALL_LOCK:
        if getattr(backends.list_of_moto_modules, _CACHED_MARKER, False):
            return
        modules = tuple(backends.list_of_moto_modules())

        def list_of_moto_modules() -> tuple[str, ...]:
            return modules

        setattr(list_of_moto_modules, _CACHED_MARKER, True)
        backends.list_of_moto_modules = list_of_moto_modules


def install_light_transactions() -> None:
    """Replace moto's ``transact_write_items`` with one that copies no table; idempotent.

    The trap: moto backs every transaction up by deep-copying each table it touches, whole (items,
    indexes, stream records), to restore it if an action fails. Each transaction costs time in
    proportion to the tables' size, and the process never gives that memory back: 1.8 GB after a
    few thousand transactions, until the machine swaps or kills it.

    This version never needs a rollback in the common case: under the process-wide write lock it
    first checks every action's condition against the items as they are, cancels the transaction
    with one reason per action (as DynamoDB does) if any fails, and only then applies the Puts,
    Updates and Deletes (a ConditionCheck applies nothing). If applying an action still fails (a
    malformed update expression, an item grown too large), only the items already written are put
    back, from copies of those items alone. It stays wrapped by the write lock.
    """
    with _INSTALL_LOCK:
        _install_light_transactions()


def light_transactions_installed() -> bool:
    return bool(getattr(DynamoDBBackend.transact_write_items, _LIGHT_MARKER, False))


def _install_light_transactions() -> None:
    # The caller holds _INSTALL_LOCK. Wrapped by the lock here, so the write lock (installed or
    # not yet) finds a locked method and leaves it as it is.
    if not light_transactions_installed():
        DynamoDBBackend.transact_write_items = _locked(_light_transact_write_items)  # type: ignore[method-assign]


def _light_transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _WRITE_LOCK:
        currents = _check_transaction(self, transact_items)
        _apply_transaction(self, transact_items, currents)


# functools.wraps copies __dict__, so the write lock's wrapper carries this marker too.
setattr(_light_transact_write_items, _LIGHT_MARKER, True)


def _check_transaction(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[Item | None]:
    """Every action's item as it is now, or TransactionCanceledException with a reason per action
    if any condition fails (as moto's own implementation reports them)."""
    targets: set[tuple[str, str]] = set()
    currents: list[Item | None] = []
    reasons: list[_Reason] = []
    for action in transact_items:
        if len(action) > 1:
            raise TransactWriteSingleOpException()
        current: Item | None = None
        old_item: dict[str, Any] | None = None
        try:
            ((op_type, op),) = action.items()
            if op_type not in _TRANSACT_ACTIONS:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            key = _action_key(backend, op_type, op)
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            current = backend.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if not get_filter_expression(condition, names, values).expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old_item)
            reasons.append(_PASSED)
        except MockValidationException:  # a bad request, MultipleTransactionsException included
            raise
        except ConditionalCheckFailed as failed:
            reasons.append(("ConditionalCheckFailed", str(failed.message), old_item))
        except Exception as error:  # as moto: any other failure is that action's reason
            reasons.append((type(error).__name__, str(error), None))
        currents.append(current)
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    return currents


def _action_key(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _apply_transaction(
    backend: DynamoDBBackend, transact_items: list[dict[str, Any]], currents: list[Item | None]
) -> None:
    """Apply the checked actions in order. Conditions are not evaluated again: they held a moment
    ago under the same lock, and no two actions touch the same item."""
    undo: list[tuple[Table, dict[str, Any], Item | None]] = []
    stream_lengths: dict[str, tuple[Table, int]] = {}
    for index, action in enumerate(transact_items):
        ((op_type, op),) = action.items()
        if op_type == "ConditionCheck":
            continue
        table = backend.get_table(op["TableName"])
        key = _action_key(backend, op_type, op)
        if table.stream_shard is not None:
            stream_lengths.setdefault(table.name, (table, len(table.stream_shard.items)))
        # An update changes the stored Item in place, so only a copy of it can be put back.
        previous = currents[index]
        undo.append((table, key, copy.deepcopy(previous) if op_type == "Update" else previous))
        names = op.get("ExpressionAttributeNames")
        values = op.get("ExpressionAttributeValues")
        try:
            if op_type == "Put":
                backend.put_item(op["TableName"], op["Item"])
            elif op_type == "Delete":
                backend.delete_item(op["TableName"], key)
            else:
                backend.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
        except Exception as error:
            _undo(backend, undo)
            for stream_table, length in stream_lengths.values():
                if stream_table.stream_shard is not None:
                    del stream_table.stream_shard.items[length:]
            if isinstance(error, MockValidationException):
                raise
            reasons = [_PASSED] * len(transact_items)
            reasons[index] = (type(error).__name__, str(error), None)
            raise TransactionCanceledException(reasons) from error


def _undo(backend: DynamoDBBackend, undo: list[tuple[Table, dict[str, Any], Item | None]]) -> None:
    """Put back the items a failed transaction wrote, straight into moto's storage (no stream
    record: the transaction never happened)."""
    for table, key, previous in reversed(undo):
        hash_value, range_value = backend.get_keys_value(table, key)
        _store(table, hash_value, range_value, previous)


def _store(table: Table, hash_value: DynamoType, range_value: DynamoType | None, item: Item | None) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item  # type: ignore[assignment]  # as moto's own put_item
    elif item is None:
        table.items[hash_value].pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


def dynamodb_write_lock_installed() -> bool:
    present = [
        getattr(DynamoDBBackend, name) for name in DYNAMODB_WRITE_METHODS if hasattr(DynamoDBBackend, name)
    ]
    return bool(present) and all(getattr(method, _LOCKED_MARKER, False) for method in present)


def _locked(method: _F) -> _F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    setattr(wrapper, _LOCKED_MARKER, True)
    return cast(_F, wrapper)


def start_moto(
    port: int = 0, *, host: str = "127.0.0.1", timeout_seconds: float = 10.0
) -> tuple[ThreadedMotoServer, str]:
    """Start moto on ``host:port`` (port 0: any free port) and return it once it answers HTTP."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if port:
        # ThreadedMotoServer.start() waits forever if its thread cannot bind, so fail first here.
        _ensure_port_free(host, port)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    endpoint_url = f"http://{bound_host}:{bound_port}"
    try:
        _wait_until_serving(endpoint_url, timeout_seconds)
    except BaseException:
        server.stop()
        raise
    return server, endpoint_url


def _ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the werkzeug server sets, so a port in TIME_WAIT is not reported as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"port {port} on {host} is already in use") from exc
            raise


def _wait_until_serving(endpoint_url: str, timeout_seconds: float) -> None:
    # start() returns once the socket is bound, before the serving loop runs; the first request
    # after that can still fail, so poll a cheap static page until one succeeds.
    deadline = time.monotonic() + timeout_seconds
    last_error: Exception | None = None
    # A configured HTTP proxy must not see requests meant for localhost.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        try:
            with opener.open(f"{endpoint_url}/moto-api/", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"moto at {endpoint_url} did not answer within {timeout_seconds} s: {last_error}")
