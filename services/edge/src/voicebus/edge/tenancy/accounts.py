"""Who may set what on a provider account. Pure: values in, a problem (or None) out.

``api_base_url`` decides where the gateway sends a tenant's carrier credentials and
dial requests; a tenant able to set it could point our dialer at any host (SSRF) and
collect the secrets sent there. So only the operator sets it, and only to a host of
``VB_EDGE_PROVIDER_API_HOSTS``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

OPERATOR_FIELDS: Final = frozenset({"api_base_url"})
"""Account fields only the operator may set."""

DEFAULT_API_HOSTS: Final = (
    "api.twilio.com",
    "api.plivo.com",
    "api.vobiz.ai",
    "api.exotel.com",
    "api.in.exotel.com",
)


@dataclass(frozen=True, slots=True)
class FieldRefusal:
    """Why an account field is refused: 403 (not yours to set) or 422 (not a valid value)."""

    status: int
    field: str
    message: str


def check_account_fields(
    fields: Mapping[str, str], *, operator: bool, allowed_hosts: Collection[str]
) -> FieldRefusal | None:
    """The first refused field of an account a caller wants to store, or None."""
    for name in sorted(OPERATOR_FIELDS & fields.keys()):
        if not operator:
            return FieldRefusal(403, f"fields.{name}", "only the operator may set it")
    url = fields.get("api_base_url")
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return FieldRefusal(422, "fields.api_base_url", "must be an http(s) URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        return FieldRefusal(
            422, "fields.api_base_url", "must carry no credentials, query or fragment"
        )
    if parts.hostname.lower() not in {h.lower() for h in allowed_hosts}:
        return FieldRefusal(422, "fields.api_base_url", "host is not in VB_EDGE_PROVIDER_API_HOSTS")
    return None
