"""Build the MRT2 fixtures from the official implementation (magenta-rt[jax]==2.0.3, = tag v2.0.3).

    python scripts/make_mrt2_fixtures.py                  # both files
    python scripts/make_mrt2_fixtures.py runtime          # only tests/fixtures/mrt2_runtime.safetensors
    python scripts/make_mrt2_fixtures.py parity           # only tests/fixtures/mrt2_parity.safetensors

Needs `magenta_rt.jax`; when this Python lacks it, the script makes a virtual environment
(.venv-mrt2-fixtures, ~1.2 GB, a few minutes), installs magenta-rt[jax]==2.0.3 there and re-runs
itself. Everything runs on CPU with random weights in tiny shapes; nothing is downloaded but
packages. The runtime file (scripts/mrt2_runtime_fixtures.py) streams the same tiny depthformer
as the parity file (its weights are rebuilt from the same seeds; a checksum ties the two files).

The file holds, in the official checkpoint layout (params/depthformer/..., params/soundstream/...):
the random weights (perturbed so that norm scales, per-dim scales and sinks all matter), the
inputs, and the official outputs: encoder output, per-layer query/key/value projections of the
temporal and depth transformers, soft-capped logits of the teacher-forced pass, and the decoded
waveform of the SpectroStream decoder; and for the SpectroStream encoder (params/encoder/..., as in
the official resources/spectrostream/encoder.safetensors) a clip's embeddings and RVQ codes.
Metadata names the tiny shapes.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from side_venv import run_inside

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "mrt2_parity.safetensors"
RUNTIME_OUT = ROOT / "tests" / "fixtures" / "mrt2_runtime.safetensors"
OFFICIAL = "magenta-rt[jax]==2.0.3"
VENV = ROOT / ".venv-mrt2-fixtures"
T, B, CODEBOOK, SS_FRAMES = 9, 2, 64, 5


def ensure_jax() -> None:
    run_inside(VENV, ["magenta_rt.jax"], [OFFICIAL, "safetensors"], __file__)


def tiny_model_class():
    import jax.numpy as jnp
    from magenta_rt import config as C
    from magenta_rt.jax import model as jm

    def spec(layers, d, ff):
        return C.ModelSpec(num_layers=layers, model_dims=d, hidden_dims=ff, num_heads=2, dim_per_head=16,
                           ffn_use_gated_activation=False)

    class Tiny(jm.MagentaRT2ModelSmall):
        encoder_size = spec(1, 32, 64)             # only its width is used: the encoder has no layers
        decoder_temporal_size = spec(2, 48, 96)
        decoder_depth_size = spec(2, 40, 80)
        encoder_max_past_horizon = 4
        decoder_temporal_self_attention_max_past_horizon = 4
        decoder_temporal_cross_attention_max_past_horizon = 4
        dropout_prob = 0.0
        compute_dtype = jnp.float32
        spectrostream = dataclasses.replace(C.SPECTROSTREAM, codebook_size=CODEBOOK)

        @property
        def input_configs(self):
            return (dataclasses.replace(C.MUSICCOCA, embedding_size=24),) + tuple(super().input_configs[1:])

    return Tiny


def perturb(params, key, scale=0.1):
    import jax
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [p + scale * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys, strict=True)])


def flat(params, prefix: str) -> dict:
    import numpy as np
    from flax import traverse_util
    return {f"{prefix}/{k}": np.asarray(v, np.float32)
            for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def weights_checksum(weights: dict) -> str:
    """sha256 over the depthformer weights (names and float32 bytes, sorted by name)."""
    import hashlib

    import numpy as np
    h = hashlib.sha256()
    for k in sorted(weights):
        h.update(k.encode())
        h.update(np.ascontiguousarray(weights[k], np.float32).tobytes())
    return h.hexdigest()


def depthformer_fixture(rng) -> tuple[dict, dict, object, dict]:
    import flax.linen as fnn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import sequence_layers.jax as sl
    from flax import traverse_util

    model = tiny_model_class()().depthformer_config().make()
    seq = lambda v: sl.Sequence(v, jnp.ones(v.shape[:2], bool))  # noqa: E731
    hi = [1031] * 12 + [11] * 128 + [9] + [47] * 2 + [15]          # per-channel vocab sizes
    src = np.stack([rng.integers(6, h, (B, T)) for h in hi], -1).astype(np.int32)
    codes = rng.integers(0, CODEBOOK, (B, T, 12)).astype(np.int32)
    tgt = (codes + 6 + np.arange(12) * CODEBOOK).astype(np.int32)

    def forward(mod, src, tgt):
        enc = mod.encoder.body.layer(src, training=False)
        logits, _ = mod.decoder.layer_with_emits(tgt, training=False, constants={"source": enc})
        return enc.values, logits.values

    params = fnn.meta.unbox(model.init(jax.random.PRNGKey(0), seq(src), seq(tgt), method=forward))
    params = perturb(params, jax.random.PRNGKey(1))
    (enc, logits), inter = model.apply(params, seq(src), seq(tgt), method=forward,
                                       capture_intermediates=True, mutable=["intermediates"])
    out = {"in/cond": src, "in/codes": codes,
           "out/encoded": np.asarray(enc), "out/logits": np.asarray(logits)}
    for k, v in traverse_util.flatten_dict(inter["intermediates"], sep="/").items():
        v = v[0] if isinstance(v, tuple) else v
        name = k.replace("/attention/", "/").replace("_projection/__call__", "").replace("transformer/", "")
        out[f"out/{name}"] = np.asarray(getattr(v, "values", v), np.float32)
    weights = flat(params["params"], "params/depthformer")
    meta = dict(encoder_dim=32, temporal=dict(num_layers=2, d_model=48, d_ff=96, num_heads=2, head_dim=16),
                depth=dict(num_layers=2, d_model=40, d_ff=80, num_heads=2, head_dim=16), horizon=4,
                num_sinks=1, logit_soft_cap=30.0, rvq_levels=12, codebook=CODEBOOK, musiccoca_dim=24,
                name="mrt2_parity")
    return {**weights, **out}, {"scorewright_mrt2_config": json.dumps(meta)}, model, params


def spectrostream_fixture(rng) -> tuple[dict, dict]:
    import flax.linen as fnn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import sequence_layers.jax as sl
    from magenta_rt.jax import spectrostream as ss

    full = ss.stft_spectrostream_40ms_generic_48khz_stereo_config(rvq_truncation_level=12)
    ratios, mults = ((1, 2), (2, 2), (2, 1)), (2, 1, 2)
    cfg = dataclasses.replace(
        full, ratios=ratios, mults=mults, decoder_base_conv_depth=4, encoder_base_conv_depth=2, num_bins=8,
        stft_frame_length=16, stft_frame_step=8, stft_fft_length=16, num_features=16,
        quantizer=dataclasses.replace(full.quantizer, num_quantizers=12, num_embeddings=32, embedding_dim=16,
                                      encoded_truncation_level=12, target_num_quantizers=tuple(range(1, 13))))
    codes = rng.integers(0, 32, (1, SS_FRAMES, 12)).astype(np.int32)
    seq = sl.Sequence(jnp.asarray(codes), jnp.ones((1, SS_FRAMES), bool))
    audio = (rng.standard_normal((1, 32 * SS_FRAMES, 2)) * 0.3).astype(np.float32)
    audio_seq = sl.Sequence(jnp.asarray(audio), jnp.ones(audio.shape[:2], bool))
    model = cfg.make()

    def both(m, c, w):
        emb = m.waveform_to_embeddings(w, training=False)
        return (m.codes_to_waveform(c, training=False).values, emb.values,
                m.quantizer.embeddings_to_codes(emb).values)

    params = fnn.meta.unbox(model.init(jax.random.PRNGKey(2), seq, audio_seq, method=both))
    params = perturb(params, jax.random.PRNGKey(3), scale=0.05)
    wave, emb, enc_codes = model.apply(params, seq, audio_seq, method=both)
    wave = np.asarray(wave, np.float32)
    encoder = flat(params["params"].pop("encoder"), "params/encoder")
    meta = dict(ratios=ratios, mults=mults, base_depth=4, base_kernel=7, num_bins=8, out_channels=4,
                channel_splits=2, embedding_dim=16, codebook=32, num_quantizers=12, frame_length=16,
                frame_step=8, lookahead_frames=1, encoder_base_depth=2)
    return ({**flat(params["params"], "params/soundstream"), **encoder, "in/ss_codes": codes,
             "out/ss_waveform": wave, "in/ss_audio": audio, "out/ss_embeddings": np.asarray(emb, np.float32),
             "out/ss_codes": np.asarray(enc_codes, np.int32)},
            {"scorewright_spectrostream_config": json.dumps(meta)})


def save(path: Path, tensors: dict, meta: dict) -> None:
    import numpy as np
    from safetensors.numpy import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=meta)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors)")


def main() -> None:
    which = set(sys.argv[1:]) or {"parity", "runtime"}
    if which - {"parity", "runtime"}:
        sys.exit("usage: make_mrt2_fixtures.py [parity] [runtime]")
    ensure_jax()
    import magenta_rt  # noqa: F401 (activates the vendored sequence_layers)
    import numpy as np
    rng = np.random.default_rng(0)
    tensors, meta, model, params = depthformer_fixture(rng)
    checksum = weights_checksum({k: v for k, v in tensors.items() if k.startswith("params/")})
    if "parity" in which:
        t2, m2 = spectrostream_fixture(rng)
        save(OUT, {**tensors, **t2}, {**meta, **m2})
    if "runtime" in which:
        import mrt2_runtime_fixtures as R
        runtime_rng = np.random.default_rng(1)
        out = R.conditioning_grid(runtime_rng)
        out["cond/encoded"] = R.encoded(model, params, out["cond/ids"])
        out.update(R.sampler_runs(model, params, tiny_model_class()(), CODEBOOK, runtime_rng))
        out.update(R.musiccoca(runtime_rng))
        save(RUNTIME_OUT, out, {"depthformer_weights_sha256": checksum, "official": OFFICIAL})


if __name__ == "__main__":
    main()
