"""The edge's answers on ``vb.rpc.edge.*``: a tenant's provider account, for the gateway.

The reply carries the account's credentials decrypted (``StoredAccount.secrets``): the
subject must be open to the gateway's NATS user alone. Nothing here logs a secret.
"""

from __future__ import annotations

import logging
from typing import Final

from faststream.nats import NatsBroker
from pydantic import SecretStr

from voicebus.contracts.keys import CREDENTIALS_ROTATE, KeysRotated, RotateKeys
from voicebus.contracts.telephony import (
    ACCOUNTS_GET,
    TELEPHONY_PROVIDERS,
    AccountReply,
    GetAccount,
    StoredAccount,
)
from voicebus.edge.tenancy.errors import CredentialsError
from voicebus.edge.tenancy.store import TenantStore
from voicebus.runtime.rpc import Invalid, NotFound, RpcFault, Unavailable, responder

log = logging.getLogger(__name__)

QUEUE_GROUP: Final = "edge-rpc"


class TenantDisabled(RpcFault):
    """403: the operator disabled the tenant; nothing is done on its behalf."""

    status = 403
    default_code = "tenant_disabled"


def register_rpc(broker: NatsBroker, store: TenantStore) -> None:
    """Declare the edge's responders on ``broker``; they read ``store`` once it is bound."""

    async def account_get(request: GetAccount) -> AccountReply:
        tenant_id, provider = request.tenant_id, request.provider
        if provider not in TELEPHONY_PROVIDERS:
            known = ", ".join(sorted(TELEPHONY_PROVIDERS))
            raise Invalid(f"provider: unknown provider {provider!r} (known: {known})")
        if not store.bound:
            raise Unavailable("the edge has no database yet", code="database_unavailable")
        if await store.disabled(tenant_id):
            # Its inbound calls and dials (campaigns included) stop with its keys.
            raise TenantDisabled(f"tenant {tenant_id!r} is disabled")
        try:
            stored = await store.account(tenant_id, provider)
        except CredentialsError:
            log.error("stored credentials cannot be decrypted", extra={"tenant_id": tenant_id})
            raise RpcFault(
                "stored credentials cannot be decrypted", code="credentials_unreadable"
            ) from None
        if stored is None:
            raise NotFound(
                f"no {provider} account for tenant {tenant_id!r}", code="account_not_found"
            )
        secrets, fields = stored
        limits = await store.limits(tenant_id)
        countries = limits.allowed_countries
        log.info("provider account read", extra={"tenant_id": tenant_id, "provider": provider})
        account = StoredAccount(
            tenant_id=tenant_id,
            provider=provider,
            fields=fields,
            secrets={name: SecretStr(value) for name, value in secrets.items()},
            allowed_countries=None if countries is None else sorted(countries),
            max_concurrent_calls=limits.max_concurrent_calls,
        )
        return AccountReply(ok=True, account=account)

    responder(broker, ACCOUNTS_GET, GetAccount, AccountReply, account_get, queue=QUEUE_GROUP,
              description="A tenant's provider account with its credentials, for the gateway "
                          "(GetAccount → AccountReply).")  # fmt: skip

    async def credentials_rotate(request: RotateKeys) -> KeysRotated:
        if not store.bound:
            raise Unavailable("the edge has no database yet", code="database_unavailable")
        rotated, unreadable = await store.rotate_credentials(dry_run=request.dry_run)
        log.warning(
            "provider credentials re-encrypted",
            extra={"rotated": rotated, "unreadable": unreadable, "dry_run": request.dry_run},
        )
        return KeysRotated(ok=True, rotated=rotated, unreadable=unreadable, keys=store.key_count)

    responder(broker, CREDENTIALS_ROTATE, RotateKeys, KeysRotated, credentials_rotate,
              queue=QUEUE_GROUP,
              description="Re-encrypt every stored provider account with the newest "
                          "credentials key (RotateKeys → KeysRotated).")  # fmt: skip
