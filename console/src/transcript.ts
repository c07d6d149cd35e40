import { StoredEvent } from "./api";

export interface Line {
  id: string;
  speaker: "caller" | "agent";
  text: string;
  atMs: number; // offset from the call's start (the recording's timeline)
  interrupted: boolean;
  heard?: string;
  backchannel: boolean;
  latency: { label: string; ms: number }[];
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** The conversation in the call's events: caller finals and agent utterances, in order. */
export function transcript(events: StoredEvent[]): Line[] {
  const started = events.find((e) => e.type === "call.started.v1") ?? events[0];
  const origin = started ? Date.parse(started.time) : 0;
  const replies = new Map<string, StoredEvent>();
  const interrupted = new Map<string, StoredEvent>();
  for (const e of events) {
    const id = String(e.data.utterance_id ?? "");
    if (e.type === "agent.reply.v1" && !replies.has(id)) replies.set(id, e);
    if (e.type === "agent.speech.interrupted.v1") interrupted.set(id, e);
  }
  const lines: Line[] = [];
  let lastCallerEndMs: number | null = null;
  for (const e of events) {
    if (e.type === "transcript.final.v1") {
      const stt = num(e.data.stt_latency_ms);
      const end = num(e.data.end_ms);
      lastCallerEndMs = end;
      lines.push({
        id: e.id,
        speaker: "caller",
        text: String(e.data.text ?? ""),
        atMs: num(e.data.start_ms) ?? Date.parse(e.time) - origin,
        interrupted: false,
        backchannel: Boolean(e.data.backchannel),
        latency: stt === null ? [] : [{ label: "STT", ms: stt }],
      });
    } else if (e.type === "agent.speech.started.v1") {
      const id = String(e.data.utterance_id ?? "");
      const at = Date.parse(e.time) - origin;
      const latency: { label: string; ms: number }[] = [];
      if (lastCallerEndMs !== null && at >= lastCallerEndMs) {
        latency.push({ label: "turn", ms: at - lastCallerEndMs });
        lastCallerEndMs = null; // only the first reply after the caller spoke is a turn
      }
      const llm = num(replies.get(id)?.data.llm_first_token_ms);
      if (llm !== null) latency.push({ label: "LLM", ms: llm });
      const tts = num(e.data.first_audio_ms);
      if (tts !== null) latency.push({ label: "TTS", ms: tts });
      const cut = interrupted.get(id);
      lines.push({
        id: e.id,
        speaker: "agent",
        text: String(e.data.text ?? ""),
        atMs: Math.max(0, at),
        interrupted: cut !== undefined,
        heard: cut ? String(cut.data.text_heard ?? "") : undefined,
        backchannel: false,
        latency,
      });
    }
  }
  return lines.sort((a, b) => a.atMs - b.atMs);
}

/** The line being heard at `seconds` into the recording: the last one started by then. */
export function lineAt(lines: Line[], seconds: number): string | null {
  let current: string | null = null;
  for (const line of lines) {
    if (line.atMs / 1000 <= seconds + 0.05) current = line.id;
    else break;
  }
  return current;
}

const TIMELINE: Record<string, string> = {
  "call.initiated.v1": "Call placed",
  "call.ringing.v1": "Ringing",
  "call.started.v1": "Call connected",
  "call.ended.v1": "Call ended",
  "call.error.v1": "Error",
  "call.idle.v1": "Caller idle",
  "tool.called.v1": "Tool called",
  "tool.result.v1": "Tool result",
  "flow.node_entered.v1": "Flow node",
  "flow.transition.v1": "Flow transition",
  "agent.handoff.v1": "Handoff",
  "agent.speech.interrupted.v1": "Interrupted",
  "amd.detected.v1": "Answering machine detection",
  "dtmf.received.v1": "Keys pressed",
  "engine.error.v1": "Engine error",
  "engine.failover.v1": "Engine failover",
  "recording.ready.v1": "Recording ready",
  "dnc.requested.v1": "Do-not-call requested",
  "supervision.started.v1": "Operator listening",
  "supervision.whispered.v1": "Operator whispered",
  "supervision.taken_over.v1": "Operator took over",
  "supervision.human_said.v1": "Human agent said",
  "supervision.handed_back.v1": "Handed back to the agent",
  "supervision.ended.v1": "Operator left",
};

export interface TimelineItem {
  id: string;
  title: string;
  kind: string;
  atMs: number;
  detail: string;
  tone: "info" | "tool" | "flow" | "warn" | "error";
}

function detailOf(e: StoredEvent): string {
  const d = e.data;
  switch (e.type) {
    case "tool.called.v1":
      return `${d.name}(${JSON.stringify(d.arguments ?? {})})`;
    case "tool.result.v1":
      return `${d.name} ${d.ok ? "ok" : `failed: ${d.error ?? ""}`} · ${Math.round(Number(d.duration_ms ?? 0))} ms${d.ok ? ` → ${JSON.stringify(d.result)}` : ""}`;
    case "flow.node_entered.v1":
      return `${d.previous_node_id ? `${d.previous_node_id} → ` : ""}${d.node_id}`;
    case "flow.transition.v1":
      return `${d.from_node_id} → ${d.to_node_id} via ${d.function}(${JSON.stringify(d.arguments ?? {})})`;
    case "agent.speech.interrupted.v1":
      return `heard: “${d.text_heard ?? ""}”`;
    case "call.ended.v1":
      return `${String(d.reason ?? "").replace(/_/g, " ")} · ${d.duration_s ?? "?"} s`;
    case "call.error.v1":
      return `${d.code ?? ""} ${d.message ?? ""}`.trim();
    case "amd.detected.v1":
      return `${d.result} (${d.detector}${typeof d.detection_ms === "number" ? `, ${d.detection_ms} ms` : ""})`;
    case "recording.ready.v1":
      return `${Number(d.duration_s ?? 0).toFixed(1)} s stereo · ${Math.round(Number(d.bytes ?? 0) / 1024)} KB`;
    case "call.started.v1":
    case "call.initiated.v1":
      return `${d.direction ?? ""} · ${d.provider ?? ""} · agent ${d.agent_id ?? ""}`;
    case "supervision.whispered.v1":
      return `key ${d.operator}: “${d.note ?? ""}”`;
    case "supervision.human_said.v1": // via "speech": the operator's microphone, transcribed
      return `key ${d.operator}${d.via === "speech" ? " (spoken)" : ""}: “${d.text ?? ""}”`;
    default: {
      if (e.type.startsWith("supervision.")) return `key ${d.operator ?? "?"}`;
      const text = JSON.stringify(d);
      return text.length > 140 ? `${text.slice(0, 140)}…` : text;
    }
  }
}

/** What happened during the call besides the words. */
export function timeline(events: StoredEvent[]): TimelineItem[] {
  const started = events.find((e) => e.type === "call.started.v1") ?? events[0];
  const origin = started ? Date.parse(started.time) : 0;
  return events
    .filter((e) => e.type in TIMELINE)
    .map((e) => ({
      id: e.id,
      title: TIMELINE[e.type],
      kind: e.type,
      atMs: Date.parse(e.time) - origin,
      detail: detailOf(e),
      tone: e.type.startsWith("tool.")
        ? "tool"
        : e.type.startsWith("flow.") || e.type === "agent.handoff.v1"
          ? "flow"
          : e.type.includes("error") || (e.type === "tool.result.v1" && !e.data.ok)
            ? "error"
            : e.type.includes("interrupted") || e.type.includes("failover") || e.type.startsWith("amd.")
              ? "warn"
              : "info",
    }));
}
