"""Exotel's settings (env prefix ``VB_GATEWAY_EXOTEL_``) and HTTP Basic auth.

Exotel does not sign its requests. The Voicebot applet's URL, the stream URL
and the status callback URL carry credentials of our choosing
(``https://<user>:<password>@host/...``), which Exotel sends as
``Authorization: Basic``; every request from Exotel is checked against them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus.gateway.parameters import TOKEN
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.errors import ConfigurationError
from voicebus.runtime.settings import Environment, is_placeholder_secret

NAME = "exotel"
_DEV_SECRET = "dev-secret"  # noqa: S105 - a placeholder, refused in production


class ExotelSettings(BaseSettings):
    """Exotel settings of this gateway and the default tenant's account."""

    model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_EXOTEL_", extra="ignore")

    webhook_user: str = Field(
        default="voicebus", min_length=1, description="User in the URLs Exotel calls us at."
    )
    webhook_password: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description="Password in the URLs Exotel calls us at (Basic auth on every request).",
    )
    account_sid: str = Field(default="", description="Exotel account SID, used to dial.")
    api_key: str = Field(default="", description="API key (Basic auth user of the REST API).")
    api_token: SecretStr = Field(default=SecretStr(""), description="API token.")
    caller_id: str = Field(default="", description="ExoPhone presented when dialing.")
    api_base_url: str = Field(
        default="https://api.exotel.com",
        description="REST API base URL (https://api.in.exotel.com for Mumbai).",
    )

    def checked(self, environment: Environment) -> ExotelSettings:
        """These settings, refused in production while the webhook password is a placeholder.

        Raises:
            ConfigurationError: a placeholder password in production.
        """
        password = self.webhook_password.get_secret_value()
        if environment is Environment.PRODUCTION and is_placeholder_secret(password):
            raise ConfigurationError("VB_GATEWAY_EXOTEL_WEBHOOK_PASSWORD is a placeholder")
        return self


def exotel_settings(settings: GatewaySettings) -> ExotelSettings:
    """The Exotel settings, checked for the gateway's environment."""
    return ExotelSettings().checked(settings.environment)


def default_account(settings: GatewaySettings, tenant_id: str) -> ProviderAccount:
    """The default tenant's Exotel account from the environment (its webhook credentials
    are the gateway's)."""
    env = exotel_settings(settings)
    fields = {
        "account_id": env.account_sid,
        "api_key": env.api_key,
        "caller_id": env.caller_id,
        "api_base_url": env.api_base_url,
        "webhook_user": env.webhook_user,
    }
    secrets = {"api_token": env.api_token, "webhook_password": env.webhook_password}
    return ProviderAccount(NAME, tenant_id, secrets, fields)


def account_webhook_env(account: ProviderAccount) -> ExotelSettings:
    """The Basic auth credentials of ``account``'s webhooks: its own, never the gateway's.

    A tenant's stored Exotel account must carry ``webhook_user`` and the secret
    ``webhook_password``; the gateway-wide password belongs to the default tenant alone
    (it would otherwise be sent, in URLs, to every tenant's Exotel account).

    Raises:
        ConfigurationError: the account has no webhook credentials.
    """
    user = account.require("webhook_user")
    password = SecretStr(account.secret("webhook_password"))
    return ExotelSettings.model_construct(webhook_user=user, webhook_password=password)


STREAM_USER = "vb-stream"
"""Basic auth user of the media stream URL (its password is the call's, see below)."""


def stream_password(parameters: Mapping[str, str]) -> str | None:
    """The media stream's Basic auth password: derived from the call's signed stream token.

    Whoever holds the stream URL holds both anyway; deriving the password per call
    keeps every long-lived password (the gateway's, a tenant's) out of stream URLs,
    and the handshake still checks that Exotel sent what we gave it.
    """
    stream_token = parameters.get(TOKEN)
    if not stream_token:
        return None
    digest = hashlib.sha256(b"voicebus.exotel.stream\x00" + stream_token.encode())
    return digest.hexdigest()[:40]


def with_stream_credentials(url: str) -> str:
    """``url`` (a stream URL whose query holds the signed parameters) with its Basic auth."""
    parts = urlsplit(url)
    password = stream_password(dict(parse_qsl(parts.query))) or ""
    netloc = f"{STREAM_USER}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def basic_auth_ok(headers: Mapping[str, str], env: ExotelSettings) -> bool:
    """Whether ``Authorization: Basic`` carries the webhook user and password.

    ``headers`` must look names up case-insensitively (Starlette's, multidict's).
    """
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    expected = f"{env.webhook_user}:{env.webhook_password.get_secret_value()}"
    return hmac.compare_digest(decoded.encode(), expected.encode())


def stream_auth(
    settings: GatewaySettings, headers: Mapping[str, str], parameters: Mapping[str, str]
) -> bool:
    """The media WebSocket's handshake check: the call's own credentials (see
    :func:`stream_password`); the signed parameters are checked on ``start``."""
    password = stream_password(parameters)
    if password is None:
        return False
    expected = ExotelSettings.model_construct(
        webhook_user=STREAM_USER, webhook_password=SecretStr(password)
    )
    return basic_auth_ok(headers, expected)


def with_credentials(url: str, env: ExotelSettings) -> str:
    """``url`` with the webhook user and password in its authority."""
    parts = urlsplit(url)
    user = quote(env.webhook_user, safe="")
    password = quote(env.webhook_password.get_secret_value(), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))
