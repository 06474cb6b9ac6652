// The timeline: the last 60 s of what was heard, scrolling at the display's frame rate: style
// weights (stacked), params (each over its range), states, rules on/off, and markers (bars,
// transitions, stingers). One canvas, redrawn from a bounded history.

import { colour } from "./ui.js";

const SPAN_MS = 60000;
const LANES = { weights: 0.34, params: 0.26, states: 0.2, rules: 0.2 };

export class Timeline {
  constructor(canvas, inspector) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.inspector = inspector;     // shares the style colours
    this.history = [];              // {t (page ms heard), snap, markers}
    this.params = [];
    this.stateGroups = [];
    this.rules = [];
    this.running = false;
  }

  setMap(map) {
    this.params = map.params;
    this.stateGroups = map.states;
    this.rules = map.rules.map((r) => r.name);
  }

  add(t, snap, markers) {
    this.history.push({ t, snap, markers });
    const oldest = t - SPAN_MS - 2000;
    while (this.history.length && this.history[0].t < oldest) this.history.shift();
  }

  start() {
    if (this.running) return;
    this.running = true;
    const frame = () => {
      this.draw(performance.now());
      if (this.running) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  draw(now) {
    const c = this.canvas, g = this.ctx;
    const cw = Math.round(c.clientWidth * devicePixelRatio), ch = Math.round(c.clientHeight * devicePixelRatio);
    if (c.width !== cw || c.height !== ch) {       // resizing the canvas costs: only when it changed
      c.width = cw;
      c.height = ch;
    }
    const w = cw, h = ch;
    g.clearRect(0, 0, w, h);
    const x = (t) => ((t - now + SPAN_MS) / SPAN_MS) * w;
    const visible = this.history.filter((e) => e.t <= now);
    if (visible.length < 2) return;
    let top = 0;
    const lanes = [];
    const lane = (name) => {
      const y0 = top;
      top += LANES[name] * h;
      g.fillStyle = "#1b1d28";
      g.fillRect(0, y0, w, LANES[name] * h - 2);
      lanes.push([name, y0]);
      return [y0, LANES[name] * h - 4];
    };
    // style weights, stacked
    const [wy, wh] = lane("weights");
    const styles = [...new Set(visible.flatMap((e) => Object.keys(e.snap.weights)))];
    const base = new Float32Array(visible.length);
    for (const s of styles) {
      g.beginPath();
      visible.forEach((e, i) => g.lineTo(x(e.t), wy + wh * (1 - base[i] - (e.snap.weights[s] || 0))));
      for (let i = visible.length - 1; i >= 0; i--) g.lineTo(x(visible[i].t), wy + wh * (1 - base[i]));
      g.closePath();
      g.fillStyle = this.inspector.styleColour(s);
      g.fill();
      visible.forEach((e, i) => { base[i] += e.snap.weights[s] || 0; });
    }
    // params over their ranges
    const [py, ph] = lane("params");
    this.params.forEach((p, k) => {
      g.strokeStyle = colour(k + 3);
      g.lineWidth = 1.5 * devicePixelRatio;
      g.beginPath();
      visible.forEach((e) => g.lineTo(x(e.t), py + ph * (1 - (e.snap.params[p.name] - p.min) / (p.max - p.min))));
      g.stroke();
    });
    // states: one band per group, a colour per value
    const [sy, sh] = lane("states");
    const band = sh / Math.max(this.stateGroups.length, 1);
    this.stateGroups.forEach((s, k) => {
      visible.forEach((e, i) => {
        if (i === 0) return;
        g.fillStyle = colour(s.values.indexOf(e.snap.states[s.group]));
        g.fillRect(x(visible[i - 1].t), sy + k * band, x(e.t) - x(visible[i - 1].t) + 1, band - 2);
      });
    });
    // rules: a bar while on (its height follows the fade)
    const [ry, rh] = lane("rules");
    const rowH = rh / Math.max(this.rules.length, 1);
    visible.forEach((e, i) => {
      if (i === 0) return;
      e.snap.rules.forEach((r, k) => {
        if (r.gain <= 0) return;
        g.fillStyle = "rgba(242,190,70,0.8)";
        g.fillRect(x(visible[i - 1].t), ry + k * rowH + rowH * (1 - r.gain), x(e.t) - x(visible[i - 1].t) + 1, rowH * r.gain - 1);
      });
    });
    // lane names and the time axis (seconds ago)
    g.fillStyle = "rgba(236,232,220,0.75)";
    g.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    for (const [name, y0] of lanes) g.fillText(name, 6 * devicePixelRatio, y0 + 13 * devicePixelRatio);
    g.fillStyle = "rgba(236,232,220,0.4)";
    for (let s = 10; s < SPAN_MS / 1000; s += 10) g.fillText(`-${s} s`, x(now - s * 1000) + 3, h - 4);
    // markers
    for (const e of visible) {
      for (const m of e.markers) {
        if (m.kind === "beat") continue;
        g.strokeStyle = m.kind === "stinger" ? "#e25448" : m.kind === "transition" ? "#cccccc" : "rgba(255,255,255,0.18)";
        g.lineWidth = (m.kind === "bar" ? 1 : 2) * devicePixelRatio;
        g.beginPath();
        g.moveTo(x(e.t), 0);
        g.lineTo(x(e.t), h);
        g.stroke();
      }
    }
  }
}
