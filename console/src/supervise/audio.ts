// Playback of the call's two lanes and capture of the operator's microphone (AudioWorklets).

const WORKLET = new URL("./worklet.js", import.meta.url);

export class LanePlayer {
  private constructor(
    private readonly context: AudioContext,
    private readonly node: AudioWorkletNode,
  ) {}

  static async open(sampleRate: number): Promise<LanePlayer> {
    const context = new AudioContext({ sampleRate });
    await context.audioWorklet.addModule(WORKLET);
    const node = new AudioWorkletNode(context, "vb-lanes", { outputChannelCount: [1] });
    node.connect(context.destination);
    await context.resume();
    return new LanePlayer(context, node);
  }

  play(lane: number, pcm: ArrayBuffer): void {
    this.node.port.postMessage({ lane, pcm }, [pcm]);
  }

  async close(): Promise<void> {
    this.node.disconnect();
    await this.context.close();
  }
}

export class Microphone {
  private constructor(
    private readonly context: AudioContext,
    private readonly stream: MediaStream,
  ) {}

  // Frames of 20 ms, PCM16LE at ``rate`` (the call's), whatever the device's own rate.
  static async open(rate: number, onFrame: (pcm: ArrayBuffer) => void): Promise<Microphone> {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 },
    });
    const context = new AudioContext();
    await context.audioWorklet.addModule(WORKLET);
    const node = new AudioWorkletNode(context, "vb-mic", { processorOptions: { rate } });
    node.port.onmessage = (event) => onFrame(event.data as ArrayBuffer);
    context.createMediaStreamSource(stream).connect(node);
    node.connect(context.destination); // pulled only when connected; it outputs silence
    await context.resume();
    return new Microphone(context, stream);
  }

  async close(): Promise<void> {
    this.stream.getTracks().forEach((track) => track.stop());
    await this.context.close();
  }
}
