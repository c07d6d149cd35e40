import { useEffect, useRef, useState } from "react";
import { API, LiveEvent } from "./api";

export type FeedState = "connecting" | "live" | "reconnecting";

/** The tenant's live events (Server-Sent Events from the edge), to `handler` as they come. */
export function useLiveEvents(handler: (event: LiveEvent) => void, onReconnect?: () => void): FeedState {
  const [state, setState] = useState<FeedState>("connecting");
  const [generation, setGeneration] = useState(0);
  const latest = useRef(handler);
  const reconnect = useRef(onReconnect);
  latest.current = handler;
  reconnect.current = onReconnect;

  useEffect(() => {
    const source = new EventSource(`${API}/events/stream`, { withCredentials: true });
    let opened = false;
    source.onopen = () => {
      if (opened) reconnect.current?.(); // events may have been missed while away
      opened = true;
      setState("live");
    };
    source.onerror = () => setState("reconnecting");
    source.onmessage = () => undefined;
    const listener = (message: MessageEvent<string>) => {
      try {
        latest.current(JSON.parse(message.data) as LiveEvent);
      } catch {
        /* a malformed message is skipped */
      }
    };
    // Every event type arrives under its own name: listen to the ones the console shows.
    for (const type of LIVE_TYPES) source.addEventListener(type, listener);
    source.addEventListener("overflow", () => {
      // This browser fell behind: open a new stream and reload what is shown.
      source.close();
      setState("reconnecting");
      reconnect.current?.();
      setGeneration((g) => g + 1);
    });
    return () => source.close();
  }, [generation]);
  return state;
}

// Every call event type the console shows (the feed names each message by its type).
export const LIVE_TYPES = [
  "call.initiated.v1",
  "call.ringing.v1",
  "call.started.v1",
  "call.ended.v1",
  "call.error.v1",
  "call.idle.v1",
  "transcript.final.v1",
  "agent.reply.v1",
  "agent.speech.started.v1",
  "agent.speech.stopped.v1",
  "agent.speech.interrupted.v1",
  "agent.handoff.v1",
  "tool.called.v1",
  "tool.result.v1",
  "flow.node_entered.v1",
  "flow.transition.v1",
  "amd.detected.v1",
  "dtmf.received.v1",
  "engine.error.v1",
  "engine.failover.v1",
  "dnc.requested.v1",
  "recording.ready.v1",
  "call.analyzed.v1",
  "supervision.started.v1",
  "supervision.whispered.v1",
  "supervision.taken_over.v1",
  "supervision.human_said.v1",
  "supervision.handed_back.v1",
  "supervision.ended.v1",
];
