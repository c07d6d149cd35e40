import { useEffect, useRef, useState } from "react";
import WaveSurfer from "wavesurfer.js";
import { clock } from "./format";

interface Props {
  url: string;
  onTime: (seconds: number) => void;
  seekTo: { seconds: number } | null; // a new object per request, so the same place twice seeks twice
}

/** The stereo recording: caller (left channel) and agent (right) lanes, and a player. */
export function Waveform({ url, onTime, seekTo }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const surfer = useRef<WaveSurfer | null>(null);
  const [ready, setReady] = useState(false);
  const [playing, setPlaying] = useState(false);
  const [now, setNow] = useState(0);
  const [total, setTotal] = useState(0);
  const [failed, setFailed] = useState(false);
  const report = useRef(onTime);
  report.current = onTime;

  useEffect(() => {
    if (!container.current) return;
    const ws = WaveSurfer.create({
      container: container.current,
      url,
      height: 56,
      splitChannels: [
        { waveColor: "#60a5fa", progressColor: "#1d4ed8" },
        { waveColor: "#34d399", progressColor: "#047857" },
      ],
      cursorColor: "#0f172a",
      barWidth: 2,
      barGap: 1,
      barRadius: 2,
      normalize: true,
      fetchParams: { credentials: "same-origin" },
    });
    surfer.current = ws;
    ws.on("ready", (seconds) => {
      setTotal(seconds);
      setReady(true);
    });
    ws.on("error", () => setFailed(true));
    ws.on("play", () => setPlaying(true));
    ws.on("pause", () => setPlaying(false));
    ws.on("finish", () => setPlaying(false));
    ws.on("timeupdate", (seconds) => {
      setNow(seconds);
      report.current(seconds);
    });
    return () => ws.destroy();
  }, [url]);

  useEffect(() => {
    if (seekTo !== null && surfer.current && ready) surfer.current.setTime(seekTo.seconds);
  }, [seekTo, ready]);

  return (
    <div className="player" data-testid="player" data-ready={ready} data-playing={playing}>
      <div className="lanes">
        <div className="lane-label caller">Caller</div>
        <div className="lane-label agent">Agent</div>
      </div>
      <div className="wave" ref={container} data-testid="waveform" />
      <div className="controls">
        <button className="primary round" disabled={!ready} onClick={() => surfer.current?.playPause()} aria-label={playing ? "Pause" : "Play"}>
          {playing ? "❚❚" : "▶"}
        </button>
        <span className="mono" data-testid="position">{clock(now * 1000)} / {clock(total * 1000)}</span>
        {failed && <span className="error inline">The recording could not be loaded.</span>}
      </div>
    </div>
  );
}
