"""A client of the campaigns service over NATS request/reply (``vb.rpc.campaigns.*``)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from nats.aio.client import Client
from pydantic import BaseModel

from voicebus.contracts import campaigns as api
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import Reply, RpcError
from voicebus.runtime.rpc import RpcClient, RpcFault

R = TypeVar("R", bound=Reply)
CHUNK_BYTES = 256 * 1024
"""Upload chunk size: whole lines, well under the NATS message limit once base64-encoded."""


class CampaignError(Exception):
    """The service refused a request (its ``RpcError``), or nobody answered."""

    def __init__(self, error: RpcError) -> None:
        super().__init__(f"{error.status} {error.code}: {error.message}")
        self.error = error


def line_chunks(stream: IO[bytes], size: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Cut a byte stream into chunks of whole lines: (first line number, bytes).

    Memory stays at about one chunk whatever the file's size.
    """
    line = 1
    rest = b""
    while True:
        block = stream.read(size)
        if not block:
            break
        data = rest + block
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        chunk, rest = data[: cut + 1], data[cut + 1 :]
        yield line, chunk
        line += chunk.count(b"\n")
    if rest:
        yield line, rest


class CampaignClient:
    """Typed calls to the campaigns service.

    Args:
        nc: a connected NATS client.
        tenant_id: the tenant every call acts for.
        timeout_s: budget per request, retries included.
        attempt_s: a read not answered within this is asked again (of another
            instance, if the one that took it died).
    """

    def __init__(
        self, nc: Client, tenant_id: str, timeout_s: float = 30.0, attempt_s: float = 5.0
    ) -> None:
        self.nc = nc
        self.tenant_id = tenant_id
        self.timeout_s = timeout_s
        self._rpc = RpcClient(nc, timeout_s=timeout_s, attempt_s=attempt_s)

    async def _ask(
        self, subject: str, request: BaseModel, reply: type[R], *, idempotent: bool = True
    ) -> R:
        try:
            return await self._rpc.ask(subject, request, reply, idempotent=idempotent)
        except RpcFault as fault:
            error = RpcError(status=fault.status, code=fault.code, message=fault.message)
            raise CampaignError(error) from None

    def _ref(self, campaign_id: str) -> api.CampaignRef:
        return api.CampaignRef(tenant_id=self.tenant_id, campaign_id=campaign_id)

    async def create(self, spec: api.CampaignSpec) -> api.Campaign:
        """Create a draft campaign."""
        request = api.CreateCampaign(tenant_id=self.tenant_id, spec=spec)
        reply = await self._ask(api.CAMPAIGNS_CREATE, request, api.CampaignReply, idempotent=False)
        assert reply.campaign is not None
        return reply.campaign

    async def get(self, campaign_id: str) -> api.Campaign:
        """One campaign."""
        reply = await self._ask(api.CAMPAIGNS_GET, self._ref(campaign_id), api.CampaignReply)
        assert reply.campaign is not None
        return reply.campaign

    async def move(self, verb: str, campaign_id: str) -> api.Campaign:
        """start, pause, resume or cancel."""
        subject = {
            "start": api.CAMPAIGNS_START,
            "pause": api.CAMPAIGNS_PAUSE,
            "resume": api.CAMPAIGNS_RESUME,
            "cancel": api.CAMPAIGNS_CANCEL,
        }[verb]
        reply = await self._ask(
            subject, self._ref(campaign_id), api.CampaignReply, idempotent=False
        )
        assert reply.campaign is not None
        return reply.campaign

    async def progress(self, campaign_id: str) -> api.Progress:
        """Live counts."""
        reply = await self._ask(api.CAMPAIGNS_PROGRESS, self._ref(campaign_id), api.ProgressReply)
        assert reply.progress is not None
        return reply.progress

    async def report(self, campaign_id: str, page: int = 2000) -> AsyncIterator[api.ReportRow]:
        """Every contact's report row, a page at a time."""
        after = 0
        while True:
            request = api.ReportPageRequest(
                tenant_id=self.tenant_id,
                campaign_id=campaign_id,
                after_contact_id=after,
                limit=page,
            )
            reply = await self._ask(api.CAMPAIGNS_REPORT, request, api.ReportReply)
            for row in reply.rows:
                yield row
            if reply.next_after is None:
                return
            after = reply.next_after

    async def upload(
        self,
        campaign_id: str,
        stream: IO[bytes],
        fmt: api.UploadFormat = api.UploadFormat.CSV,
        on_chunk: Callable[[int, api.UploadReport], None] | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> api.UploadReport:
        """Stream a contact file in chunks of whole lines; returns the final totals.

        Args:
            campaign_id: the campaign.
            stream: the file, opened in binary mode.
            fmt: CSV or JSON Lines.
            on_chunk: called after each chunk with (bytes sent, running totals).
            chunk_bytes: chunk size.
        """
        upload_id = new_id()
        header: str | None = None
        report: api.UploadReport | None = None
        sent = 0
        for seq, (first_line, data) in enumerate(line_chunks(stream, chunk_bytes)):
            request = api.UploadChunk(
                tenant_id=self.tenant_id,
                campaign_id=campaign_id,
                upload_id=upload_id,
                format=fmt,
                seq=seq,
                first_line=first_line,
                header=header,
                data=base64.b64encode(data),
            )
            reply = await self._ask(api.CONTACTS_UPLOAD, request, api.UploadReply, idempotent=False)
            assert reply.report is not None
            report = reply.report
            header = header or report.header
            sent += len(data)
            if on_chunk is not None:
                on_chunk(sent, report)
        if report is None:
            raise CampaignError(RpcError(status=422, code="invalid_file", message="empty file"))
        return report

    async def upload_file(
        self,
        campaign_id: str,
        path: Path,
        on_chunk: Callable[[int, api.UploadReport], None] | None = None,
    ) -> api.UploadReport:
        """Upload a .csv or .json/.jsonl file."""
        fmt = api.UploadFormat.CSV if path.suffix.lower() == ".csv" else api.UploadFormat.JSON
        with path.open("rb") as stream:
            return await self.upload(campaign_id, stream, fmt, on_chunk)

    async def dnc(self, verb: str, numbers: list[str], campaign_id: str | None = None) -> int:
        """Add numbers to (``add``) or remove them from (``remove``) a DNC list."""
        request = api.DncChange(tenant_id=self.tenant_id, campaign_id=campaign_id, numbers=numbers)
        subject = api.DNC_ADD if verb == "add" else api.DNC_REMOVE
        reply = await self._ask(subject, request, api.DncReply, idempotent=False)
        return reply.changed
