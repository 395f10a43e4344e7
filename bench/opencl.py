"""The opencl backend beside the cpu backend, in one process: softmax and matmul, fp32.

    .venv/bin/python bench/opencl.py [--device opencl:0] [--quick]

softmax: ky.ops.softmax (the library op) on a 4096 x 1024 tensor that lives on each device.
matmul:  the tutorial kernel of examples/matmul.py with one fixed tiling (64 x 64 x 32) on both
         devices, at 512 and 1024: kaiyuan.ops.matmul picks its tiles from cpu-tuned configs, so
         the tutorial kernel is the like-for-like comparison; the library op on cpu is shown too.
Times are medians of interleaved rounds (bench/common.py). Prints a table, writes
bench/results/opencl.json.
"""

from __future__ import annotations

import argparse

import numpy as np

from common import RESULTS, fmt, interleaved, machine, table, write_json

import kaiyuan as ky
from matmul import matmul_kernel   # examples/matmul.py (bench/common puts examples/ on sys.path)

TILE = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}


def softmax_case(dev: str, x: np.ndarray):
    xt = ky.tensor(x, device=dev)
    return lambda: ky.ops.softmax(xt)


def matmul_case(dev: str, a: np.ndarray, b: np.ndarray):
    n = a.shape[0]
    at, bt = ky.tensor(a, device=dev), ky.tensor(b, device=dev)
    c = ky.empty((n, n), dtype=ky.fp32, device=dev)
    grid = (n // TILE["BLOCK_M"] * (n // TILE["BLOCK_N"]),)

    def run():
        matmul_kernel[grid](at, bt, c, n, n, n, n, 1, n, 1, n, 1, **TILE)
        return c
    return run


def check(fn, ref, rtol):
    out = fn().numpy()
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="opencl:0")
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    budget = 3.0 if args.quick else 20.0
    rows, results = [], {}

    x = rng.standard_normal((4096, 1024)).astype(np.float32)
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    fns = {d: softmax_case(d, x) for d in ("cpu", args.device)}
    for fn in fns.values():
        check(fn, ref, 1e-5)
    ms = interleaved(fns, budget_s=budget)
    gbs = {d: 2 * x.nbytes / (t * 1e-3) / 1e9 for d, t in ms.items()}
    rows.append(["softmax 4096x1024", fmt(ms["cpu"]), fmt(ms[args.device]), fmt(ms[args.device] / ms["cpu"], ".1f", "x"),
                 f"{gbs['cpu']:.1f} / {gbs[args.device]:.1f} GB/s"])
    results["softmax"] = {"ms": ms, "GB/s": gbs}

    for n in (512, 1024):
        a, b = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
        fns = {d: matmul_case(d, a, b) for d in ("cpu", args.device)}
        lib = ky.tensor(a, device="cpu"), ky.tensor(b, device="cpu")
        fns["cpu ky.ops.matmul"] = lambda: ky.ops.matmul(*lib)
        for fn in fns.values():
            check(fn, a @ b, 1e-3)
        ms = interleaved(fns, budget_s=budget)
        gf = {d: 2 * n ** 3 / (t * 1e-3) / 1e9 for d, t in ms.items()}
        rows.append([f"matmul {n}^3 (tutorial kernel)", fmt(ms["cpu"]), fmt(ms[args.device]),
                     fmt(ms[args.device] / ms["cpu"], ".1f", "x"),
                     f"{gf['cpu']:.1f} / {gf[args.device]:.1f} GFLOP/s (ky.ops.matmul on cpu: "
                     f"{gf['cpu ky.ops.matmul']:.1f})"])
        results[f"matmul{n}"] = {"ms": ms, "GFLOP/s": gf}

    print(f"opencl device: {ky.device(args.device).properties}")
    print(table(rows, ["case", "cpu ms", f"{args.device} ms", "ratio", "throughput cpu / opencl"]))
    write_json(RESULTS / "opencl.json", {"machine": machine(), "device": ky.device(args.device).properties,
                               "tile": TILE, "results": results})


if __name__ == "__main__":
    main()
