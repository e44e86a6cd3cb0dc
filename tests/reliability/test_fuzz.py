"""The API fuzzed from its own OpenAPI document with schemathesis, against `orders serve`.

For every route, SCALE.fuzz_examples requests valid by the document (positive) and as many that
break it (negative: wrong types, missing or extra fields, out-of-range values, odd bytes), all
with a valid operator token, so that they reach the functions rather than stop at the gateway
(tokens are test_authorization.py's business).

Two rules, both enforced: no 5xx (the 503 that `?min_version` answers, with Retry-After, when a
view is behind is by design and counted apart), and every answer matches the document (its
status declared, its media type declared, its body valid against the declared schema: schemathesis's
own conformance checks) and the README's contract (problem+json whose `status` is the HTTP status).
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
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
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
    label = operation.label
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
        response = case.call(session=session, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        status = int(response.status_code)
        findings.requests[label] += 1
        findings.statuses[status] += 1
        if status >= 500:
            if (
                status == 503
                and _header(response.headers, "Retry-After")
                and b"not caught up" in response.content
            ):
                findings.not_caught_up += 1
            else:
                findings.server_errors.append(f"{status} {mode.value}: {case.as_curl_command()}")
            return
        violation = _contract_violation(status, response.headers, response.content)
        if violation:
            findings.contract.append(f"{label} {mode.value}: {violation}")
        for name, check in CONFORMANCE_CHECKS.items():
            try:
                case.validate_response(response, checks=[check])
            except FailureGroup as failure:
                findings.conformance.append(f"{label} {mode.value}: {name}: {failure.exceptions[0].title}")

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
