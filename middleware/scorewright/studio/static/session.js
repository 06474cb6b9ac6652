// Takes and snapshots. A take records the designer's moves from the top of the music (the same
// message log as `serve --record`); it replays against the edited map and exports to WAV
// through `scorewright render` (the same audio as the replay, by seed). Snapshots are named
// sets of param and state values, kept in this browser per map, recalled or A/B-switched.

import { el, fmt } from "./ui.js";

export class Takes {
  constructor(root, conn) {
    this.conn = conn;
    this.list = el("ul", { class: "takes" });
    this.record = el("button", { "data-action": "record" }, "● Record take");
    this.record.addEventListener("click", () => this.toggle());
    this.status = el("div", { class: "dim" }, "");
    root.replaceChildren(el("h2", {}, "Takes"), this.record, this.status, this.list);
    this.recording = null;
  }

  async toggle() {
    const r = await this.conn.request({ type: "studio.record", cmd: this.recording ? "stop" : "start" });
    this.show(r.takes, r.recording);
  }

  show(takes, recording) {
    this.recording = recording;
    this.record.textContent = recording ? "■ Stop recording" : "● Record take";
    this.record.classList.toggle("on", Boolean(recording));
    this.status.textContent = recording ? `recording ${recording} (from the top)` : "";
    this.list.replaceChildren(...takes.slice().reverse().map((t) => {
      const replay = el("button", { "data-replay": t }, "replay");
      replay.addEventListener("click", () => this.conn.request({ type: "studio.replay", take: t })
        .then((r) => {
          window.studio.replay = r;            // where the take starts in the stream (tests)
          this.status.textContent = `replaying ${t} (${r.messages} messages)`;
        }));
      const wav = el("button", { "data-export": t }, "export WAV");
      wav.addEventListener("click", () => this.conn.request({ type: "studio.export", take: t })
        .then(() => { this.status.textContent = `rendering ${t}...`; }));
      return el("li", {}, t, " ", replay, wav);
    }));
  }

  exported(msg) {
    // a server with a token wants it for downloads too (the page's address carries it)
    const token = new URLSearchParams(location.search).get("token");
    const href = token ? `${msg.url}?token=${encodeURIComponent(token)}` : msg.url;
    this.status.replaceChildren(`${msg.wav} is ready: `, el("a", { href, download: msg.wav }, "download"));
  }
}

export class Snapshots {
  constructor(root, send, mapName) {
    this.send = send;
    this.key = `scorewright-snapshots:${mapName}`;
    this.saved = JSON.parse(localStorage.getItem(this.key) || "{}");
    this.current = null;     // the latest director snapshot
    this.name = el("input", { type: "text", placeholder: "snapshot name", "aria-label": "snapshot name" });
    const save = el("button", {}, "save");
    save.addEventListener("click", () => this.save());
    this.a = el("select", { "aria-label": "A" });
    this.b = el("select", { "aria-label": "B" });
    const ab = el("button", {}, "A/B");
    ab.addEventListener("click", () => this.flip());
    this.list = el("ul", { class: "snapshots" });
    root.replaceChildren(el("h2", {}, "Snapshots"), el("div", { class: "values" }, this.name, save),
      el("div", { class: "values" }, "A ", this.a, " B ", this.b, ab), this.list);
    this.side = "B";
    this.render();
  }

  save() {
    const name = this.name.value.trim() || `snapshot ${Object.keys(this.saved).length + 1}`;
    if (!this.current) return;
    this.saved[name] = { params: { ...this.current.targets }, states: { ...this.current.states } };
    localStorage.setItem(this.key, JSON.stringify(this.saved));
    this.name.value = "";
    this.render();
  }

  recall(name) {
    const s = this.saved[name];
    if (!s) return;
    for (const [param, value] of Object.entries(s.params)) this.send({ type: "set", param, value });
    for (const [group, value] of Object.entries(s.states)) this.send({ type: "state", group, value });
  }

  flip() {
    this.side = this.side === "A" ? "B" : "A";
    this.recall((this.side === "A" ? this.a : this.b).value);
  }

  render() {
    const names = Object.keys(this.saved);
    for (const sel of [this.a, this.b]) {
      const keep = sel.value;
      sel.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
      if (names.includes(keep)) sel.value = keep;
    }
    if (names.length > 1 && this.a.value === this.b.value) this.b.value = names[1];
    this.list.replaceChildren(...names.map((n) => {
      const recall = el("button", {}, "recall");
      recall.addEventListener("click", () => this.recall(n));
      const remove = el("button", {}, "×");
      remove.addEventListener("click", () => { delete this.saved[n]; localStorage.setItem(this.key, JSON.stringify(this.saved)); this.render(); });
      const s = this.saved[n];
      const summary = [...Object.entries(s.params).map(([k, v]) => `${k} ${fmt(v)}`), ...Object.entries(s.states).map(([k, v]) => `${k}=${v}`)].join(", ");
      return el("li", {}, el("strong", {}, n), " ", el("span", { class: "dim" }, summary), " ", recall, remove);
    }));
  }
}
