import { FormEvent, useCallback, useEffect, useState } from "react";
import { when } from "../format";
import { DncEntry, FieldsError, problem, send } from "../ops/client";

interface DncReply {
  changed: number;
  invalid: string[];
}

const PAGE = 100;

/** The tenant's (or one campaign's) do-not-call list: view, add and remove numbers. */
export function DncList({ campaignId }: { campaignId?: string }) {
  const [entries, setEntries] = useState<DncEntry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [numbers, setNumbers] = useState("");
  const [reason, setReason] = useState("");
  const [result, setResult] = useState("");
  const [error, setError] = useState("");
  const scope = campaignId ? `campaign_id=${encodeURIComponent(campaignId)}&` : "";

  const load = useCallback(
    (after: string | null = null) => {
      const cursor = after ? `&after=${encodeURIComponent(after)}` : "";
      send<{ entries: DncEntry[]; next_after: string | null }>("GET", `/dnc?${scope}limit=${PAGE}${cursor}`).then(
        (page) => {
          setEntries((shown) => (after ? [...shown, ...page.entries] : page.entries));
          setNext(page.next_after);
        },
        (err) => setError(problem(err)),
      );
    },
    [scope],
  );
  useEffect(() => load(), [load]);

  async function change(list: string[], remove: boolean) {
    setError("");
    setResult("");
    try {
      const reply = await send<DncReply>("POST", remove ? "/dnc/remove" : "/dnc", {
        campaign_id: campaignId ?? null,
        numbers: list,
        reason: remove ? null : reason || null,
      });
      const verb = remove ? "Removed" : "Added";
      const bad = reply.invalid.length ? ` Not understood: ${reply.invalid.join(", ")}.` : "";
      setResult(`${verb} ${reply.changed} of ${list.length} number${list.length === 1 ? "" : "s"}.${bad}`);
      if (!reply.invalid.length) setNumbers("");
      load();
    } catch (err) {
      setError(err instanceof FieldsError && err.fields.length ? err.fields.map((f) => `${f.field}: ${f.message}`).join("; ") : problem(err));
    }
  }

  function submit(event: FormEvent, remove: boolean) {
    event.preventDefault();
    change(numbers.split(/[,;\n]+/).map((n) => n.trim()).filter(Boolean), remove);
  }

  return (
    <section className="card" data-testid="dnc">
      <h2>Do not call {campaignId ? "(this campaign)" : "(every campaign)"}</h2>
      <p className="muted">Numbers here are never dialed; contacts already loaded are skipped when their turn comes.</p>
      <table className="plain dnc-list" data-testid="dnc-list">
        <thead><tr><th>Number</th><th>Reason</th><th>Added</th><th /></tr></thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.phone} data-phone={e.phone}>
              <td className="mono">{e.phone}</td>
              <td>{e.reason ?? <span className="muted">—</span>}</td>
              <td>{when(e.added_at)}</td>
              <td className="right"><button className="ghost" onClick={() => change([e.phone], true)}>Remove</button></td>
            </tr>
          ))}
          {entries.length === 0 && <tr><td colSpan={4} className="empty">No numbers on this list.</td></tr>}
        </tbody>
      </table>
      {next && <button className="ghost more" onClick={() => load(next)}>Show more</button>}
      <form className="inline-form" onSubmit={(e) => submit(e, false)}>
        <input aria-label="DNC numbers" className="grow" placeholder="+442079460123, +14155550100" value={numbers} onChange={(e) => setNumbers(e.target.value)} />
        <input aria-label="DNC reason" placeholder="reason (optional)" value={reason} onChange={(e) => setReason(e.target.value)} />
        <button className="primary" type="submit" disabled={!numbers.trim()}>Add to list</button>
        <button className="ghost" type="button" disabled={!numbers.trim()} onClick={(e) => submit(e, true)}>Remove numbers</button>
      </form>
      {result && <div className="ok" data-testid="dnc-result">{result}</div>}
      {error && <div className="error" role="alert">{error}</div>}
    </section>
  );
}
