"""The rebuild workflow's one ASL definition (workflows/rebuild.asl.json) and its checks.

The stack loads the file as it is and lets CloudFormation fill its `${Name}` placeholders
(`DefinitionSubstitutions`, a plain text replacement); the local run fills the same placeholders
itself. ARNs and names stand inside JSON strings; the numbers (`TimeoutSeconds` and the two
Distributed Maps' `MaxConcurrency`, which ASL wants as integers, with no `...Path` form for the
execution's timeout) stand bare, outside quotes. So the file itself is JSON only once rendered:
`definition()` renders and parses it, and a rendered copy is a plain ASL document, which the npm
`asl-validator` checks (cfn-lint does not look into state machine definitions):

    python -m infra.workflow              # render with example ARNs and run asl-validator

This module imports no aws_cdk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from infra.layers_build import ROOT

ASL_FILE = ROOT / "workflows" / "rebuild.asl.json"
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")

# Placeholders that stand outside quotes: their values must be integers.
NUMERIC_PLACEHOLDERS = frozenset({"RebuildTimeoutSeconds", "ShuffleConcurrency", "ApplyConcurrency"})

# What the stack substitutes (infra/rebuild.py), as a deployment would render it.
EXAMPLE_VALUES: dict[str, str] = {
    "RebuildWorkerArn": "arn:aws:lambda:eu-west-1:123456789012:function:orders-dev-RebuildWorker",
    "EventsTableArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders-dev-Events",
    "ExportBucket": "orders-dev-rebuildexports",
    "RebuildTimeoutSeconds": "21600",
    "ShuffleConcurrency": "64",
    "ApplyConcurrency": "100",
}


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render(text: str, values: Mapping[str, str]) -> str:
    """The definition with every placeholder replaced, as CloudFormation does; one without a value
    (or a value without a placeholder) is an error, not a silently broken workflow."""
    names = placeholders(text)
    if names != set(values):
        raise ValueError(
            f"placeholders {sorted(names)} and values {sorted(values)} differ "
            f"(missing: {sorted(names - set(values))}, unused: {sorted(set(values) - names)})"
        )
    for name in NUMERIC_PLACEHOLDERS & names:
        if not str(values[name]).isdigit():
            raise ValueError(f"{name} stands outside quotes and must be a whole number, not {values[name]!r}")
    rendered = PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
    json.loads(rendered)  # JSON now: strings went into string positions, numbers into number ones
    return rendered


def definition(source: Path = ASL_FILE, values: Mapping[str, str] = EXAMPLE_VALUES) -> dict[str, Any]:
    """The definition rendered (with example values unless given) and parsed."""
    parsed = json.loads(render(source.read_text(), values))
    assert isinstance(parsed, dict)
    return parsed


def states(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every state, including those inside Map and Parallel states, as (name, state)."""
    for name, state in definition.get("States", {}).items():
        yield name, state
        for inner in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if inner:
                yield from states(inner)


def retry_attempts(definition: Mapping[str, Any], error: str) -> int:
    """The most attempts any one state retries `error` (0 when none does): the Lambda errors an
    alarm must tolerate when the workflow raises that error on purpose (the worker's NotCaughtUp)."""
    return max(
        (
            int(retrier.get("MaxAttempts", 3))  # ASL's default
            for _, state in states(definition)
            for retrier in state.get("Retry", [])
            if error in retrier.get("ErrorEquals", [])
        ),
        default=0,
    )


def validator_missing_is_fatal(environ: Mapping[str, str] = os.environ) -> bool:
    """In CI (`CI=true`) a missing validator is a failure, never a skip."""
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def validate(definition: Path, validator: Path = ASL_VALIDATOR) -> subprocess.CompletedProcess[str]:
    """Run asl-validator on one rendered definition file (path expressions and ARNs checked)."""
    if not validator.exists():
        raise FileNotFoundError(f"{validator} is missing: run `npm ci` (or `make synth`) first")
    return subprocess.run(
        [str(validator), "--json-path", str(definition)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def validate_rendered(
    source: Path = ASL_FILE, values: Mapping[str, str] = EXAMPLE_VALUES
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="asl-") as tmp:
        rendered = Path(tmp) / source.name
        rendered.write_text(render(source.read_text(), values))
        return validate(rendered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("definition", nargs="?", type=Path, default=ASL_FILE)
    args = parser.parse_args(argv)
    try:
        result = validate_rendered(args.definition)
    except (FileNotFoundError, ValueError) as error:
        print(f"asl-validator: {error}", file=sys.stderr)
        return 1
    print(f"asl-validator on {args.definition} rendered with {', '.join(sorted(EXAMPLE_VALUES))}:")
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
