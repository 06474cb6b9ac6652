// "Why does it sound like this?": the director's snapshot of the frame being heard: style
// weights, rules with their conditions and the values those read, pending landings with a
// countdown, stingers and cooldowns, tempo, key, drums, generation settings, backend.

import { NOTE_NAMES, colour, el, fmt } from "./ui.js";

export class Inspector {
  constructor(root) {
    this.root = root;
    this.styleIndex = new Map();
  }

  styleColour(name) {
    if (!this.styleIndex.has(name)) this.styleIndex.set(name, this.styleIndex.size);
    return colour(this.styleIndex.get(name));
  }

  update(s) {
    const weights = Object.entries(s.weights).sort((a, b) => b[1] - a[1]);
    const key = s.key ? `${NOTE_NAMES[s.key.root % 12]} ${s.key.mode}` : "-";
    const drums = { 1: "on", 0: "off", "-1": "free" }[s.drums];
    const g = s.generation;
    this.root.replaceChildren(
      el("h2", {}, "Styles"),
      el("div", { class: "bars" }, ...weights.map(([name, w]) => el("div", { class: "bar", "data-style": name },
        el("span", { class: "label" }, name),
        el("span", { class: "fill", style: `width:${Math.round(w * 100)}%;background:${this.styleColour(name)}` }),
        el("span", { class: "num" }, `${Math.round(w * 100)}%`)))),
      el("h2", {}, "Rules"),
      el("table", { class: "rules" }, el("tr", {}, el("th", {}, "rule"), el("th", {}, "when"), el("th", {}, "reads"),
        el("th", {}, "state")), ...s.rules.map((r) => this._rule(r))),
      el("h2", {}, "Stingers"), this._stingers(s.stingers),
      el("h2", {}, "Music"),
      el("dl", { class: "facts" },
        el("dt", {}, "tempo"), el("dd", {}, `${fmt(s.tempo, 1)} bpm`),
        el("dt", {}, "bar.beat"), el("dd", {}, `${s.bar + 1}.${Math.floor(s.beat % s.beats_per_bar) + 1}`),
        el("dt", {}, "key"), el("dd", {}, key),
        el("dt", {}, "drums"), el("dd", {}, drums),
        el("dt", {}, "notes"), el("dd", {}, s.notes.length ? s.notes.join(" ") : "-"),
        el("dt", {}, "generation"), el("dd", {}, `temperature ${fmt(g.temperature)} · top-k ${g.top_k} · guidance ` +
          `${fmt(g.cfg_style)}/${fmt(g.cfg_notes)}/${fmt(g.cfg_drums)}`),
        el("dt", {}, "backend"), el("dd", {}, s.backend)),
    );
  }

  _rule(r) {
    const reads = Object.entries(r.names).map(([n, v]) => `${n}=${fmt(v)}`).join(" ");
    let state = r.on ? `on ${Math.round(r.gain * 100)}%` : (r.gain > 0 ? `fading ${Math.round(r.gain * 100)}%` : "off");
    if (r.lands_in_s !== null) state += ` → ${r.matched ? "on" : "off"} at the next ${r.lands_on} in ${fmt(r.lands_in_s, 1)} s`;
    if (r.errors) state += ` (${r.errors} errors)`;
    return el("tr", { class: r.on ? "on" : "", "data-rule": r.name },
      el("td", {}, r.name), el("td", { class: "code" }, r.when), el("td", { class: "dim" }, reads), el("td", {}, state));
  }

  _stingers(st) {
    const parts = [];
    if (st.playing) parts.push(`playing ${st.playing.event} (${Math.round(st.playing.gain * 100)}%, ends in ${fmt(st.playing.ends_in_s, 1)} s)`);
    if (st.pending) parts.push(`waiting for its beat: ${st.pending}`);
    for (const [event, left] of Object.entries(st.cooldowns)) parts.push(`${event}: cooldown ${fmt(left, 1)} s`);
    return el("p", { class: parts.length ? "" : "dim" }, parts.join(" · ") || "none");
  }
}
