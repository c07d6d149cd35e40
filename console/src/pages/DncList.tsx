import { FormEvent, useState } from "react";
import { FieldsError, problem, send } from "../ops/client";

interface DncReply {
  changed: number;
  invalid: string[];
}

/** The tenant's (or one campaign's) do-not-call list: add and remove numbers. */
export function DncList({ campaignId }: { campaignId?: string }) {
  const [numbers, setNumbers] = useState("");
  const [reason, setReason] = useState("");
  const [result, setResult] = useState("");
  const [error, setError] = useState("");

  async function change(event: FormEvent, remove: boolean) {
    event.preventDefault();
    setError("");
    setResult("");
    const list = numbers.split(/[\s,;]+/).filter(Boolean);
    try {
      const reply = await send<DncReply>("POST", remove ? "/dnc/remove" : "/dnc", {
        campaign_id: campaignId ?? null,
        numbers: list,
        reason: reason || null,
      });
      const verb = remove ? "Removed" : "Added";
      const bad = reply.invalid.length ? ` Not understood: ${reply.invalid.join(", ")}.` : "";
      setResult(`${verb} ${reply.changed} of ${list.length} number${list.length === 1 ? "" : "s"}.${bad}`);
      if (!reply.invalid.length) setNumbers("");
    } catch (err) {
      setError(err instanceof FieldsError && err.fields.length ? err.fields.map((f) => `${f.field}: ${f.message}`).join("; ") : problem(err));
    }
  }

  return (
    <section className="card" data-testid="dnc">
      <h2>Do not call {campaignId ? "(this campaign)" : "(every campaign)"}</h2>
      <p className="muted">Numbers here are never dialed; contacts already loaded are skipped when their turn comes.</p>
      <form className="inline-form" onSubmit={(e) => change(e, false)}>
        <input aria-label="DNC numbers" className="grow" placeholder="+442079460123, +14155550100" value={numbers} onChange={(e) => setNumbers(e.target.value)} />
        <input aria-label="DNC reason" placeholder="reason (optional)" value={reason} onChange={(e) => setReason(e.target.value)} />
        <button className="primary" type="submit" disabled={!numbers.trim()}>Add to list</button>
        <button className="ghost" type="button" disabled={!numbers.trim()} onClick={(e) => change(e, true)}>Remove</button>
      </form>
      {result && <div className="ok" data-testid="dnc-result">{result}</div>}
      {error && <div className="error" role="alert">{error}</div>}
    </section>
  );
}
