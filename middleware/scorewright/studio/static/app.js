// Scorewright Studio: the page. It connects to the server that serves it, says hello, asks for
// the map, and from then on shows and plays each frame when it is heard.

import { Audio } from "./audio.js";
import { Connection } from "./connection.js";
import { Controls } from "./controls.js";
import { Editor } from "./editor.js";
import { Inspector } from "./inspector.js";
import { Snapshots, Takes } from "./session.js";
import { Timeline } from "./timeline.js";
import { el, fmt } from "./ui.js";

const params = new URLSearchParams(location.search);
const attached = params.get("attach") === "1";
const token = params.get("token") || undefined;
const $ = (id) => document.getElementById(id);

// frames the worklet holds before playing: 3 (120 ms) kept 0 underruns on a loaded 2-core
// machine where 2 had some (bench/bench_studio.py), at p95 169 ms control -> heard
const audio = new Audio(Number(params.get("cushion") || 3));
const inspector = new Inspector($("inspector"));
const timeline = new Timeline($("timeline"), inspector);
const upcoming = [];                 // frames received, not heard yet: {pos, snap, markers, arrived}
const awaiting = [];                 // control messages sent: {id, sent, pos?}
const studio = window.studio = {     // what tests and the bench read
  attached, received: 0, frames: 0, latencies: [], serverStatus: null, snap: null, errors: [],
  worklet: null, map: null, energy: 0, capture: null,   // capture: [] collects [pos, samples]
};
let controls, editor, takes, snapshots;

const conn = new Connection({
  open: async () => {
    $("connection").textContent = "connected";
    try {
      await conn.request({ type: "hello", client: attached ? "studio (attached)" : "studio", want_audio: true, token });
      openMap(await conn.request({ type: "studio.open" }));
    } catch (e) {
      showError(e.reply || { code: "hello", message: e.message });
    }
  },
  close: () => { $("connection").textContent = "reconnecting..."; },
  frame: (msg) => {
    studio.frames += 1;
    if (msg.telemetry) showServerHealth(msg.telemetry);
    if (msg.inspect) upcoming.push({ pos: msg.pos, snap: msg.inspect, markers: msg.markers, arrived: performance.now() });
    if (upcoming.length > 250) upcoming.shift();
  },
  audio: (pos, samples) => {
    studio.received += samples.length / 2;
    let sum = 0;
    for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
    studio.energy = Math.sqrt(sum / samples.length);          // RMS of the latest frame
    if (studio.capture) studio.capture.push([pos, Array.from(samples)]);
    audio.push(pos, samples);
  },
  message: (msg) => onMessage(msg),
});

function send(msg) {
  const id = conn.send(msg);
  if (["set", "state", "event", "notes", "override", "release"].includes(msg.type)) {
    awaiting.push({ id, sent: performance.now(), type: msg.type });
    if (awaiting.length > 200) awaiting.shift();
  }
  return id;
}

function onMessage(msg) {
  if (msg.type === "ok" && msg.pos !== undefined) {
    const a = awaiting.find((x) => x.id === msg.id);
    if (a) a.pos = msg.pos;
  } else if (msg.type === "error") {
    showError(msg);
  } else if (msg.type === "studio.file") {
    editor.changedOnDisk(msg.text, msg.problems);
  } else if (msg.type === "status" && msg.reloaded) {
    conn.request({ type: "studio.open" }).then(openMap);
  } else if (msg.type === "studio.exported") {
    takes.exported(msg);
  } else if (msg.type === "studio.takes" && msg.stopped && takes) {   // a take reached its limit
    takes.show(msg.takes, msg.recording);
    showError({ code: "take_stopped", message: msg.stopped });
  }
}

function openMap(r) {
  studio.map = r.map;
  document.title = `${r.map.name} · Scorewright Studio`;
  $("mapname").textContent = `${r.file} · ${r.map.backend}${attached ? " · attached to a running game" : ""}` +
    (r.read_only ? " · read-only" : "");
  $("mapname").title = r.read_only || "";
  $("seed").value = r.seed;
  controls = controls || new Controls($("controls"), send, attached);
  controls.build(r.map);
  editor = editor || new Editor($("editor"), conn);
  if (!editor.dirty) editor.load(r.file, r.text);
  takes = takes || new Takes($("takes"), conn);
  takes.show(r.takes, r.recording);
  snapshots = snapshots || new Snapshots($("snapshots"), send, r.map.name);
  timeline.setMap(r.map);
  timeline.start();
  editor.validate();
}

function showError(e) {
  studio.errors.push(e);
  const note = el("div", { class: "toast" }, `${e.code}: ${e.message}`);
  $("toasts").append(note);
  setTimeout(() => note.remove(), 6000);
}

function showServerHealth(s) {
  studio.serverStatus = s;
  $("server-health").textContent = `frame cost ${fmt(s.cost_ms_p50)}/${fmt(s.cost_ms_p99)} ms · lookahead ` +
    `${s.lookahead} · underruns ${s.underruns}${s.skipped ? ` · skipped ${s.skipped}` : ""}`;
}

// each display frame: what is heard now drives the inspector, the controls and the timeline
let lastPanelUpdate = 0;
function tick(now) {
  const heard = audio.started ? audio.positionAt(now) : Infinity;
  let current = null;
  while (upcoming.length && (upcoming[0].pos <= heard || now - upcoming[0].arrived > 2000)) {
    current = upcoming.shift();
    timeline.add(audio.started ? (audio.heardAt(current.pos) ?? now) : now, current.snap, current.markers);
  }
  if (current) studio.snap = current.snap;
  if (studio.snap && controls && now - lastPanelUpdate > 80) {
    lastPanelUpdate = now;
    inspector.update(studio.snap);
    controls.update(studio.snap);
    snapshots.current = studio.snap;
  }
  measureLatency(now);
  requestAnimationFrame(tick);
}

function measureLatency(now) {
  if (!audio.started) return;
  const heardPos = audio.positionAt(now);
  for (let i = awaiting.length - 1; i >= 0; i--) {
    const a = awaiting[i];
    if (a.pos === undefined || heardPos < a.pos) continue;
    const at = audio.heardAt(a.pos);
    if (at !== null) studio.latencies.push(at - a.sent);
    awaiting.splice(i, 1);
  }
  if (studio.latencies.length > 500) studio.latencies.splice(0, studio.latencies.length - 500);
  const recent = studio.latencies.slice(-50).sort((x, y) => x - y);
  const w = audio.report;
  studio.worklet = w;
  $("page-health").textContent = `here: underruns ${w ? w.underruns : 0} · buffer ${w ? fmt(w.fill / 48, 0) : "-"} ms` +
    (recent.length ? ` · control → heard p50 ${fmt(recent[Math.floor(recent.length / 2)], 0)} ms,` +
      ` p95 ${fmt(recent[Math.floor(recent.length * 0.95)], 0)} ms` : "");
}

$("start").addEventListener("click", async () => {
  await audio.start();
  $("start").textContent = "Audio on";
  $("start").disabled = true;
});
$("play").addEventListener("click", () => send({ type: "transport", cmd: "play" }));
$("pause").addEventListener("click", () => send({ type: "transport", cmd: "pause" }));
$("restart").addEventListener("click", () => { send({ type: "transport", cmd: "stop" }); send({ type: "transport", cmd: "play" }); });
$("volume").addEventListener("input", (e) => audio.setVolume(Number(e.target.value)));
$("seed").addEventListener("change", (e) => conn.request({ type: "studio.seed", seed: Number(e.target.value) }).catch((err) => showError(err.reply)));
if (attached) for (const id of ["play", "pause", "restart", "seed"]) $(id).disabled = true;   // the game drives

conn.connect();
requestAnimationFrame(tick);
