"""Request/reply on ``vb.rpc.<service>.<resource>.<verb>``: one kit for every service.

The owner of the data declares a :func:`responder`; anyone else asks through an
:class:`RpcClient`. Both sides speak the contracts' :class:`~voicebus.contracts.rpc.Reply`
(``ok`` and either the payload or an ``RpcError``), and a fault has the same status
wherever it happens (see :mod:`.faults`).
"""

from voicebus.runtime.rpc.client import RpcClient
from voicebus.runtime.rpc.faults import (
    BadReply,
    Conflict,
    Invalid,
    NotFound,
    OwnerTimeout,
    OwnerUnavailable,
    RemoteError,
    RpcFault,
    TooMany,
    Unavailable,
)
from voicebus.runtime.rpc.server import REQUEST_ID, REQUEST_ID_HEADER, responder
from voicebus.runtime.rpc.tenancy import Forbidden, TenantGuard
from voicebus.runtime.tenant_keys import TenantSigner

__all__ = [
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "BadReply",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "OwnerTimeout",
    "OwnerUnavailable",
    "RemoteError",
    "RpcClient",
    "RpcFault",
    "TenantGuard",
    "TenantSigner",
    "TooMany",
    "Unavailable",
    "responder",
]
