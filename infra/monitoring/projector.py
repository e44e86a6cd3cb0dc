"""The projector, the events stream's reader that keeps every read model: alarms on its lag, the
records it gave up on, the commits it could not apply, and the commits each read model parked;
graphs of its lag, its throughput and failures, and the parked commits by read model."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.monitoring.common import (
    EVENTS_PROJECTED,
    FIVE_MINUTES,
    ONE_MINUTE,
    PROJECTION_FAILURES,
    PROJECTION_LAG,
    Concern,
    Thresholds,
    alarm_on_stream_reader,
    iterator_age,
    parked_commits,
    pascal_case,
    projector_metric,
)
from orders_core.projections.fanout import PROJECTOR


class ProjectorMonitoring(Concern):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        thresholds: Thresholds,
        projector: lambda_.IFunction,
        read_models: Sequence[str],
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id, prefix=prefix, thresholds=thresholds)
        self._projector = projector
        self._read_models = tuple(read_models)
        self._dead_letters = dead_letters
        alarm_on_stream_reader(
            self,
            projector,
            dead_letters,
            iterator_age_id="ProjectorIteratorAge",
            dead_letters_id="DeadLetters",
            behind="the projector is more than {minutes} minutes behind the events stream "
            "(every read model waits: a store out of reach, or the function failing)",
            gave_up="the projector gave up on stream records (see the on-failure queue)",
        )
        self.add_alarm(
            "ProjectionFailures",
            projector_metric(PROJECTION_FAILURES, projection=PROJECTOR, statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.projection_failures,
            problem="the projector could not apply commits of a batch (reported as partial-batch "
            "failures and delivered again, not Lambda errors): see the projector's log for "
            "'commit not projected'",
        )
        for name in self._read_models:
            self.add_alarm(
                f"{pascal_case(name)}ParkedCommits",
                parked_commits(name),
                threshold=thresholds.parked_commits,
                problem=f"read model {name} parked commits it failed on (its other streams and the "
                f"other read models go on). Run `orders failures --projection {name}` to see the "
                f"streams and the error, fix the cause, then `orders replay-failures --projection {name}`",
            )

    def widgets(self) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Projector iterator age and lag (ms)",
                left=[iterator_age(self._projector, label="iterator age (max)")],
                right=[
                    projector_metric(PROJECTION_LAG, statistic="Maximum", label="lag (max)"),
                    projector_metric(PROJECTION_LAG, statistic="p99", label="lag (p99)"),
                ],
            ),
            cw.GraphWidget(
                title="Parked commits by read model",
                left=[parked_commits(name, label=name) for name in self._read_models],
            ),
            cw.GraphWidget(
                title="Projector: events projected, failures, on-failure queue",
                left=[
                    projector_metric(
                        EVENTS_PROJECTED, projection=PROJECTOR, statistic="Sum", label="events projected"
                    )
                ],
                right=[
                    projector_metric(
                        PROJECTION_FAILURES, projection=PROJECTOR, statistic="Sum", label="failures"
                    ),
                    self._dead_letters.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="on-failure queue"
                    ),
                ],
            ),
        ]
