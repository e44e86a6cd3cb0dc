"""Who may call the API: a Cognito user pool that shoppers sign up to themselves, the `operators`
group that only an administrator adds people to, and one public app client per kind of client.

Every client signs in the same way: the authorization code grant with PKCE through the managed
login pages (RFC 9700 and RFC 8252: no client secret, no implicit grant, no password handled by
the app). The HTTP API's JWT authorizer accepts an access token of any of them (infra/http_api.py);
the handlers read `sub` (the customer id) and `cognito:groups` (operator-only routes) from the
verified claims. docs/auth.md shows each client's sign-up and sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import Settings
from orders_core.web import OPERATORS_GROUP

# What the clients may ask for: who the user is (openid), their e-mail and name. Access to the API
# itself needs no scope: the authorizer checks the token's issuer, client and expiry.
SCOPES = (cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE)


@dataclass(frozen=True)
class ClientKind:
    name: str
    description: str
    callback_urls: tuple[str, ...]
    logout_urls: tuple[str, ...]
    # How long a sign-in lasts without the user: the refresh token's life.
    session: Duration
    scopes: tuple[cognito.OAuthScope, ...] = SCOPES


class Auth(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        auth = settings.auth
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            # Shoppers sign themselves up; the address is their user name and must be proven with a
            # code before the account can sign in. (Sign-in names and the attribute schema are fixed
            # when a pool is made: changing them would replace the pool, and its users with it.)
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            # A changed address is used only once its new code is entered: until then the old one
            # stays the sign-in name, so nobody takes over an account by typing someone else's.
            keep_original=cognito.KeepOriginalAttrs(email=True),
            user_verification=cognito.UserVerificationConfig(
                email_style=cognito.VerificationEmailStyle.CODE,
                email_subject="Your orders verification code",
                email_body="Your verification code is {####}. Enter it to finish signing up.",
            ),
            email=_email(auth.email_from),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            # No Lambda triggers and no custom attributes: nothing a user sends at sign-up or later can
            # put them in a group; `cognito:groups` comes from AdminAddUserToGroup alone.
            # Identities cannot be rebuilt from anything else: keep them if the stack goes.
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional (TOTP) rather than required: the pool serves shoppers, and forcing a "
            "second factor on every customer is a product decision not taken yet. Operators are "
            "expected to enroll TOTP (docs/auth.md).",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "The Plus feature plan (threat protection) is billed per monthly active user; the "
            "Essentials plan is used until sign-in risk detection is needed. Switch feature_plan "
            "in infra/auth.py to enable it.",
        )
        prefix = auth.domain_prefix or f"orders-{settings.stage}-{Aws.ACCOUNT_ID}"
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        kinds = (
            ClientKind(
                "Web", "browser apps", auth.web_callback_urls, auth.web_logout_urls, Duration.days(30)
            ),
            ClientKind(
                "Mobile",
                "iOS and Android apps",
                auth.mobile_callback_urls,
                auth.mobile_logout_urls,
                Duration.days(30),
            ),
            # Operators use the CLI: a stolen refresh token of theirs is worth more, so it lasts 12 hours.
            # Its tokens may also call Cognito's self-service API for their own user, so that an
            # operator can enroll a TOTP app (associate-software-token) from the command line.
            ClientKind(
                "Cli",
                "the `orders` CLI",
                auth.cli_callback_urls,
                auth.cli_logout_urls,
                Duration.hours(12),
                (*SCOPES, cognito.OAuthScope.COGNITO_ADMIN),
            ),
        )
        self.clients = tuple(self._client(kind) for kind in kinds)
        self.web_client, self.mobile_client, self.cli_client = self.clients
        self.operators = self.user_pool.add_group(
            "Operators",
            group_name=OPERATORS_GROUP,
            description="May ship orders, manage stock and read any order (checked by the handlers). "
            "Members are added by an administrator (AdminAddUserToGroup), never by themselves.",
        )
        sign_in = CfnOutput(
            self, "SignInUrl", value=self.domain.base_url(), description="Managed login (hosted UI) base URL"
        )
        sign_in.override_logical_id("SignInUrl")
        for kind, client in zip(kinds, self.clients, strict=True):
            output = CfnOutput(
                self,
                f"{kind.name}ClientId",
                value=client.user_pool_client_id,
                description=f"App client for {kind.description}",
            )
            output.override_logical_id(f"UserPool{kind.name}ClientId")

    @property
    def client(self) -> cognito.UserPoolClient:
        """The web client (the stack's `UserPoolClientId` output)."""
        return self.web_client

    def _client(self, kind: ClientKind) -> cognito.UserPoolClient:
        client = self.user_pool.add_client(
            kind.name,
            user_pool_client_name=f"orders-{kind.name.lower()}",
            # Public: an app in a browser, on a phone or on an operator's laptop keeps no secret.
            # PKCE (S256) binds each code to the app that asked for it instead.
            generate_secret=False,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=list(kind.scopes),
                callback_urls=list(kind.callback_urls),
                logout_urls=list(kind.logout_urls),
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            # Besides the managed login pages, SRP, which never sends the password (Amplify's default
            # sign-in, for an app that draws its own form). USER_PASSWORD_AUTH is on no client.
            auth_flows=cognito.AuthFlow(user_srp=True),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=kind.session,
            read_attributes=cognito.ClientAttributes().with_standard_attributes(
                email=True, email_verified=True, fullname=True
            ),
            # What a user may set at sign-up and later: their address and name, nothing that grants rights.
            write_attributes=cognito.ClientAttributes().with_standard_attributes(email=True, fullname=True),
        )
        # Managed login shows its pages to a client once the client has a style: Cognito's own here.
        cognito.CfnManagedLoginBranding(
            self,
            f"{kind.name}Style",
            user_pool_id=self.user_pool.user_pool_id,
            client_id=client.user_pool_client_id,
            use_cognito_provided_values=True,
        )
        return client


def _email(sender: str | None) -> cognito.UserPoolEmail:
    if sender is None:
        return cognito.UserPoolEmail.with_cognito()
    # The stack's own region: SES identities are regional, and the stack is environment-agnostic.
    return cognito.UserPoolEmail.with_ses(from_email=sender, from_name="Orders", ses_region=Aws.REGION)
