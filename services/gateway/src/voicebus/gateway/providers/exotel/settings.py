"""Exotel's settings (env prefix ``VB_GATEWAY_EXOTEL_``) and HTTP Basic auth.

Exotel does not sign its requests. The Voicebot applet's URL, the stream URL
and the status callback URL carry credentials of our choosing
(``https://<user>:<password>@host/...``), which Exotel sends as
``Authorization: Basic``; every request from Exotel is checked against them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    """The default tenant's Exotel account from the environment."""
    env = exotel_settings(settings)
    fields = {
        "account_id": env.account_sid,
        "api_key": env.api_key,
        "caller_id": env.caller_id,
        "api_base_url": env.api_base_url,
    }
    return ProviderAccount(NAME, tenant_id, {"api_token": env.api_token}, fields)


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


def stream_auth(settings: GatewaySettings, headers: Mapping[str, str]) -> bool:
    """The media WebSocket's handshake check."""
    return basic_auth_ok(headers, exotel_settings(settings))


def with_credentials(url: str, env: ExotelSettings) -> str:
    """``url`` with the webhook user and password in its authority."""
    parts = urlsplit(url)
    user = quote(env.webhook_user, safe="")
    password = quote(env.webhook_password.get_secret_value(), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))
