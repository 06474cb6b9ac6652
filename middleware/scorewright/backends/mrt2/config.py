"""MRT2 model sizes and the conditioning-token layout (facts from magenta-realtime's config.py,
mlx/model.py and core/src/mlx_engine.cpp)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

NUM_RESERVED = 6        # reserved ids at the start of every vocabulary (0 = start of sequence)
RVQ_LEVELS = 12         # SpectroStream levels the decoder generates (of 64 trained)
CODEBOOK = 1024         # SpectroStream / MusicCoCa codebook size
FRAME_RATE = 25
SAMPLE_RATE = 48_000
FRAME_SAMPLES = SAMPLE_RATE // FRAME_RATE


@dataclass(frozen=True)
class TransformerSpec:
    """One transformer stack (official ModelSpec; FFNs are non-gated)."""

    num_layers: int
    d_model: int
    d_ff: int
    num_heads: int
    head_dim: int


@dataclass(frozen=True)
class CondChannels:
    """A group of conditioning channels: how many, codebook size, and whether it has a dropout id."""

    name: str
    channels: int
    codebook: int
    dropout: bool

    @property
    def vocab(self) -> int:
        """Embedding rows per channel: reserved ids, the dropout/mask id if any, then the codes
        (official `per_rvq_vocab_size`; the guidance-scale channels have no dropout row)."""
        return self.codebook + NUM_RESERVED + int(self.dropout)


MUSICCOCA = CondChannels("musiccoca", 12, CODEBOOK, True)
PIANOROLL = CondChannels("notes", 128, 4, True)     # 0 off, 1 held, 2 onset, 3 on (model decides)
DRUMS = CondChannels("drums", 1, 2, True)           # 0 drumless, 1 drums
CFG_STYLE_NOTES = CondChannels("cfg_style_notes", 2, 41, False)  # scale = -1 + 0.2 * code
CFG_DRUMS = CondChannels("cfg_drums", 1, 9, False)               # scale = -1 + 1.0 * code
COND_GROUPS = (MUSICCOCA, PIANOROLL, DRUMS, CFG_STYLE_NOTES, CFG_DRUMS)
COND_WIDTH = sum(g.channels for g in COND_GROUPS)   # 144 tokens per frame
MUSICCOCA_DIM = 768
MASK_ID = NUM_RESERVED  # the dropout id: "no conditioning here" on channels that have one
# Every official runtime (magenta_rt jax/mlx system.py `offset = NUM_RESERVED_TOKENS + 1`, the
# exported .mlxfn the C++ runtime calls) sends each conditioning value as value + 7 on all 144
# channels, the guidance-scale ones included although their tables have no dropout row.
VALUE_OFFSET = NUM_RESERVED + 1


@dataclass(frozen=True)
class MRT2Config:
    """Everything that fixes the depthformer's shapes."""

    name: str
    encoder_dim: int
    temporal: TransformerSpec
    depth: TransformerSpec
    horizon: int                       # past frames seen by temporal self- and cross-attention
    num_sinks: int = 1                 # attention-sink embeddings (encoder side and temporal decoder)
    logit_soft_cap: float = 30.0
    rvq_levels: int = RVQ_LEVELS
    codebook: int = CODEBOOK
    musiccoca_dim: int = MUSICCOCA_DIM
    cond_groups: tuple[CondChannels, ...] = field(default=COND_GROUPS)

    @property
    def vocab(self) -> int:
        """Decoder vocabulary: reserved ids then 1024 codes per level (id = 6 + level*1024 + code)."""
        return NUM_RESERVED + self.rvq_levels * self.codebook

    @property
    def cond_width(self) -> int:
        return sum(g.channels for g in self.cond_groups)

    @property
    def regular_channels(self) -> tuple[CondChannels, ...]:
        return self.cond_groups[1:]

    @property
    def regular_vocab(self) -> int:
        """Rows of the shared non-MusicCoCa embedding table, rounded up to a multiple of 128."""
        n = sum(g.channels * g.vocab for g in self.regular_channels)
        return (n + 127) // 128 * 128

    @property
    def musiccoca_vocab(self) -> int:
        g = self.cond_groups[0]
        return g.channels * g.vocab


SMALL = MRT2Config(
    name="mrt2_small",
    encoder_dim=256,
    temporal=TransformerSpec(12, 1024, 4096, 8, 128),
    depth=TransformerSpec(2, 768, 3072, 6, 128),
    horizon=41,
)
BASE = MRT2Config(
    name="mrt2_base",
    encoder_dim=1024,
    temporal=TransformerSpec(20, 3072, 8192, 24, 128),
    depth=TransformerSpec(6, 1024, 4096, 8, 128),
    horizon=25,
)
SIZES = {"small": SMALL, "base": BASE}


def tiny(codebook: int = CODEBOOK, horizon: int = 5) -> MRT2Config:
    """A few-hundred-thousand-parameter config with the real token layout, for tests."""
    return replace(
        SMALL, name="mrt2_tiny", encoder_dim=32, horizon=horizon, codebook=codebook,
        temporal=TransformerSpec(2, 48, 96, 2, 16), depth=TransformerSpec(2, 40, 80, 2, 16),
        musiccoca_dim=24,
    )


def config_to_json(cfg: MRT2Config) -> str:
    """Shapes of a non-official config, for a test checkpoint's metadata (official files carry none)."""
    d = asdict(cfg)
    d.pop("cond_groups")
    return json.dumps(d)


def config_from_json(text: str) -> MRT2Config:
    d = json.loads(text)
    specs = {k: TransformerSpec(**d[k]) for k in ("temporal", "depth")}
    return MRT2Config(**{**d, **specs})
