// Microphone → 20 ms Float32 frames posted to the page, which sends them as binary messages.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frame = new Float32Array(options.processorOptions.frameSamples);
    this.filled = 0;
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
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Float32Array(length);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("vb-capture", CaptureProcessor);
