// The page's WebSocket to the server: JSON messages both ways (the wire's messages plus the
// studio's own), binary audio frames in (8-byte float64 stream position, then float32 stereo).
// Reconnects on its own; `request` resolves with the reply to one message.

export class Connection {
  constructor(handlers) {
    this.handlers = handlers;     // {open, frame, audio, message, close}
    this.nextId = 1;
    this.waiting = new Map();     // id -> {resolve, reject}
    this.sent = new Map();        // id -> performance.now() when sent (latency)
    this.ws = null;
    this.closedByUs = false;
    this.retry = 250;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      this.retry = 250;
      this.handlers.open();
    };
    this.ws.onmessage = (e) => this._receive(e.data);
    this.ws.onclose = () => {
      for (const w of this.waiting.values()) w.reject(new Error("disconnected"));
      this.waiting.clear();
      this.handlers.close();
      if (!this.closedByUs) setTimeout(() => this.connect(), (this.retry = Math.min(this.retry * 2, 4000)));
    };
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(msg) {
    const id = this.nextId++;
    if (this.open) {
      this.sent.set(id, performance.now());
      if (this.sent.size > 512) this.sent.delete(this.sent.keys().next().value);
      this.ws.send(JSON.stringify({ ...msg, id }));
    }
    return id;
  }

  request(msg) {
    return new Promise((resolve, reject) => {
      const id = this.send(msg);
      this.waiting.set(id, { resolve, reject });
    });
  }

  _receive(data) {
    if (data instanceof ArrayBuffer) {
      const pos = new DataView(data, 0, 8).getFloat64(0, true);
      this.handlers.audio(pos, new Float32Array(data, 8));
      return;
    }
    const msg = JSON.parse(data);
    if (msg.type === "frame") {
      this.handlers.frame(msg);
      return;
    }
    const w = msg.id != null ? this.waiting.get(msg.id) : undefined;
    if (w) {
      this.waiting.delete(msg.id);
      if (msg.type === "error") w.reject(Object.assign(new Error(msg.message), { reply: msg }));
      else w.resolve(msg);
    }
    this.handlers.message(msg);
  }
}
