"""Auth for web and mobile clients: self sign-up with e-mail verification, operators added by an
administrator only, public app clients on the authorization code grant with PKCE, redirect URLs
from the stack's settings, and an authorizer that takes every client's tokens."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.auth import Auth
from infra.settings import CLI_CALLBACK_URL, AuthSettings, Settings
from orders_core.web import OPERATORS_GROUP
from tests.infra.helpers import Synthesized, references

# Flows that hand the password to the app (or to Cognito's API in the clear): none on any client.
# ALLOW_USER_AUTH is among them: its PASSWORD challenge takes the password as it is.
PASSWORD_FLOWS = {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_AUTH"}


def _only(synthesized: Synthesized, resource_type: str) -> dict[str, Any]:
    found = synthesized.of_type(resource_type)
    assert len(found) == 1, found.keys()
    properties: dict[str, Any] = next(iter(found.values()))["Properties"]
    return properties


def _clients(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """By kind (web, mobile, cli), each client's properties."""
    auth = synthesized.stack.auth
    return {
        kind: synthesized.resources[synthesized.logical_id(client)]["Properties"]
        for kind, client in (
            ("web", auth.web_client),
            ("mobile", auth.mobile_client),
            ("cli", auth.cli_client),
        )
    }


def test_customers_sign_themselves_up_and_prove_their_address(synthesized: Synthesized) -> None:
    pool = _only(synthesized, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False
    assert pool["UsernameAttributes"] == ["email"]
    # Cognito mails a code at sign-up; an unconfirmed account cannot sign in
    assert pool["AutoVerifiedAttributes"] == ["email"]
    template = pool["VerificationMessageTemplate"]
    assert template["DefaultEmailOption"] == "CONFIRM_WITH_CODE"
    assert "{####}" in template["EmailMessage"] and template["EmailSubject"]
    # A new address replaces the old one only once its own code is entered
    assert pool["UserAttributeUpdateSettings"]["AttributesRequireVerificationBeforeUpdate"] == ["email"]
    assert pool["AccountRecoverySetting"]["RecoveryMechanisms"] == [{"Name": "verified_email", "Priority": 1}]


def test_only_an_administrator_makes_an_operator(synthesized: Synthesized) -> None:
    group = _only(synthesized, "AWS::Cognito::UserPoolGroup")
    assert group["GroupName"] == OPERATORS_GROUP
    pool = _only(synthesized, "AWS::Cognito::UserPool")
    # No trigger could put a user in a group or change the token's claims (pre sign-up, pre token)
    assert "LambdaConfig" not in pool
    # No custom attribute a user could set to claim a role
    assert all(not attribute["Name"].startswith("custom:") for attribute in pool.get("Schema", []))
    for kind, client in _clients(synthesized).items():
        assert set(client["WriteAttributes"]) <= {"email", "name"}, kind


def test_every_client_is_public_and_uses_the_code_grant_only(synthesized: Synthesized) -> None:
    clients = _clients(synthesized)
    assert set(clients) == {"web", "mobile", "cli"}
    assert len(synthesized.of_type("AWS::Cognito::UserPoolClient")) == len(clients)
    for kind, client in clients.items():
        # No secret: PKCE (S256) binds the code to the app that asked for it
        assert client["GenerateSecret"] is False, kind
        assert client["AllowedOAuthFlows"] == ["code"], kind
        assert client["AllowedOAuthFlowsUserPoolClient"] is True, kind
        # The CLI's tokens may also manage their own user (an operator enrolling TOTP)
        own_user = {"aws.cognito.signin.user.admin"} if kind == "cli" else set()
        assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"} | own_user, kind
        assert client["SupportedIdentityProviders"] == ["COGNITO"], kind
        assert not set(client["ExplicitAuthFlows"]) & PASSWORD_FLOWS, kind
        assert client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"], kind
        assert client["PreventUserExistenceErrors"] == "ENABLED" and client["EnableTokenRevocation"], kind


def test_redirect_urls_are_the_settings(synthesized: Synthesized) -> None:
    auth = synthesized.stack.settings.auth
    clients = _clients(synthesized)
    expected = {
        "web": (auth.web_callback_urls, auth.web_logout_urls),
        "mobile": (auth.mobile_callback_urls, auth.mobile_logout_urls),
        "cli": (auth.cli_callback_urls, auth.cli_logout_urls),
    }
    for kind, (callbacks, logouts) in expected.items():
        assert clients[kind]["CallbackURLs"] == list(callbacks), kind
        assert clients[kind]["LogoutURLs"] == list(logouts), kind
    # cdk.json names none, so this is dev's: a local web app, the app scheme, the CLI's loopback
    assert clients["mobile"]["CallbackURLs"] == ["orders://callback"]
    assert clients["cli"]["CallbackURLs"] == [CLI_CALLBACK_URL]


def test_operators_sessions_are_shorter(synthesized: Synthesized) -> None:
    clients = _clients(synthesized)
    assert clients["cli"]["RefreshTokenValidity"] < clients["web"]["RefreshTokenValidity"]
    assert clients["web"]["RefreshTokenValidity"] == clients["mobile"]["RefreshTokenValidity"]


def test_the_authorizer_takes_tokens_of_every_client(synthesized: Synthesized) -> None:
    ((_, found),) = synthesized.of_http_api("AWS::ApiGatewayV2::Authorizer").items()
    authorizer: dict[str, Any] = found["Properties"]
    audience = {
        reference for value in authorizer["JwtConfiguration"]["Audience"] for reference in references(value)
    }
    auth = synthesized.stack.auth
    assert audience == {(synthesized.logical_id(client), "Ref") for client in auth.clients}


def test_managed_login_serves_every_client(synthesized: Synthesized) -> None:
    domain = _only(synthesized, "AWS::Cognito::UserPoolDomain")
    assert domain["ManagedLoginVersion"] == 2
    # orders-<stage>-<account id>: unique per account and stage without anyone picking a name
    prefix = domain["Domain"]["Fn::Join"][1]
    assert prefix[0] == f"orders-{synthesized.stack.settings.stage}-" and prefix[1] == {
        "Ref": "AWS::AccountId"
    }
    styled = {
        reference
        for style in synthesized.of_type("AWS::Cognito::ManagedLoginBranding").values()
        for reference in references(style["Properties"]["ClientId"])
    }
    assert styled == {(synthesized.logical_id(client), "Ref") for client in synthesized.stack.auth.clients}
    outputs = synthesized.json["Outputs"]
    assert {"SignInUrl", "UserPoolWebClientId", "UserPoolMobileClientId", "UserPoolCliClientId"} <= set(
        outputs
    )


# --- settings -------------------------------------------------------------------------------------


def _settings(context: dict[str, Any], **overrides: Any) -> Settings:
    return Settings.from_node(App(context={**context, **overrides}).node)


def _auth_template(settings: Settings) -> Template:
    stack = Stack(App(), "AuthOnly")
    Auth(stack, "Auth", settings=settings)
    return Template.from_stack(stack)


def test_a_stage_other_than_dev_names_its_own_urls(context: dict[str, Any]) -> None:
    production = {"stage": "prod", "alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops"}
    with pytest.raises(ValueError, match="authWebCallbackUrls"):
        _settings(context, **production)
    urls = {
        "authWebCallbackUrls": "https://shop.example.com/callback, https://www.shop.example.com/callback",
        "authWebLogoutUrls": ["https://shop.example.com/"],
        "authMobileCallbackUrls": "com.example.shop://callback",
        "authMobileLogoutUrls": "com.example.shop://signed-out",
    }
    auth = _settings(context, **production, **urls).auth
    assert auth.web_callback_urls == (
        "https://shop.example.com/callback",
        "https://www.shop.example.com/callback",
    )
    assert auth.mobile_logout_urls == ("com.example.shop://signed-out",)
    assert auth.cli_callback_urls == (CLI_CALLBACK_URL,)  # the operator's own machine, on every stage

    template = _auth_template(replace(_settings(context), stage="prod", auth=auth))
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "ClientName": "orders-web",
            "CallbackURLs": list(auth.web_callback_urls),
            "LogoutURLs": ["https://shop.example.com/"],
        },
    )
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {"ClientName": "orders-mobile", "CallbackURLs": ["com.example.shop://callback"]},
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://shop.example.com/callback", "localhost only"),
        ("https://shop.example.com/callback#top", "fragment"),
        ("callback", "absolute"),
        ("javascript://alert(1)", "cannot be a redirect"),
    ],
)
def test_redirect_urls_cognito_would_refuse_stop_the_synth(
    context: dict[str, Any], url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(context, authWebCallbackUrls=url)


def test_the_domain_prefix_and_sender_from_the_context(context: dict[str, Any]) -> None:
    auth = _settings(context, authDomainPrefix="shop-orders", authEmailFrom="no-reply@shop.example.com").auth
    assert (auth.domain_prefix, auth.email_from) == ("shop-orders", "no-reply@shop.example.com")
    template = _auth_template(replace(_settings(context), auth=auth))
    template.has_resource_properties("AWS::Cognito::UserPoolDomain", {"Domain": "shop-orders"})
    # Sign-up mails through SES: Cognito's own sender allows only a few a day
    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "EmailConfiguration": {
                "EmailSendingAccount": "DEVELOPER",
                "From": "Orders <no-reply@shop.example.com>",
            }
        },
    )
    for prefix in ("my-aws-shop", "Shop", "-shop", "x" * 64):
        with pytest.raises(ValueError, match="authDomainPrefix"):
            _settings(context, authDomainPrefix=prefix)
    with pytest.raises(ValueError, match="authEmailFrom"):
        _settings(context, authEmailFrom="not an address")


def test_the_defaults_are_a_developers() -> None:
    defaults = AuthSettings()
    assert defaults.web_callback_urls == ("http://localhost:3000/callback",)
    assert defaults.domain_prefix is None and defaults.email_from is None
