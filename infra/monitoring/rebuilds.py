"""Rebuilds (the rebuild workflow and its worker): alarms on executions that failed, timed out or
were stopped, and on runs that could not be abandoned afterwards; graphs of the executions, their
duration and the worker."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.monitoring.common import FIVE_MINUTES, ONE_MINUTE, Concern, Thresholds


class RebuildsMonitoring(Concern):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        thresholds: Thresholds,
        rebuild: sfn.IStateMachine,
        worker: lambda_.IFunction,
        dead_letters: sqs.IQueue,
    ) -> None:
        """`dead_letters`: the status-change events of executions whose run could not be abandoned.
        The worker's errors and throttles alarm with every other function's."""
        super().__init__(scope, construct_id, prefix=prefix, thresholds=thresholds)
        self._rebuild = rebuild
        self._worker = worker
        self._dead_letters = dead_letters
        self.add_alarm(
            "RebuildExecutionsFailed",
            rebuild.metric_failed(statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.rebuild_failures,
            problem="a rebuild failed (readers kept the active generation; "
            "see `orders rebuilds` for the reason)",
        )
        self.add_alarm(
            "RebuildExecutionsTimedOut",
            rebuild.metric_timed_out(statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.rebuild_failures,
            problem="a rebuild timed out",
        )
        self.add_alarm(
            "RebuildExecutionsAborted",
            rebuild.metric_aborted(statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.rebuild_failures,
            problem="a rebuild execution was stopped (readers kept the active generation; "
            "see `orders rebuilds`)",
        )
        self.add_alarm(
            "RebuildAbandonDeadLetters",
            dead_letters.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=ONE_MINUTE
            ),
            threshold=thresholds.dead_letters,
            problem="a rebuild execution ended (stopped, timed out or failed) and its run could not be "
            "abandoned: its projection may still be claimed. The queue holds the status-change event; "
            "see `orders rebuilds` and the worker's log",
        )

    def widgets(self) -> list[cw.IWidget]:
        rebuild, worker = self._rebuild, self._worker
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
                    self._dead_letters.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="runs not abandoned (queue)"
                    ),
                ],
            ),
        ]
