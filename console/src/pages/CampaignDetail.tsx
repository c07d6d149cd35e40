import { ChangeEvent, useCallback, useEffect, useRef, useState } from "react";
import { API } from "../api";
import { label, when } from "../format";
import { useCampaignFeed } from "../ops/campaignFeed";
import { Campaign, FieldsError, problem, Progress, send, upload, UploadReport } from "../ops/client";
import { DncList } from "./DncList";
import "../ops/ops.css";

const ACTIONS: Record<string, string[]> = {
  draft: ["start", "cancel"],
  scheduled: ["pause", "cancel"],
  running: ["pause", "cancel"],
  paused: ["resume", "cancel"],
  completed: [],
  cancelled: [],
};
const STATES = ["pending", "dialing", "retry", "done", "dnc", "expired"];
// Polled as well as fed live: fast while the feed is down, slowly as a safety net otherwise.
const POLL_MS = 2000;
const POLL_LIVE_MS = 10000;

export function CampaignBadge({ status }: { status: string }) {
  return <span className={`badge campaign-${status}`} data-testid="campaign-status">{status}</span>;
}

/** Dials per minute over the polls of the last minute. */
function dialRate(samples: { at: number; dialed: number }[]): number | null {
  if (samples.length < 2) return null;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const minutes = (last.at - first.at) / 60000;
  return minutes > 0 ? (last.dialed - first.dialed) / minutes : null;
}

export function CampaignDetail({ campaignId }: { campaignId: string }) {
  const [campaign, setCampaign] = useState<Campaign | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState("");
  const [stale, setStale] = useState(false);
  const samples = useRef<{ at: number; dialed: number }[]>([]);

  const load = useCallback(() => {
    // A refresh that fails is retried by the next poll: it only marks the figures stale.
    send<Campaign>("GET", `/campaigns/${campaignId}`).then(setCampaign, (err) =>
      setCampaign((current) => {
        if (current === null) setError(problem(err));
        else setStale(true);
        return current;
      }),
    );
    send<Progress>("GET", `/campaigns/${campaignId}/progress`).then(
      (p) => {
        counted(p);
        setStale(false);
      },
      () => setStale(true),
    );
  }, [campaignId]);

  function counted(p: Progress) {
    const now = Date.now();
    samples.current = [...samples.current.filter((s) => now - s.at < 60000), { at: now, dialed: p.dialed }];
    setProgress(p);
  }

  // A progress event carries the counts and the status; an outcome nudges a reload.
  const live = useCampaignFeed(
    campaignId,
    (p) => {
      counted(p);
      setCampaign((c) => (c && c.status !== p.status ? { ...c, status: p.status } : c));
    },
    load,
  );
  useEffect(load, [load]);

  // Live progress: polled while the campaign can still change.
  const active = campaign !== null && !["completed", "cancelled"].includes(campaign.status);
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(load, live ? POLL_LIVE_MS : POLL_MS);
    return () => window.clearInterval(timer);
  }, [active, live, load]);

  async function act(action: string) {
    setError("");
    try {
      setCampaign(await send<Campaign>("POST", `/campaigns/${campaignId}/${action}`));
      load();
    } catch (err) {
      setError(problem(err));
    }
  }

  if (!campaign) return error ? <div className="error" role="alert">{error}</div> : <div className="muted">Loading…</div>;
  const rate = dialRate(samples.current);
  const spec = campaign.spec;
  const done = progress ? (progress.by_state.done ?? 0) + (progress.by_state.dnc ?? 0) + (progress.by_state.expired ?? 0) : 0;
  const share = progress && progress.contacts > 0 ? done / progress.contacts : 0;

  return (
    <>
      <a className="back" href="#/campaigns">← All campaigns</a>
      <header className="page-head">
        <div>
          <h1>{spec.name} <CampaignBadge status={campaign.status} /></h1>
          <p className="muted">
            Agent <strong>{spec.agent_id}</strong> · {spec.mode} · {spec.concurrency} at once · {spec.pacing_cps}/s ·{" "}
            <span className="mono">{campaign.campaign_id}</span>
          </p>
        </div>
        <div className="actions">
          {(ACTIONS[campaign.status] ?? []).map((a) => (
            <button key={a} className={a === "cancel" ? "danger ghost" : "primary"} onClick={() => act(a)}>
              {a[0].toUpperCase() + a.slice(1)}
            </button>
          ))}
          <a className="button ghost" href={`${API}/campaigns/${campaignId}/report`} download={`campaign-${campaignId}.csv`}>
            Download report
          </a>
        </div>
      </header>
      {error && <div className="error" role="alert">{error}</div>}

      <section className="card" data-testid="progress">
        <div className="progress-head">
          <h2>Progress</h2>
          <span className="muted small" data-testid="refresh-state">
            {stale ? "refresh failed, retrying…" : active ? (live ? "" : `refreshing every ${POLL_MS / 1000} s`) : `updated ${when(campaign.updated_at)}`}
          </span>
          {active && (
            <span className="stat small">
              <span className={`dot ${live ? "on" : ""}`} />
              <span data-testid="campaign-feed-state">{live ? "Live feed" : "Connecting…"}</span>
            </span>
          )}
        </div>
        <div className="bar big" aria-label="Contacts finished">
          <div style={{ width: `${Math.round(share * 100)}%` }} />
        </div>
        <div className="kpis">
          <Kpi name="Contacts" value={progress?.contacts ?? 0} testid="kpi-contacts" />
          <Kpi name="Finished" value={done} testid="kpi-finished" />
          <Kpi name="In flight" value={progress?.in_flight ?? 0} testid="kpi-in-flight" />
          <Kpi name="Dialed" value={progress?.dialed ?? 0} testid="kpi-dialed" />
          <Kpi name="Dial rate" value={rate === null ? "—" : `${rate.toFixed(1)}/min`} testid="kpi-rate" />
        </div>
        <div className="split">
          <div>
            <h3>Contacts by state</h3>
            <table className="plain counts" data-testid="by-state">
              <tbody>
                {STATES.concat(Object.keys(progress?.by_state ?? {}).filter((s) => !STATES.includes(s))).map((s) => (
                  <tr key={s} data-state={s}><td>{label(s)}</td><td className="num">{progress?.by_state[s] ?? 0}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
          <div>
            <h3>Attempts by outcome</h3>
            <table className="plain counts" data-testid="by-outcome">
              <tbody>
                {Object.entries(progress?.by_outcome ?? {}).map(([o, n]) => (
                  <tr key={o} data-outcome={o}><td>{label(o)}</td><td className="num">{n}</td></tr>
                ))}
                {Object.keys(progress?.by_outcome ?? {}).length === 0 && <tr><td className="muted none">No attempts yet.</td></tr>}
              </tbody>
            </table>
          </div>
        </div>
      </section>

      {campaign.status !== "completed" && campaign.status !== "cancelled" && <Upload campaignId={campaignId} onLoaded={load} />}
      <DncList campaignId={campaignId} />
    </>
  );
}

function Kpi({ name, value, testid }: { name: string; value: number | string; testid: string }) {
  return (
    <div className="kpi">
      <div className="muted small">{name}</div>
      <div className="kpi-value" data-testid={testid}>{value}</div>
    </div>
  );
}

function Upload({ campaignId, onLoaded }: { campaignId: string; onLoaded: () => void }) {
  const [fraction, setFraction] = useState<number | null>(null);
  const [report, setReport] = useState<UploadReport | null>(null);
  const [error, setError] = useState("");

  async function chosen(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    event.target.value = "";
    if (!file) return;
    setError("");
    setReport(null);
    setFraction(0);
    try {
      setReport(await upload<UploadReport>(`/campaigns/${campaignId}/contacts`, file, setFraction));
      onLoaded();
    } catch (err) {
      setFraction(null);
      setError(err instanceof FieldsError && err.fields.length ? err.fields.map((f) => `${f.field}: ${f.message}`).join("; ") : problem(err));
    }
  }

  return (
    <section className="card" data-testid="upload">
      <h2>Contacts</h2>
      <p className="muted">
        A CSV with a header line: <span className="mono">phone</span> first, then any variables the agent uses
        (<span className="mono">phone,name,order_id</span>). Duplicates merge; numbers on a DNC list are kept but never dialed.
      </p>
      <label className="file">
        <input type="file" accept=".csv,text/csv" aria-label="Contacts CSV" onChange={chosen} />
        <span className="button ghost">Choose a CSV…</span>
      </label>
      {fraction !== null && (
        <div className="upload-progress">
          <div className="bar" role="progressbar" aria-valuenow={Math.round(fraction * 100)} aria-valuemin={0} aria-valuemax={100}>
            <div style={{ width: `${Math.round(fraction * 100)}%` }} />
          </div>
          <span className="muted small" data-testid="upload-percent">{Math.round(fraction * 100)}%</span>
        </div>
      )}
      {error && <div className="error" role="alert">{error}</div>}
      {report && (
        <div className="upload-report" data-testid="upload-report">
          <div className="kpis small">
            <Kpi name="Rows" value={report.rows} testid="rows" />
            <Kpi name="Loaded" value={report.loaded} testid="loaded" />
            <Kpi name="Merged" value={report.merged} testid="merged" />
            <Kpi name="On a DNC list" value={report.dnc} testid="dnc-rows" />
            <Kpi name="Rejected" value={report.rejected} testid="rejected" />
          </div>
          {report.errors.length > 0 && (
            <table className="plain row-errors" data-testid="row-errors">
              <thead><tr><th>Line</th><th>Problem</th></tr></thead>
              <tbody>
                {report.errors.map((e) => (
                  <tr key={e.line} data-line={e.line}><td className="mono">{e.line}</td><td>{e.reason}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </section>
  );
}
