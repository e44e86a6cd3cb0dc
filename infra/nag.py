"""cdk-nag (3.x) checks and the acknowledgments of the findings that are accepted on purpose.

Every acknowledgment names one rule or finding (`RuleId[FindingId]`) on one construct and says why;
anything else cdk-nag reports fails the synth.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

# Findings on wildcard resources report the resource as cdk-nag renders it.
IAM5_ANY_RESOURCE = "AwsSolutions-IAM5[Resource::*]"

XRAY_REASON = (
    "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions "
    "(the service authorization reference lists only '*'); added by Tracing.ACTIVE."
)

RUNTIME_ONE_BEHIND_REASON = (
    "python3.13, one version behind python3.14, on purpose (ADR 13): the assets carry bytecode that "
    "only an interpreter of the runtime's own version can compile, and no 3.14 interpreter exists "
    "where this is built; a cold start without bytecode costs about 2.3x one with it. python3.13 is "
    "supported by Lambda until 2029; a test fails when the runtime falls two versions behind."
)


def add_checks(scope: IConstruct) -> None:
    """Run the AWS Solutions rules on everything under `scope` (an App or Stage) at synth."""
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope, verbose=True))


def acknowledge(target: IConstruct | Validations, rule_id: str, reason: str) -> None:
    validations = target if isinstance(target, Validations) else Validations.of(target)
    validations.acknowledge(Acknowledgment(id=rule_id, reason=reason))
