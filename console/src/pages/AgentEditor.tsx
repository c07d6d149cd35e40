import { useEffect, useRef, useState } from "react";
import { AgentForm } from "../agents/AgentForm";
import { Point } from "../agents/flowGraph";
import { FlowCanvas } from "../agents/FlowCanvas";
import { AgentDefinition, AgentRecord, FieldErrors, toolNames } from "../agents/types";
import { Versions } from "../agents/Versions";
import "../agents/agents.css";
import { api, ApiError } from "../api";
import { when } from "../format";

const TABS = [
  ["settings", "Settings"],
  ["flow", "Flow"],
  ["versions", "Versions"],
] as const;

/** One agent: its settings, its flow on a canvas and its versions; saving makes a new version. */
export function AgentEditor({ agentId, tab }: { agentId: string; tab: string }) {
  const path = `/agents/${encodeURIComponent(agentId)}`;
  const [record, setRecord] = useState<AgentRecord | null>(null);
  const [draft, setDraft] = useState<AgentDefinition | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [status, setStatus] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [saving, setSaving] = useState(false);
  const placed = useRef<Record<string, Point>>({});

  useEffect(() => {
    api<AgentRecord>(path).then(
      (loaded) => { setRecord(loaded); setDraft(loaded.definition); },
      (err) => setStatus({ kind: "error", text: err instanceof ApiError ? err.message : "The edge did not answer." }),
    );
  }, [path]);

  const dirty = record !== null && draft !== null && JSON.stringify(record.definition) !== JSON.stringify(draft);

  function loaded(next: AgentRecord, text: string) {
    setRecord(next);
    setDraft(next.definition);
    setErrors({});
    setStatus({ kind: "ok", text });
  }

  async function save() {
    if (!record || !draft) return;
    setSaving(true);
    setStatus(null);
    try {
      const saved = record.template
        ? await api<AgentRecord>("/agents", { method: "POST", body: JSON.stringify({ agent_id: agentId, definition: draft }) })
        : await api<AgentRecord>(path, { method: "PUT", body: JSON.stringify({ definition: draft, expected_version: record.current_version }) });
      loaded(saved, `Saved as v${saved.version}: new calls use it.`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && err.fields.length) {
        setErrors(Object.fromEntries(err.fields.map((f) => [f.field, f.message])));
        setStatus({ kind: "error", text: `Not saved: the API found ${err.fields.length} problem${err.fields.length > 1 ? "s" : ""}.` });
      } else if (err instanceof ApiError && err.status === 409) {
        setStatus({ kind: "error", text: "Not saved: someone saved a newer version. Reload to see it." });
      } else {
        setStatus({ kind: "error", text: err instanceof ApiError ? `Not saved: ${err.message}` : "The edge did not answer." });
      }
    } finally {
      setSaving(false);
    }
  }

  if (!record || !draft) {
    return (
      <>
        <a className="back" href="#/agents">← Agents</a>
        {status ? <div className="error" role="alert">{status.text}</div> : <div className="muted">Loading…</div>}
      </>
    );
  }

  const problems = Object.entries(errors);
  return (
    <>
      <a className="back" href="#/agents">← Agents</a>
      <header className="page-head agent-head">
        <div>
          <h1>
            {draft.name || agentId}
            <span className="badge status-live" data-testid="live-version">v{record.current_version} live</span>
            {record.template && <span className="tag">shared template: saving makes your own copy</span>}
          </h1>
          <p className="muted">
            <span className="mono">{agentId}</span> · {draft.flow ? `flow of ${draft.flow.nodes.length} nodes` : "free conversation"} · saved {when(record.created_at)}
          </p>
        </div>
        <div className="head-actions">
          <a className="button ghost" href={`/browser?agent=${encodeURIComponent(agentId)}`} target="_blank" rel="noreferrer">
            ☎ Talk to this agent
          </a>
          <button type="button" className="ghost" disabled={!dirty || saving} onClick={() => { setDraft(record.definition); setErrors({}); }}>Discard</button>
          <button type="button" className="primary" disabled={!dirty || saving} onClick={save}>
            {saving ? "Saving…" : "Save new version"}
          </button>
        </div>
      </header>
      <nav className="tabs">
        {TABS.map(([id, label]) => (
          <a key={id} href={`#/agents/${encodeURIComponent(agentId)}/${id}`} className={tab === id ? "active" : ""}>
            {label}
            {id === "flow" && problems.some(([f]) => f.startsWith("flow")) && <span className="dot bad" />}
          </a>
        ))}
        {dirty && <span className="unsaved">Unsaved changes</span>}
      </nav>
      {status && (
        <div className={status.kind === "ok" ? "saved" : "error"} role={status.kind === "ok" ? "status" : "alert"} data-testid="save-status">
          {status.text}
          {problems.length > 0 && (
            <ul className="problems">
              {problems.map(([field, message]) => <li key={field}><span className="mono">{field}</span>: {message}</li>)}
            </ul>
          )}
        </div>
      )}
      {tab === "settings" && <AgentForm definition={draft} errors={errors} onChange={setDraft} />}
      {tab === "flow" && (draft.flow ? (
        <FlowCanvas flow={draft.flow} tools={toolNames(draft)} errors={errors} placed={placed} onChange={(flow) => setDraft({ ...draft, flow })} />
      ) : (
        <div className="card empty-flow">
          <p>This agent talks freely: it has no flow.</p>
          <button type="button" className="primary" onClick={() => setDraft({ ...draft, flow: { initial: "start", nodes: [{ id: "start", task: "Greet the caller and ask how you can help." }] } })}>
            Start a flow
          </button>
        </div>
      ))}
      {tab === "versions" && (
        <Versions agentId={agentId} current={record.current_version} onLive={(live) => loaded(live, `v${live.version} is live: new calls use it.`)} />
      )}
    </>
  );
}
