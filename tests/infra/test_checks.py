"""cdk-nag (AwsSolutions) and cfn-lint on the synthesized stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from cfnlint.api import lint_file  # type: ignore[import-untyped]

from infra import application, nag
from tests.infra.helpers import Synthesized

# cfn-lint findings the CDK produces by design: W3005 is the explicit DependsOn the CDK adds next
# to a GetAtt (a function on its role's policy), redundant but harmless.
DOCUMENTED_CDK_NOISE = {"W3005"}


# Every kind of finding accepted on purpose: rule -> the constructs it may be acknowledged on. A new
# kind must be added here, after review, with its reason next to the acknowledgment in infra/.
def _expected_acknowledgments(synthesized: Synthesized) -> set[tuple[str, str]]:
    stack = synthesized.stack
    rebuild = stack.rebuild
    live = stack.live_updates
    roles: list[iam.IRole] = [
        stack.command_api.handler.role,
        stack.query_api.handler.role,
        stack.admin_api.handler.role,
        rebuild.worker.role,
        rebuild.state_machine.role,
        stack.projections.handler.role,
        stack.integration_events.handler.role,
        *(handler.role for handler in (live.authorizer_handler, live.routes_handler, live.notifier_handler)),
    ]
    live_api = synthesized.logical_id(live.api)
    bucket, events, state_machine = (
        synthesized.logical_id(c) for c in (rebuild.bucket, stack.event_store.events, rebuild.state_machine)
    )
    executions = (
        f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{state_machine}.Name>"
    )
    return (
        {(stack.read_models.table(s).node.path, "AwsSolutions-DDB3") for s in stack.read_models.specs}
        | {(stack.event_store.snapshots.node.path, "AwsSolutions-DDB3")}
        | {(role.node.path, "AwsSolutions-IAM5[Resource::*]") for role in roles}
        | {(stack.projections.dead_letters.node.path, "AwsSolutions-SQS3")}
        # The integration publisher's on-failure queue.
        | {(stack.integration_events.dead_letters.node.path, "AwsSolutions-SQS3")}
        # The rebuild status-change rule's dead-letter queue.
        | {(rebuild.dead_letters.node.path, "AwsSolutions-SQS3")}
        | {(stack.auth.user_pool.node.path, rule) for rule in ("AwsSolutions-COG2", "AwsSolutions-COG8")}
        # The rebuild's scratch prefix, the events table's exports, the state machine's executions.
        | {
            (role.node.path, f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/rebuilds/*]")
            for role in (rebuild.worker.role, rebuild.state_machine.role)
        }
        | {(rebuild.state_machine.role.node.path, f"AwsSolutions-IAM5[Resource::<{events}.Arn>/export/*]")}
        | {
            (rebuild.executions_policy.node.path, f"AwsSolutions-IAM5[Resource::{executions}{suffix}]")
            for suffix in (":*", "/*")
        }
        # Live updates: connections last 2 h (no PITR), the notifier's on-failure queue, routes after
        # $connect carry no authorizer (WebSocket APIs authorize $connect only), and PostToConnection
        # on any connection of the stage.
        | {(live.connections.node.path, "AwsSolutions-DDB3")}
        | {(live.dead_letters.node.path, "AwsSolutions-SQS3")}
        | {(live.api.node.path, "AwsSolutions-APIG4")}
        | {
            (
                live.notifier_handler.role.node.path,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{live_api}>/live/POST/@connections/*]",
            )
        }
        # The admin function describes a run's execution before releasing its claim.
        | {(stack.admin_api.handler.role.node.path, f"AwsSolutions-IAM5[Resource::{executions}:*]")}
        # Every function's runtime is one version behind the newest, for its bytecode (ADR 13).
        | {
            (role.node.path.removesuffix("/Role") + "/Function", "AwsSolutions-L1")
            for role in roles
            if role.node.path != rebuild.state_machine.role.node.path
        }
    )


def _acknowledgments(synthesized: Synthesized) -> dict[tuple[str, str], str]:
    found = {}
    for construct in synthesized.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    found[(construct.node.path, rule.split("::", 1)[-1])] = reason
    return found


def test_cdk_nag_reports_nothing_unacknowledged(synthesized: Synthesized) -> None:
    # The fixture's synth would have raised on any error or warning; the report says so too.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_the_app_registers_the_checks(monkeypatch: pytest.MonkeyPatch, context: dict[str, Any]) -> None:
    # An empty report must mean "checked and clean", not "never checked".
    registered: list[object] = []
    monkeypatch.setattr(application, "add_checks", registered.append)
    app = App(context=context)
    application.build(app)
    assert registered == [app]


def test_the_checks_fail_the_synth_on_a_finding(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    sqs.Queue(Stack(app, "Bad"), "Unencrypted", encryption=sqs.QueueEncryption.UNENCRYPTED)
    nag.add_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert "AwsSolutions-SQS2" in rules


def test_acknowledgments_are_the_reviewed_ones_each_with_a_reason(synthesized: Synthesized) -> None:
    acknowledgments = _acknowledgments(synthesized)
    assert set(acknowledgments) == _expected_acknowledgments(synthesized)
    for key, reason in acknowledgments.items():
        assert len(reason) >= 60, f"{key}: say why, not just that"


def test_cfn_lint_is_clean_but_for_documented_cdk_noise(template_file: Path) -> None:
    findings = lint_file(template_file)
    unexpected = [
        f"{m.rule.id} {m.message} ({m.path})" for m in findings if m.rule.id not in DOCUMENTED_CDK_NOISE
    ]
    assert unexpected == []
