"""Graph-engine benchmark: whole models through kaiyuan.InferenceSession beside onnxruntime and
PyTorch, and the engine's per-run host overhead.

    python bench/models.py [--quick] [--json bench/results/models.json]

1. all-MiniLM-L6-v2 sentence embeddings (examples/minilm.py: BERT + pooling + normalisation) at
   several batch x sequence shapes: median ms per run of kaiyuan, onnxruntime (CPU provider,
   intra-op threads = cores) and PyTorch (the same model in eager mode, torch.no_grad), timed in
   interleaved rounds (bench/common.py).
2. Per-run overhead of a 100-node model: a chain of 100 Relu ops on a [1, 16] tensor, planned
   without the fusion passes (which would make it one kernel), so it is 100 kernel steps whose
   kernel time is negligible: the figure is the engine's host cost per run (and per node).
"""

from __future__ import annotations

import argparse
import os

for _k, _v in {"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "0"}.items():
    os.environ.setdefault(_k, _v)

from common import RESULTS, fmt, interleaved, machine, table, write_json  # noqa: E402

import numpy as np  # noqa: E402

import kaiyuan as ky  # noqa: E402

SHAPES = [(1, 16), (5, 11), (8, 64), (8, 128), (32, 128)]


def minilm_rows(shapes, budget_s: float) -> list[dict]:
    import minilm
    from demo import contenders

    path = minilm.export_onnx()
    rows = []
    for batch, seq in shapes:
        ids = np.random.default_rng(0).integers(1000, 20000, (batch, seq), dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        _, fns = contenders(path, feeds)
        ms = interleaved(fns, rounds=15, budget_s=budget_s)
        rows.append({"batch": batch, "seq": seq, **{f"{k}_ms": v for k, v in ms.items()}})
    return rows


def chain_model(n: int, op: str = "Relu"):
    from onnx import TensorProto as T, helper

    nodes = [helper.make_node(op, ["x" if i == 0 else f"t{i - 1}"], ["y" if i == n - 1 else f"t{i}"], name=f"n{i}")
             for i in range(n)]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", T.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [1, 16])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def overhead_row(n: int = 100) -> dict:
    import onnxruntime as ort

    from kaiyuan.graph.passes import DEFAULT_PASSES

    model = chain_model(n)
    x = np.ones((1, 16), np.float32)
    sess = ky.InferenceSession(model, passes=list(DEFAULT_PASSES))  # no fusion: 100 kernel steps
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    plan = sess.plan_for({"x": (1, 16)})
    ms = interleaved({"kaiyuan": lambda: sess.run(None, {"x": x}), "onnxruntime": lambda: ref.run(None, {"x": x})},
                     rounds=30, burst_ms=20)
    return {"nodes": n, "steps": len(plan.steps), **{f"{k}_ms": v for k, v in ms.items()},
            "kaiyuan_us_per_node": ms["kaiyuan"] * 1e3 / n}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="two shapes, short budgets")
    ap.add_argument("--json", default=str(RESULTS / "models.json"))
    args = ap.parse_args()
    shapes = SHAPES[1:3] if args.quick else SHAPES
    rows = minilm_rows(shapes, budget_s=5 if args.quick else 20)
    print("all-MiniLM-L6-v2 sentence embeddings, median ms per run (lower is better)")
    print(table([[f"{r['batch']}x{r['seq']}", fmt(r["kaiyuan_ms"]), fmt(r["onnxruntime_ms"]), fmt(r["pytorch_ms"]),
                  fmt(r["onnxruntime_ms"] / r["kaiyuan_ms"], ".2f", "x"), fmt(r["pytorch_ms"] / r["kaiyuan_ms"], ".2f", "x")]
                 for r in rows], ["batch x seq", "kaiyuan", "onnxruntime", "pytorch", "ort/ky", "torch/ky"]))
    over = overhead_row()
    print(f"\nper-run overhead, {over['nodes']}-node model ({over['steps']} kernel steps, [1,16] tensors): "
          f"kaiyuan {over['kaiyuan_ms']:.3f} ms ({over['kaiyuan_us_per_node']:.2f} us/node), "
          f"onnxruntime {over['onnxruntime_ms']:.3f} ms")
    write_json(args.json, {"machine": machine(), "minilm": rows, "overhead": over})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
