// The supervision WebSocket (/api/v1/calls/{id}/supervise): hello with the session's CSRF
// token, the call's audio lanes in, commands and the operator's microphone out.

import { API, csrfToken } from "../api";

export type SupervisionState = "closed" | "connecting" | "listening" | "holding";

export interface SupervisionHandlers {
  onAudio(lane: number, pcm: ArrayBuffer): void;
  onFormat(sampleRate: number): void;
  onDone(eventType: string): void;
  onError(message: string): void;
  onClosed(reason: string): void;
  onReady(): void;
}

export function openSupervision(callId: string, handlers: SupervisionHandlers): WebSocket {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${API}/calls/${encodeURIComponent(callId)}/supervise`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", csrf: csrfToken() }));
  ws.onmessage = (event) => {
    if (event.data instanceof ArrayBuffer) {
      const lane = new Uint8Array(event.data, 0, 1)[0];
      handlers.onAudio(lane, event.data.slice(1));
      return;
    }
    const message = JSON.parse(String(event.data));
    if (message.type === "ready") handlers.onReady();
    else if (message.type === "format") handlers.onFormat(message.sample_rate);
    else if (message.type === "done") handlers.onDone(message.event);
    else if (message.type === "error") handlers.onError(message.message);
  };
  ws.onclose = (event) => handlers.onClosed(event.reason || (event.code === 1000 ? "" : `closed (${event.code})`));
  return ws;
}
