"""Alarms and a dashboard: the projector's lag, failures, parked commits per read model and dead
letters, the integration publisher's and the live notifier's lag, failures and dead letters,
function errors and throttles, API 5xx, DynamoDB throttles and system errors per table, failed,
timed-out or aborted rebuilds.

One construct per concern (infra/monitoring/<concern>.py) makes its own alarms and offers its row
of the dashboard; `Monitoring` composes them, so that every alarm notifies the stage's topic and
the one dashboard shows every row. What the concerns share (thresholds, metrics, how an alarm is
made) is in infra/monitoring/common.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Fn
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.monitoring.api import ApiMonitoring
from infra.monitoring.common import (
    DEFAULT_THRESHOLDS,
    EVENTS_PROJECTED,
    EVENTS_PUBLISHED,
    PARKED_COMMITS,
    PROJECTION_FAILURES,
    PROJECTION_LAG,
    PUBLISH_FAILURES,
    TABLE_OPERATIONS,
    Concern,
    Thresholds,
    expected_worker_errors,
    parked_commits,
    table_operations_metric,
)
from infra.monitoring.functions import FunctionsMonitoring
from infra.monitoring.live_notifier import LiveNotifierMonitoring
from infra.monitoring.projector import ProjectorMonitoring
from infra.monitoring.publisher import PublisherMonitoring
from infra.monitoring.rebuilds import RebuildsMonitoring
from infra.monitoring.tables import TablesMonitoring
from infra.settings import Settings
from orders_core.api_routes import FunctionName

__all__ = [
    "DEFAULT_THRESHOLDS",
    "EVENTS_PROJECTED",
    "EVENTS_PUBLISHED",
    "PARKED_COMMITS",
    "PROJECTION_FAILURES",
    "PROJECTION_LAG",
    "PUBLISH_FAILURES",
    "TABLE_OPERATIONS",
    "Concern",
    "Monitoring",
    "Thresholds",
    "expected_worker_errors",
    "parked_commits",
    "table_operations_metric",
]

REBUILD_WORKER = "rebuild_worker"


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
        live_stage: apigwv2.IWebSocketStage | None = None,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = f"orders-{settings.stage}"
        functions = _every_function(api_functions, projector, rebuild_worker)
        if integration_publisher is not None:
            functions["integration_publisher"] = integration_publisher
        # Live updates (infra/live_updates.py): the authorizer, the routes and the notifier.
        functions.update(live_functions or {})

        self.projector = ProjectorMonitoring(
            self,
            "Projector",
            prefix=prefix,
            thresholds=thresholds,
            projector=projector,
            read_models=read_models,
            dead_letters=dead_letters,
        )
        self.publisher: PublisherMonitoring | None = None
        if integration_publisher is not None and integration_dead_letters is not None:
            self.publisher = PublisherMonitoring(
                self,
                "Publisher",
                prefix=prefix,
                thresholds=thresholds,
                publisher=integration_publisher,
                dead_letters=integration_dead_letters,
            )
        self.live_notifier: LiveNotifierMonitoring | None = None
        if live_notifier is not None and live_dead_letters is not None:
            self.live_notifier = LiveNotifierMonitoring(
                self,
                "LiveNotifier",
                prefix=prefix,
                thresholds=thresholds,
                notifier=live_notifier,
                dead_letters=live_dead_letters,
                stage=live_stage,
            )
        self.functions = FunctionsMonitoring(
            self,
            "Functions",
            prefix=prefix,
            thresholds=thresholds,
            functions=functions,
            # The worker fails on purpose while it waits for the catch-up marker (the workflow retries).
            error_thresholds={REBUILD_WORKER: expected_worker_errors() + 1},
        )
        self.api = ApiMonitoring(self, "Api", prefix=prefix, thresholds=thresholds, api=api)
        self.rebuilds = RebuildsMonitoring(
            self,
            "Rebuilds",
            prefix=prefix,
            thresholds=thresholds,
            rebuild=rebuild,
            worker=rebuild_worker,
            dead_letters=rebuild_dead_letters,
        )
        self.tables = TablesMonitoring(self, "Tables", prefix=prefix, thresholds=thresholds, tables=tables)

        self.concerns: list[Concern] = [
            concern
            for concern in (
                self.projector,
                self.publisher,
                self.live_notifier,
                self.functions,
                self.api,
                self.rebuilds,
                self.tables,
            )
            if concern is not None
        ]
        self.alarms: list[cw.Alarm] = [alarm for concern in self.concerns for alarm in concern.alarms]
        if settings.alarm_topic_arn:
            self._notify(settings.alarm_topic_arn)

        # Dashboard names are global to the account: the region keeps a stage in two regions apart.
        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=Fn.join("-", [prefix, Aws.REGION, "overview"])
        )
        # The alarm status goes on the first row: what needs a person is what is seen first.
        self.dashboard.add_widgets(
            *self.api.widgets(), cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=8)
        )
        for concern in (
            self.functions,
            self.projector,
            self.rebuilds,
            self.publisher,
            self.live_notifier,
            self.tables,
        ):
            if concern is not None and (row := concern.widgets()):
                self.dashboard.add_widgets(*row)

    def _notify(self, topic_arn: str) -> None:
        """Every alarm, and its return to OK, goes to the stage's topic."""
        topic = sns.Topic.from_topic_arn(self, "AlarmTopic", topic_arn)
        action = cw_actions.SnsAction(topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)


def _every_function(
    api_functions: Mapping[FunctionName, lambda_.IFunction],
    projector: lambda_.IFunction,
    rebuild_worker: lambda_.IFunction,
) -> dict[str, lambda_.IFunction]:
    """Every function, by the name its alarms and graphs show."""
    return {
        **{str(name): function for name, function in api_functions.items()},
        "projector": projector,
        REBUILD_WORKER: rebuild_worker,
    }
