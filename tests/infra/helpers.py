"""The synthesized stack, and reading IAM policies and references out of its template."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.stack import OrdersStack


@dataclass(frozen=True)
class Synthesized:
    app: App
    stack: OrdersStack
    outdir: Path
    template: Template
    json: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.json["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def of_http_api(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """API Gateway v2 resources of the HTTP API only (the live updates' WebSocket API has its own)."""
        (http_api,) = [
            k
            for k, v in self.of_type("AWS::ApiGatewayV2::Api").items()
            if v["Properties"]["ProtocolType"] == "HTTP"
        ]
        if resource_type == "AWS::ApiGatewayV2::Api":
            return {http_api: self.resources[http_api]}
        return {
            k: v
            for k, v in self.of_type(resource_type).items()
            if v["Properties"].get("ApiId") == {"Ref": http_api}
        }

    def logical_id(self, construct: Any) -> str:
        """Logical id of an L2 construct's main resource (or of a CfnResource)."""
        element = getattr(construct.node, "default_child", None) or construct
        logical_id = self.stack.resolve(element.logical_id)
        assert isinstance(logical_id, str)
        return logical_id

    def asset_dir(self, logical_id: str) -> Path:
        """Where the synthesized asset of a function or layer was staged (what gets zipped)."""
        path = self.resources[logical_id]["Metadata"]["aws:asset:path"]
        return self.outdir / path


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: frozenset[str]
    resources: tuple[Any, ...]
    condition: Any = None

    def targets(self) -> set[tuple[str, str]]:
        """(logical id, attribute) of every resource the statement names; ("*", "") for '*'."""
        found: set[tuple[str, str]] = set()
        for resource in self.resources:
            found |= references(resource) or ({("*", "")} if resource == "*" else set())
        return found

    def names(self, logical_id: str) -> bool:
        return any(target == logical_id for target, _ in self.targets())


def references(value: Any) -> set[tuple[str, str]]:
    """Every Ref / Fn::GetAtt inside an intrinsic-function structure."""
    found: set[tuple[str, str]] = set()
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            found.add((value["Ref"], "Ref"))
        elif set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            found.add((logical_id, attribute))
        else:
            for inner in value.values():
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(synthesized: Synthesized, role_logical_id: str) -> list[Statement]:
    """Every statement of every policy attached to the role (inline or AWS::IAM::Policy)."""
    role = synthesized.resources[role_logical_id]
    assert "ManagedPolicyArns" not in role["Properties"], "no managed policies on function roles"
    documents = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
            documents.append(policy["Properties"]["PolicyDocument"])
    return [
        Statement(
            effect=s["Effect"],
            actions=frozenset(as_list(s["Action"])),
            resources=tuple(as_list(s["Resource"])),
            condition=s.get("Condition"),
        )
        for document in documents
        for s in document["Statement"]
    ]


def actions_on(statements: list[Statement], logical_id: str) -> set[str]:
    return {a for s in statements if s.names(logical_id) for a in s.actions}


def all_actions(statements: list[Statement]) -> Iterator[str]:
    for statement in statements:
        assert statement.effect == "Allow"
        yield from statement.actions


def resource_text(value: Any) -> str:
    """A resource as one string, intrinsics shown as cdk-nag shows them: `<Logical.Attr>/rebuilds/*`."""
    if isinstance(value, str):
        return value
    if set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resource_text(part) for part in parts)
    raise ValueError(f"cannot render {value!r}")


def permissions(statements: list[Statement], *, prefix: str = "") -> set[tuple[str, str]]:
    """(action, resource) for every allowed action whose name starts with `prefix`."""
    return {
        (action, resource_text(resource))
        for statement in statements
        if statement.effect == "Allow"
        for action in statement.actions
        if action.startswith(prefix)
        for resource in statement.resources
    }
