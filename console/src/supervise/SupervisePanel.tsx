// Live supervision of a call: listen (both sides mixed), whisper to the agent, take the call
// over with the microphone, hand it back. Every action is an event of the call.

import { useEffect, useRef, useState } from "react";
import { LanePlayer, Microphone } from "./audio";
import { openSupervision, SupervisionState } from "./connection";

interface Counters {
  caller: number;
  agent: number;
  sent: number;
}

export function SupervisePanel({ callId }: { callId: string }) {
  const [state, setState] = useState<SupervisionState>("closed");
  const [rate, setRate] = useState<number | null>(null);
  const [counters, setCounters] = useState<Counters>({ caller: 0, agent: 0, sent: 0 });
  const [note, setNote] = useState("");
  const [line, setLine] = useState("");
  const [message, setMessage] = useState("");
  const [done, setDone] = useState<string[]>([]);
  const socket = useRef<WebSocket | null>(null);
  const player = useRef<Promise<LanePlayer> | null>(null);
  const mic = useRef<Microphone | null>(null);
  const counted = useRef<Counters>({ caller: 0, agent: 0, sent: 0 });

  useEffect(() => {
    const timer = window.setInterval(() => setCounters({ ...counted.current }), 250);
    return () => {
      window.clearInterval(timer);
      stop();
    };
  }, [callId]);

  function stop() {
    mic.current?.close();
    mic.current = null;
    player.current?.then((p) => p.close());
    player.current = null;
    socket.current?.close(1000);
    socket.current = null;
  }

  function listen() {
    setMessage("");
    setState("connecting");
    socket.current = openSupervision(callId, {
      onReady: () => setState("listening"),
      onFormat: (sampleRate) => {
        setRate(sampleRate);
        player.current = player.current ?? LanePlayer.open(sampleRate);
      },
      onAudio: (lane, pcm) => {
        if (lane === 0) counted.current.caller += 1;
        else counted.current.agent += 1;
        player.current?.then((p) => p.play(lane, pcm));
      },
      onDone: (eventType) => setDone((current) => [...current, eventType]),
      onError: setMessage,
      onClosed: (reason) => {
        stop();
        setState("closed");
        if (reason) setMessage(reason);
      },
    });
  }

  function send(command: object) {
    socket.current?.send(JSON.stringify(command));
  }

  async function takeOver() {
    if (rate === null || socket.current === null) return;
    const ws = socket.current;
    try {
      mic.current = await Microphone.open(rate, (pcm) => {
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(pcm);
        counted.current.sent += 1;
      });
    } catch {
      setMessage("The microphone is not available.");
      return;
    }
    send({ type: "take_over" });
    setState("holding");
  }

  async function handBack() {
    await mic.current?.close();
    mic.current = null;
    send({ type: "hand_back" });
    setState("listening");
  }

  return (
    <section className="card supervise" data-testid="supervise" data-state={state}>
      <h2>Live supervision</h2>
      <div className="supervise-row">
        {state === "closed" || state === "connecting" ? (
          <button onClick={listen} disabled={state === "connecting"}>
            Listen
          </button>
        ) : (
          <button className="secondary" onClick={stop}>
            Stop listening
          </button>
        )}
        {state === "listening" && (
          <button onClick={takeOver} disabled={rate === null}>
            Take over
          </button>
        )}
        {state === "holding" && <button onClick={handBack}>Hand back</button>}
        {state === "holding" && (
          <span className="badge holding" data-testid="supervise-holding">
            You are speaking to the caller · the agent is silent
          </span>
        )}
        <span className="muted small" data-testid="supervise-frames" data-caller={counters.caller}
          data-agent={counters.agent} data-sent={counters.sent}>
          {state === "closed" ? "Not listening" : `caller ${counters.caller} · agent ${counters.agent} · mic ${counters.sent} frames`}
          {rate !== null && ` · ${rate / 1000} kHz`}
        </span>
      </div>
      {state !== "closed" && (
        <form className="supervise-row" onSubmit={(e) => { e.preventDefault(); if (note.trim()) { send({ type: "whisper", note }); setNote(""); } }}>
          <label>
            Whisper to the agent
            <input value={note} onChange={(e) => setNote(e.target.value)} placeholder="Guidance for its next reply (never spoken)" />
          </label>
          <button type="submit" disabled={!note.trim()}>Whisper</button>
        </form>
      )}
      {state === "holding" && (
        <form className="supervise-row" onSubmit={(e) => { e.preventDefault(); if (line.trim()) { send({ type: "said", text: line }); setLine(""); } }}>
          <label>
            What you said
            <input value={line} onChange={(e) => setLine(e.target.value)} placeholder="Kept in the agent's history for the hand-back" />
          </label>
          <button type="submit" disabled={!line.trim()}>Log line</button>
        </form>
      )}
      {message && <p className="error" role="alert">{message}</p>}
      {done.length > 0 && (
        <ul className="supervise-done muted small" data-testid="supervise-done">
          {done.map((type, i) => <li key={i}>{type}</li>)}
        </ul>
      )}
    </section>
  );
}
