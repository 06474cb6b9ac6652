"""`scorewright trace`: what the director does with a map and an event script, frame by frame
or change by change, as text and (optionally) a plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import FRAME_SECONDS
from .engine import Engine, Frame, ScriptItem

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(n: int) -> str:
    return f"{NOTE_NAMES[n % 12]}{n // 12 - 1}"


@dataclass
class TraceRow:
    frame: int
    t: float
    beat: float
    beats_per_bar: int
    tempo: float
    drums: int
    weights: dict[str, float]
    params: dict[str, float]
    states: dict[str, str]
    rules: list[str]
    notes: list[int]
    markers: list[str] = field(default_factory=list)

    def key(self) -> tuple:
        """What counts as a change between rows (rounded so glides don't print every frame)."""
        return (tuple((k, round(v * 5) / 5) for k, v in sorted(self.weights.items())), self.drums,
                tuple(self.rules), tuple(sorted(self.states.items())), tuple(self.notes),
                tuple(m for m in self.markers if not m.startswith(("beat", "bar"))))


def trace(engine: Engine, seconds: float, script: list[ScriptItem], on_error=None) -> list[TraceRow]:
    """Run the director (no audio) over the script; one row per frame."""
    rows: list[TraceRow] = []

    def on_frame(k: int, frame: Frame) -> None:
        c = frame.cond
        if c is None:
            return
        rows.append(TraceRow(
            k, k * FRAME_SECONDS, c.beat, c.beats_per_bar, c.tempo_bpm, c.drums, dict(c.weights),
            {n: round(v, 4) for n, v in engine.director.params.items()}, dict(engine.director.states),
            list(engine.director.stats.active_rules), [int(n) for n in np.flatnonzero(c.notes >= 1)],
            [f"{m.kind}:{m.name}" if m.name else m.kind for m in frame.markers]))

    engine.render(seconds, script, on_frame, on_error, audio=False)
    return rows


def format_row(r: TraceRow) -> str:
    weights = " ".join(f"{k}={v:.2f}" for k, v in sorted(r.weights.items(), key=lambda kv: -kv[1]))
    params = " ".join(f"{k}={v:.2f}" for k, v in r.params.items())
    states = " ".join(f"{k}={v}" for k, v in r.states.items())
    notes = ",".join(note_name(n) for n in r.notes) or "-"
    events = " ".join(m for m in r.markers if not m.startswith(("beat", "bar"))) or ""
    drums = {1: "on", 0: "off"}.get(r.drums, "free")
    bar, beat = divmod(int(r.beat), r.beats_per_bar)
    return (f"{r.t:7.2f}s f{r.frame:<5d} {bar + 1:>3}.{beat + 1} {r.tempo:5.1f}bpm "
            f"drums {drums:<4} | {weights:<34} | {params} {states} | rules: {','.join(r.rules) or '-'}"
            f" | notes {notes}" + (f" | {events}" if events else ""))


def changes(rows: list[TraceRow]) -> list[TraceRow]:
    """Rows where something a designer cares about changed."""
    out, last = [], None
    for r in rows:
        if r.key() != last:
            out.append(r)
            last = r.key()
    return out


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'scorewright[plot]'") from None
    return plt


def plot(rows: list[TraceRow], out: Path, title: str) -> None:
    """Draw `figure` into a PNG file."""
    fig = figure(rows, title)
    fig.savefig(out, dpi=110)
    _pyplot().close(fig)


def figure(rows: list[TraceRow], title: str):
    """Style weights, params and (when there are any) notes over time, with transition and
    stinger markers: a matplotlib Figure."""
    plt = _pyplot()
    t = np.array([r.t for r in rows])
    styles = sorted({s for r in rows for s in r.weights})
    params = sorted({p for r in rows for p in r.params})
    has_notes = any(r.notes for r in rows)
    ratios = [3, 2, 2] if has_notes else [3, 2]     # no empty notes panel for a map without notes
    fig, axes = plt.subplots(len(ratios), 1, figsize=(12, 2 * sum(ratios) / 3 + 2), sharex=True,
                             height_ratios=ratios)
    axes[0].stackplot(t, [[r.weights.get(s, 0.0) for r in rows] for s in styles], labels=styles)
    axes[0].set_ylabel("style weights")
    axes[0].legend(loc="upper left", fontsize=8, ncols=min(len(styles), 4))
    for p in params:
        axes[1].plot(t, [r.params[p] for r in rows], label=p)
    axes[1].set_ylabel("params")
    if params:
        axes[1].legend(loc="upper left", fontsize=8)
    if has_notes:
        xs, ys = [r.t for r in rows for _ in r.notes], [n for r in rows for n in r.notes]
        axes[2].scatter(xs, ys, s=2, marker="s")
        axes[2].set_ylabel("notes (MIDI)")
    axes[-1].set_xlabel("seconds")
    for r in rows:
        for m in r.markers:
            if m.startswith(("transition", "stinger")):
                for ax in axes:
                    ax.axvline(r.t, color="red" if m.startswith("stinger") else "gray", lw=0.6, alpha=0.6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
