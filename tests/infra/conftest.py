"""One synthesis per test session, shared by every infra test.

The app gets cdk.json's context (so feature flags and settings match `cdk synth`) and runs the
same cdk-nag checks as `make synth`: if any finding is unacknowledged, the fixture itself fails.
CloudFormation's built-in template validation is skipped here (cfn-lint covers the template).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra import auth_layer_build, layers_build
from infra.application import build
from infra.settings import cdk_json_context
from tests.infra.helpers import Synthesized


@pytest.fixture(scope="session")
def context() -> dict[str, Any]:
    return cdk_json_context()


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, context: dict[str, Any]) -> Iterator[Synthesized]:
    # What `make layers` does (a no-op when the layer is current); the stack refuses to synthesize
    # without it. Building it may need the package index once; after that, nothing.
    layers_build.build()
    auth_layer_build.build()  # the live updates' authorizer's token-verification layer
    outdir = tmp_path_factory.mktemp("cdk.out")
    # The CLI also asks for asset metadata (which staged directory each function's code is).
    cli_context = {**context, "aws:cdk:enable-asset-metadata": True}
    app = App(context=cli_context, outdir=str(outdir), builtin_cloud_formation_validation=False)
    stack = build(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    template_json = assembly.get_stack_by_name(stack.stack_name).template
    yield Synthesized(app, stack, outdir, Template.from_json(template_json), template_json)


@pytest.fixture(scope="session")
def template_file(synthesized: Synthesized) -> Path:
    path = synthesized.outdir / f"{synthesized.stack.artifact_id}.template.json"
    assert json.loads(path.read_text()) == synthesized.json
    return path
