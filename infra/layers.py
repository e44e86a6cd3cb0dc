"""Lambda layers: the shared library (`layers/core`) and the third-party dependencies."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import bytecode, layers_build
from infra.lambda_function import ARCHITECTURE, RUNTIME

# Bytecode stays in: it is compiled for the runtime's Python (infra/bytecode.py).
_HIDDEN = ["**/.*"]


class Layers(Construct):
    """Both layers in Lambda's layout (`python/...` lands in /opt/python, which is on sys.path).

    The dependencies layer is built without Docker by `make layers` (infra/layers_build.py);
    synthesizing never downloads anything, so it refuses to run with a missing or stale build.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        bytecode.stage_code()
        if not layers_build.is_current():
            raise RuntimeError(
                f"the dependencies layer in {layers_build.DEPS_LAYER_DIR} is missing or was built from "
                "other versions than this virtualenv's: run `make layers` "
                "(or `python -m infra.layers_build`) first"
            )
        self.core = lambda_.LayerVersion(
            self,
            "Core",
            code=lambda_.Code.from_asset(str(bytecode.STAGED_CORE_LAYER), exclude=_HIDDEN),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="orders_core: envelope, event store, domain, projections, HTTP helpers",
        )
        self.deps = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layers_build.DEPS_LAYER_DIR), exclude=_HIDDEN),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=", ".join(layers_build.requirements()),
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.deps, self.core]
