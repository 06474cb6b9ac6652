// The studio's player: a ring buffer of the stream's audio on the audio thread.
//
// The page posts each frame as {pos, samples} (stream position of its first sample pair,
// float32 interleaved stereo). Playback starts once `target` pairs are buffered; if the buffer
// runs dry that is an underrun (counted) and it waits for `target` again. If the sound card's
// clock runs slower than the server's, the buffer grows: past target + 3 frames the oldest audio
// is dropped (counted as `skipped`). Every ~20 ms it reports the stream position of the block it
// plays from `time` (AudioContext seconds), with its fill and counters.

const FRAME = 1920;

class StreamPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.capacity = 48000 * 4;
    this.buf = new Float32Array(this.capacity * 2);
    this.read = 0;            // ring indices (sample pairs, monotonic)
    this.write = 0;
    this.headPos = -1;        // stream position of the sample at `read`
    this.target = opts.target || 2 * FRAME;
    this.playing = false;
    this.underruns = 0;
    this.skipped = 0;
    this.played = 0;
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "frame") {
      this.push(msg.pos, msg.samples);
    } else if (msg.type === "target") {
      this.target = msg.target;
    } else if (msg.type === "flush") {
      this.read = this.write;
      this.playing = false;
      this.headPos = -1;
    }
  }

  push(pos, samples) {
    const n = samples.length / 2;
    const expected = this.headPos + (this.write - this.read);
    if (this.headPos < 0 || pos !== expected) {   // first frame, or a jump (restart, skip)
      this.read = this.write;
      this.headPos = pos;
      this.playing = false;
    }
    if (this.write - this.read + n > this.capacity) return;
    for (let i = 0; i < n; i++) {
      const j = ((this.write + i) % this.capacity) * 2;
      this.buf[j] = samples[2 * i];
      this.buf[j + 1] = samples[2 * i + 1];
    }
    this.write += n;
    const fill = this.write - this.read;
    if (fill > this.target + 3 * FRAME) {        // the card's clock is slower: catch up
      const drop = fill - this.target;
      this.read += drop;
      this.headPos += drop;
      this.skipped += drop;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const left = out[0], right = out[1] || out[0];
    const n = left.length;
    const fill = this.write - this.read;
    if (!this.playing && fill >= this.target) this.playing = true;
    if (this.playing && fill < n) {
      this.playing = false;
      this.underruns += 1;
    }
    const blockPos = this.playing ? this.headPos : -1;   // what this block plays, from currentTime
    if (this.playing) {
      for (let i = 0; i < n; i++) {
        const j = ((this.read + i) % this.capacity) * 2;
        left[i] = this.buf[j];
        right[i] = this.buf[j + 1];
      }
      this.read += n;
      this.headPos += n;
      this.played += n;
    } else {
      left.fill(0);
      right.fill(0);
    }
    this.sinceReport += n;
    if (this.sinceReport >= 960) {
      this.sinceReport = 0;
      this.port.postMessage({
        type: "report", playing: this.playing, pos: blockPos,
        fill: this.write - this.read, underruns: this.underruns, skipped: this.skipped,
        played: this.played, time: currentTime,
      });
    }
    return true;
  }
}

registerProcessor("scorewright-player", StreamPlayer);
