"""Alarms and a dashboard: projection lag and dead letters, function errors and throttles, API 5xx,
failed or timed-out rebuilds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.settings import Settings
from infra.workflow import ASL_FILE, retry_attempts
from orders_core.api_routes import FunctionName


@dataclass(frozen=True)
class Thresholds:
    # A projection this far behind the stream is not keeping up (or is stuck retrying a batch).
    iterator_age_minutes: int = 5
    # Any message on the on-failure queue is a batch the projection gave up on: act on the first.
    dead_letters: int = 1
    function_errors: int = 1  # unhandled errors per 5 minutes (handled ones are 4xx answers)
    function_throttles: int = 1  # per 5 minutes
    api_5xx: int = 5  # per 5 minutes
    rebuild_failures: int = 1  # failed or timed-out rebuild executions per 5 minutes


def expected_worker_errors() -> int:
    """Unhandled errors the rebuild worker raises in a healthy run: its catch-up step raises
    NotCaughtUp until the live projection delivers the marker, and the workflow retries it up to
    this many times (in about four minutes). A failed run ends FAILED and alarms on its own."""
    return retry_attempts(json.loads(ASL_FILE.read_text()), "NotCaughtUp")


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
        projections: Mapping[str, lambda_.IFunction],
        dead_letters: sqs.IQueue,
        rebuild: sfn.IStateMachine,
        rebuild_worker: lambda_.IFunction,
        thresholds: Thresholds = Thresholds(),
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cw.Alarm] = []
        prefix = f"orders-{settings.stage}"

        for name, function in projections.items():
            self._alarm(
                f"{_camel(name)}IteratorAge",
                function.metric("IteratorAge", statistic="Maximum", period=ONE_MINUTE),
                threshold=Duration.minutes(thresholds.iterator_age_minutes).to_milliseconds(),
                evaluation_periods=3,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                description=f"{prefix}: projection {name} is more than "
                f"{thresholds.iterator_age_minutes} minutes behind the events stream",
            )
        self._alarm(
            "DeadLetters",
            dead_letters.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=ONE_MINUTE
            ),
            threshold=thresholds.dead_letters,
            description=f"{prefix}: a projection gave up on stream records (see the on-failure queue)",
        )
        all_functions: dict[str, lambda_.IFunction] = {
            **{str(n): f for n, f in api_functions.items()},
            **{f"projection-{n}": f for n, f in projections.items()},
            "rebuild_worker": rebuild_worker,
        }
        # The worker fails on purpose while it waits for the catch-up marker (the workflow retries).
        error_thresholds = {"rebuild_worker": expected_worker_errors() + 1}
        for name, function in all_functions.items():
            threshold = error_thresholds.get(name, thresholds.function_errors)
            self._alarm(
                f"{_camel(name)}Errors",
                function.metric_errors(statistic="Sum", period=FIVE_MINUTES),
                threshold=threshold,
                description=f"{prefix}: function {name} raised unhandled errors"
                + (f" ({threshold} or more in 5 minutes)" if threshold != thresholds.function_errors else ""),
            )
            self._alarm(
                f"{_camel(name)}Throttles",
                function.metric_throttles(statistic="Sum", period=FIVE_MINUTES),
                threshold=thresholds.function_throttles,
                description=f"{prefix}: function {name} was throttled",
            )
        self._alarm(
            "Api5xx",
            api.metric_server_error(statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.api_5xx,
            description=f"{prefix}: the HTTP API answered 5xx",
        )
        self._alarm(
            "RebuildExecutionsFailed",
            rebuild.metric_failed(statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.rebuild_failures,
            description=f"{prefix}: a rebuild failed (readers kept the active generation; "
            "see `orders rebuilds` for the reason)",
        )
        self._alarm(
            "RebuildExecutionsTimedOut",
            rebuild.metric_timed_out(statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.rebuild_failures,
            description=f"{prefix}: a rebuild timed out",
        )

        if settings.alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", settings.alarm_topic_arn)
            action = cw_actions.SnsAction(topic)
            for alarm in self.alarms:
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-overview")
        self.dashboard.add_widgets(
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
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Function errors",
                left=[f.metric_errors(period=ONE_MINUTE, label=n) for n, f in all_functions.items()],
            ),
            cw.GraphWidget(
                title="Function throttles",
                left=[f.metric_throttles(period=ONE_MINUTE, label=n) for n, f in all_functions.items()],
            ),
            cw.GraphWidget(
                title="Function duration (p99)",
                left=[
                    f.metric_duration(statistic="p99", period=ONE_MINUTE, label=n)
                    for n, f in all_functions.items()
                ],
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Projection iterator age (ms)",
                left=[
                    f.metric("IteratorAge", statistic="Maximum", period=ONE_MINUTE, label=n)
                    for n, f in projections.items()
                ],
            ),
            cw.GraphWidget(
                title="On-failure queue depth",
                left=[dead_letters.metric_approximate_number_of_messages_visible(period=ONE_MINUTE)],
            ),
        )
        self.dashboard.add_widgets(
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
                    rebuild_worker.metric_invocations(period=ONE_MINUTE, label="invocations"),
                    rebuild_worker.metric_errors(period=ONE_MINUTE, label="errors (incl. catch-up waits)"),
                ],
                right=[
                    rebuild_worker.metric_duration(statistic="p99", period=ONE_MINUTE, label="duration p99")
                ],
            ),
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        description: str,
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
            alarm_description=description,
        )
        self.alarms.append(alarm)
        return alarm


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
