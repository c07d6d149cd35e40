"""Every request/reply procedure on ``vb.rpc.*``: its subject, request and reply, in one list.

The AsyncAPI document lists each as two channels (the request on its subject, the
reply on the request's reply subject); a contracts test checks that every ``vb.rpc``
subject the contracts declare is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from voicebus.contracts import campaigns as c
from voicebus.contracts import chains, erasure, keys, replay, retention, rpc, telephony
from voicebus.contracts import knowledge as k
from voicebus.contracts.agents import api as a
from voicebus.contracts.rpc import Reply


@dataclass(frozen=True, slots=True)
class Procedure:
    """One ``vb.rpc.<service>.<resource>.<verb>``.

    Attributes:
        subject: where requests go; the owner's queue group answers.
        request: the request body.
        reply: the reply body (``ok`` and the payload, or ``error``).
        description: what it does, who asks.
    """

    subject: str
    request: type[BaseModel]
    reply: type[Reply]
    description: str

    @property
    def name(self) -> str:
        """``vb.rpc.edge.accounts.get`` → ``edge.accounts.get``."""
        return self.subject.split(".rpc.", 1)[-1]


PROCEDURES: Final[tuple[Procedure, ...]] = (
    Procedure(rpc.AGENTS_GET, rpc.GetAgent, rpc.AgentReply,
              "Look an agent up (the gateway before it answers or dials a call; the edge)."),
    Procedure(rpc.AGENTS_LIST, rpc.ListAgents, rpc.AgentsPage,
              "A tenant's agents (the edge's REST API and browser page)."),
    Procedure(replay.AGENTS_SIMULATE, replay.SimulateCall, replay.SimulationReply,
              "Run caller inputs through an agent version, tenant tools held back (the "
              "edge's replays and evals)."),
    Procedure(rpc.CALLS_LIST, rpc.ListCalls, rpc.CallsPage,
              "A tenant's calls, newest first, from audit."),
    Procedure(rpc.CALLS_GET, rpc.GetCall, rpc.CallReply, "One call of a tenant, from audit."),
    Procedure(rpc.CALL_EVENTS_LIST, rpc.ListCallEvents, rpc.CallEventsPage,
              "A call's stored events in order, from audit."),
    Procedure(rpc.RECORDINGS_GET, rpc.GetCall, rpc.RecordingReply,
              "A call's recording: size, duration, format."),
    Procedure(rpc.RECORDINGS_READ, rpc.ReadRecording, rpc.RecordingChunk,
              "Bytes of a call's recording, one chunk per request."),
    Procedure(telephony.ACCOUNTS_GET, telephony.GetAccount, telephony.AccountReply,
              "A tenant's provider account with its credentials in clear, from the edge, for "
              "the gateway only: NATS permissions must keep every other user off this "
              "subject."),
    Procedure(telephony.SESSIONS_CREATE, telephony.CreateSession, telephony.SessionReply,
              "Start a browser call on the gateway: agent check, call.initiated, signed "
              "stream parameters (the edge's browser page and POST /api/v1/browser-sessions)."),
    Procedure(c.CAMPAIGNS_CREATE, c.CreateCampaign, c.CampaignReply, "Create a campaign (draft)."),
    Procedure(c.CAMPAIGNS_GET, c.CampaignRef, c.CampaignReply, "One campaign."),
    Procedure(c.CAMPAIGNS_LIST, c.ListCampaigns, c.CampaignListReply, "A tenant's campaigns."),
    Procedure(c.CAMPAIGNS_START, c.CampaignRef, c.CampaignReply, "Start a campaign."),
    Procedure(c.CAMPAIGNS_PAUSE, c.CampaignRef, c.CampaignReply, "Pause a campaign."),
    Procedure(c.CAMPAIGNS_RESUME, c.CampaignRef, c.CampaignReply, "Resume a paused campaign."),
    Procedure(c.CAMPAIGNS_CANCEL, c.CampaignRef, c.CampaignReply, "Cancel a campaign."),
    Procedure(c.CAMPAIGNS_PROGRESS, c.CampaignRef, c.ProgressReply,
              "A campaign's counts by state and outcome."),
    Procedure(c.CAMPAIGNS_REPORT, c.ReportPageRequest, c.ReportReply,
              "One page of a campaign's report, by contact id."),
    Procedure(c.CONTACTS_UPLOAD, c.UploadChunk, c.UploadReply,
              "One chunk of a contact file (CSV or JSON Lines), in order."),
    Procedure(c.DNC_ADD, c.DncChange, c.DncReply, "Add numbers to a do-not-call list."),
    Procedure(c.DNC_REMOVE, c.DncChange, c.DncReply, "Remove numbers from a do-not-call list."),
    Procedure(c.DNC_LIST, c.DncListRequest, c.DncListReply,
              "One page of a do-not-call list, in number order."),
    Procedure(a.AGENTS_CREATE, a.CreateAgent, a.AgentRecordReply,
              "Create an agent (version 1), or a shared template (operator)."),
    Procedure(a.AGENTS_UPDATE, a.UpdateAgent, a.AgentRecordReply,
              "Save a new version of an agent (optionally only at an expected version)."),
    Procedure(a.AGENTS_IMPORT, a.ImportAgent, a.AgentRecordReply,
              "Create an agent, or a new version only if its definition changed (agent files)."),
    Procedure(a.AGENTS_VERSION, a.GetAgentVersion, a.AgentRecordReply,
              "One version of an agent, definition included (the current one by default)."),
    Procedure(a.AGENTS_VERSIONS, a.AgentRef, a.AgentVersionsPage,
              "Every version of an agent, newest first."),
    Procedure(a.AGENTS_ARCHIVE, a.AgentRef, a.AgentRecordReply,
              "Archive a tenant's agent: new calls are refused."),
    Procedure(a.AGENTS_CHECK_CONTEXT, a.CheckCallContext, a.ContextCheckReply,
              "Would a call with this context be accepted (422 naming each variable)?"),
    Procedure(a.TOOLS_CREATE, a.CreateTool, a.ToolRecordReply,
              "Create a tenant's webhook tool (secrets sealed, never returned)."),
    Procedure(a.TOOLS_UPDATE, a.UpdateTool, a.ToolRecordReply,
              "Save a new version of a webhook tool (secrets left out are kept)."),
    Procedure(a.TOOLS_GET, a.ToolRef, a.ToolRecordReply, "A webhook tool's current version."),
    Procedure(a.TOOLS_LIST, a.ListTools, a.ToolsPage, "A tenant's webhook tools."),
    Procedure(a.TOOLS_VERSION, a.GetToolVersion, a.ToolRecordReply,
              "One version of a webhook tool."),
    Procedure(a.TOOLS_VERSIONS, a.ToolRef, a.ToolVersionsPage,
              "Every version of a webhook tool, newest first."),
    Procedure(a.TOOLS_ARCHIVE, a.ToolRef, a.ToolRecordReply, "Archive a webhook tool."),
    Procedure(chains.CHAINS_VERIFY, chains.VerifyChains, chains.ChainReport,
              "Recompute the hash chains of a call or of a tenant's calls since a time, from "
              "audit (voicebus audit verify)."),
    Procedure(rpc.MEMORY_GET, rpc.CallerRef, rpc.CallerMemoryReply,
              "What a tenant's agents remember about a caller (caller memory)."),
    Procedure(rpc.MEMORY_DELETE, rpc.CallerRef, rpc.CallerMemoryReply,
              "Forget a caller: delete their memory profile (404 when there is none)."),
    Procedure(erasure.AUDIT_ERASE, erasure.EraseCaller, erasure.AuditErased,
              "Erase the data of a tenant's calls with this number from audit (events become "
              "tombstones that keep their chain hash; DELETE /api/v1/callers/{number})."),
    Procedure(erasure.CAMPAIGNS_ERASE, erasure.EraseCaller, erasure.CampaignsErased,
              "Delete a number's campaign contacts and their attempts (DNC entries stay)."),
    Procedure(erasure.RECORDINGS_ERASE, erasure.EraseRecordings, erasure.RecordingsErased,
              "Delete the recordings of a tenant's calls (files and objects)."),
    Procedure(retention.AUDIT_RETENTION, retention.ApplyRetention, retention.RetentionApplied,
              "Erase a tenant's events (or only transcripts) older than the cut-offs: "
              "tombstones that keep their chain hash (the edge's retention job)."),
    Procedure(retention.RECORDER_RETENTION, retention.ApplyRetention,
              retention.RetentionApplied,
              "Delete a tenant's recordings of calls started before the cut-off."),
    Procedure(retention.CAMPAIGNS_RETENTION, retention.ApplyRetention,
              retention.RetentionApplied,
              "Delete a tenant's finished contacts (and attempts) older than the cut-off."),
    Procedure(keys.CREDENTIALS_ROTATE, keys.RotateKeys, keys.KeysRotated,
              "Re-encrypt every stored provider account with the edge's newest credentials "
              "key (voicebus keys rotate)."),
    Procedure(keys.TOOL_SECRETS_ROTATE, keys.RotateKeys, keys.KeysRotated,
              "Seal every stored webhook-tool secret again with the orchestrator's newest "
              "key (voicebus keys rotate)."),
    Procedure(k.KB_CREATE, k.CreateKnowledgeBase, k.KnowledgeBaseReply,
              "Create a tenant's knowledge base (409 when it exists)."),
    Procedure(k.KB_LIST, k.ListKnowledgeBases, k.KnowledgeBasesPage,
              "A tenant's knowledge bases."),
    Procedure(k.KB_GET, k.KnowledgeBaseRef, k.KnowledgeBaseReply, "One knowledge base."),
    Procedure(k.KB_DELETE, k.KnowledgeBaseRef, k.KnowledgeBaseReply,
              "Delete a knowledge base with its documents and chunks."),
    Procedure(k.KB_SEARCH, k.SearchKnowledgeBase, k.SearchReply,
              "Search a knowledge base (BM25) as an agent would."),
    Procedure(k.DOCUMENTS_PUT, k.PutDocument, k.DocumentReply,
              "Add or replace a document: parsed, chunked for voice and indexed; the same "
              "content (SHA-256) again is no work (422 naming the file when unreadable)."),
    Procedure(k.DOCUMENTS_LIST, k.KnowledgeBaseRef, k.DocumentsPage,
              "A knowledge base's documents."),
    Procedure(k.DOCUMENTS_DELETE, k.DocumentRef, k.DocumentReply,
              "Delete a document and its chunks."),
)  # fmt: skip
