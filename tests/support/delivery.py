"""Delivers commits to a projection the way DynamoDB Streams + Lambda do, and worse.

Batches of random size, retry from the first reported failure, whole-batch retries when every
record fails, replays of records already delivered, and duplicates.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from projections.handler import handle_batch

from orders_core.envelope import Commit
from orders_core.store.codec import commit_to_item
from tests.support.apigw import FakeLambdaContext


def stream_records(commits: Sequence[Commit]) -> list[dict[str, Any]]:
    return [
        {
            "eventID": f"id-{n}",
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026",
            "dynamodb": {
                "Keys": {"stream_id": {"S": c.stream_id}, "version": {"N": str(c.first_version)}},
                "NewImage": commit_to_item(c),
                "SequenceNumber": f"{n:021d}",
                "SizeBytes": 100,
                "StreamViewType": "NEW_IMAGE",
            },
        }
        for n, c in enumerate(commits, start=1)
    ]


def deliver(
    records: Sequence[dict[str, Any]],
    projection: Any,
    rng: random.Random,
    *,
    max_batch: int = 10,
    replay_probability: float = 0.15,
    duplicate_probability: float = 0.1,
    on_round: Callable[[int], None] | None = None,
    max_invocations: int = 5_000,
) -> int:
    """Deliver until every record was acknowledged once; return the number of invocations."""
    position = 0
    invocations = 0
    while position < len(records):
        if on_round:
            on_round(invocations)
        batch = list(records[position : position + rng.randint(1, max_batch)])
        if rng.random() < duplicate_probability and position > 0:
            batch.insert(rng.randrange(len(batch) + 1), records[rng.randrange(position)])
        invocations += 1
        if invocations > max_invocations:
            raise RuntimeError(f"delivery did not converge after {max_invocations} invocations")
        try:
            response = handle_batch({"Records": batch}, FakeLambdaContext(), projection)
        except BatchProcessingError:
            continue  # every record failed: Lambda retries the same batch
        except Exception:  # the function crashed: Lambda retries the same batch too
            continue
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        delivered = 0
        for record in batch:
            if record["dynamodb"]["SequenceNumber"] in failed:
                break
            delivered += 1
        # Records are acknowledged up to the first failure; a duplicate in the batch does not advance.
        position = _advance(records, position, batch[:delivered])
        if rng.random() < replay_probability:
            position = max(0, position - rng.randint(1, max_batch))
    return invocations


def _advance(records: Sequence[dict[str, Any]], position: int, acknowledged: list[dict[str, Any]]) -> int:
    for record in acknowledged:
        if position < len(records) and record is records[position]:
            position += 1
    return position
