"""Live updates in the synthesized stack: the WebSocket API and its $connect authorizer, the
connections table with TTL, the notifier on the order view's and inventory's streams (one reader
each, the events stream still at most two), least privilege, and the authorizer's own layer."""

from __future__ import annotations

from typing import Any

from infra import auth_layer_build
from infra.live_updates import STAGE_NAME, TOKEN_SOURCE
from orders_core.tables import CUSTOMER_ORDERS, EVENTS, INVENTORY, LIVE_CONNECTIONS, PROJECTIONS_CONTROL
from tests.infra.helpers import Synthesized, all_actions, permissions, role_statements

STREAM_READERS_PER_SHARD = 2
STREAM_READS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
BASELINE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def _id(synthesized: Synthesized, construct: Any) -> str:
    return synthesized.logical_id(construct)


def _table_id(synthesized: Synthesized, spec: Any) -> str:
    return synthesized.logical_id(synthesized.stack.tables[spec])


def _mappings_on(synthesized: Synthesized, table_id: str) -> list[dict[str, Any]]:
    return [
        mapping["Properties"]
        for mapping in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    ]


def _role(synthesized: Synthesized, handler: Any) -> str:
    return synthesized.logical_id(handler.role)


def test_the_websocket_api_authorizes_connect_with_the_token_in_the_query_string(
    synthesized: Synthesized,
) -> None:
    live = synthesized.stack.live_updates
    api_id = _id(synthesized, live.api)
    api = synthesized.resources[api_id]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET"
    (authorizer,) = [
        a
        for a in synthesized.of_type("AWS::ApiGatewayV2::Authorizer").values()
        if a["Properties"]["ApiId"] == {"Ref": api_id}
    ]
    properties = authorizer["Properties"]
    # WebSocket APIs take Lambda REQUEST authorizers only; the token comes as ?token=.
    assert properties["AuthorizerType"] == "REQUEST"
    assert properties["IdentitySource"] == [TOKEN_SOURCE]
    assert _id(synthesized, live.authorizer_handler.function) in str(properties["AuthorizerUri"])
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in synthesized.of_type("AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == {"Ref": _id(synthesized, live.api)}
    }
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    # A WebSocket authorizer can only be attached to $connect.
    assert routes["$disconnect"].get("AuthorizationType", "NONE") == "NONE"
    (stage,) = [
        s["Properties"]
        for s in synthesized.of_type("AWS::ApiGatewayV2::Stage").values()
        if s["Properties"]["ApiId"] == {"Ref": _id(synthesized, live.api)}
    ]
    assert stage["StageName"] == STAGE_NAME and stage["AutoDeploy"] is True
    assert "DestinationArn" in stage["AccessLogSettings"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


def test_the_authorizer_verifies_tokens_of_the_pool_for_its_app_clients(synthesized: Synthesized) -> None:
    live = synthesized.stack.live_updates
    function = synthesized.resources[_id(synthesized, live.authorizer_handler.function)]["Properties"]
    assert function["Handler"] == "live_authorizer.handler.lambda_handler"
    variables = function["Environment"]["Variables"]
    assert set(variables) == {"LIVE_TOKEN_ISSUER", "LIVE_TOKEN_CLIENT_IDS"}
    pool = _id(synthesized, synthesized.stack.auth.user_pool)
    assert {"Ref": pool} in variables["LIVE_TOKEN_ISSUER"]["Fn::Join"][1]
    clients = {_id(synthesized, client) for client in synthesized.stack.auth.clients}
    assert {
        ref["Ref"] for ref in variables["LIVE_TOKEN_CLIENT_IDS"]["Fn::Join"][1] if isinstance(ref, dict)
    } == clients
    # Its own layer (PyJWT + cryptography) besides the two every function has; nobody else gets it.
    layer = _id(synthesized, live.auth_layer)
    assert {"Ref": layer} in function["Layers"] and len(function["Layers"]) == 3
    others = [
        f
        for k, f in synthesized.of_type("AWS::Lambda::Function").items()
        if k != _id(synthesized, live.authorizer_handler.function)
    ]
    assert all({"Ref": layer} not in f["Properties"]["Layers"] for f in others)
    description = synthesized.resources[layer]["Properties"]["Description"]
    assert description == ", ".join(auth_layer_build.requirements())


def test_the_connections_table_expires_connections_after_two_hours(synthesized: Synthesized) -> None:
    table = synthesized.resources[_table_id(synthesized, LIVE_CONNECTIONS)]
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["DeletionPolicy"] == "Delete"
    assert "StreamSpecification" not in table["Properties"]


def test_the_order_view_and_inventory_stream_old_and_new_images_to_one_reader_each(
    synthesized: Synthesized,
) -> None:
    notifier = {"Ref": _id(synthesized, synthesized.stack.live_updates.notifier)}
    for spec, sort_key in ((CUSTOMER_ORDERS, "view"), (INVENTORY, "summary")):
        table_id = _table_id(synthesized, spec)
        stream = synthesized.resources[table_id]["Properties"]["StreamSpecification"]
        assert stream == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        (mapping,) = _mappings_on(synthesized, table_id)
        assert mapping["FunctionName"] == notifier
        assert mapping["StartingPosition"] == "LATEST"
        assert mapping["BisectBatchOnFunctionError"] is True
        assert mapping["MaximumRetryAttempts"] == 10
        assert mapping["MaximumRecordAgeInSeconds"] == 3600
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        queue = _id(synthesized, synthesized.stack.live_updates.dead_letters)
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}}
        (pattern,) = mapping["FilterCriteria"]["Filters"]
        assert sort_key in pattern["Pattern"] and "INSERT" in pattern["Pattern"]


def test_the_events_stream_still_has_at_most_two_readers(synthesized: Synthesized) -> None:
    events = _table_id(synthesized, EVENTS)
    readers = _mappings_on(synthesized, events)
    assert len(readers) <= STREAM_READERS_PER_SHARD
    notifier = {"Ref": _id(synthesized, synthesized.stack.live_updates.notifier)}
    assert notifier not in [m["FunctionName"] for m in readers]


def test_the_notifier_pushes_to_this_stage_only_and_reads_what_it_needs(synthesized: Synthesized) -> None:
    live = synthesized.stack.live_updates
    statements = role_statements(synthesized, _role(synthesized, live.notifier_handler))
    connections, inventory = _table_id(synthesized, LIVE_CONNECTIONS), _table_id(synthesized, INVENTORY)
    control, orders = _table_id(synthesized, PROJECTIONS_CONTROL), _table_id(synthesized, CUSTOMER_ORDERS)
    assert permissions(statements, prefix="dynamodb:") == {
        *(
            (a, f"<{connections}.Arn>")
            for a in (
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
            )
        ),
        ("dynamodb:BatchGetItem", f"<{inventory}.Arn>"),
        ("dynamodb:BatchGetItem", f"<{control}.Arn>"),
        *((a, f"<{table}.StreamArn>") for table in (orders, inventory) for a in STREAM_READS),
        ("dynamodb:ListStreams", "*"),
    }
    api = _id(synthesized, live.api)
    assert permissions(statements, prefix="execute-api:") == {
        (
            "execute-api:ManageConnections",
            f"arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<{api}>/{STAGE_NAME}/POST/@connections/*",
        )
    }
    variables = synthesized.resources[_id(synthesized, live.notifier)]["Properties"]["Environment"][
        "Variables"
    ]
    assert set(variables) == {
        "CUSTOMER_ORDERS_TABLE",
        "INVENTORY_TABLE",
        "PROJECTIONS_CONTROL_TABLE",
        "LIVE_CONNECTIONS_TABLE",
        "LIVE_CONNECTIONS_ENDPOINT",
    }


def test_routes_remember_and_forget_connections_and_the_authorizer_touches_nothing(
    synthesized: Synthesized,
) -> None:
    live = synthesized.stack.live_updates
    connections = _table_id(synthesized, LIVE_CONNECTIONS)
    routes = role_statements(synthesized, _role(synthesized, live.routes_handler))
    assert permissions(routes, prefix="dynamodb:") == {
        ("dynamodb:BatchGetItem", f"<{connections}.Arn>"),
        ("dynamodb:BatchWriteItem", f"<{connections}.Arn>"),
    }
    assert set(all_actions(routes)) == BASELINE | {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}
    authorizer = role_statements(synthesized, _role(synthesized, live.authorizer_handler))
    assert set(all_actions(authorizer)) == BASELINE


def test_only_api_gateway_invokes_the_routes_and_the_authorizer(synthesized: Synthesized) -> None:
    live = synthesized.stack.live_updates
    for function in (live.routes_handler.function, live.authorizer_handler.function):
        logical_id = _id(synthesized, function)
        grants = [
            p["Properties"]
            for p in synthesized.of_type("AWS::Lambda::Permission").values()
            if p["Properties"]["FunctionName"] in ({"Fn::GetAtt": [logical_id, "Arn"]}, {"Ref": logical_id})
        ]
        assert grants and all(p["Principal"] == "apigateway.amazonaws.com" for p in grants)
        assert all(_id(synthesized, live.api) in str(p["SourceArn"]) for p in grants)
