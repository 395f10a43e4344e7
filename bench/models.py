"""Graph-engine benchmark: whole models through kaiyuan.InferenceSession beside onnxruntime and
PyTorch, and the engine's per-run host overhead.

    python bench/models.py [--quick] [--json bench/results/models.json]

1. all-MiniLM-L6-v2 sentence embeddings (examples/minilm.py: BERT + pooling + normalisation) at
   several batch x sequence shapes: median ms per run of kaiyuan, onnxruntime (CPU provider,
   intra-op threads = cores), PyTorch (the same model in eager mode, torch.no_grad) and
   torch.compile (inductor, compiled once before timing; "n/a" if it fails here), timed in
   interleaved rounds (bench/common.py) that each keep a contender's median of 5 back-to-back
   runs: the latency of a model served back to back. The first run after another library is
   left out, because it can wait for cores that library's idle pool still spins on. Each library
   keeps its own threading defaults.
2. A CNN: a ResNet-18-shaped network (built from torch.nn, random weights, BN in eval mode) on
   one 3x224x224 image, exported to ONNX, against the same contenders.
3. Per-run overhead of a 100-node model: a chain of 100 Relu ops on a [1, 16] tensor, planned
   without the fusion passes (which would make it one kernel), so it is 100 kernel steps whose
   kernel time is negligible: the figure is the engine's host cost per run (and per node).
"""

from __future__ import annotations

import argparse
import os

# Each library keeps its own threading defaults (kaiyuan's OpenMP spins 10k iterations, onnxruntime's
# pool spins); the rounds keep each contender's median back-to-back call (interleaved(block=...)).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from common import RESULTS, fmt, interleaved, machine, table, write_json  # noqa: E402

import numpy as np  # noqa: E402

import kaiyuan as ky  # noqa: E402

SHAPES = [(1, 16), (1, 128), (5, 11), (8, 64), (8, 128), (32, 128)]
QUICK_SHAPES = [(1, 128), (8, 128)]


def minilm_rows(shapes, budget_s: float) -> list[dict]:
    import minilm
    from demo import contenders

    path = minilm.export_onnx()
    rows = []
    for batch, seq in shapes:
        ids = np.random.default_rng(0).integers(1000, 20000, (batch, seq), dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        _, fns = contenders(path, feeds)
        compiled = torch_compiled(minilm.torch_model(), feeds)
        if compiled is not None:
            fns["torch.compile"] = compiled
        ms = interleaved(fns, rounds=15, budget_s=budget_s, block=5, warmup=3)
        rows.append({"batch": batch, "seq": seq, **{f"{k}_ms": v for k, v in ms.items()}})
    return rows


def torch_compiled(module, feeds: dict):
    """A zero-argument function running torch.compile(module) on feeds (compiled here, once), or
    None when inductor cannot build on this machine."""
    import torch

    tfeeds = {k: torch.from_numpy(v) for k, v in feeds.items()}
    try:
        fn = torch.compile(module.eval())
        with torch.no_grad():
            fn(**tfeeds)
    except Exception as e:  # noqa: BLE001 - a missing toolchain is reported, not fatal
        print(f"torch.compile unavailable: {type(e).__name__}: {str(e)[:120]}")
        return None

    def run():
        with torch.no_grad():
            return fn(**tfeeds)

    return run


def resnet18_like():
    """ResNet-18's layer shapes from torch.nn alone (no torchvision): stem 7x7/2 + max pool,
    stages of two basic blocks at 64, 128, 256, 512 channels, global average pool, 1000 classes."""
    import torch
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval()


def cnn_row(budget_s: float) -> dict:
    import tempfile

    import onnxruntime as ort
    import torch

    model = resnet18_like()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    path = os.path.join(tempfile.mkdtemp(prefix="kaiyuan-bench-"), "resnet18_like.onnx")
    with torch.no_grad():
        torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"])
    sess = ky.InferenceSession(path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    ref = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    tx = torch.from_numpy(x)

    def eager():
        with torch.no_grad():
            return model(tx)

    fns = {"kaiyuan": lambda: sess.run(None, {"x": x}), "onnxruntime": lambda: ref.run(None, {"x": x}),
           "pytorch": eager}
    compiled = torch_compiled(model, {"input": x})  # nn.Sequential.forward(input)
    if compiled is not None:
        fns["torch.compile"] = compiled
    err = float(np.abs(sess.run(None, {"x": x})[0] - ref.run(None, {"x": x})[0]).max())
    ms = interleaved(fns, rounds=15, budget_s=budget_s, block=5, warmup=3)
    return {"model": "resnet18-like 1x3x224x224", "max_abs_diff_vs_ort": err, **{f"{k}_ms": v for k, v in ms.items()}}


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
    shapes = QUICK_SHAPES if args.quick else SHAPES
    rows = minilm_rows(shapes, budget_s=5 if args.quick else 20)
    print("all-MiniLM-L6-v2 sentence embeddings, median ms per run (lower is better)")
    print(table([[f"{r['batch']}x{r['seq']}", fmt(r["kaiyuan_ms"]), fmt(r["onnxruntime_ms"]), fmt(r["pytorch_ms"]),
                  fmt(r.get("torch.compile_ms")), fmt(r["onnxruntime_ms"] / r["kaiyuan_ms"], ".2f", "x"),
                  fmt(r["pytorch_ms"] / r["kaiyuan_ms"], ".2f", "x")]
                 for r in rows], ["batch x seq", "kaiyuan", "onnxruntime", "pytorch", "torch.compile", "ort/ky",
                                  "torch/ky"]))
    cnn = cnn_row(budget_s=5 if args.quick else 20)
    print(f"\n{cnn['model']} (max |kaiyuan - onnxruntime| {cnn['max_abs_diff_vs_ort']:.1e}), median ms per run")
    print(table([[fmt(cnn["kaiyuan_ms"]), fmt(cnn["onnxruntime_ms"]), fmt(cnn["pytorch_ms"]),
                  fmt(cnn.get("torch.compile_ms")), fmt(cnn["onnxruntime_ms"] / cnn["kaiyuan_ms"], ".2f", "x")]],
                ["kaiyuan", "onnxruntime", "pytorch", "torch.compile", "ort/ky"]))
    over = overhead_row()
    print(f"\nper-run overhead, {over['nodes']}-node model ({over['steps']} kernel steps, [1,16] tensors): "
          f"kaiyuan {over['kaiyuan_ms']:.3f} ms ({over['kaiyuan_us_per_node']:.2f} us/node), "
          f"onnxruntime {over['onnxruntime_ms']:.3f} ms")
    write_json(args.json, {"machine": machine(), "minilm": rows, "cnn": cnn, "overhead": over})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
