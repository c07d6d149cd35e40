import { useCallback, useEffect, useMemo, useState } from "react";
import { API, api, ApiError, Call, RecordingMeta, StoredEvent } from "../api";
import { clock, duration, label, when } from "../format";
import { useLiveEvents } from "../live";
import { SupervisePanel } from "../supervise/SupervisePanel";
import { lineAt, timeline, transcript } from "../transcript";
import { Waveform } from "../Waveform";
import { Analysis } from "./Analysis";
import { patched, StatusBadge } from "./Calls";
import { Replay } from "./Replay";
import { Analysis as AnalysisData } from "../ops/client";

async function allEvents(callId: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  let after: string | null = null;
  for (let page = 0; page < 50; page++) {
    const query: string = after ? `?limit=1000&after=${encodeURIComponent(after)}` : "?limit=1000";
    const result: { events: StoredEvent[]; next_after: string | null } = await api(`/calls/${callId}/events${query}`);
    events.push(...result.events);
    if (!result.next_after) break;
    after = result.next_after;
  }
  return events;
}

/** The agent version the call ran, as its replies and flow events name it. */
function versionRan(events: StoredEvent[]): number | null {
  const named = events.find((e) => typeof e.data.agent_version === "number");
  return named ? (named.data.agent_version as number) : null;
}

function merged(a: StoredEvent[], b: StoredEvent[]): StoredEvent[] {
  const byId = new Map<string, StoredEvent>();
  for (const e of [...a, ...b]) byId.set(e.id, e);
  return [...byId.values()].sort((x, y) => x.time.localeCompare(y.time) || x.id.localeCompare(y.id));
}

export function CallDetail({ callId }: { callId: string }) {
  const [call, setCall] = useState<Call | null>(null);
  const [events, setEvents] = useState<StoredEvent[]>([]);
  const [recording, setRecording] = useState<RecordingMeta | null | undefined>(undefined);
  const [error, setError] = useState("");
  const [position, setPosition] = useState(0);
  const [seekTo, setSeekTo] = useState<{ seconds: number } | null>(null);

  const load = useCallback(() => {
    api<Call>(`/calls/${callId}`).then(setCall, (err) => setError(err instanceof ApiError ? err.message : "The edge did not answer."));
    // Merged with what the live feed brought meanwhile: neither may drop the other's events.
    allEvents(callId).then((stored) => setEvents((current) => merged(stored, current)), () => undefined);
    api<RecordingMeta>(`/calls/${callId}/recording`).then(setRecording, () => setRecording(null));
  }, [callId]);

  useEffect(load, [load]);

  const feed = useLiveEvents((event) => {
    if (event.call_id !== callId) return;
    setEvents((current) => merged(current, [event]));
    setCall((current) => (current && event.type.startsWith("call.") ? patched(current, event) : current));
    if (event.type === "recording.ready.v1" || event.type === "call.analyzed.v1") load();
  }, load);

  const lines = useMemo(() => transcript(events), [events]);
  const items = useMemo(() => timeline(events), [events]);
  const heard = lineAt(lines, position);
  const ranVersion = useMemo(() => versionRan(events), [events]);

  if (error) return <div className="error" role="alert">{error}</div>;
  if (!call) return <div className="muted">Loading…</div>;

  return (
    <>
      <a className="back" href="#/calls">← All calls</a>
      <header className="page-head">
        <div>
          <h1>
            Call with {call.agent_id ?? "an agent"} <StatusBadge status={call.status} />
          </h1>
          <p className="muted mono">{call.call_id}</p>
        </div>
        {call.status !== "ended" && (
          <div className="stats">
            <div className="stat">
              <span className={`dot ${feed === "live" ? "on" : ""}`} />
              <span data-testid="call-feed-state">{feed === "live" ? "Live feed" : "Connecting…"}</span>
            </div>
          </div>
        )}
      </header>

      <section className="facts card">
        <Fact name="Direction" value={label(call.direction)} />
        <Fact name="Provider" value={call.provider ?? "—"} />
        <Fact name="From" value={call.from_number ?? "—"} mono />
        <Fact name="To" value={call.to_number ?? "—"} mono />
        <Fact name="Started" value={when(call.started_at ?? call.initiated_at)} />
        <Fact name="Duration" value={duration(call.duration_s)} />
        <Fact name="Ended because" value={label(call.ended_reason)} />
      </section>

      <Analysis analysis={(call as Call & { analysis?: AnalysisData | null }).analysis} />
      {call.status !== "ended" && <SupervisePanel callId={callId} />}

      <section className="card">
        <h2>Recording</h2>
        {recording ? (
          <Waveform url={`${API}/calls/${callId}/recording.wav`} onTime={setPosition} seekTo={seekTo} />
        ) : (
          <p className="muted">{recording === undefined ? "Loading…" : "No recording (yet)."}</p>
        )}
      </section>

      <div className="columns">
        <section className="card">
          <h2>Transcript</h2>
          <ol className="transcript" data-testid="transcript">
            {lines.map((line) => (
              <li
                key={line.id}
                className={`line ${line.speaker} ${line.id === heard && recording ? "heard" : ""} ${line.backchannel ? "backchannel" : ""}`}
                data-speaker={line.speaker}
                data-heard={line.id === heard && recording ? "true" : "false"}
                onClick={() => setSeekTo({ seconds: line.atMs / 1000 })}
              >
                <div className="who">
                  <span className="speaker">{line.speaker === "caller" ? "Caller" : "Agent"}</span>
                  <span className="time mono">{clock(line.atMs)}</span>
                </div>
                <div className="said">
                  {line.text}
                  {line.interrupted && <span className="tag warn">interrupted · heard “{line.heard}”</span>}
                </div>
                {line.latency.length > 0 && (
                  <div className="latency">
                    {line.latency.map((l) => (
                      <span key={l.label} className={`chip ${l.label === "turn" ? "turn" : ""}`}>
                        {l.label} {Math.round(l.ms)} ms
                      </span>
                    ))}
                  </div>
                )}
              </li>
            ))}
            {lines.length === 0 && <li className="muted">Nothing said yet.</li>}
          </ol>
        </section>

        <section className="card">
          <h2>Timeline</h2>
          <ol className="timeline" data-testid="timeline">
            {items.map((item) => (
              <li key={item.id} className={`tl ${item.tone}`} data-type={item.kind}>
                <span className="mono time">{clock(item.atMs)}</span>
                <div>
                  <div className="title">{item.title}</div>
                  <div className="detail mono">{item.detail}</div>
                </div>
              </li>
            ))}
          </ol>
        </section>
      </div>
      {call.status === "ended" && call.agent_id && <Replay callId={callId} agentId={call.agent_id} ranVersion={ranVersion} />}
    </>
  );
}

function Fact({ name, value, mono }: { name: string; value: string; mono?: boolean }) {
  return (
    <div className="fact">
      <div className="muted small">{name}</div>
      <div className={mono ? "mono" : "strong"}>{value}</div>
    </div>
  );
}
