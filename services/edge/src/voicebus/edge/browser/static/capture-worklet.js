// Microphone → 20 ms frames posted to the page, which sends them as binary messages:
// Float32 as Web Audio produces them, or PCM16 when the page asks for it.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frame = new Float32Array(options.processorOptions.frameSamples);
    this.filled = 0;
    this.int16 = Boolean(options.processorOptions.int16);
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    let offset = 0;
    while (offset < channel.length) {
      const n = Math.min(channel.length - offset, this.frame.length - this.filled);
      this.frame.set(channel.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.frame.length) {
        const length = this.frame.length; // the transfer below detaches the buffer
        const out = this.int16 ? toInt16(this.frame) : this.frame;
        this.port.postMessage(out.buffer, [out.buffer]);
        this.frame = new Float32Array(length);
        this.filled = 0;
      }
    }
    return true;
  }
}

function toInt16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? s * 32768 : s * 32767;
  }
  return out;
}

registerProcessor("vb-capture", CaptureProcessor);
