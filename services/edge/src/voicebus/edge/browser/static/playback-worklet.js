// Agent audio (PCM16LE at the context's rate) → a ring buffer → the speakers.
// Marks are echoed once the audio queued before them has played; "clear" drops
// what is queued and echoes every pending mark (that audio will never play).
const SECONDS = 120;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ring = new Float32Array(sampleRate * SECONDS);
    this.written = 0; // samples ever queued
    this.read = 0; // samples ever played
    this.marks = []; // {name, at}: echo when read >= at
    this.dropped = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.audio) {
      const pcm = new Int16Array(message.audio);
      const room = this.ring.length - (this.written - this.read);
      const n = Math.min(pcm.length, room);
      for (let i = 0; i < n; i++) {
        this.ring[(this.written + i) % this.ring.length] = pcm[i] / 32768;
      }
      this.written += n;
      this.dropped += pcm.length - n;
    } else if (message.mark) {
      this.marks.push({ name: message.mark, at: this.written });
    } else if (message.clear) {
      this.read = this.written;
      this.echo(Infinity);
    }
  }

  echo(upTo) {
    while (this.marks.length && this.marks[0].at <= upTo) {
      this.port.postMessage({ mark: this.marks.shift().name });
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    const available = Math.min(out.length, this.written - this.read);
    for (let i = 0; i < available; i++) {
      out[i] = this.ring[(this.read + i) % this.ring.length];
    }
    out.fill(0, available);
    this.read += available;
    this.echo(this.read);
    return true;
  }
}

registerProcessor("vb-playback", PlaybackProcessor);
