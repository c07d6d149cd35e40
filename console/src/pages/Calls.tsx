import { FormEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, Call, CallPage, LiveEvent } from "../api";
import { duration, label, when } from "../format";
import { useLiveEvents } from "../live";
import { go } from "../route";

interface Filters {
  since: string;
  until: string;
  agent_id: string;
  direction: string;
  provider: string;
  status: string;
  ended_reason: string;
  phone: string;
}

const EMPTY: Filters = {
  since: "", until: "", agent_id: "", direction: "", provider: "",
  status: "", ended_reason: "", phone: "",
};
const PAGE = 25;
const END_REASONS = [
  "caller_hangup", "agent_hangup", "transferred", "busy", "no_answer", "failed", "canceled",
  "machine_detected", "provider_error", "gateway_lost", "timeout", "error", "idle", "max_duration",
];
const STATUS_OF: Record<string, string> = {
  "call.initiated.v1": "initiated",
  "call.ringing.v1": "ringing",
  "call.started.v1": "in_progress",
  "call.ended.v1": "ended",
};

function query(filters: Filters, before: string | null): string {
  const params = new URLSearchParams({ limit: String(PAGE) });
  for (const [name, value] of Object.entries(filters)) {
    if (!value) continue;
    // datetime-local has no zone: it is the browser's local time.
    params.set(name, name === "since" || name === "until" ? new Date(value).toISOString() : value.trim());
  }
  if (before) params.set("before", before);
  return params.toString();
}

/** A call's row patched with what a lifecycle event says. */
export function patched(call: Call | undefined, event: LiveEvent): Call {
  const data = event.data as Record<string, string | number | null>;
  const base: Call = call ?? {
    call_id: event.call_id, status: "initiated", direction: null, provider: null, agent_id: null,
    from_number: null, to_number: null, initiated_at: null, started_at: null, ended_at: null,
    duration_s: null, ended_reason: null,
  };
  const next: Call = { ...base, status: STATUS_OF[event.type] ?? base.status };
  if (event.type === "call.initiated.v1" || event.type === "call.started.v1") {
    next.direction = (data.direction as string) ?? next.direction;
    next.provider = (data.provider as string) ?? next.provider;
    next.agent_id = (data.agent_id as string) ?? next.agent_id;
    next.from_number = (data.from_number as string) ?? next.from_number;
    next.to_number = (data.to_number as string) ?? next.to_number;
  }
  if (event.type === "call.initiated.v1") next.initiated_at = next.initiated_at ?? event.time;
  if (event.type === "call.started.v1") next.started_at = event.time;
  if (event.type === "call.ended.v1") {
    next.ended_at = event.time;
    next.ended_reason = (data.reason as string) ?? null;
    next.duration_s = (data.duration_s as number) ?? null;
  }
  return next;
}

const RANK: Record<string, number> = { initiated: 0, ringing: 1, in_progress: 2, ended: 3 };
const REMEMBERED = 1000;

/** A page read from the API, with what the live feed said since: a page that was read
 * before an event arrived must not take a call back to an earlier state, and a call the API
 * does not know yet (audit stores a moment later) stays at the top of the first page. */
export function withLive(calls: Call[], live: Map<string, Call>, firstPage: boolean): Call[] {
  const merged = calls.map((call) => {
    const heard = live.get(call.call_id);
    if (!heard || (RANK[heard.status] ?? 0) <= (RANK[call.status] ?? 0)) return call;
    return {
      ...call,
      status: heard.status,
      started_at: call.started_at ?? heard.started_at,
      ended_at: heard.ended_at ?? call.ended_at,
      ended_reason: heard.ended_reason ?? call.ended_reason,
      duration_s: heard.duration_s ?? call.duration_s,
    };
  });
  if (!firstPage) return merged;
  const known = new Set(calls.map((c) => c.call_id));
  // Only calls seen starting: an end heard for a call further down the list is not news.
  const fresh = [...live.values()]
    .filter((c) => !known.has(c.call_id) && (c.initiated_at || c.started_at))
    .reverse();
  return [...fresh, ...merged];
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status}`}>{status === "in_progress" ? "live" : label(status)}</span>;
}

export function Calls() {
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<CallPage>({ calls: [], next_before: null });
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(true);
  const before = cursors[cursors.length - 1];
  const filtered = useMemo(() => Object.values(applied).some(Boolean), [applied]);

  const heard = useRef(new Map<string, Call>());

  const load = useCallback(() => {
    setLoading(true);
    api<CallPage>(`/calls?${query(applied, before)}`)
      .then((result) => {
        setPage({ ...result, calls: withLive(result.calls, heard.current, before === null && !filtered) });
        setError("");
      })
      .catch((err) => setError(err instanceof ApiError ? err.message : "The edge did not answer."))
      .finally(() => setLoading(false));
  }, [applied, before, filtered]);

  useEffect(load, [load]);

  const feed = useLiveEvents((event) => {
    if (!(event.type in STATUS_OF)) return;
    const remembered = heard.current;
    remembered.set(event.call_id, patched(remembered.get(event.call_id), event));
    if (remembered.size > REMEMBERED) remembered.delete(remembered.keys().next().value as string);
    setPage((current) => {
      const index = current.calls.findIndex((c) => c.call_id === event.call_id);
      if (index >= 0) {
        const calls = [...current.calls];
        calls[index] = patched(calls[index], event);
        return { ...current, calls };
      }
      // A new call shows at the top of the first, unfiltered page.
      if (before !== null || filtered) return current;
      return { ...current, calls: [patched(undefined, event), ...current.calls] };
    });
  }, load);

  const live = page.calls.filter((c) => c.status !== "ended").length;

  function apply(event: FormEvent) {
    event.preventDefault();
    setCursors([null]);
    setApplied(filters);
  }

  function field(name: keyof Filters, placeholder: string) {
    return (
      <input
        aria-label={placeholder}
        placeholder={placeholder}
        value={filters[name]}
        onChange={(e) => setFilters({ ...filters, [name]: e.target.value })}
      />
    );
  }

  function choice(name: keyof Filters, options: string[], placeholder: string) {
    return (
      <select aria-label={placeholder} value={filters[name]} onChange={(e) => setFilters({ ...filters, [name]: e.target.value })}>
        <option value="">{placeholder}</option>
        {options.map((o) => (
          <option key={o} value={o}>{label(o)}</option>
        ))}
      </select>
    );
  }

  return (
    <>
      <header className="page-head">
        <div>
          <h1>Calls</h1>
          <p className="muted">Every call of your tenant, newest first. Live calls update as they happen.</p>
        </div>
        <div className="stats">
          <div className="stat">
            <span className={`dot ${feed === "live" ? "on" : ""}`} />
            <span data-testid="feed-state">{feed === "live" ? "Live feed" : "Connecting…"}</span>
          </div>
          <div className="stat"><strong data-testid="live-count">{live}</strong> live on this page</div>
        </div>
      </header>

      <form className="filters card" onSubmit={apply}>
        <label className="range">From<input type="datetime-local" aria-label="From" value={filters.since} onChange={(e) => setFilters({ ...filters, since: e.target.value })} /></label>
        <label className="range">To<input type="datetime-local" aria-label="To" value={filters.until} onChange={(e) => setFilters({ ...filters, until: e.target.value })} /></label>
        {field("agent_id", "Agent")}
        {choice("direction", ["inbound", "outbound"], "Direction")}
        {choice("provider", ["twilio", "plivo", "exotel", "vobiz", "browser"], "Provider")}
        {choice("status", ["initiated", "ringing", "in_progress", "ended"], "Status")}
        {choice("ended_reason", END_REASONS, "End reason")}
        {field("phone", "Phone number")}
        <div className="filter-actions">
          <button className="primary" type="submit">Apply</button>
          <button type="button" className="ghost" onClick={() => { setFilters(EMPTY); setCursors([null]); setApplied(EMPTY); }}>Reset</button>
        </div>
      </form>

      {error && <div className="error" role="alert">{error}</div>}

      <div className="card table-card">
        <table className="calls" data-testid="calls">
          <thead>
            <tr>
              <th>Status</th><th>Started</th><th>Agent</th><th>Direction</th><th>Provider</th>
              <th>From</th><th>To</th><th>Duration</th><th>Ended because</th>
            </tr>
          </thead>
          <tbody>
            {page.calls.map((call) => (
              <tr key={call.call_id} data-call-id={call.call_id} data-status={call.status} onClick={() => go(`/calls/${call.call_id}`)}>
                <td><StatusBadge status={call.status} /></td>
                <td>{when(call.started_at ?? call.initiated_at)}</td>
                <td className="strong">{call.agent_id ?? "—"}</td>
                <td>{label(call.direction)}</td>
                <td>{call.provider ?? "—"}</td>
                <td className="mono">{call.from_number ?? "—"}</td>
                <td className="mono">{call.to_number ?? "—"}</td>
                <td>{call.status === "ended" ? duration(call.duration_s) : "—"}</td>
                <td>{label(call.ended_reason)}</td>
              </tr>
            ))}
            {!loading && page.calls.length === 0 && (
              <tr><td colSpan={9} className="empty">No calls {filtered ? "match these filters" : "yet"}.</td></tr>
            )}
          </tbody>
        </table>
        <div className="pager">
          <button className="ghost" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>← Newer</button>
          <span className="muted">Page {cursors.length}</span>
          <button className="ghost" disabled={!page.next_before} onClick={() => setCursors([...cursors, page.next_before])}>Older →</button>
        </div>
      </div>
    </>
  );
}
