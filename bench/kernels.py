"""Kernel benchmarks against numpy, in one process on one machine (not part of the test run).

    python bench/kernels.py [--device cpu] [--json bench/results/kernels.json]

Prints a table of median times and effective bandwidth (bytes read + written / time) for vector
add, fused softmax and layer norm (4096 x 1024 float32), the machine's copy bandwidth as measured
by numpy on an array of the input's size (the reference for "fraction of memory bandwidth") and
on 256 MiB (beyond every cache), and the launch overhead of a tiny kernel (host time per launch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import kaiyuan as ky  # noqa: E402
from common import interleaved  # noqa: E402  (bench/common.py: shared timing helpers)
import layer_norm  # noqa: E402
import softmax  # noqa: E402
import vector_add  # noqa: E402


def median_ms(fn, repeat: int = 20) -> float:
    fn()
    ky.synchronize()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ky.synchronize()
        samples.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(samples))


def copy_bandwidth(nbytes: int) -> float:
    """GB/s of numpy's copy of an array of `nbytes` (read + write counted)."""
    a = np.ones(nbytes // 4, np.float32)
    b = np.ones_like(a)  # touched: the copy measures bandwidth, not page faults
    ms = median_ms(lambda: np.copyto(b, a))
    return 2 * a.nbytes / ms / 1e6


def launch_overhead_us(n: int = 2000) -> float:
    x = np.ones(16, np.float32)
    out = np.empty_like(x)
    vector_add.add_kernel[(1,)](x, x, out, 16, BLOCK=16)
    t0 = time.perf_counter()
    for _ in range(n):
        vector_add.add_kernel[(1,)](x, x, out, 16, BLOCK=16)
    ky.synchronize()
    return (time.perf_counter() - t0) / n * 1e6


def rows(rows_: int, cols: int) -> list[dict]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows_, cols), dtype=np.float32)
    w = rng.standard_normal(cols, dtype=np.float32)
    b = rng.standard_normal(cols, dtype=np.float32)
    v = rng.standard_normal(rows_ * cols, dtype=np.float32)
    out, out2 = np.ones_like(v), np.ones_like(v)  # both write into an existing array (numpy's out=)
    copy_src, copy_dst = np.ones_like(x), np.ones_like(x)
    assert np.abs(softmax.softmax(x) - softmax.softmax_numpy(x)).max() < 1e-6
    assert np.abs(layer_norm.layer_norm(x, w, b)[0] - layer_norm.layer_norm_numpy(x, w, b)).max() < 1e-4
    assert np.array_equal(vector_add.add(v, v), v + v)
    cases = [
        ("vector add", f"{v.size}", 3 * v.nbytes, lambda: vector_add.add(v, v, out=out2), lambda: np.add(v, v, out=out)),
        ("fused softmax", f"{rows_}x{cols}", 2 * x.nbytes, lambda: softmax.softmax(x), lambda: softmax.softmax_numpy(x)),
        ("layer norm", f"{rows_}x{cols}", 2 * x.nbytes, lambda: layer_norm.layer_norm(x, w, b),
         lambda: layer_norm.layer_norm_numpy(x, w, b)),
    ]
    out_rows = []
    for name, shape, nbytes, ky_fn, np_fn in cases:
        t = interleaved({"ky": ky_fn, "np": np_fn, "copy": lambda: np.copyto(copy_dst, copy_src)})
        copy_gbps = 2 * x.nbytes / t["copy"] / 1e6
        out_rows.append({"kernel": name, "shape": shape, "bytes": nbytes, "kaiyuan_ms": t["ky"], "numpy_ms": t["np"],
                         "kaiyuan_GBps": nbytes / t["ky"] / 1e6, "numpy_GBps": nbytes / t["np"] / 1e6,
                         "copy_GBps": copy_gbps, "fraction_of_copy": nbytes / t["ky"] / 1e6 / copy_gbps,
                         "speedup_vs_numpy": t["np"] / t["ky"]})
    return out_rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "kernels.json"))
    args = p.parse_args(argv)
    with ky.device(args.device):
        bw = copy_bandwidth(args.rows * args.cols * 4)  # the same size as each kernel's input
        bw_dram = copy_bandwidth(256 << 20)  # far beyond the caches: the DRAM figure
        table = rows(args.rows, args.cols)
        launch = launch_overhead_us()
    print(f"kaiyuan {ky.__version__} on {args.device}; {os.cpu_count()} cores; {platform.processor() or platform.machine()}")
    print(f"numpy copy bandwidth: {bw:.1f} GB/s for the input's size, {bw_dram:.1f} GB/s for 256 MiB; each row below")
    print("times its own copy in interleaved rounds ('copy GB/s', 'of copy' = kaiyuan GB/s / copy GB/s)")
    print(f"launch overhead (1 program of 16 elements, host time per launch): {launch:.1f} us\n")
    hdr = (f"{'kernel':<14} {'shape':<10} {'kaiyuan ms':>10} {'numpy ms':>9} {'ky GB/s':>8} {'np GB/s':>8} "
           f"{'copy GB/s':>9} {'of copy':>8} {'speedup':>8}")
    print(hdr)
    print("-" * len(hdr))
    for r in table:
        print(f"{r['kernel']:<14} {r['shape']:<10} {r['kaiyuan_ms']:>10.3f} {r['numpy_ms']:>9.3f} {r['kaiyuan_GBps']:>8.1f} "
              f"{r['numpy_GBps']:>8.1f} {r['copy_GBps']:>9.1f} {r['fraction_of_copy']:>8.2f} {r['speedup_vs_numpy']:>7.2f}x")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": args.device, "copy_GBps": bw, "copy_GBps_256MiB": bw_dram, "launch_overhead_us": launch, "rows": table},
                               indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
