import { FormEvent, useEffect, useState } from "react";
import { AgentProfile, AgentRecord } from "../agents/types";
import { api, ApiError } from "../api";
import { go } from "../route";
import "../agents/agents.css";

const STARTER = {
  system_prompt: "You are a friendly phone agent. Keep answers short.",
  greeting: "Hi, how can I help?",
  llm: { engine: "scripted" },
};

export function Agents() {
  const [agents, setAgents] = useState<AgentProfile[] | null>(null);
  const [error, setError] = useState("");
  const [agentId, setAgentId] = useState("");
  const [name, setName] = useState("");

  useEffect(() => {
    api<AgentProfile[]>("/agents").then(setAgents, (err) =>
      setError(err instanceof ApiError ? err.message : "The edge did not answer."),
    );
  }, []);

  async function create(event: FormEvent) {
    event.preventDefault();
    setError("");
    try {
      const record = await api<AgentRecord>("/agents", {
        method: "POST",
        body: JSON.stringify({ agent_id: agentId.trim(), definition: { ...STARTER, name: name.trim() || agentId.trim() } }),
      });
      go(`/agents/${encodeURIComponent(record.agent_id)}`);
    } catch (err) {
      if (err instanceof ApiError && err.fields.length) {
        setError(err.fields.map((f) => `${f.field}: ${f.message}`).join("; "));
      } else {
        setError(err instanceof ApiError ? err.message : "The edge did not answer.");
      }
    }
  }

  const own = (agents ?? []).filter((a) => !a.template);
  const templates = (agents ?? []).filter((a) => a.template);
  return (
    <>
      <header className="page-head">
        <div>
          <h1>Agents</h1>
          <p className="muted">Prompts, voices, tools and flows. Every save is a new version; new calls use the live one.</p>
        </div>
        <div className="stats">
          <div className="stat"><strong data-testid="agent-count">{own.length}</strong> agents</div>
          <div className="stat"><strong>{templates.length}</strong> shared templates</div>
        </div>
      </header>
      <form className="card inline-form new-agent" onSubmit={create}>
        <strong>New agent</strong>
        <input aria-label="New agent id" placeholder="id, e.g. support" value={agentId} onChange={(e) => setAgentId(e.target.value)} required />
        <input aria-label="New agent name" placeholder="Display name" value={name} onChange={(e) => setName(e.target.value)} />
        <button className="primary" type="submit">Create agent</button>
      </form>
      {error && <div className="error" role="alert">{error}</div>}
      <div className="card table-card">
        <table className="calls" data-testid="agents">
          <thead>
            <tr><th>Agent</th><th>Name</th><th>Language</th><th>Speech</th><th>Live version</th><th>Kind</th></tr>
          </thead>
          <tbody>
            {[...own, ...templates].map((agent) => (
              <tr key={agent.agent_id} data-agent-id={agent.agent_id} onClick={() => go(`/agents/${encodeURIComponent(agent.agent_id)}`)}>
                <td className="strong mono">{agent.agent_id}</td>
                <td>{agent.name}</td>
                <td>{agent.language}</td>
                <td>
                  <span className="chip">STT {agent.stt.engine}</span>
                  <span className="chip">TTS {agent.tts.engine}</span>
                </td>
                <td>{agent.version ? <span className="badge status-live">v{agent.version}</span> : "—"}</td>
                <td>{agent.template ? <span className="tag">template</span> : <span className="tag own">own</span>}</td>
              </tr>
            ))}
            {agents !== null && agents.length === 0 && (
              <tr><td colSpan={6} className="empty">No agents yet: create one above.</td></tr>
            )}
            {agents === null && !error && (
              <tr><td colSpan={6} className="empty">Loading…</td></tr>
            )}
          </tbody>
        </table>
      </div>
    </>
  );
}
