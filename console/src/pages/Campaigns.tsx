import { FormEvent, useCallback, useEffect, useState } from "react";
import { when } from "../format";
import { Campaign, CampaignSpec, FieldsError, problem, send } from "../ops/client";
import { go } from "../route";
import { CampaignBadge } from "./CampaignDetail";
import { DncList } from "./DncList";
import "../ops/ops.css";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export function Campaigns() {
  const [campaigns, setCampaigns] = useState<Campaign[] | null>(null);
  const [error, setError] = useState("");
  const [creating, setCreating] = useState(false);

  const load = useCallback(() => {
    send<Campaign[]>("GET", "/campaigns").then(setCampaigns, (err) => setError(problem(err)));
  }, []);
  useEffect(load, [load]);

  return (
    <>
      <header className="page-head">
        <div>
          <h1>Campaigns</h1>
          <p className="muted">Outbound calling lists: contacts, calling windows, pacing and retries.</p>
        </div>
        <button className="primary" onClick={() => setCreating(!creating)}>
          {creating ? "Close" : "New campaign"}
        </button>
      </header>
      {creating && <CampaignForm onCreated={(c) => go(`/campaigns/${c.campaign_id}`)} />}
      {error && <div className="error" role="alert">{error}</div>}
      <section className="card table-card">
        <table className="plain campaigns" data-testid="campaigns">
          <thead>
            <tr><th>Name</th><th>Agent</th><th>Mode</th><th>Status</th><th>Concurrency</th><th>Created</th></tr>
          </thead>
          <tbody>
            {(campaigns ?? []).map((c) => (
              <tr key={c.campaign_id} data-campaign-id={c.campaign_id} className="clickable" onClick={() => go(`/campaigns/${c.campaign_id}`)}>
                <td className="strong">{c.spec.name}</td>
                <td>{c.spec.agent_id}</td>
                <td>{c.spec.mode}</td>
                <td><CampaignBadge status={c.status} /></td>
                <td>{c.spec.concurrency}</td>
                <td>{when(c.created_at)}</td>
              </tr>
            ))}
            {campaigns?.length === 0 && (
              <tr><td colSpan={6} className="empty">No campaigns yet: create one, then upload its contacts.</td></tr>
            )}
          </tbody>
        </table>
      </section>
      <DncList />
    </>
  );
}

interface Draft {
  name: string;
  agent_id: string;
  caller_ids: string;
  provider: string;
  mode: "conversation" | "notification";
  message: string;
  days: string[];
  start: string;
  end: string;
  time_zone: string;
  concurrency: string;
  pacing_cps: string;
  attempts: string;
  retry_minutes: string;
  ring_timeout_s: string;
}

const EMPTY: Draft = {
  name: "",
  agent_id: "demo",
  caller_ids: "",
  provider: "",
  mode: "conversation",
  message: "",
  days: ["mon", "tue", "wed", "thu", "fri"],
  start: "09:00",
  end: "20:00",
  time_zone: "UTC",
  concurrency: "10",
  pacing_cps: "5",
  attempts: "3",
  retry_minutes: "60",
  ring_timeout_s: "30",
};

/** The form as the API's CampaignSpec (numbers left as typed: the API names bad ones). */
export function specOf(d: Draft): CampaignSpec {
  const attempts = Number(d.attempts);
  const rule = attempts > 1 ? { max_attempts: attempts, delay_s: Math.round(Number(d.retry_minutes) * 60) } : null;
  return {
    name: d.name,
    agent_id: d.agent_id,
    caller_ids: d.caller_ids.split(/[,;\n]+/).map((n) => n.trim()).filter(Boolean),
    provider: d.provider || null,
    mode: d.mode,
    message: d.mode === "notification" ? d.message : null,
    windows: Object.fromEntries(d.days.map((day) => [day, [{ start: d.start, end: d.end }]])),
    default_time_zone: d.time_zone,
    concurrency: Number(d.concurrency),
    pacing_cps: Number(d.pacing_cps),
    retry: { busy: rule, no_answer: rule, failed: rule, machine: null, max_attempts: attempts },
    ring_timeout_s: Number(d.ring_timeout_s),
  };
}

function CampaignForm({ onCreated }: { onCreated: (campaign: Campaign) => void }) {
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [failure, setFailure] = useState<FieldsError | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<Draft>) => setDraft((d) => ({ ...d, ...patch }));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError("");
    setFailure(null);
    try {
      onCreated(await send<Campaign>("POST", "/campaigns", specOf(draft)));
    } catch (err) {
      if (err instanceof FieldsError && err.fields.length > 0) setFailure(err);
      else setError(problem(err));
    } finally {
      setBusy(false);
    }
  }

  const field = (id: string, title: string, input: JSX.Element, apiField: string, hint?: string) => {
    const why = failure?.about(apiField) ?? "";
    return (
      <div className={`field ${why ? "invalid" : ""}`}>
        <label htmlFor={id}>{title}</label>
        {input}
        {why ? <div className="field-error" role="alert" data-field={apiField}>{why}</div> : hint && <div className="hint">{hint}</div>}
      </div>
    );
  };

  return (
    <form className="card campaign-form" onSubmit={submit} data-testid="campaign-form">
      <h2>New campaign</h2>
      <div className="form-grid">
        {field("c-name", "Name", <input id="c-name" value={draft.name} onChange={(e) => set({ name: e.target.value })} />, "name")}
        {field("c-agent", "Agent", <input id="c-agent" value={draft.agent_id} onChange={(e) => set({ agent_id: e.target.value })} />, "agent_id")}
        {field(
          "c-callers",
          "Caller ids",
          <input id="c-callers" placeholder="+14155550100, …" value={draft.caller_ids} onChange={(e) => set({ caller_ids: e.target.value })} />,
          "caller_ids",
          "E.164 numbers presented, used in turn.",
        )}
        {field(
          "c-provider",
          "Provider",
          <select id="c-provider" value={draft.provider} onChange={(e) => set({ provider: e.target.value })}>
            <option value="">tenant default</option>
            {["twilio", "plivo", "exotel", "vobiz"].map((p) => <option key={p}>{p}</option>)}
          </select>,
          "provider",
        )}
        {field(
          "c-mode",
          "Mode",
          <select id="c-mode" value={draft.mode} onChange={(e) => set({ mode: e.target.value as Draft["mode"] })}>
            <option value="conversation">conversation (the agent talks)</option>
            <option value="notification">notification (a message is read)</option>
          </select>,
          "mode",
        )}
        {draft.mode === "notification" &&
          field("c-message", "Message", <input id="c-message" value={draft.message} onChange={(e) => set({ message: e.target.value })} />, "message")}
        {field("c-concurrency", "Concurrency", <input id="c-concurrency" type="number" value={draft.concurrency} onChange={(e) => set({ concurrency: e.target.value })} />, "concurrency", "Calls at once.")}
        {field("c-pacing", "Dials per second", <input id="c-pacing" type="number" step="0.1" value={draft.pacing_cps} onChange={(e) => set({ pacing_cps: e.target.value })} />, "pacing_cps")}
        {field("c-attempts", "Attempts per contact", <input id="c-attempts" type="number" value={draft.attempts} onChange={(e) => set({ attempts: e.target.value })} />, "retry", "1: no retries.")}
        {field("c-retry", "Retry after (minutes)", <input id="c-retry" type="number" value={draft.retry_minutes} onChange={(e) => set({ retry_minutes: e.target.value })} />, "retry.busy")}
        {field("c-ring", "Ring timeout (s)", <input id="c-ring" type="number" value={draft.ring_timeout_s} onChange={(e) => set({ ring_timeout_s: e.target.value })} />, "ring_timeout_s")}
        {field("c-zone", "Default time zone", <input id="c-zone" value={draft.time_zone} onChange={(e) => set({ time_zone: e.target.value })} />, "default_time_zone")}
      </div>
      {field(
        "c-window-start",
        "Calling window (callee's local time)",
        <div className="window">
          <div className="days">
            {DAYS.map((day) => (
              <label key={day} className="check day">
                <input
                  type="checkbox"
                  checked={draft.days.includes(day)}
                  onChange={(e) => set({ days: e.target.checked ? [...draft.days, day] : draft.days.filter((x) => x !== day) })}
                />
                {day}
              </label>
            ))}
          </div>
          <input id="c-window-start" aria-label="Window start" type="time" value={draft.start} onChange={(e) => set({ start: e.target.value })} />
          <span className="muted">to</span>
          <input aria-label="Window end" type="time" value={draft.end} onChange={(e) => set({ end: e.target.value })} />
        </div>,
        "windows",
      )}
      {error && <div className="error" role="alert">{error}</div>}
      {failure && <div className="error" role="alert">Check the fields marked in red.</div>}
      <div className="form-actions">
        <button className="primary" type="submit" disabled={busy}>{busy ? "Creating…" : "Create campaign"}</button>
      </div>
    </form>
  );
}
