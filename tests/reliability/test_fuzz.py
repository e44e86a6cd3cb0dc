"""The API fuzzed from its own OpenAPI document with schemathesis, against `orders serve`.

Two phases, all requests with a valid operator token, so that they reach the functions rather than
stop at the gateway (tokens are test_authorization.py's business):

- For every route, SCALE.fuzz_examples requests valid by the document (positive) and as many that
  break it (negative: wrong types, missing or extra fields, out-of-range values, odd bytes).
- Stateful: SCALE.stateful_scenarios chains of valid requests that follow the document's links
  (place an order, then add to it, ship it, cancel it, read it, its events, the next page, ...),
  with values taken from the answers before them, as a client generated from the document would.

Rules, all enforced: no 5xx (the 503 that `?min_version` answers, with Retry-After, when a view is
behind is by design and counted apart); every answer matches the document (its status declared, its
media type declared, its body valid against the declared schema: schemathesis's own conformance
checks) and the README's contract (problem+json whose `status` is the HTTP status); and a request
valid by the document is never refused for its form. It may meet a business rule (404 unknown, 409
conflict, 412 stale If-Match), and a 422 for an Idempotency-Key reused with another request (a
rule about earlier requests, which a document cannot state) is counted apart; any other 4xx is a
rule the document fails to state.

Two rules cannot be stated by any schema, and the document says them in words; requests valid by
the document keep them, as a client that reads the document would:
- a `cursor` must be one the API handed out: valid requests carry one only when a link took it from
  the page before (`NextPage`); generated cursors are left out (the negative phase keeps them: 422);
- an integer is written without a fraction: JSON Schema's integer 2 may also be written 2.0, which
  schemathesis sends on purpose and the API refuses (test_bad_input.py pins that); valid requests
  write it 2. How many were rewritten is a figure.

Not checked: that a resource is readable right after its creation (schemathesis's
`ensure_resource_availability`): the read side follows the events within about a second, by design,
and says so (`?min_version`, 503 with Retry-After until the view has caught up).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.engine.errors import is_inconsistent_replay
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders_core.api_routes import ROUTES
from tests.reliability import figures
from tests.reliability.api_client import call
from tests.reliability.cluster import Cluster
from tests.reliability.scale import SCALE

SECTION = "4. Bad input (fuzzed from the OpenAPI document)"
SEED = int(os.environ.get("RELIABILITY_SEED", "20261126"))
DOCUMENTED_STATUSES = {200, 201, 202, 401, 403, 404, 409, 412, 413, 415, 422}
# What a request valid by the document may still be told: unknown (or not the caller's), a business
# rule or a concurrent change, a stale If-Match.
BUSINESS_REFUSALS = {404, 409, 412}
KEY_REUSED = "Idempotency-Key reused"
MAX_STATEFUL_RUNS = 20
CONFORMANCE_CHECKS: dict[str, Callable[..., Any]] = {
    "response schema": response_schema_conformance,
    "status code": status_code_conformance,
    "content type": content_type_conformance,
}


@dataclass
class Findings:
    requests: Counter[str] = field(default_factory=Counter)  # by route
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    not_caught_up: int = 0  # 503 + Retry-After for ?min_version: documented, not an error
    contract: list[str] = field(default_factory=list)
    conformance: list[str] = field(default_factory=list)
    unsatisfiable: list[str] = field(default_factory=list)
    refused_valid: list[str] = field(default_factory=list)  # valid by the document, refused for its form
    key_reused: int = 0  # 422: an Idempotency-Key reused with another request (a business rule)
    whole_floats_rewritten: int = 0  # 2.0 sent as 2 in valid requests (see the module docstring)


@dataclass
class Walk:
    """What the stateful phase did: steps by how they started, links followed."""

    scenarios: int = 0
    steps: int = 0
    started: Counter[str] = field(default_factory=Counter)  # steps with freshly generated input
    followed: Counter[str] = field(default_factory=Counter)  # steps that took values through a link
    restarts: int = 0  # runs Hypothesis ended as Flaky (see _walk)


def _header(headers: dict[str, list[str]], name: str) -> str:
    """schemathesis keeps headers as lower-case names with lists of values."""
    values = headers.get(name.lower()) or [""]
    return values[0]


def _contract_violation(status: int, headers: dict[str, list[str]], raw: bytes) -> str | None:
    """What the README promises of every answer; None when the answer keeps it."""
    media_type = _header(headers, "Content-Type").split(";")[0].strip()
    if status not in DOCUMENTED_STATUSES:
        return f"undocumented status {status}"
    try:
        body = json.loads(raw)
    except ValueError:
        return f"{status} with a body that is not JSON"
    if not isinstance(body, dict):
        return f"{status} with a JSON body that is not an object"
    if status < 300:
        return None if media_type == "application/json" else f"{status} as {media_type}"
    if media_type == "application/problem+json":
        if body.get("status") != status or not body.get("title") or not isinstance(body.get("detail"), str):
            return f"{status} problem without status/title/detail: {body}"
        return None
    if media_type == "application/json" and status in (401, 404, 413) and set(body) == {"message"}:
        return None  # answered by the gateway itself
    return f"{status} as {media_type}: {body}"


def _refusal_of_valid(status: int, raw: bytes) -> str | None:
    """Why an answer refuses a request the document calls valid; None when it does not."""
    if status < 400 or status in BUSINESS_REFUSALS:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    detail = body.get("detail") or body.get("message") if isinstance(body, dict) else None
    return f"{status}: {detail or raw[:200]!r}"


def _is_key_reused(status: int, raw: bytes) -> bool:
    if status != 422:
        return False
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("title") == KEY_REUSED


def _without_unissued_cursor(case: Any, issued: bool = False) -> None:
    """A generated cursor is none the API handed out: valid requests carry only linked ones."""
    if not issued and isinstance(case.query, dict):
        case.query.pop("cursor", None)


def _as_written(value: Any) -> tuple[Any, int]:
    """`value` with every whole float (2.0) written as an integer (2), and how many there were.
    The request bodies have no `number` field: a float in a valid body is an integer field's."""
    if isinstance(value, float) and value.is_integer():
        return int(value), 1
    if isinstance(value, dict):
        pairs = {key: _as_written(inner) for key, inner in value.items()}
        return {key: inner for key, (inner, _) in pairs.items()}, sum(n for _, n in pairs.values())
    if isinstance(value, list):
        items = [_as_written(inner) for inner in value]
        return [inner for inner, _ in items], sum(n for _, n in items)
    return value, 0


def _as_a_client_writes_it(case: Any, findings: Findings, *, cursor_issued: bool = False) -> None:
    """A valid request as a client that reads the document sends it (the module docstring's two rules)."""
    _without_unissued_cursor(case, cursor_issued)
    case.body, rewritten = _as_written(case.body)
    findings.whole_floats_rewritten += rewritten


def _judge(case: Any, response: Any, mode: GenerationMode, findings: Findings, phase: str) -> None:
    """Every rule of the module docstring, on one answer."""
    label = case.operation.label
    status = int(response.status_code)
    findings.requests[label] += 1
    findings.statuses[status] += 1
    if status >= 500:
        retry_after = _header(response.headers, "Retry-After")
        if status == 503 and retry_after and b"not caught up" in response.content:
            findings.not_caught_up += 1
        else:
            findings.server_errors.append(f"{status} {phase} {mode.value}: {case.as_curl_command()}")
        return
    violation = _contract_violation(status, response.headers, response.content)
    if violation:
        findings.contract.append(f"{label} {phase} {mode.value}: {violation}")
    for name, check in CONFORMANCE_CHECKS.items():
        try:
            case.validate_response(response, checks=[check])
        except FailureGroup as failure:
            title = failure.exceptions[0].title
            findings.conformance.append(f"{label} {phase} {mode.value}: {name}: {title}")
    if mode is GenerationMode.POSITIVE:
        if _is_key_reused(status, response.content):
            findings.key_reused += 1
            return
        refusal = _refusal_of_valid(status, response.content)
        if refusal:
            findings.refused_valid.append(f"{label} {phase}: {refusal}\n    {case.as_curl_command()}")


def _fuzz(cluster: Cluster, findings: Findings) -> None:
    url = cluster.urls[0]
    token = cluster.token("fuzzing-operator", operator=True)
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the document must load whole"
    assert len(operations) == len(ROUTES), [op.label for op in operations]

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_one(operation, mode, token, findings)
            except Unsatisfiable:
                # Nothing can violate the document here (say, a route without parameters or body)
                findings.unsatisfiable.append(f"{operation.label} ({mode.value})")


def _fuzz_one(operation: Any, mode: GenerationMode, token: str, findings: Findings) -> None:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between the fuzzer and 127.0.0.1

    @hypothesis.seed(SEED)
    @settings(
        max_examples=SCALE.fuzz_examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            _as_a_client_writes_it(case, findings)
        response = case.call(session=session, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        _judge(case, response, mode, findings, "fuzzing")

    try:
        one()
    finally:
        session.close()


def test_fuzzed_requests_never_get_a_5xx_and_keep_the_documented_contract(api_server: Cluster) -> None:
    findings = Findings()
    started = time.monotonic()
    _fuzz(api_server, findings)
    seconds = time.monotonic() - started

    total = sum(findings.requests.values())
    per_route = sorted(findings.requests.values())
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(findings.statuses.items()))
    record = figures.record
    record(SECTION, "routes fuzzed", len(findings.requests))
    record(SECTION, "requests (positive + negative)", total)
    record(
        SECTION,
        "requests per route with inputs (fewest / most)",
        f"{min(n for n in per_route if n > 1)} / {per_route[-1]}",
    )
    record(SECTION, "answers by status", statuses)
    record(SECTION, "5xx", len(findings.server_errors))
    record(SECTION, "503 'view not caught up' (by design, Retry-After)", findings.not_caught_up)
    record(
        SECTION,
        "answers not as the document declares (status, media type, schema)",
        len(findings.conformance),
    )
    record(SECTION, "answers breaking the README's contract", len(findings.contract))
    record(
        SECTION, "valid requests refused for their form (positive data rejected)", len(findings.refused_valid)
    )
    record(SECTION, "valid requests refused: Idempotency-Key reused (a business rule)", findings.key_reused)
    record(SECTION, "whole numbers generated as 2.0, sent as 2", findings.whole_floats_rewritten)
    record(SECTION, "seed (RELIABILITY_SEED)", str(SEED))
    record(SECTION, "negative generation impossible (nothing to violate)", len(findings.unsatisfiable))
    record(SECTION, "time", seconds, "s")

    assert len(findings.requests) == len(ROUTES)
    # Routes without parameters or body have one possible request; every other gets many
    with_inputs = [n for n in findings.requests.values() if n > 1]
    assert len(with_inputs) >= 14 and min(with_inputs) >= SCALE.fuzz_examples // 2, findings.requests
    assert not findings.server_errors, "\n".join(findings.server_errors[:10])
    assert not findings.contract, "\n".join(findings.contract[:10])
    assert not findings.conformance, "\n".join(findings.conformance[:10])
    assert not findings.refused_valid, "\n".join(findings.refused_valid[:10])


def _walk(cluster: Cluster, findings: Findings, walk: Walk) -> None:
    """Scenarios of valid requests chained by the document's links (and by nothing else: the links
    schemathesis would infer from names are turned off, so that the document's own are tested)."""
    config = schemathesis.Config.from_dict(
        {
            "generation": {"with-security-parameters": False, "mode": "positive"},
            "phases": {"stateful": {"inference": {"algorithms": []}}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{cluster.urls[0]}/openapi.json", config=config)
    headers = {"Authorization": f"Bearer {cluster.token('stateful-operator', operator=True)}"}
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between the fuzzer and 127.0.0.1

    class Scenario(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            walk.scenarios += 1

        def step(self, input: StepInput) -> StepOutput:
            linked = input.transition is not None and input.is_applied
            issued = (ParameterLocation.QUERY, "cursor") in input.applied_parameters
            _as_a_client_writes_it(input.case, findings, cursor_issued=issued)
            walk.steps += 1
            if linked:
                assert input.transition is not None
                walk.followed[input.transition.id] += 1
            else:
                walk.started[input.case.operation.label] += 1
            return super().step(input)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"session": session, "headers": headers, "timeout": 60}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            _judge(case, response, GenerationMode.POSITIVE, findings, "stateful")

    try:
        # Which steps can follow depends on the API's answers, so Hypothesis may find that a choice it
        # recorded no longer exists, and stop with Flaky. Schemathesis's own runner ends the run there
        # and starts another; so does this loop, with the next seed, until the scenarios are done.
        for attempt in range(MAX_STATEFUL_RUNS):
            remaining = SCALE.stateful_scenarios - walk.scenarios
            if remaining <= 0:
                break
            try:
                run_state_machine_as_test(
                    hypothesis.seed(SEED + attempt)(Scenario),
                    settings=settings(
                        max_examples=remaining,
                        stateful_step_count=SCALE.stateful_steps,
                        deadline=None,
                        database=None,
                        phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck),
                    ),
                )
            except Flaky:
                walk.restarts += 1
            except AssertionError as exc:
                if not is_inconsistent_replay(exc):
                    raise
                walk.restarts += 1
    finally:
        session.close()


def test_stateful_scenarios_follow_the_links_and_keep_every_rule(api_server: Cluster) -> None:
    findings, walk = Findings(), Walk()
    started = time.monotonic()
    _walk(api_server, findings, walk)
    seconds = time.monotonic() - started

    document = call(api_server.urls[0], "GET", "/openapi.json").json
    declared = {
        f"{method.upper()} {path} -> [{status}] {name}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        for name in answer.get("links", {})
    }
    followed = {link.rsplit(" -> ", 1)[0] for link in walk.followed}
    place_order = {link for link in declared if link.startswith("POST /orders -> ")}
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(findings.statuses.items()))
    record = figures.record
    record(SECTION, "stateful: scenarios / requests", f"{walk.scenarios} / {walk.steps}")
    record(SECTION, "stateful: requests that took values through a link", sum(walk.followed.values()))
    record(SECTION, "stateful: links followed / declared", f"{len(followed & declared)} / {len(declared)}")
    from_place_order = f"{len(followed & place_order)} / {len(place_order)}"
    record(SECTION, "stateful: links of POST /orders followed / declared", from_place_order)
    record(SECTION, "stateful: answers by status", statuses)
    record(
        SECTION,
        "stateful: failures (5xx, undeclared answers, contract, valid requests refused)",
        len(findings.server_errors + findings.conformance + findings.contract + findings.refused_valid),
    )
    record(SECTION, "stateful: Idempotency-Key reused (a business rule)", findings.key_reused)
    record(SECTION, "stateful: whole numbers generated as 2.0, sent as 2", findings.whole_floats_rewritten)
    record(SECTION, "stateful: runs restarted after Hypothesis saw the API change under it", walk.restarts)
    record(SECTION, "stateful: time", seconds, "s")

    assert walk.scenarios >= SCALE.stateful_scenarios, walk
    assert followed <= declared, followed - declared  # the document's links, and no inferred ones
    # The chains are real: requests took the order id (and its ETag) from the order placed before
    assert followed & place_order, walk.followed
    assert findings.statuses[200] + findings.statuses[201] > walk.steps // 4, findings.statuses
    assert not findings.server_errors, "\n".join(findings.server_errors[:10])
    assert not findings.contract, "\n".join(findings.contract[:10])
    assert not findings.conformance, "\n".join(findings.conformance[:10])
    assert not findings.refused_valid, "\n".join(findings.refused_valid[:10])


def _declared(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return dict(document["paths"][path][method]["responses"])


def _is_object_schema(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema.get("type") == "object"


def test_the_openapi_document_describes_the_answers(api_server: Cluster) -> None:
    """Success as a JSON object with its own status, errors as problem+json: what the fuzzer checks."""
    document = call(api_server.urls[0], "GET", "/openapi.json").json
    success = {("/orders", "post"): "201", ("/admin/rebuilds", "post"): "202"}
    missing: list[str] = []
    for path, methods in document["paths"].items():
        for method in methods:
            declared = _declared(document, path, method)
            code = success.get((path, method), "200")
            content = declared.get(code, {}).get("content", {}).get("application/json", {})
            if not _is_object_schema(document, content.get("schema", {})):
                missing.append(f"{method.upper()} {path}: {code} with a JSON object")
            for error in ("401", "422"):
                if "application/problem+json" not in declared.get(error, {}).get("content", {}):
                    missing.append(f"{method.upper()} {path}: {error} as application/problem+json")
    assert not missing, "\n".join(missing)


def test_a_body_that_is_not_utf8_gets_a_4xx_on_every_route_with_a_body(api_server: Cluster) -> None:
    # The fuzzer's first finding: these crashed the functions (500) until 41a18cb
    token = api_server.token("fuzzing-operator", operator=True)
    routes = [
        ("POST", "/orders"),
        ("POST", "/orders/00000000-0000-4000-8000-000000000000/items"),
        ("POST", "/inventory/sku-1/stock"),
        ("PUT", "/inventory/sku-1/reorder-level"),
        ("POST", "/admin/rebuilds"),
        ("POST", "/admin/rebuilds/release"),
    ]
    answers = {
        path: call(api_server.urls[0], method, path, raw=b"\xc3\x28", token=token).status
        for method, path in routes
    }
    assert set(answers.values()) == {422}, answers
