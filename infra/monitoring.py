"""Alarms and a dashboard: the projector's lag, failures, parked commits per read model and dead
letters, the integration publisher's lag, failures and dead letters, function errors and throttles,
API 5xx, DynamoDB throttles and system errors per table, failed, timed-out or aborted rebuilds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.settings import Settings
from infra.workflow import definition, retry_attempts
from orders_core.api_routes import FunctionName
from orders_core.integration.publisher import SERVICE as PUBLISHER_SERVICE
from orders_core.projections.fanout import PROJECTOR
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


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        api: apigwv2.HttpApi,
        api_functions: Mapping[FunctionName, lambda_.IFunction],
        projector: lambda_.IFunction,
        read_models: Sequence[str],
        dead_letters: sqs.IQueue,
        rebuild: sfn.IStateMachine,
        rebuild_worker: lambda_.IFunction,
        rebuild_dead_letters: sqs.IQueue,
        tables: Mapping[str, dynamodb.ITable],
        integration_publisher: lambda_.IFunction | None = None,
        integration_dead_letters: sqs.IQueue | None = None,
        live_functions: Mapping[str, lambda_.IFunction] | None = None,
        live_notifier: lambda_.IFunction | None = None,
        live_dead_letters: sqs.IQueue | None = None,
        thresholds: Thresholds = Thresholds(),
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cw.Alarm] = []
        self._prefix = f"orders-{settings.stage}"
        self._thresholds = thresholds
        functions = _every_function(api_functions, projector, rebuild_worker)
        if integration_publisher is not None:
            functions["integration_publisher"] = integration_publisher
        # Live updates (infra/live_updates.py): the authorizer, the routes and the notifier.
        functions.update(live_functions or {})

        self._alarm_on_projector(projector, dead_letters)
        if integration_publisher is not None and integration_dead_letters is not None:
            self._alarm_on_publisher(integration_publisher, integration_dead_letters)
        if live_notifier is not None and live_dead_letters is not None:
            self._alarm_on_notifier(live_notifier, live_dead_letters)
        self._alarm_on_parked_commits(read_models)
        self._alarm_on_functions(functions)
        self._alarm_on_api(api)
        self._alarm_on_rebuilds(rebuild, rebuild_dead_letters)
        self._alarm_on_tables(tables)
        if settings.alarm_topic_arn:
            self._notify(settings.alarm_topic_arn)

        # Dashboard names are global to the account: the region keeps a stage in two regions apart.
        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=Fn.join("-", [self._prefix, Aws.REGION, "overview"])
        )
        self.dashboard.add_widgets(*self._api_widgets(api))
        self.dashboard.add_widgets(*self._function_widgets(functions))
        self.dashboard.add_widgets(*self._projection_widgets(projector, read_models, dead_letters))
        self.dashboard.add_widgets(*self._rebuild_widgets(rebuild, rebuild_worker, rebuild_dead_letters))
        if integration_publisher is not None and integration_dead_letters is not None:
            publisher_widgets = self._publisher_widgets(integration_publisher, integration_dead_letters)
            self.dashboard.add_widgets(*publisher_widgets)

    # -- alarms ------------------------------------------------------------------------------------

    def _alarm_on_stream_reader(
        self,
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
        minutes = self._thresholds.iterator_age_minutes
        self._alarm(
            iterator_age_id,
            _iterator_age(function),
            threshold=Duration.minutes(minutes).to_milliseconds(),
            evaluation_periods=3,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            problem=behind.format(minutes=minutes),
        )
        self._alarm(
            dead_letters_id,
            dead_letters.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=ONE_MINUTE
            ),
            threshold=self._thresholds.dead_letters,
            problem=gave_up,
        )

    def _alarm_on_projector(self, projector: lambda_.IFunction, dead_letters: sqs.IQueue) -> None:
        self._alarm_on_stream_reader(
            projector,
            dead_letters,
            iterator_age_id="ProjectorIteratorAge",
            dead_letters_id="DeadLetters",
            behind="the projector is more than {minutes} minutes behind the events stream "
            "(every read model waits: a store out of reach, or the function failing)",
            gave_up="the projector gave up on stream records (see the on-failure queue)",
        )
        self._alarm(
            "ProjectionFailures",
            _projector_metric(
                PROJECTION_FAILURES, projection=PROJECTOR, statistic="Sum", period=FIVE_MINUTES
            ),
            threshold=self._thresholds.projection_failures,
            problem="the projector could not apply commits of a batch (reported as partial-batch "
            "failures and delivered again, not Lambda errors): see the projector's log for "
            "'commit not projected'",
        )

    def _alarm_on_publisher(self, publisher: lambda_.IFunction, dead_letters: sqs.IQueue) -> None:
        self._alarm_on_stream_reader(
            publisher,
            dead_letters,
            iterator_age_id="PublisherIteratorAge",
            dead_letters_id="PublisherDeadLetters",
            behind="the integration publisher is more than {minutes} minutes behind the events stream "
            "(the event bus refusing entries, or a record it cannot publish: see its log for "
            "'records not published')",
            gave_up="the integration publisher gave up on stream records (24 h old): their events were "
            "never published. The queue holds the shard and sequence range; publish them again from "
            "the events table",
        )
        self._alarm(
            "PublishFailures",
            _publisher_metric(PUBLISH_FAILURES, statistic="Sum", period=FIVE_MINUTES),
            threshold=self._thresholds.publish_failures,
            problem="the integration publisher gave records back to the stream (the bus refused their "
            "entries after retries, or it could not read them); they are delivered again",
        )

    def _alarm_on_notifier(self, notifier: lambda_.IFunction, dead_letters: sqs.IQueue) -> None:
        self._alarm_on_stream_reader(
            notifier,
            dead_letters,
            iterator_age_id="NotifierIteratorAge",
            dead_letters_id="NotifierDeadLetters",
            behind="live updates are more than {minutes} minutes behind the order view's or inventory's "
            "stream: clients hear late (see the live notifier's log)",
            gave_up="the live notifier gave up on read-model stream records (an hour old): those changes "
            "were never pushed; clients recover with GET. The queue holds the shard and sequence range",
        )

    def _alarm_on_parked_commits(self, read_models: Sequence[str]) -> None:
        for name in read_models:
            self._alarm(
                f"{_camel(name)}ParkedCommits",
                parked_commits(name),
                threshold=self._thresholds.parked_commits,
                problem=f"read model {name} parked commits it failed on (its other streams and the "
                f"other read models go on). Run `orders failures --projection {name}` to see the "
                f"streams and the error, fix the cause, then `orders replay-failures --projection {name}`",
            )

    def _alarm_on_functions(self, functions: Mapping[str, lambda_.IFunction]) -> None:
        usual = self._thresholds.function_errors
        # The worker fails on purpose while it waits for the catch-up marker (the workflow retries).
        error_thresholds = {"rebuild_worker": expected_worker_errors() + 1}
        for name, function in functions.items():
            threshold = error_thresholds.get(name, usual)
            self._alarm(
                f"{_camel(name)}Errors",
                function.metric_errors(statistic="Sum", period=FIVE_MINUTES),
                threshold=threshold,
                problem=f"function {name} raised unhandled errors"
                + (f" ({threshold} or more in 5 minutes)" if threshold != usual else ""),
            )
            self._alarm(
                f"{_camel(name)}Throttles",
                function.metric_throttles(statistic="Sum", period=FIVE_MINUTES),
                threshold=self._thresholds.function_throttles,
                problem=f"function {name} was throttled",
            )

    def _alarm_on_api(self, api: apigwv2.HttpApi) -> None:
        self._alarm(
            "Api5xx",
            api.metric_server_error(statistic="Sum", period=FIVE_MINUTES),
            threshold=self._thresholds.api_5xx,
            problem="the HTTP API answered 5xx",
        )

    def _alarm_on_rebuilds(self, rebuild: sfn.IStateMachine, dead_letters: sqs.IQueue) -> None:
        self._alarm(
            "RebuildExecutionsFailed",
            rebuild.metric_failed(statistic="Sum", period=FIVE_MINUTES),
            threshold=self._thresholds.rebuild_failures,
            problem="a rebuild failed (readers kept the active generation; "
            "see `orders rebuilds` for the reason)",
        )
        self._alarm(
            "RebuildExecutionsTimedOut",
            rebuild.metric_timed_out(statistic="Sum", period=FIVE_MINUTES),
            threshold=self._thresholds.rebuild_failures,
            problem="a rebuild timed out",
        )
        self._alarm(
            "RebuildExecutionsAborted",
            rebuild.metric_aborted(statistic="Sum", period=FIVE_MINUTES),
            threshold=self._thresholds.rebuild_failures,
            problem="a rebuild execution was stopped (readers kept the active generation; "
            "see `orders rebuilds`)",
        )
        self._alarm(
            "RebuildAbandonDeadLetters",
            dead_letters.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=ONE_MINUTE
            ),
            threshold=self._thresholds.dead_letters,
            problem="a rebuild execution ended (stopped, timed out or failed) and its run could not be "
            "abandoned: its projection may still be claimed. The queue holds the status-change event; "
            "see `orders rebuilds` and the worker's log",
        )

    def _alarm_on_tables(self, tables: Mapping[str, dynamodb.ITable]) -> None:
        for name, table in tables.items():
            self._alarm(
                f"{_camel(name)}TableThrottles",
                table_operations_metric(table, "ThrottledRequests"),
                threshold=self._thresholds.table_throttles,
                problem=f"DynamoDB throttled requests to table {name} (on-demand: a traffic spike "
                "above twice the previous peak, a hot partition, or the table's maximum throughput)",
            )
            self._alarm(
                f"{_camel(name)}TableSystemErrors",
                table_operations_metric(table, "SystemErrors"),
                threshold=self._thresholds.table_system_errors,
                problem=f"DynamoDB answered requests to table {name} with internal errors (HTTP 500)",
            )

    def _notify(self, topic_arn: str) -> None:
        """Every alarm, and its return to OK, goes to the stage's topic."""
        topic = sns.Topic.from_topic_arn(self, "AlarmTopic", topic_arn)
        action = cw_actions.SnsAction(topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _alarm(
        self,
        construct_id: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        problem: str,
        evaluation_periods: int = 1,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cw.Alarm:
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

    # -- the dashboard, a row of widgets each ------------------------------------------------------

    def _api_widgets(self, api: apigwv2.HttpApi) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="API requests and errors",
                left=[api.metric_count(period=ONE_MINUTE)],
                right=[
                    api.metric_client_error(period=ONE_MINUTE),
                    api.metric_server_error(period=ONE_MINUTE),
                ],
            ),
            cw.GraphWidget(
                title="API latency (p50, p99)",
                left=[
                    api.metric_latency(statistic="p50", period=ONE_MINUTE),
                    api.metric_latency(statistic="p99", period=ONE_MINUTE),
                ],
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=8),
        ]

    @staticmethod
    def _function_widgets(functions: Mapping[str, lambda_.IFunction]) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Function errors",
                left=[f.metric_errors(period=ONE_MINUTE, label=n) for n, f in functions.items()],
            ),
            cw.GraphWidget(
                title="Function throttles",
                left=[f.metric_throttles(period=ONE_MINUTE, label=n) for n, f in functions.items()],
            ),
            cw.GraphWidget(
                title="Function duration (p99)",
                left=[
                    f.metric_duration(statistic="p99", period=ONE_MINUTE, label=n)
                    for n, f in functions.items()
                ],
            ),
        ]

    @staticmethod
    def _projection_widgets(
        projector: lambda_.IFunction, read_models: Sequence[str], dead_letters: sqs.IQueue
    ) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Projector iterator age and lag (ms)",
                left=[_iterator_age(projector, label="iterator age (max)")],
                right=[
                    _projector_metric(PROJECTION_LAG, statistic="Maximum", label="lag (max)"),
                    _projector_metric(PROJECTION_LAG, statistic="p99", label="lag (p99)"),
                ],
            ),
            cw.GraphWidget(
                title="Parked commits by read model",
                left=[parked_commits(name, label=name) for name in read_models],
            ),
            cw.GraphWidget(
                title="Projector: events projected, failures, on-failure queue",
                left=[
                    _projector_metric(
                        EVENTS_PROJECTED, projection=PROJECTOR, statistic="Sum", label="events projected"
                    )
                ],
                right=[
                    _projector_metric(
                        PROJECTION_FAILURES, projection=PROJECTOR, statistic="Sum", label="failures"
                    ),
                    dead_letters.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="on-failure queue"
                    ),
                ],
            ),
        ]

    @staticmethod
    def _publisher_widgets(publisher: lambda_.IFunction, dead_letters: sqs.IQueue) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Integration publisher iterator age (ms)",
                left=[_iterator_age(publisher, label="iterator age (max)")],
            ),
            cw.GraphWidget(
                title="Integration events published, failures, on-failure queue",
                left=[_publisher_metric(EVENTS_PUBLISHED, statistic="Sum", label="events published")],
                right=[
                    _publisher_metric(PUBLISH_FAILURES, statistic="Sum", label="records given back"),
                    dead_letters.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="on-failure queue"
                    ),
                ],
            ),
        ]

    @staticmethod
    def _rebuild_widgets(
        rebuild: sfn.IStateMachine, worker: lambda_.IFunction, dead_letters: sqs.IQueue
    ) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Rebuild executions",
                left=[
                    rebuild.metric_started(period=FIVE_MINUTES, label="started"),
                    rebuild.metric_succeeded(period=FIVE_MINUTES, label="succeeded"),
                    rebuild.metric_failed(period=FIVE_MINUTES, label="failed"),
                    rebuild.metric_timed_out(period=FIVE_MINUTES, label="timed out"),
                    rebuild.metric_aborted(period=FIVE_MINUTES, label="aborted"),
                ],
            ),
            cw.GraphWidget(
                title="Rebuild duration (max, ms)",
                left=[rebuild.metric_time(statistic="Maximum", period=FIVE_MINUTES, label="execution")],
            ),
            cw.GraphWidget(
                title="Rebuild worker",
                left=[
                    worker.metric_invocations(period=ONE_MINUTE, label="invocations"),
                    worker.metric_errors(period=ONE_MINUTE, label="errors (incl. catch-up waits)"),
                ],
                right=[
                    worker.metric_duration(statistic="p99", period=ONE_MINUTE, label="duration p99"),
                    dead_letters.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="runs not abandoned (queue)"
                    ),
                ],
            ),
        ]


def _every_function(
    api_functions: Mapping[FunctionName, lambda_.IFunction],
    projector: lambda_.IFunction,
    rebuild_worker: lambda_.IFunction,
) -> dict[str, lambda_.IFunction]:
    """Every function, by the name its alarms and graphs show."""
    return {
        **{str(name): function for name, function in api_functions.items()},
        "projector": projector,
        "rebuild_worker": rebuild_worker,
    }


def parked_commits(read_model: str, *, label: str | None = None) -> cw.Metric:
    """Commits the read model parked, per 5 minutes (the projector emits it when it parks any)."""
    return _projector_metric(
        PARKED_COMMITS, projection=read_model, statistic="Sum", period=FIVE_MINUTES, label=label
    )


def _projector_metric(
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


def _publisher_metric(
    name: str, *, statistic: str, period: Duration = ONE_MINUTE, label: str | None = None
) -> cw.Metric:
    return cw.Metric(
        namespace=DEFAULT_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": PUBLISHER_SERVICE},
        statistic=statistic,
        period=period,
        label=label,
    )


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


def _iterator_age(projector: lambda_.IFunction, *, label: str | None = None) -> cw.Metric:
    """How old the last record of each batch was when the event source mapping read it."""
    return projector.metric("IteratorAge", statistic="Maximum", period=ONE_MINUTE, label=label)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
