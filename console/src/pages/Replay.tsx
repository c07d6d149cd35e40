// "Replay against version…": a finished call's caller turns run through another version of its
// agent (POST /calls/{id}/replay; tenant tools are not called, the call's results are given
// back), shown turn by turn beside what the call did, each difference marked.

import { useEffect, useState } from "react";
import { api, ApiError } from "../api";
import { AgentVersionInfo } from "../agents/types";

interface ToolStep {
  name: string;
  arguments: Record<string, unknown>;
  ok: boolean | null;
  error: string | null;
}

interface Turn {
  caller: { text?: string | null; dtmf?: string | null } | null;
  reply: string;
  tools: ToolStep[];
  nodes: string[];
  ended: boolean;
}

/** What differs in a turn, as the API names it ("transitions": the flow nodes entered). */
type DiffKind = "caller" | "reply" | "transitions" | "tools" | "end";

interface ReplayReport {
  original_version: number | null;
  replayed_version: number | null;
  original: Turn[];
  replayed: Turn[];
  differences: { turn: number; kind: DiffKind }[];
}

type ReplayState =
  | { kind: "idle" }
  | { kind: "running" }
  | { kind: "error"; message: string }
  | { kind: "done"; report: ReplayReport };

function callerLine(turn: Turn | undefined, index: number): string {
  if (index === 0) return "Before the caller spoke";
  const caller = turn?.caller;
  if (!caller) return `Turn ${index}`;
  return caller.dtmf ? `Caller pressed ${caller.dtmf}` : `Caller: “${caller.text}”`;
}

/** One side of a turn: reply, flow path, tools with their arguments, the end. */
function TurnSide({ turn, changed, side }: { turn: Turn | undefined; changed: Set<DiffKind>; side: string }) {
  const mark = (kind: DiffKind) => (changed.has(kind) ? "replay-row changed" : "replay-row");
  if (!turn) return <div className="replay-side muted" data-side={side}>No such turn.</div>;
  return (
    <div className="replay-side" data-side={side}>
      <div className={mark("reply")} data-kind="reply">
        <span className="replay-label">Reply</span>
        <span>{turn.reply || <span className="muted">(silent)</span>}</span>
      </div>
      <div className={mark("transitions")} data-kind="transitions">
        <span className="replay-label">Flow</span>
        <span className="mono">{turn.nodes.length ? turn.nodes.join(" → ") : "—"}</span>
      </div>
      <div className={mark("tools")} data-kind="tools">
        <span className="replay-label">Tools</span>
        <span className="mono">
          {turn.tools.length === 0 && "—"}
          {turn.tools.map((tool, i) => (
            <div key={i}>
              {tool.name}({JSON.stringify(tool.arguments)}){tool.ok === false && <span className="bad"> failed: {tool.error}</span>}
            </div>
          ))}
        </span>
      </div>
      {(turn.ended || changed.has("end")) && (
        <div className={mark("end")} data-kind="end">
          <span className="replay-label">End</span>
          <span>{turn.ended ? "ends the call" : "goes on"}</span>
        </div>
      )}
    </div>
  );
}

function ReplayResult({ report }: { report: ReplayReport }) {
  const from = report.original_version ? `v${report.original_version}` : "the call";
  const to = `v${report.replayed_version ?? "?"}`;
  if (report.differences.length === 0) {
    return <p className="saved" data-testid="replay-status">No differences: {to} answers this call as {from} did.</p>;
  }
  const byTurn = new Map<number, Set<DiffKind>>();
  for (const d of report.differences) byTurn.set(d.turn, (byTurn.get(d.turn) ?? new Set()).add(d.kind));
  const count = Math.max(report.original.length, report.replayed.length);
  return (
    <>
      <p className="replay-differs" data-testid="replay-status">
        {byTurn.size} of {count} turns differ between {from} and {to}.
      </p>
      <div className="replay-head">
        <span>The call ({from})</span>
        <span>Replayed ({to})</span>
      </div>
      <ol className="replay-turns" data-testid="replay-diff">
        {Array.from({ length: count }, (_, i) => {
          const changed = byTurn.get(i) ?? new Set<DiffKind>();
          return (
            <li key={i} className={`replay-turn ${changed.size ? "differs" : "same"}`} data-turn={i}>
              <div className="replay-caller">
                {callerLine(report.original[i] ?? report.replayed[i], i)}
                {changed.size === 0 && <span className="tag">same</span>}
              </div>
              <div className="replay-sides">
                <TurnSide turn={report.original[i]} changed={changed} side="original" />
                <TurnSide turn={report.replayed[i]} changed={changed} side="replayed" />
              </div>
            </li>
          );
        })}
      </ol>
    </>
  );
}

/** The replay control of a finished call: pick a version of its agent, run, read the diff. */
export function Replay({ callId, agentId, ranVersion }: { callId: string; agentId: string; ranVersion: number | null }) {
  const [versions, setVersions] = useState<AgentVersionInfo[]>([]);
  const [picked, setPicked] = useState<number | null>(null);
  const [unlisted, setUnlisted] = useState("");
  const [state, setState] = useState<ReplayState>({ kind: "idle" });
  // Until someone picks one: the newest version the call did not run (the list is newest first).
  const version = picked ?? versions.find((v) => v.version !== ranVersion)?.version ?? versions[0]?.version ?? null;

  useEffect(() => {
    api<AgentVersionInfo[]>(`/agents/${encodeURIComponent(agentId)}/versions`).then(
      setVersions,
      (err) => setUnlisted(err instanceof ApiError ? err.message : "The edge did not answer."),
    );
  }, [agentId]);

  async function run() {
    setState({ kind: "running" });
    try {
      const report = await api<ReplayReport>(`/calls/${callId}/replay`, { method: "POST", body: JSON.stringify({ agent_version: version }) });
      setState({ kind: "done", report });
    } catch (err) {
      setState({ kind: "error", message: err instanceof ApiError ? err.message : "The edge did not answer." });
    }
  }

  return (
    <section className="card replay" data-testid="replay">
      <div className="replay-top">
        <h2>Replay against version…</h2>
        <div className="replay-controls">
          <select aria-label="Agent version" value={version ?? ""} onChange={(e) => setPicked(Number(e.target.value))} disabled={!versions.length}>
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}{v.version === ranVersion ? " (this call)" : ""}
              </option>
            ))}
          </select>
          <button type="button" className="primary" disabled={version === null || state.kind === "running"} onClick={run}>
            {state.kind === "running" ? "Replaying…" : "Replay"}
          </button>
        </div>
      </div>
      <p className="muted small">
        The caller’s turns run through the chosen version. The tenant’s tools (webhooks, MCP) are not called: the call’s own results are given back.
      </p>
      {unlisted && <p className="muted" data-testid="replay-status">No versions of {agentId} to replay against: {unlisted}</p>}
      {state.kind === "running" && <p className="muted" data-testid="replay-status">Replaying the call…</p>}
      {state.kind === "error" && <p className="error" role="alert" data-testid="replay-status">Replay failed: {state.message}</p>}
      {state.kind === "done" && <ReplayResult report={state.report} />}
    </section>
  );
}
