"""The official runtime's behaviour around the model, for tests/fixtures/mrt2_runtime.safetensors.

Run by make_mrt2_fixtures.py inside its magenta-rt[jax]==2.0.3 environment; everything official is
called, not re-implemented, except where the official rule exists only in C++ (said at each place):

- cond/*: the 144 conditioning ids from `MagentaRT2System._build_conditioning` (with its
  `discretize_cfg`) over a grid of guidance scales, note states, drums and style tokens, and the
  two negatives as the official .mlxfn wrapper builds them (the masked modality as -1); and the
  tiny parity model's conditioning encoder output for all of them;
- sampler/*: the tiny parity depthformer streamed by the official JAX sampler with guidance
  (3 branches), top-k and temperature, from the start state, with `jax.random.gumbel` replaced by
  given noise, so both sides sample from the same Gumbel draws;
- prefill/*: the same after the official forced-token silence prefill (C++ `prefill_with_token_array`
  emulated on the JAX sampler by overwriting the decoder's previous frame before each step, as the
  C++ code overwrites the graph's previous_frame slot);
  with every frame's depth logits of the three branches (before the soft cap);
- mc/*: MusicCoCa text (with and without mapper.tflite) and audio embeddings through the official
  `magenta_rt.musiccoca.MusicCoCa` on the stand-in files, the official resampling alone, the C++
  blend rule (transcribed: it has no Python version) and the official tokens of the blend.
"""

from __future__ import annotations

import contextlib
import types
from pathlib import Path

import numpy as np

STAND_IN = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "musiccoca_tiny"
SCALES = [-2.0, -1.0, -0.9, -0.1, 0.0, 0.1, 0.3, 0.5, 0.7, 1.0, 1.1, 1.3, 1.6, 2.4, 3.0, 3.1, 4.0, 5.0,
          6.4, 6.5, 6.8, 6.9, 7.0, 8.0, 99.0]
# per frame: temperature, top_k, cfg style, cfg notes, cfg drums (the engine's profile, then the apps')
SETTINGS = [(1.0, 100, 3.0, 5.0, 1.0)] * 4 + [(1.1, 5, 1.6, 2.4, 4.0)] * 4
# fewer prefill frames than the tiny model's receptive field (2 layers x 5 frames), more than its window
PREFILL_FRAMES, AFTER_PREFILL = 7, 4


def _keys():
    from magenta_rt import config as C
    return C.MUSICCOCA.key, C.PIANOROLL_WITH_ONSETS.key, C.DRUM_PIANOROLL.key


def official_ids(model_obj, style, notes, drums, scales) -> np.ndarray:
    """[144] positive ids from the official builder (called unbound on a stand-in `self`)."""
    from magenta_rt.jax import system
    mc, pr, dr = _keys()
    me = types.SimpleNamespace(_model=model_obj, cfg_scales={"musiccoca": 3.0, "notes": 1.0, "drums": 1.0},
                               temperature=1.3, top_k=40)
    cond = {mc: [int(x) for x in style], pr: [int(x) for x in notes], dr: [int(drums)]}
    block, _ = system.MagentaRT2System._build_conditioning(
        me, cond, cfg_scales=dict(zip(("musiccoca", "notes", "drums"), map(float, scales), strict=True)))
    return np.asarray(block.values).reshape(-1).astype(np.int32)


def official_branches(model_obj, style, notes, drums, scales) -> np.ndarray:
    """[3, 144]: positive, style masked, notes masked (MagentaRT2SystemStdMlxfn._build_graph_args
    masks the modality with -1; the graph appends the same guidance ids to all three)."""
    return np.stack([official_ids(model_obj, style, notes, drums, scales),
                     official_ids(model_obj, [-1] * 12, notes, drums, scales),
                     official_ids(model_obj, style, [-1] * 128, drums, scales)])


def random_conditioning(rng: np.random.Generator):
    style = rng.integers(0, 1024, 12)
    style[rng.random(12) < 0.2] = -1
    if rng.random() < 0.15:
        style[:] = -1
    notes = rng.choice([-1, -1, -1, 0, 1, 2, 3], 128)
    return style, notes, int(rng.choice([-1, 0, 1]))


def conditioning_grid(rng: np.random.Generator) -> dict:
    from magenta_rt.jax.model import MagentaRT2ModelSmall
    model_obj = MagentaRT2ModelSmall()
    n = len(SCALES)
    scales = [(SCALES[i], SCALES[(i + 7) % n], SCALES[(i + 13) % n]) for i in range(n)]
    scales += [tuple(rng.choice(SCALES, 3)) for _ in range(15)]
    rows = [(*random_conditioning(rng), s) for s in scales]
    ids = np.stack([official_branches(model_obj, *r) for r in rows])
    coarse = np.stack([official_ids(model_obj, np.r_[st[:6], [-1] * 6], nt, d, s) for st, nt, d, s in rows])
    return {"cond/style": np.stack([r[0] for r in rows]).astype(np.int32),
            "cond/notes": np.stack([r[1] for r in rows]).astype(np.int8),
            "cond/drums": np.array([r[2] for r in rows], np.int32),
            "cond/scales": np.array([r[3] for r in rows], np.float64),
            "cond/ids": ids, "cond/ids_6_levels": coarse}


def encoded(model, params, ids: np.ndarray) -> np.ndarray:
    """The official conditioning encoder's output for ids [..., 144] (the parity model's), so the
    top guidance bins' overflow into the next channel's rows is compared too."""
    import jax.numpy as jnp
    import sequence_layers.jax as sl
    flat = ids.reshape(1, -1, ids.shape[-1]).astype(np.int32)
    x = sl.Sequence(jnp.asarray(flat), jnp.ones(flat.shape[:2], bool))
    out = model.apply(params, x, method=lambda m, v: m.encoder.body.layer(v, training=False))
    return np.asarray(out.values, np.float32).reshape(*ids.shape[:-1], -1)


@contextlib.contextmanager
def gumbel_from(queue: list):
    """jax.random.gumbel hands out the queued arrays, in call order."""
    import jax
    import jax.numpy as jnp
    original = jax.random.gumbel

    def given(key, shape=(), dtype=jnp.float32):
        return jnp.asarray(queue.pop(0), dtype).reshape(shape)

    jax.random.gumbel = given
    try:
        yield
    finally:
        jax.random.gumbel = original


class OfficialStream:
    """The official JAX streaming sampler of a depthformer with guidance, step by step."""

    def __init__(self, model, params, codebook: int):
        self.model, self.params, self.codebook = model, params, codebook
        self.vocab = 6 + 12 * codebook

    def constants(self, branches: np.ndarray, setting) -> dict:
        import jax.numpy as jnp
        import sequence_layers.jax as sl
        t, k, s_mc, s_notes, _ = setting
        seq = lambda v: sl.Sequence.from_values(jnp.asarray(v.reshape(1, 1, -1), jnp.int32))  # noqa: E731
        return {"temperature": jnp.array([t], jnp.float32), "top_k": jnp.array([k], jnp.int32),
                "classifier_free_guidance_scale_musiccoca": jnp.array([s_mc], jnp.float32),
                "classifier_free_guidance_scale_notes": jnp.array([s_notes], jnp.float32),
                "classifier_free_guidance_negative_musiccoca": seq(branches[1]),
                "classifier_free_guidance_negative_notes": seq(branches[2])}

    def start(self, branches: np.ndarray, setting):
        import jax
        import jax.numpy as jnp
        spec = jax.ShapeDtypeStruct([branches.shape[-1]], jnp.int32)
        return self.model.apply(self.params, 1, spec, constants=self.constants(branches, setting),
                                training=False, rngs={"random": jax.random.PRNGKey(0)},
                                method=lambda m, *a, **kw: m.sampler.get_initial_state(*a, **kw))

    def step(self, state, branches: np.ndarray, setting, noise: np.ndarray | None):
        """One frame; noise [12, codebook] (None: zeros). -> (codes [12], state, each level's
        depth logits over its own codes [12, 3 branches, codebook], before the soft cap)."""
        import jax.numpy as jnp
        import sequence_layers.jax as sl
        from flax import traverse_util
        full = np.zeros((12, 1, 1, self.vocab), np.float32)
        if noise is not None:
            for level in range(12):
                lo = 6 + level * self.codebook
                full[level, 0, 0, lo: lo + self.codebook] = noise[level]
        x = sl.Sequence.from_values(jnp.asarray(branches[0].reshape(1, 1, -1), jnp.int32))
        with gumbel_from(list(full)):
            (out, state), inter = self.model.apply(
                self.params, x, state, training=False, constants=self.constants(branches, setting),
                method=lambda m, *a, **kw: m.sampler.step(*a, **kw), capture_intermediates=True,
                mutable=["intermediates"])
        flat = traverse_util.flatten_dict(inter["intermediates"], sep="/")
        logits = next(v for k, v in flat.items() if k.endswith("depth_logits"))
        ids = np.asarray(out.values).reshape(-1)
        codes = ids - 6 - np.arange(12) * self.codebook
        per_level = [np.asarray(x)[:, 0, 6 + i * self.codebook: 6 + (i + 1) * self.codebook]
                     for i, x in enumerate(logits)]
        return codes.astype(np.int32), state, np.stack(per_level).astype(np.float32)

    def force_previous(self, state, codes: np.ndarray):
        """The decoder's previous frame := codes (what C++ writes into the previous_frame slot)."""
        import jax.numpy as jnp
        enc, prev_out, (rng, prev, temporal, step), countdown = state
        ids = jnp.asarray(codes + 6 + np.arange(12) * self.codebook, jnp.int32)
        prev = type(prev)(jnp.broadcast_to(ids, prev.values.shape), prev.mask)
        return enc, prev_out, (rng, prev, temporal, step), countdown


def gumbel(rng: np.random.Generator, shape) -> np.ndarray:
    return (-np.log(-np.log(rng.uniform(1e-12, 1.0, shape)))).astype(np.float32)


def sampler_runs(model, params, model_obj, codebook: int, rng: np.random.Generator) -> dict:
    stream = OfficialStream(model, params, codebook)
    conds = [random_conditioning(rng) for _ in SETTINGS]
    branches = np.stack([official_branches(model_obj, st, nt, d, s[2:]) for (st, nt, d), s in
                         zip(conds, SETTINGS, strict=True)])
    noise = gumbel(rng, (len(SETTINGS), 12, codebook))
    state, tokens, logits = stream.start(branches[0], SETTINGS[0]), [], []
    for i, setting in enumerate(SETTINGS):
        codes, state, frame_logits = stream.step(state, branches[i], setting, noise[i])
        tokens.append(codes)
        logits.append(frame_logits)
    out = {"sampler/style": np.stack([c[0] for c in conds]).astype(np.int32),
           "sampler/notes": np.stack([c[1] for c in conds]).astype(np.int8),
           "sampler/drums": np.array([c[2] for c in conds], np.int32),
           "sampler/settings": np.array(SETTINGS, np.float32), "sampler/ids": branches,
           "sampler/noise": noise, "sampler/tokens": np.stack(tokens), "sampler/logits": np.stack(logits)}
    # the official silence prefill, then frames under the last settings
    silent = rng.integers(0, codebook, 12).astype(np.int32)
    pre_setting = SETTINGS[-1]
    pre = official_branches(model_obj, [-1] * 12, [-1] * 128, -1, pre_setting[2:])
    pre[1:] = pre[0]            # negatives: the prefill's own conditioning (style, notes masked)
    state = stream.start(pre, pre_setting)
    for _ in range(PREFILL_FRAMES - 1):
        state = stream.force_previous(state, silent)
        _, state, _ = stream.step(state, pre, pre_setting, None)
    state = stream.force_previous(state, silent)
    after_noise = gumbel(rng, (AFTER_PREFILL, 12, codebook))
    tokens, logits = [], []
    for i in range(AFTER_PREFILL):
        codes, state, frame_logits = stream.step(state, branches[-1], pre_setting, after_noise[i])
        tokens.append(codes)
        logits.append(frame_logits)
    out.update({"prefill/frames": np.array([PREFILL_FRAMES], np.int32), "prefill/silent": silent,
                "prefill/ids": pre, "prefill/noise": after_noise,
                "prefill/tokens": np.stack(tokens), "prefill/logits": np.stack(logits)})
    return out


def pcm(rng: np.random.Generator, seconds: float, sr: int, channels: int) -> np.ndarray:
    """int16 test audio: two tones per channel and a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    chans = [0.3 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 3.1 * f * t)
             + 0.05 * rng.standard_normal(len(t)) for f in (220.0, 330.0)[:channels]]
    return np.round(np.stack(chans, 1) * 32767).astype(np.int16)


def musiccoca(rng: np.random.Generator) -> dict:
    from magenta_rt import audio, musiccoca
    mc = musiccoca.MusicCoCa(resource_dir=STAND_IN)
    texts = ["Soft Piano", "driving orchestral percussion", "dark ambient drones " * 30]
    raw = np.stack([mc.embed(t) for t in texts])
    mapped = np.stack([mc.embed(t, use_mapper=True, seed=0) for t in texts])
    clips = {"a": (1.5, 48_000, 2), "b": (10.4, 11_025, 1), "c": (0.5, 16_000, 1)}
    out = {"mc/text_raw": raw, "mc/text_mapped": mapped}
    for name, (seconds, sr, channels) in clips.items():
        x = pcm(rng, seconds, sr, channels)
        wave = audio.Waveform(x.astype(np.float32) / 32768.0, sr)
        out[f"mc/audio_{name}_pcm"] = x
        out[f"mc/audio_{name}_sr"] = np.array([sr], np.int32)
        out[f"mc/audio_{name}_embedding"] = np.asarray(mc.embed(wave), np.float32)
        if sr != 16_000:
            out[f"mc/audio_{name}_16k"] = wave.as_mono().resample(16_000).samples[:, 0]
    # the C++ blend (mlx_engine.cpp fetch_musiccoca_tokens; no Python version): weights > 0,
    # each times w / sum(w) in float32, accumulated in slot order
    vectors = np.stack([mapped[0], mapped[1], out["mc/audio_a_embedding"], mapped[2]])
    weights = np.array([2.0, 1.0, 0.5, 0.0], np.float32)
    total = np.float32(sum(weights[weights > 0], np.float32(0)))
    acc = np.zeros(768, np.float32)
    for w, v in zip(weights, vectors, strict=True):
        if w > 0:
            acc += np.float32(w / total) * v
    out.update({"mc/blend_weights": weights, "mc/blend": acc, "mc/blend_tokens": mc.tokenize(acc),
                "mc/text_mapped_tokens": mc.tokenize(mapped)})
    return out
