"""Live notifier function: adapter from the order view's and inventory's streams to live pushes.

One function, one event source mapping per table (each the only reader of its table's stream).
Each record becomes a row change of its table's read model (the table is named by the record's
`eventSourceARN`); orders_core.live.notifier decides who is told what. Powertools'
BatchProcessor reports the records to deliver again, from the first one whose push failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from orders_core import composition
from orders_core.live.notifier import SERVICE, LiveNotifier, PushTally, RowChange, report
from orders_core.projections import customer_orders, inventory
from orders_core.tables import CUSTOMER_ORDERS, INVENTORY

logger = Logger(service=SERVICE)


class UnknownTable(ValueError):
    """A record of a table this function does not follow (a mapping on the wrong stream)."""


def table_name(event_source_arn: str | None) -> str:
    """`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>` -> `<name>`."""
    parts = (event_source_arn or "").split("/")
    return parts[1] if len(parts) > 1 and parts[0].endswith(":table") else ""


def row_change(raw: Mapping[str, Any], read_model_of_table: Mapping[str, str]) -> RowChange:
    record = DynamoDBRecord(dict(raw))
    read_model = read_model_of_table.get(table_name(record.event_source_arn))
    if read_model is None:
        raise UnknownTable(f"a record of {record.event_source_arn!r}, which is not a followed read model")
    stream = record.dynamodb
    keys = (stream.keys if stream else None) or {}
    return RowChange(
        read_model=read_model,
        trigger=str(record.event_id),
        key=(str(keys.get("pk", "")), str(keys.get("sk", ""))),
        old=stream.old_image if stream else None,
        new=stream.new_image if stream else None,
    )


def handle_stream(
    event: dict[str, Any], context: Any, target: LiveNotifier, read_model_of_table: Mapping[str, str]
) -> dict[str, Any]:
    records: Sequence[Mapping[str, Any]] = event.get("Records", [])
    failures: dict[str, Exception] = {}
    changes: list[RowChange] = []
    sequences: list[str] = []
    for raw in records:
        sequence = str(raw.get("dynamodb", {}).get("SequenceNumber", ""))
        try:
            changes.append(row_change(raw, read_model_of_table))
            sequences.append(sequence)
        except UnknownTable as unknown:
            failures[sequence] = unknown
    tally = PushTally()
    for position, failure in target.notify(changes, tally).items():
        failures.setdefault(sequences[position], failure)
    report(tally, changes_not_pushed=len(failures))

    def record_handler(record: DynamoDBRecord) -> None:
        sequence = (record.dynamodb.sequence_number if record.dynamodb else None) or ""
        failure = failures.get(sequence)
        if failure is not None:
            logger.warning("change not pushed", sequence_number=sequence, error=repr(failure))
            raise failure

    # A processor per batch: it keeps the batch's results, and the local pollers share this module.
    # A batch that failed whole (the push endpoint out of reach) is reported record by record, not
    # raised: Lambda then retries it from its first record instead of bisecting it for nothing.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


def followed_tables(root: composition.Root) -> dict[str, str]:
    """Table name -> the read model it holds, for the two tables whose streams feed the notifier."""
    settings = root.settings
    return {
        settings.table(CUSTOMER_ORDERS): customer_orders.NAME,
        settings.table(INVENTORY): inventory.NAME,
    }


def handler_for(
    target: LiveNotifier, read_model_of_table: Mapping[str, str]
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda-shaped handler bound to one notifier (the local run and tests build their own)."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_stream(event, context, target, read_model_of_table)

    return handle


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    root = composition.root()
    return handle_stream(event, context, root.live_notifier, followed_tables(root))
