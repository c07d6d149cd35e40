// Live supervision's audio, off the main thread.
// "vb-lanes": the call's two lanes (caller, agent; PCM16LE at the context's rate, which is
// the call's) mixed into the speakers, each through its own ring buffer.
// "vb-mic": the operator's microphone resampled (linear) from the context's rate to the
// call's, posted as 20 ms PCM16LE frames.
const SECONDS = 10;

class LanesProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.rings = [new Float32Array(sampleRate * SECONDS), new Float32Array(sampleRate * SECONDS)];
    this.written = [0, 0];
    this.read = [0, 0];
    this.port.onmessage = (event) => this.push(event.data.lane, new Int16Array(event.data.pcm));
  }

  push(lane, pcm) {
    const ring = this.rings[lane];
    if (this.written[lane] - this.read[lane] + pcm.length > ring.length) {
      this.read[lane] = this.written[lane]; // too far behind: drop what is queued
    }
    for (let i = 0; i < pcm.length; i++) ring[(this.written[lane] + i) % ring.length] = pcm[i] / 32768;
    this.written[lane] += pcm.length;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    for (let lane = 0; lane < 2; lane++) {
      const ring = this.rings[lane];
      const n = Math.min(out.length, this.written[lane] - this.read[lane]);
      for (let i = 0; i < n; i++) out[i] += 0.5 * ring[(this.read[lane] + i) % ring.length];
      this.read[lane] += n;
    }
    return true;
  }
}

class MicProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.rate = options.processorOptions.rate;
    this.step = sampleRate / this.rate; // input samples per output sample
    this.frame = new Int16Array(this.rate / 50);
    this.filled = 0;
    this.at = 0; // position of the next output sample in the current input block
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    while (this.at < input.length) {
      const i = Math.floor(this.at);
      const frac = this.at - i;
      const a = input[i];
      const b = i + 1 < input.length ? input[i + 1] : input[i];
      const s = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.frame[this.filled++] = s < 0 ? s * 32768 : s * 32767;
      if (this.filled === this.frame.length) {
        const length = this.frame.length; // the transfer below detaches the buffer
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(length);
        this.filled = 0;
      }
      this.at += this.step;
    }
    this.at -= input.length;
    return true;
  }
}

registerProcessor("vb-lanes", LanesProcessor);
registerProcessor("vb-mic", MicProcessor);
