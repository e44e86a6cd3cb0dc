"""What every monitoring concern shares: the thresholds, the metrics more than one of them reads, and
one way to make an alarm, so that every alarm of the stack says whose it is and stays quiet on
missing data whichever concern made it."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.workflow import definition, retry_attempts
from orders_core.integration.publisher import SERVICE as PUBLISHER_SERVICE
from orders_core.stream_delivery import SERVICE as PROJECTIONS_SERVICE
from orders_core.telemetry import DEFAULT_NAMESPACE

# The projector's own metrics (EMF, orders_core.stream_delivery): the stack sets no
# POWERTOOLS_METRICS_NAMESPACE, so they land in the default namespace.
PARKED_COMMITS = "ParkedCommits"  # Count; dimensions service, projection (the read model)
PROJECTION_LAG = "ProjectionLag"  # Milliseconds; dimension service
EVENTS_PROJECTED = "EventsProjected"  # Count; dimensions service, projection = PROJECTOR
PROJECTION_FAILURES = "ProjectionFailures"  # Count; dimensions service, projection = PROJECTOR
# The integration publisher's (EMF, orders_core.integration.publisher), dimension service only.
EVENTS_PUBLISHED = "EventsPublished"  # Count: entries the bus took
PUBLISH_FAILURES = "PublishFailures"  # Count: records given back to the stream (delivered again)


@dataclass(frozen=True)
class Thresholds:
    # The projector this far behind the stream is not keeping up (or is stuck retrying a batch).
    iterator_age_minutes: int = 5
    # Any commit a read model parked waits for an operator (`orders failures`, then
    # `orders replay-failures` once the cause is fixed): act on the first.
    parked_commits: int = 1
    # Any message on the on-failure queue is a batch the projector gave up on: act on the first.
    dead_letters: int = 1
    function_errors: int = 1  # unhandled errors per 5 minutes (handled ones are 4xx answers)
    function_throttles: int = 1  # per 5 minutes
    api_5xx: int = 5  # per 5 minutes
    rebuild_failures: int = 1  # failed, timed-out or aborted rebuild executions per 5 minutes
    # Commits the projector could not apply in a batch (partial-batch failures it reports and
    # retries, not Lambda errors), per 5 minutes: act on the first.
    projection_failures: int = 1
    table_throttles: int = 1  # requests DynamoDB throttled, per table, per 5 minutes
    table_system_errors: int = 1  # DynamoDB's own 500s, per table, per 5 minutes
    # Records the integration publisher gave back to the stream because the bus kept refusing
    # their entries (after its own retries), per 5 minutes: act on the first.
    publish_failures: int = 1


DEFAULT_THRESHOLDS = Thresholds()

# The DynamoDB operations the functions and the rebuild send (ThrottledRequests and SystemErrors
# are per operation, never per table alone). At most 10: a metric-math alarm holds 10 metrics.
TABLE_OPERATIONS = (
    dynamodb.Operation.PUT_ITEM,
    dynamodb.Operation.UPDATE_ITEM,
    dynamodb.Operation.DELETE_ITEM,
    dynamodb.Operation.BATCH_WRITE_ITEM,
    dynamodb.Operation.TRANSACT_WRITE_ITEMS,
    dynamodb.Operation.QUERY,
    dynamodb.Operation.SCAN,
    dynamodb.Operation.BATCH_GET_ITEM,
    dynamodb.Operation.GET_RECORDS,
)


def expected_worker_errors() -> int:
    """Unhandled errors the rebuild worker raises in a healthy run: its catch-up step raises
    NotCaughtUp until the live projection delivers the marker, and the workflow retries it up to
    this many times (in about four minutes). A failed run ends FAILED and alarms on its own."""
    return retry_attempts(definition(), "NotCaughtUp")


FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)


class Concern(Construct):
    """One part of the service watched on its own: it makes its alarms (through `add_alarm`, the
    same way as every other concern) and offers its row of the dashboard; `Monitoring` composes
    the concerns, notifies on their alarms and lays out their rows."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, thresholds: Thresholds) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cw.Alarm] = []
        self.thresholds = thresholds
        self._prefix = prefix

    def widgets(self) -> list[cw.IWidget]:
        """The concern's row of the dashboard; an empty list for none."""
        raise NotImplementedError

    def add_alarm(
        self,
        construct_id: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        problem: str,
        evaluation_periods: int = 1,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cw.Alarm:
        """An alarm whose description says which stage it is from (a notification is read away
        from the console), and which missing data does not set off: most metrics here have no
        data while nothing happens (no invocations, nothing parked, an idle queue)."""
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{self._prefix}: {problem}",
        )
        self.alarms.append(alarm)
        return alarm


def alarm_on_stream_reader(
    concern: Concern,
    function: lambda_.IFunction,
    dead_letters: sqs.IQueue,
    *,
    iterator_age_id: str,
    dead_letters_id: str,
    behind: str,
    gave_up: str,
) -> None:
    """A stream reader's two alarms: too far behind its stream (``behind`` completes "more than
    N minutes behind ..."), and records it gave up on in its on-failure queue."""
    minutes = concern.thresholds.iterator_age_minutes
    concern.add_alarm(
        iterator_age_id,
        iterator_age(function),
        threshold=Duration.minutes(minutes).to_milliseconds(),
        evaluation_periods=3,
        comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        problem=behind.format(minutes=minutes),
    )
    concern.add_alarm(
        dead_letters_id,
        dead_letters.metric_approximate_number_of_messages_visible(statistic="Maximum", period=ONE_MINUTE),
        threshold=concern.thresholds.dead_letters,
        problem=gave_up,
    )


def parked_commits(read_model: str, *, label: str | None = None) -> cw.Metric:
    """Commits the read model parked, per 5 minutes (the projector emits it when it parks any)."""
    return projector_metric(
        PARKED_COMMITS, projection=read_model, statistic="Sum", period=FIVE_MINUTES, label=label
    )


def projector_metric(
    name: str,
    *,
    statistic: str,
    projection: str | None = None,
    period: Duration = ONE_MINUTE,
    label: str | None = None,
) -> cw.Metric:
    # EMF metrics match on their whole dimension set: exactly the ones the projector writes.
    dimensions = {"service": PROJECTIONS_SERVICE}
    if projection is not None:
        dimensions["projection"] = projection
    return cw.Metric(
        namespace=DEFAULT_NAMESPACE,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period,
        label=label,
    )


def service_metric(
    service: str, name: str, *, statistic: str, period: Duration = ONE_MINUTE, label: str | None = None
) -> cw.Metric:
    """A metric a function writes as EMF with the service as its only dimension."""
    return cw.Metric(
        namespace=DEFAULT_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period,
        label=label,
    )


def publisher_metric(
    name: str, *, statistic: str, period: Duration = ONE_MINUTE, label: str | None = None
) -> cw.Metric:
    return service_metric(PUBLISHER_SERVICE, name, statistic=statistic, period=period, label=label)


def table_operations_metric(table: dynamodb.ITable, metric_name: str) -> cw.MathExpression:
    """A per-operation DynamoDB metric summed over TABLE_OPERATIONS, per 5 minutes. Unlike the
    CDK's `metric_*_for_operations` (`m1 + m2 + ...`, no data unless every operation has some),
    each operation's missing data counts as 0."""
    metrics = {
        f"m{i}": cw.Metric(
            namespace="AWS/DynamoDB",
            metric_name=metric_name,
            dimensions_map={"TableName": table.table_name, "Operation": operation.value},
            statistic="Sum",
            period=FIVE_MINUTES,
        )
        for i, operation in enumerate(TABLE_OPERATIONS)
    }
    return cw.MathExpression(
        expression=" + ".join(f"FILL({key}, 0)" for key in metrics),
        using_metrics=metrics,
        label=f"{metric_name} (every operation)",
        period=FIVE_MINUTES,
    )


def iterator_age(stream_reader: lambda_.IFunction, *, label: str | None = None) -> cw.Metric:
    """How old the last record of each batch was when the event source mapping read it."""
    return stream_reader.metric("IteratorAge", statistic="Maximum", period=ONE_MINUTE, label=label)


def pascal_case(name: str) -> str:
    """`customer_orders` -> `CustomerOrders`: a read model's, function's or table's part of a
    construct id."""
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
