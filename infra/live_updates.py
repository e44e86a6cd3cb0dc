"""Live updates (ADR 14): the WebSocket API, its $connect authorizer, the connections table, and
the notifier fed by the order view's and inventory's own streams.

- **WebSocket API** with a stage (`live`): $connect behind a Lambda REQUEST authorizer (WebSocket
  APIs take no JWT authorizer) whose identity source is `route.request.querystring.token`
  (browsers cannot set headers on a WebSocket; a missing token is answered 401 by API Gateway
  without invoking it); $connect, $disconnect and $default go to one small function (live_api).
- **Connections table** (`tables.LIVE_CONNECTIONS`): TTL on `expires_at` (connect time + 2 h,
  API Gateway's maximum connection duration). Not derived, but worthless after 2 hours: no PITR,
  deleted with the stack.
- **Notifier** (live_notifier): one event source mapping on each of the two read-model tables'
  streams (NEW_AND_OLD_IMAGES), the only reader of each; the events table keeps its two readers
  (projector, integration publisher). Records are filtered to view and summary rows. Pushes go to
  this stage's @connections API only (`execute-api:ManageConnections` on
  `<api>/<stage>/POST/@connections/*`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_authorizers import WebSocketLambdaAuthorizer
from aws_cdk.aws_apigatewayv2_integrations import WebSocketLambdaIntegration
from constructs import Construct

from infra import auth_layer_build
from infra.auth import Auth
from infra.dynamodb import grant, table_from_spec
from infra.lambda_function import ARCHITECTURE, RUNTIME, PythonFunction
from infra.layers import Layers
from infra.nag import XRAY_REASON, acknowledge
from infra.projections import LIST_STREAMS_REASON, on_failure_queue
from infra.settings import Settings
from orders_core.projections.customer_orders import VIEW
from orders_core.projections.deltas import SHARD_SK
from orders_core.tables import CUSTOMER_ORDERS, INVENTORY, LIVE_CONNECTIONS, PROJECTIONS_CONTROL, TableSpec

STAGE_NAME = "live"
TOKEN_SOURCE = "route.request.querystring.token"

# The connections table through orders_core.live.dynamodb: add/remove = BatchWriteItem (remove
# reads the connection's own item first: BatchGetItem); lookups = Query; alert markers = BatchGetItem
# + conditional PutItem. No GetItem, no DeleteItem (ADR 6).
ROUTE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")
NOTIFIER_CONNECTION_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
)
# A product's summary (Inventory.get: BatchGetItem of its shards) and the active generation of each
# read model (ControlStore.control: BatchGetItem). The order view comes in the stream record.
READ_ACTIONS = ("dynamodb:BatchGetItem",)

# The notifier's mappings. Settings as the projector's (infra/projections.py says why, with the
# documented limits) except where live updates differ:
# - StartingPosition LATEST: nobody was connected to hear older changes.
# - No batching window: a push should follow its view at once (the projector's 1 s window has
#   already batched the writes).
# - MaximumRetryAttempts 10 and MaximumRecordAgeInSeconds 3,600 (documented ranges: 0-10,000 and
#   60-604,800 or -1): a live update an hour late is noise, and a failing push must not hold the
#   shard's later updates for the 24 h a record lives. What is given up goes to the on-failure
#   queue; clients recover with one GET after reconnecting.
BATCH_SIZE = 100
RETRY_ATTEMPTS = 10
MAX_RECORD_AGE = Duration.hours(1)
TIMEOUT = Duration.seconds(30)

# One JSON object per connection event; WebSocket API context variables only.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "routeKey": "$context.routeKey",
    "eventType": "$context.eventType",
    "connectionId": "$context.connectionId",
    "status": "$context.status",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sub": "$context.authorizer.principalId",
}


def stream_filter(sort_key: str) -> dict[str, object]:
    """Only writes of the rows the notifier reads (view or summary rows), not deletions: a
    retired generation's, or a source row's. The notifier skips them too (the local run does
    not filter): the filter only saves invocations."""
    return {
        "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
        "dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.is_equal(sort_key)}}},
    }


class LiveUpdates(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: Layers,
        auth: Auth,
        read_tables: Mapping[TableSpec, dynamodb.ITable],
        control: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.connections = table_from_spec(
            self,
            "Connections",
            LIVE_CONNECTIONS,
            removal_policy=RemovalPolicy.DESTROY,
            point_in_time_recovery=False,
        )
        acknowledge(
            self.connections,
            "AwsSolutions-DDB3",
            "Live connections last at most 2 hours (API Gateway's limit) and the alert markers only say "
            "whether an alert was raised: a restore would bring back connections that are gone.",
        )

        # -- $connect authorizer ------------------------------------------------------------------
        if not auth_layer_build.is_current():
            raise RuntimeError(
                f"the authorizer's layer in {auth_layer_build.AUTH_LAYER_DIR} is missing or stale: run "
                "`make layers` (or `python -m infra.auth_layer_build`) first"
            )
        self.auth_layer = lambda_.LayerVersion(
            self,
            "TokenVerification",
            code=lambda_.Code.from_asset(str(auth_layer_build.AUTH_LAYER_DIR), exclude=["**/.*"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=", ".join(auth_layer_build.requirements()),
        )
        issuer = f"https://cognito-idp.{stack.region}.{stack.url_suffix}/{auth.user_pool.user_pool_id}"
        self.authorizer_handler = PythonFunction(
            self,
            "Authorizer",
            package="live_authorizer",
            description="Live updates: $connect authorizer (Cognito access token in ?token=)",
            layers=[*layers.all, self.auth_layer],
            environment={
                "LIVE_TOKEN_ISSUER": issuer,
                "LIVE_TOKEN_CLIENT_IDS": ",".join(c.user_pool_client_id for c in auth.clients),
            },
            log_retention=settings.log_retention,
            timeout=Duration.seconds(10),
        )
        self.authorizer = WebSocketLambdaAuthorizer(
            "Token", self.authorizer_handler.function, identity_source=[TOKEN_SOURCE]
        )

        # -- routes and the API ---------------------------------------------------------------------
        self.routes_handler = PythonFunction(
            self,
            "Routes",
            package="live_api",
            description="Live updates: $connect, $disconnect, $default",
            layers=layers.all,
            environment={LIVE_CONNECTIONS.env_var: self.connections.table_name},
            log_retention=settings.log_retention,
            timeout=Duration.seconds(10),
        )
        grant(self.routes_handler.role, self.connections, LIVE_CONNECTIONS, ROUTE_ACTIONS)
        routes = self.routes_handler.function
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=f"orders-{settings.stage}-live",
            description=f"Orders live updates ({settings.stage})",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=WebSocketLambdaIntegration("ConnectIntegration", routes),
                authorizer=self.authorizer,
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=WebSocketLambdaIntegration("DisconnectIntegration", routes)
            ),
            default_route_options=apigwv2.WebSocketRouteOptions(
                integration=WebSocketLambdaIntegration("DefaultIntegration", routes)
            ),
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "WebSocket APIs authorize a connection once, on $connect (the only route an authorizer can "
            "be attached to); $disconnect and $default belong to a connection that was authorized.",
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=settings.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.throttling_rate_limit, burst_limit=settings.throttling_burst_limit
            ),
            access_log_settings=_AccessLogSettings(self.access_logs),
        )

        # -- the notifier ---------------------------------------------------------------------------
        self.dead_letters = on_failure_queue(self, "the live notifier's")
        followed = {CUSTOMER_ORDERS: VIEW, INVENTORY: SHARD_SK}
        self.notifier_handler = PythonFunction(
            self,
            "Notifier",
            package="live_notifier",
            description="Live updates: order view and inventory streams -> pushes to connections",
            layers=layers.all,
            environment={
                **{spec.env_var: read_tables[spec].table_name for spec in followed},
                PROJECTIONS_CONTROL.env_var: control.table_name,
                LIVE_CONNECTIONS.env_var: self.connections.table_name,
                "LIVE_CONNECTIONS_ENDPOINT": self.callback_url,
            },
            log_retention=settings.log_retention,
            timeout=TIMEOUT,
            any_resource_reason=f"{XRAY_REASON} {LIST_STREAMS_REASON}",
        )
        self.notifier = self.notifier_handler.function
        role = self.notifier_handler.role
        grant(role, self.connections, LIVE_CONNECTIONS, NOTIFIER_CONNECTION_ACTIONS)
        grant(role, read_tables[INVENTORY], INVENTORY, READ_ACTIONS)
        grant(role, control, PROJECTIONS_CONTROL, READ_ACTIONS)
        # This stage's @connections API, POST (PostToConnection) only.
        self.manage_connections = stack.format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{STAGE_NAME}/POST/@connections/*"
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["execute-api:ManageConnections"], resources=[self.manage_connections]
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"<{stack.resolve(self.api.node.default_child.logical_id)}>/{STAGE_NAME}/POST/@connections/*]",  # type: ignore[union-attr]
            "A connection id is only known at run time: the notifier may post to any connection of this "
            "API's stage, and nothing else (no DELETE, no GET, no other API or stage).",
        )
        self.mappings: dict[str, lambda_.EventSourceMapping] = {}
        for spec, sort_key in followed.items():
            source = sources.DynamoEventSource(
                read_tables[spec],
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=BATCH_SIZE,
                bisect_batch_on_error=True,
                retry_attempts=RETRY_ATTEMPTS,
                max_record_age=MAX_RECORD_AGE,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.dead_letters),
                filters=[lambda_.FilterCriteria.filter(stream_filter(sort_key))],
            )
            self.notifier.add_event_source(source)
            seen = {m.node.id for m in self.mappings.values()}
            (mapping,) = [
                c
                for c in self.notifier.node.children
                if isinstance(c, lambda_.EventSourceMapping) and c.node.id not in seen
            ]
            self.mappings[spec.key] = mapping

    @property
    def functions(self) -> dict[str, lambda_.IFunction]:
        """By the name their alarms and graphs show (infra/monitoring/)."""
        return {
            "live_authorizer": self.authorizer_handler.function,
            "live_api": self.routes_handler.function,
            "live_notifier": self.notifier,
        }

    @property
    def url(self) -> str:
        """wss://<api-id>.execute-api.<region>.amazonaws.com/live (clients append ?token=<jwt>)."""
        return self.stage.url

    @property
    def callback_url(self) -> str:
        """https://<api-id>.execute-api.<region>.amazonaws.com/live: the @connections API's endpoint."""
        return self.stage.callback_url


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
