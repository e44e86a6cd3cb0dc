"""Who may call the API: a Cognito user pool (customers; operators are a group in it)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.nag import acknowledge
from orders_core.web import OPERATORS_GROUP


class Auth(Construct):
    """User pool + public app client (the JWT audience) + the `operators` group.

    The HTTP API's JWT authorizer checks signature, issuer, audience and expiry; handlers read
    `sub` (the customer id) and `cognito:groups` (operator-only routes) from the verified claims.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            self_sign_up_enabled=False,  # accounts are created by operators (docs/deploy.md)
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
            # Identities cannot be rebuilt from anything else: keep them if the stack goes.
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional (TOTP) rather than required: the pool serves shoppers, and forcing a "
            "second factor on every customer is a product decision not taken yet. Operators are "
            "expected to enroll TOTP (docs/deploy.md).",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "The Plus feature plan (threat protection) is billed per monthly active user; the "
            "Essentials plan is used until sign-in risk detection is needed. Switch feature_plan "
            "in infra/auth.py to enable it.",
        )
        self.client = self.user_pool.add_client(
            "Api",
            # A public client (web and CLI): no secret, so no SECRET_HASH on initiate-auth.
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True, user_password=True),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        self.operators = self.user_pool.add_group(
            "Operators",
            group_name=OPERATORS_GROUP,
            description="May ship orders, manage stock and read any order (checked by the handlers)",
        )
