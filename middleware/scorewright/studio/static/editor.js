// The map's YAML in an editor: every edit is checked by the server (what `scorewright validate`
// says) and problems are marked at their line; saving writes the file, which the server reloads
// at the next bar (a broken map keeps the last good one playing). Edits made in another editor
// show up here.

import { el } from "./ui.js";

export class Editor {
  constructor(root, conn) {
    this.conn = conn;
    this.dirty = false;
    this.saved = "";
    this.status = el("span", { class: "dim" }, "");
    const save = el("button", { title: "Ctrl-S" }, "Save");
    save.addEventListener("click", () => this.save());
    this.file = el("strong", {}, "");
    this.problems = el("ul", { class: "problems" });
    this.notice = el("div", { class: "notice", hidden: true });
    const host = el("div", { class: "cm-host" });
    root.replaceChildren(el("div", { class: "toolbar" }, this.file, save, this.status), this.notice, host, this.problems);
    this.cm = window.CodeMirror(host, {
      mode: "yaml", lineNumbers: true, indentUnit: 2, tabSize: 2, styleActiveLine: true,
      gutters: ["problems", "CodeMirror-linenumbers"],
      extraKeys: { "Ctrl-S": () => this.save(), "Cmd-S": () => this.save(), Tab: (cm) => cm.replaceSelection("  ") },
    });
    let timer = null;
    this.cm.on("change", (_cm, change) => {
      if (change.origin === "setValue") return;
      this.dirty = this.cm.getValue() !== this.saved;
      this.status.textContent = this.dirty ? "edited" : "";
      clearTimeout(timer);
      timer = setTimeout(() => this.validate(), 300);
    });
  }

  load(file, text, problems = []) {
    this.file.textContent = file;
    this.saved = text;
    this.dirty = false;
    const cursor = this.cm.getCursor();
    this.cm.setValue(text);
    this.cm.setCursor(cursor);
    this.status.textContent = "";
    this.show(problems);
  }

  async validate() {
    try {
      const r = await this.conn.request({ type: "studio.validate", text: this.cm.getValue() });
      this.show(r.problems);
    } catch (e) {
      this.status.textContent = `not checked: ${e.message}`;
    }
  }

  async save() {
    const text = this.cm.getValue();
    try {
      const r = await this.conn.request({ type: "studio.save", text });
      this.saved = text;
      this.dirty = false;
      this.notice.hidden = true;
      this.status.textContent = r.problems.length ? "saved: the last good map keeps playing" : "saved: plays from the next bar";
      this.show(r.problems);
    } catch (e) {
      this.status.textContent = `not saved: ${e.message}`;
    }
  }

  // The file changed on disk (this page's save, or another editor).
  changedOnDisk(text, problems) {
    if (text === this.cm.getValue()) {
      this.saved = text;
      this.show(problems);
      return;
    }
    if (!this.dirty) {
      this.load(this.file.textContent, text, problems);
      this.status.textContent = "changed in another editor";
      return;
    }
    this.notice.replaceChildren("The file changed in another editor. ",
      Object.assign(el("button", {}, "Load it"), { onclick: () => this.load(this.file.textContent, text, problems) }),
      " (your edits here are kept until you do)");
    this.notice.hidden = false;
  }

  show(problems) {
    this.cm.clearGutter("problems");
    for (const m of this.marks || []) m.clear();
    this.marks = [];
    const mine = problems.filter((p) => p.file === this.file.textContent);
    for (const p of mine) {
      const line = Math.max(0, p.line - 1);
      const marker = el("span", { class: "problem-marker", title: p.message }, "●");
      this.cm.setGutterMarker(line, "problems", marker);
      this.marks.push(this.cm.markText({ line, ch: Math.max(0, p.col - 1) }, { line, ch: Math.max(p.col, 1) + 12 },
        { className: "problem-text", title: p.message }));
    }
    this.problems.replaceChildren(...problems.map((p) => {
      const item = el("li", { "data-line": p.line }, `${p.file}:${p.line}:${p.col}: ${p.path ? p.path + ": " : ""}${p.message}`);
      item.addEventListener("click", () => { this.cm.setCursor({ line: p.line - 1, ch: p.col - 1 }); this.cm.focus(); });
      return item;
    }));
  }
}
