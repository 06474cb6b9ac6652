// Controls generated from the map: a slider per param (set value and smoothed value side by
// side), buttons (or a list) per state group, a button per event, a runtime prompt, and MIDI
// notes from the computer keyboard. Attached to a live game, moving a control overrides the
// game's value until "release".

import { el, fmt } from "./ui.js";

const KEYS = "awsedftgyhujkolp";            // C D E F G A B ... from the A key row, sharps above

export class Controls {
  constructor(root, send, attached) {
    this.root = root;
    this.send = send;
    this.attached = attached;
    this.params = new Map();     // name -> {slider, target, smooth, release}
    this.states = new Map();     // group -> {buttons|select, release}
    this.octave = 4;
    this.held = new Set();
    document.addEventListener("keydown", (e) => this._key(e, true));
    document.addEventListener("keyup", (e) => this._key(e, false));
  }

  build(map) {
    this.root.replaceChildren();
    this.params.clear();
    this.states.clear();
    this.root.append(el("h2", {}, "Params"));
    for (const p of map.params) this.root.append(this._param(p));
    if (!map.params.length) this.root.append(el("p", { class: "dim" }, "no params"));
    this.root.append(el("h2", {}, "States"));
    for (const s of map.states) this.root.append(this._state(s));
    if (!map.states.length) this.root.append(el("p", { class: "dim" }, "no states"));
    this.root.append(el("h2", {}, "Events"), this._events(map));
    this.root.append(el("h2", {}, "Prompt"), this._prompt());
    this.root.append(el("h2", {}, "Notes"),
      el("p", { class: "dim" }, "play with the keys A W S E D F T G Y H U J K (Z / X: octave)"),
      this.noteLine = el("div", { class: "notes" }, "-"));
  }

  _param(p) {
    const step = (p.max - p.min) / 1000;
    const slider = el("input", { type: "range", min: p.min, max: p.max, step, value: p.default,
      "aria-label": p.name, "data-param": p.name });
    const target = el("span", { class: "num" }, fmt(p.default));
    const smooth = el("span", { class: "num dim" }, fmt(p.default));
    const release = el("button", { class: "release", hidden: true, title: "give the param back to the game" }, "release");
    slider.addEventListener("input", () => {
      const value = Number(slider.value);
      this.send(this.attached ? { type: "override", param: p.name, value } : { type: "set", param: p.name, value });
      target.textContent = fmt(value);
      this.touched = { param: p.name, at: performance.now() };
    });
    release.addEventListener("click", () => this.send({ type: "release", param: p.name }));
    this.params.set(p.name, { slider, target, smooth, release, spec: p });
    return el("div", { class: "param" },
      el("label", {}, p.name, el("span", { class: "dim" }, ` ${fmt(p.min)}–${fmt(p.max)}, default ${fmt(p.default)}`)),
      slider, el("div", { class: "values" }, "set ", target, "  heard ", smooth, " ", release));
  }

  _state(s) {
    const release = el("button", { class: "release", hidden: true }, "release");
    release.addEventListener("click", () => this.send({ type: "release", group: s.group }));
    const choose = (value) => this.send(this.attached ? { type: "override", group: s.group, value }
      : { type: "state", group: s.group, value });
    let widget;
    if (s.values.length <= 6) {
      widget = el("div", { class: "choices" }, ...s.values.map((v) => {
        const b = el("button", { "data-state": `${s.group}=${v}` }, v);
        b.addEventListener("click", () => choose(v));
        return b;
      }));
    } else {
      widget = el("select", { "aria-label": s.group }, ...s.values.map((v) => el("option", { value: v }, v)));
      widget.addEventListener("change", () => choose(widget.value));
    }
    this.states.set(s.group, { widget, release });
    return el("div", { class: "state" }, el("label", {}, s.group), widget, release);
  }

  _events(map) {
    const box = el("div", { class: "choices" });
    for (const name of map.events) {
      const b = el("button", { "data-event": name, class: map.stingers.includes(name) ? "stinger" : "" }, name);
      b.addEventListener("click", () => this.send({ type: "event", name }));
      box.append(b);
    }
    if (!map.events.length) box.append(el("span", { class: "dim" }, "no events"));
    return box;
  }

  _prompt() {
    const text = el("input", { type: "text", placeholder: "e.g. spooky music box", "aria-label": "prompt" });
    const weight = el("input", { type: "range", min: 0, max: 2, step: 0.05, value: 1, "aria-label": "prompt weight" });
    const add = el("button", {}, "blend in");
    const remove = el("button", {}, "remove");
    this.promptState = el("div", { class: "dim" }, "");
    add.addEventListener("click", () => {
      if (text.value.trim()) this.send({ type: "prompt", text: text.value.trim(), name: "studio", weight: Number(weight.value) });
    });
    remove.addEventListener("click", () => this.send({ type: "prompt", text: "-", name: "studio", weight: 0 }));
    return el("div", { class: "prompt" }, text, el("div", { class: "values" }, "weight ", weight, add, remove), this.promptState);
  }

  // What the director did with the controls (the snapshot of the frame being heard).
  update(snap) {
    for (const [name, c] of this.params) {
      const overridden = name in snap.overrides.param;
      c.smooth.textContent = fmt(snap.params[name]);
      c.release.hidden = !overridden;
      if (document.activeElement !== c.slider && !(this.touched && this.touched.param === name &&
          performance.now() - this.touched.at < 500)) {
        c.slider.value = snap.targets[name];
        c.target.textContent = fmt(snap.targets[name]);
      }
      c.slider.classList.toggle("overridden", overridden);
    }
    for (const [group, c] of this.states) {
      const value = snap.states[group];
      if (c.widget.tagName === "SELECT") c.widget.value = value;
      else for (const b of c.widget.children) b.classList.toggle("on", b.textContent === value);
      c.release.hidden = !(group in snap.overrides.state);
    }
    const prompt = snap.prompts["prompt:studio"];
    this.promptState.textContent = prompt ? `sounding, weight ${fmt(prompt)}` : "";
    this.noteLine.textContent = snap.notes.length ? snap.notes.join(" ") : "-";
  }

  _key(e, down) {
    if (e.repeat || ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName) || e.target.closest(".CodeMirror")) return;
    const k = e.key.toLowerCase();
    if (down && (k === "z" || k === "x")) {
      this.octave = Math.min(8, Math.max(1, this.octave + (k === "x" ? 1 : -1)));
      return;
    }
    const i = KEYS.indexOf(k);
    if (i < 0) return;
    const note = 12 * (this.octave + 1) + i;
    if (down && !this.held.has(note)) {
      this.held.add(note);
      this.send({ type: "notes", on: [note] });
    } else if (!down && this.held.has(note)) {
      this.held.delete(note);
      this.send({ type: "notes", off: [note] });
    }
  }
}
