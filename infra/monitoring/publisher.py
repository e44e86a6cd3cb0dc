"""The integration publisher, the events stream's other reader (it puts every event on the bus):
alarms on its lag, the records it gave back to the stream and the ones it gave up on; graphs of
its lag, and of what it published against what it could not."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.monitoring.common import (
    EVENTS_PUBLISHED,
    FIVE_MINUTES,
    ONE_MINUTE,
    PUBLISH_FAILURES,
    Concern,
    Thresholds,
    alarm_on_stream_reader,
    iterator_age,
    publisher_metric,
)


class PublisherMonitoring(Concern):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        thresholds: Thresholds,
        publisher: lambda_.IFunction,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id, prefix=prefix, thresholds=thresholds)
        self._publisher = publisher
        self._dead_letters = dead_letters
        alarm_on_stream_reader(
            self,
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
        self.add_alarm(
            "PublishFailures",
            publisher_metric(PUBLISH_FAILURES, statistic="Sum", period=FIVE_MINUTES),
            threshold=thresholds.publish_failures,
            problem="the integration publisher gave records back to the stream (the bus refused their "
            "entries after retries, or it could not read them); they are delivered again",
        )

    def widgets(self) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Integration publisher iterator age (ms)",
                left=[iterator_age(self._publisher, label="iterator age (max)")],
            ),
            cw.GraphWidget(
                title="Integration events published, failures, on-failure queue",
                left=[publisher_metric(EVENTS_PUBLISHED, statistic="Sum", label="events published")],
                right=[
                    publisher_metric(PUBLISH_FAILURES, statistic="Sum", label="records given back"),
                    self._dead_letters.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, label="on-failure queue"
                    ),
                ],
            ),
        ]
