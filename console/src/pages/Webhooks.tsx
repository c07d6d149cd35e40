import { FormEvent, useCallback, useEffect, useState } from "react";
import { when } from "../format";
import { Delivery, FieldsError, problem, send, Webhook } from "../ops/client";
import "../ops/ops.css";

/** Webhook subscriptions (the signing secret shown once) and each one's delivery log. */
export function Webhooks() {
  const [hooks, setHooks] = useState<Webhook[]>([]);
  const [url, setUrl] = useState("");
  const [types, setTypes] = useState("call.ended, call.analyzed");
  const [description, setDescription] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [failure, setFailure] = useState<FieldsError | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const load = useCallback(() => {
    send<Webhook[]>("GET", "/webhooks").then(setHooks, (err) => setError(problem(err)));
  }, []);
  useEffect(load, [load]);

  async function create(event: FormEvent) {
    event.preventDefault();
    setError("");
    setFailure(null);
    try {
      const hook = await send<Webhook>("POST", "/webhooks", {
        url,
        event_types: types.split(/[\s,]+/).filter(Boolean),
        description,
      });
      setSecret(hook.secret ?? null);
      setUrl("");
      setDescription("");
      setOpen(hook.webhook_id);
      load();
    } catch (err) {
      if (err instanceof FieldsError && err.fields.length) setFailure(err);
      else setError(problem(err));
    }
  }

  async function remove(id: string) {
    if (!window.confirm("Delete this subscription, its pending deliveries and its log?")) return;
    try {
      await send("DELETE", `/webhooks/${id}`);
      if (open === id) setOpen(null);
      load();
    } catch (err) {
      setError(problem(err));
    }
  }

  return (
    <section className="card" data-testid="webhooks">
      <h2>Webhooks</h2>
      <p className="muted">Events are posted to your URL, signed with the subscription's secret; failures are retried, then kept as dead letters you can redeliver.</p>
      {secret && (
        <div className="notice" data-testid="webhook-secret">
          <div className="strong">Signing secret: copy it now, it is not shown again.</div>
          <code className="secret">{secret}</code>
          <button className="ghost" onClick={() => setSecret(null)}>Done</button>
        </div>
      )}
      {error && <div className="error" role="alert">{error}</div>}
      <table className="plain" data-testid="webhook-list">
        <thead><tr><th>URL</th><th>Events</th><th>Description</th><th>Created</th><th /></tr></thead>
        <tbody>
          {hooks.map((h) => (
            <tr key={h.webhook_id} data-webhook-id={h.webhook_id} className={open === h.webhook_id ? "selected" : ""}>
              <td className="mono">{h.url}</td>
              <td>{h.event_types.map((t) => <span key={t} className="chip">{t}</span>)}</td>
              <td>{h.description || <span className="muted">—</span>}</td>
              <td>{when(h.created_at)}</td>
              <td className="right">
                <button className="ghost" onClick={() => setOpen(open === h.webhook_id ? null : h.webhook_id)}>Deliveries</button>
                <button className="danger ghost" onClick={() => remove(h.webhook_id)}>Delete</button>
              </td>
            </tr>
          ))}
          {hooks.length === 0 && <tr><td colSpan={5} className="empty">No subscriptions.</td></tr>}
        </tbody>
      </table>
      <form className="inline-form" onSubmit={create}>
        <div className={`field grow ${failure?.about("url") ? "invalid" : ""}`}>
          <input aria-label="Webhook URL" placeholder="https://crm.example.com/voicebus" value={url} onChange={(e) => setUrl(e.target.value)} />
          {failure?.about("url") && <div className="field-error" role="alert">{failure.about("url")}</div>}
        </div>
        <div className={`field ${failure?.about("event_types") ? "invalid" : ""}`}>
          <input aria-label="Event types" value={types} onChange={(e) => setTypes(e.target.value)} />
          {failure?.about("event_types") && <div className="field-error" role="alert">{failure.about("event_types")}</div>}
        </div>
        <input aria-label="Webhook description" placeholder="description" value={description} onChange={(e) => setDescription(e.target.value)} />
        <button className="primary" type="submit" disabled={!url}>Add webhook</button>
      </form>
      {open && <Deliveries webhookId={open} />}
    </section>
  );
}

function Deliveries({ webhookId }: { webhookId: string }) {
  const [deliveries, setDeliveries] = useState<Delivery[] | null>(null);
  const [error, setError] = useState("");

  const load = useCallback(() => {
    send<{ deliveries: Delivery[] }>("GET", `/webhooks/${webhookId}/deliveries?limit=50`).then(
      (r) => setDeliveries(r.deliveries),
      (err) => setError(problem(err)),
    );
  }, [webhookId]);
  useEffect(load, [load]);

  async function redeliver(id: string) {
    setError("");
    try {
      await send("POST", `/webhooks/${webhookId}/deliveries/${id}/redeliver`);
      load();
    } catch (err) {
      setError(problem(err));
    }
  }

  return (
    <div className="deliveries" data-testid="deliveries">
      <div className="progress-head">
        <h3>Delivery log</h3>
        <button className="ghost" onClick={load}>Refresh</button>
      </div>
      {error && <div className="error" role="alert">{error}</div>}
      <table className="plain">
        <thead><tr><th>Event</th><th>Call</th><th>Status</th><th>Attempts</th><th>Last answer</th><th>Created</th><th /></tr></thead>
        <tbody>
          {(deliveries ?? []).map((d) => (
            <tr key={d.delivery_id} data-delivery-id={d.delivery_id} data-status={d.status}>
              <td>{d.event_type}</td>
              <td className="mono">{d.call_id.slice(0, 12)}</td>
              <td><span className={`badge delivery-${d.status}`}>{d.status}</span></td>
              <td>{d.attempts}</td>
              <td className="mono">{d.last_status_code ?? d.last_error ?? "—"}</td>
              <td>{when(d.created_at)}</td>
              <td className="right"><button className="ghost" onClick={() => redeliver(d.delivery_id)}>Redeliver</button></td>
            </tr>
          ))}
          {deliveries?.length === 0 && <tr><td colSpan={7} className="empty">Nothing delivered yet.</td></tr>}
        </tbody>
      </table>
    </div>
  );
}
