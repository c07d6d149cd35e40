// The browser call page: start a call with an agent, stream the microphone, play the agent,
// show the live transcript. Protocol: see voicebus.gateway.browser.codec.
"use strict";

// Float32 at 48 kHz from the page (the gateway resamples), or PCM16 at 16 kHz with
// ?format=s16le (the browser resamples).
const INT16 = new URLSearchParams(location.search).get("format") === "s16le";
const CAPTURE_RATE = INT16 ? 16000 : 48000;
const PLAYBACK_RATE = 16000; // agent audio arrives as PCM16LE at 16 kHz
const FRAME_MS = 20;

// Counters and the transcript, for people debugging and for automated tests.
const state = (window.voicebus = {
  status: "idle",
  callId: null,
  framesSent: 0,
  audioMessages: 0,
  audioBytes: 0,
  marksReceived: 0,
  marksEchoed: 0,
  clears: 0,
  transcript: [],
  agents: [],
  format: null,
  closeCode: null,
  error: null,
});

const $ = (id) => document.getElementById(id);
let call = null;

function setStatus(status, text) {
  state.status = status;
  $("status").textContent = text;
  const live = status === "connecting" || status === "live";
  $("start").disabled = live;
  $("hangup").disabled = !live;
  $("agent").disabled = live;
}

function fail(message) {
  state.error = message;
  setStatus("failed", message);
  teardown();
}

function addLine(role, text, utteranceId) {
  state.transcript.push({ role, text, utteranceId });
  const item = document.createElement("li");
  item.className = role;
  item.textContent = text;
  if (utteranceId) item.dataset.utterance = utteranceId;
  $("transcript").append(item);
}

function markCut(utteranceId, heard) {
  for (const item of $("transcript").querySelectorAll("li.agent")) {
    if (item.dataset.utterance === utteranceId) {
      item.classList.add("cut");
      item.title = heard ? `heard: ${heard}` : "not heard";
    }
  }
}

async function loadAgents() {
  // Suggestions only: an agent id can always be typed.
  try {
    const res = await fetch("/browser/agents");
    if (!res.ok) return;
    const agents = await res.json();
    for (const agent of agents) {
      const option = document.createElement("option");
      option.value = agent.agent_id;
      option.label = agent.name;
      $("agents").append(option);
    }
    state.agents = agents.map((agent) => agent.agent_id);
    if (agents.length && !$("agent").value) $("agent").value = agents[0].agent_id;
  } catch (err) {
    console.info("agent list unavailable", err);
  }
}

async function openAudio(send) {
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true },
  });
  const capture = new AudioContext({ sampleRate: CAPTURE_RATE });
  await capture.audioWorklet.addModule("/browser/static/capture-worklet.js");
  const tap = new AudioWorkletNode(capture, "vb-capture", {
    processorOptions: { frameSamples: (capture.sampleRate * FRAME_MS) / 1000, int16: INT16 },
  });
  const mute = capture.createGain(); // keeps the graph pulled without echoing the mic
  mute.gain.value = 0;
  capture.createMediaStreamSource(mic).connect(tap).connect(mute).connect(capture.destination);
  tap.port.onmessage = (event) => send(event.data);

  const playback = new AudioContext({ sampleRate: PLAYBACK_RATE });
  await playback.audioWorklet.addModule("/browser/static/playback-worklet.js");
  const player = new AudioWorkletNode(playback, "vb-playback", { outputChannelCount: [1] });
  player.connect(playback.destination);
  await Promise.all([capture.resume(), playback.resume()]);
  return { mic, capture, playback, player, tap };
}

function onControl(message) {
  switch (message.type) {
    case "mark":
      state.marksReceived += 1;
      call.audio.player.port.postMessage({ mark: message.name });
      break;
    case "clear":
      state.clears += 1;
      call.audio.player.port.postMessage({ clear: true });
      break;
    case "transcript":
      addLine(message.role, message.text, message.utterance_id);
      break;
    case "interrupted":
      markCut(message.utterance_id, message.text_heard);
      break;
    default:
      console.info("unknown message", message.type);
  }
}

async function start(agentId) {
  setStatus("connecting", "Connecting…");
  const res = await fetch("/browser/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ agent_id: agentId }),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    return fail(`Cannot start the call: ${body.detail || (body.error && body.error.message) || res.status}`);
  }
  const session = await res.json();
  state.callId = session.call_id;
  const ws = new WebSocket(session.ws_url);
  ws.binaryType = "arraybuffer";
  call = { ws, audio: null, started: false };
  const current = call;
  const send = (frame) => {
    if (!current.started || ws.readyState !== WebSocket.OPEN) return;
    ws.send(frame);
    state.framesSent += 1;
  };
  try {
    call.audio = await openAudio(send);
  } catch (err) {
    return fail(`Microphone unavailable: ${err.message || err}`);
  }
  call.audio.player.port.onmessage = (event) => {
    if (event.data.mark && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "mark", name: event.data.mark }));
      state.marksEchoed += 1;
    }
  };
  const encoding = INT16 ? "s16le" : "f32le";
  const format = { encoding, sample_rate: call.audio.capture.sampleRate };
  state.format = format;
  const begin = () => {
    ws.send(JSON.stringify({ type: "start", parameters: session.parameters, format }));
    current.started = true;
    setStatus("live", "Connected: speak to the agent.");
  };
  if (ws.readyState === WebSocket.OPEN) begin();
  else ws.onopen = begin;
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      onControl(JSON.parse(event.data));
    } else {
      state.audioMessages += 1;
      state.audioBytes += event.data.byteLength;
      call.audio.player.port.postMessage({ audio: event.data }, [event.data]);
    }
  };
  ws.onerror = () => console.warn("media socket error");
  ws.onclose = (event) => {
    state.closeCode = event.code;
    if (state.status !== "failed") setStatus("ended", "Call ended.");
    teardown();
  };
}

function teardown() {
  if (!call) return;
  const { ws, audio } = call;
  call = null;
  if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  if (audio) {
    audio.mic.getTracks().forEach((track) => track.stop());
    audio.capture.close();
    audio.playback.close();
  }
}

function hangUp() {
  if (call && call.ws.readyState === WebSocket.OPEN) {
    call.ws.send(JSON.stringify({ type: "stop" }));
  }
  setStatus("ended", "Call ended.");
  teardown();
}

$("call-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start($("agent").value.trim()).catch((err) => fail(`Call failed: ${err.message || err}`));
});
$("hangup").addEventListener("click", hangUp);
// ?agent=<id> (the console's "Talk to this agent") picks the agent.
$("agent").value = new URLSearchParams(location.search).get("agent") || "";
loadAgents();
