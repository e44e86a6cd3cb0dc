"""The HTTP API: one route per entry of orders_core.api_routes.ROUTES, every one behind the JWT
authorizer, CORS for the web clients, throttling and JSON access logs on the stage."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_authorizers import HttpUserPoolAuthorizer
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra.auth import Auth
from infra.settings import Settings
from orders_core.api_routes import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    ROUTES,
    FunctionName,
    Route,
)

# One JSON object per request; HTTP API context variables only.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sub": "$context.authorizer.claims.sub",
}


class HttpApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        auth: Auth,
        functions: Mapping[FunctionName, lambda_.IFunction],
        routes: Sequence[Route] = ROUTES,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=f"orders-{settings.stage}",  # API names need not be unique; this one says whose
            description=f"Orders API ({settings.stage})",
            create_default_stage=False,  # the stage below carries throttling and access logs
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(settings.cors_allowed_origins),
                allow_headers=list(CORS_ALLOW_HEADERS),
                allow_methods=[apigwv2.CorsHttpMethod[method] for method in CORS_ALLOW_METHODS],
                expose_headers=list(CORS_EXPOSE_HEADERS),
                max_age=Duration.seconds(CORS_MAX_AGE_SECONDS),
                allow_credentials=False,  # bearer tokens, no cookies
            ),
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=settings.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.throttling_rate_limit, burst_limit=settings.throttling_burst_limit
            ),
            access_log_settings=_AccessLogSettings(self.access_logs),
        )
        # Tokens of every app client (web, mobile, CLI) are accepted: the audience is their list.
        self.authorizer = HttpUserPoolAuthorizer(
            "Cognito", auth.user_pool, user_pool_clients=list(auth.clients)
        )
        integrations = {
            name: HttpLambdaIntegration(f"{name}-integration", function)
            for name, function in functions.items()
        }
        for route in routes:
            if route.function not in integrations:
                raise ValueError(
                    f"route {route.route_key} is served by {route.function!r}, which this stack does not "
                    f"deploy (deployed: {', '.join(sorted(integrations))}); compose that function's "
                    "construct in infra/stack.py and pass it to HttpApi"
                )
            self.api.add_routes(
                path=route.path,
                methods=[apigwv2.HttpMethod[route.method]],
                integration=integrations[route.function],
                authorizer=self.authorizer,
            )

    @property
    def url(self) -> str:
        url = self.stage.url
        assert url is not None
        return url


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT))
