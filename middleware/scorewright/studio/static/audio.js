// Audio out: an AudioContext at 48 kHz, the player worklet (worklet.js) and a volume control.
// Knows which stream position is being heard now, on the page's clock (performance.now()).

export const SAMPLE_RATE = 48000;
export const FRAME = 1920;

export class Audio {
  constructor(cushionFrames = 2) {
    this.ctx = null;
    this.node = null;
    this.gain = null;
    this.cushion = cushionFrames * FRAME;
    this.report = null;         // the worklet's last report
    this.reportPerf = 0;        // performance.now() when the block it describes is heard
    this.volume = 0.8;
    this.onReport = null;
  }

  get started() {
    return this.ctx !== null && this.ctx.state === "running";
  }

  async start() {                           // needs a user gesture (browsers' autoplay rules)
    if (this.ctx === null) {
      this.ctx = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: "interactive" });
      await this.ctx.audioWorklet.addModule("worklet.js");
      this.node = new AudioWorkletNode(this.ctx, "scorewright-player", {
        numberOfInputs: 0, outputChannelCount: [2], processorOptions: { target: this.cushion },
      });
      this.gain = this.ctx.createGain();
      this.gain.gain.value = this.volume;
      this.node.connect(this.gain).connect(this.ctx.destination);
      this.node.port.onmessage = (e) => this._onReport(e.data);
    }
    await this.ctx.resume();
  }

  async suspend() {
    if (this.ctx) await this.ctx.suspend();
  }

  setVolume(v) {
    this.volume = v;
    if (this.gain) this.gain.gain.value = v;
  }

  push(pos, samples) {
    if (this.node) this.node.port.postMessage({ type: "frame", pos, samples }, [samples.buffer]);
  }

  flush() {
    if (this.node) this.node.port.postMessage({ type: "flush" });
  }

  _onReport(r) {
    this.report = r;
    // map the block's AudioContext time to the page's clock (output latency included)
    const ts = this.ctx.getOutputTimestamp();
    if (ts.contextTime > 0) {
      this.reportPerf = ts.performanceTime + (r.time - ts.contextTime) * 1000;
    } else {                                  // no timestamp from the device yet
      const lag = this.ctx.outputLatency || this.ctx.baseLatency || 0;
      this.reportPerf = performance.now() + (r.time - this.ctx.currentTime + lag) * 1000;
    }
    if (this.onReport) this.onReport(r);
  }

  // The stream position heard at page time `now` (performance.now()), or -1.
  positionAt(now) {
    const r = this.report;
    if (!r || r.pos < 0) return -1;
    return r.pos + Math.round(((now - this.reportPerf) / 1000) * SAMPLE_RATE);
  }

  // When (page time) stream position `pos` is (or was) heard, if it is playing now.
  heardAt(pos) {
    const r = this.report;
    if (!r || r.pos < 0) return null;
    return this.reportPerf + ((pos - r.pos) / SAMPLE_RATE) * 1000;
  }
}
