"""The HTTP API: routes from orders_core.api_routes, all behind the Cognito JWT authorizer."""

from __future__ import annotations

from typing import Any

from orders_core.api_routes import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    ROUTES,
)
from orders_core.web import OPERATORS_GROUP
from tests.infra.helpers import Synthesized, references


def _only(synthesized: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    http_api = resource_type.startswith("AWS::ApiGatewayV2::")
    found = synthesized.of_http_api(resource_type) if http_api else synthesized.of_type(resource_type)
    assert len(found) == 1, found.keys()
    return next(iter(found.items()))


def test_one_route_per_entry_of_routes(synthesized: Synthesized) -> None:
    routes = synthesized.of_http_api("AWS::ApiGatewayV2::Route").values()
    keys = sorted(route["Properties"]["RouteKey"] for route in routes)
    assert keys == sorted(route.route_key for route in ROUTES)


def test_every_route_has_the_jwt_authorizer(synthesized: Synthesized) -> None:
    authorizer_id, _ = _only(synthesized, "AWS::ApiGatewayV2::Authorizer")
    for route in synthesized.of_http_api("AWS::ApiGatewayV2::Route").values():
        assert route["Properties"]["AuthorizationType"] == "JWT", route["Properties"]["RouteKey"]
        assert route["Properties"]["AuthorizerId"] == {"Ref": authorizer_id}


def test_routes_reach_the_function_the_route_table_names(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    function_ids = {
        "command_api": synthesized.logical_id(stack.command_api.function),
        "query_api": synthesized.logical_id(stack.query_api.function),
        "admin_api": synthesized.logical_id(stack.admin_api.function),
    }
    integrations = synthesized.of_http_api("AWS::ApiGatewayV2::Integration")
    by_key = {
        r["Properties"]["RouteKey"]: r for r in synthesized.of_http_api("AWS::ApiGatewayV2::Route").values()
    }
    for route in ROUTES:
        ((integration_id, _),) = references(by_key[route.route_key]["Properties"]["Target"])
        target = integrations[integration_id]["Properties"]
        assert target["IntegrationType"] == "AWS_PROXY"
        assert target["PayloadFormatVersion"] == "2.0"
        assert {i for i, _ in references(target["IntegrationUri"])} == {function_ids[route.function]}


def test_authorizer_trusts_the_user_pool_and_its_clients(synthesized: Synthesized) -> None:
    _, authorizer = _only(synthesized, "AWS::ApiGatewayV2::Authorizer")
    pool_id = synthesized.logical_id(synthesized.stack.auth.user_pool)
    client_ids = [synthesized.logical_id(client) for client in synthesized.stack.auth.clients]
    properties = authorizer["Properties"]
    assert properties["AuthorizerType"] == "JWT"
    assert properties["IdentitySource"] == ["$request.header.Authorization"]
    assert properties["JwtConfiguration"]["Audience"] == [{"Ref": client_id} for client_id in client_ids]
    assert (pool_id, "Ref") in references(properties["JwtConfiguration"]["Issuer"])


def test_cors_from_context_and_route_table(synthesized: Synthesized, context: dict[str, Any]) -> None:
    _, api = _only(synthesized, "AWS::ApiGatewayV2::Api")
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == context["corsAllowedOrigins"]
    assert cors["AllowHeaders"] == list(CORS_ALLOW_HEADERS)
    assert cors["AllowMethods"] == list(CORS_ALLOW_METHODS)
    assert cors["ExposeHeaders"] == list(CORS_EXPOSE_HEADERS)
    assert cors["MaxAge"] == CORS_MAX_AGE_SECONDS
    assert cors["AllowCredentials"] is False


def test_stage_throttles_and_logs_access(synthesized: Synthesized, context: dict[str, Any]) -> None:
    _, stage = _only(synthesized, "AWS::ApiGatewayV2::Stage")
    properties = stage["Properties"]
    assert properties["StageName"] == "$default"
    assert properties["AutoDeploy"] is True
    assert properties["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": context["apiThrottlingBurstLimit"],
        "ThrottlingRateLimit": context["apiThrottlingRateLimit"],
    }
    assert "$context.requestId" in properties["AccessLogSettings"]["Format"]
    ((log_group, _),) = references(properties["AccessLogSettings"]["DestinationArn"])
    assert synthesized.resources[log_group]["Properties"]["RetentionInDays"] == context["logRetentionDays"]


def test_operators_group_exists(synthesized: Synthesized) -> None:
    _, group = _only(synthesized, "AWS::Cognito::UserPoolGroup")
    assert group["Properties"]["GroupName"] == OPERATORS_GROUP


def test_user_pool_is_kept_and_has_a_strong_password_policy(synthesized: Synthesized) -> None:
    _, pool = _only(synthesized, "AWS::Cognito::UserPool")
    assert pool["DeletionPolicy"] == "Retain"
    policy = pool["Properties"]["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(
        policy[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols")
    )


def test_outputs(synthesized: Synthesized) -> None:
    assert {
        "ApiUrl",
        "UserPoolId",
        "UserPoolClientId",
        "UserPoolWebClientId",
        "UserPoolMobileClientId",
        "UserPoolCliClientId",
        "SignInUrl",
        "EventsTableName",
        "OnFailureQueueUrl",
        "EventBusName",
        "EventBusArn",
        "EventArchiveArn",
        "IntegrationOnFailureQueueUrl",
        "RebuildStateMachineArn",
        "RebuildExportBucketName",
        "LiveUpdatesUrl",
    } == set(synthesized.json["Outputs"])
