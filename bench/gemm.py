"""GEMM and convolution benchmarks: kaiyuan against numpy (its BLAS) and PyTorch, in one process.

    python bench/gemm.py [--quick] [--sizes 256,512] [--no-conv] [--json bench/results/gemm.json]

Contenders (fp32, cpu device):
  ky.ops      kaiyuan.ops.matmul / kaiyuan.ops.conv2d (the operator library; "n/a" when missing)
  ky tutorial the Triton-tutorial matmul written by a user (examples/matmul.py), at the best of a
              few block configs (each timed once after compiling; the best joins the rounds)
  numpy       a @ b (OpenBLAS or whatever numpy links); for conv an im2col + BLAS reference
  torch       torch.matmul / torch.nn.functional.conv2d (if torch imports)

GEMM shapes are M x N x K: A is M x K, B is K x N, C is M x N; GFLOP/s = 2*M*N*K / time.
Transformer shapes: 128x384x1536 (a 128-token MLP down-projection, 1536 -> 384), 128x768x3072
(BERT-base FFN down-projection), 1024x4096x4096 (a 1024-token 4096-wide projection, LLaMA-7B).
Conv shapes are ResNet-50 layers at batch 1; GFLOP/s = 2*OC*OH*OW*C*KH*KW / time.
Each figure is also printed as a fraction of the machine's measured fp32 FMA peak (from the cpu
backend's peak function; "n/a" if it has none). All contenders of one shape are timed in
interleaved rounds (bench/common.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Idle BLAS/OpenMP workers must not spin while another library runs (see QUIET_THREADS in
# bench/common.py); set before numpy, torch or a kaiyuan kernel loads its thread pool.
for _k, _v in {"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "0"}.items():
    os.environ.setdefault(_k, _v)

from common import (RESULTS, fmt, interleaved, machine, optional_op, peak_gflops, rel_err, table, time_once_ms,
                    torch_or_none, write_json)  # first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads

import numpy as np  # noqa: E402

import kaiyuan as ky  # noqa: E402

SQUARE = [256, 512, 1024, 2048, 4096]
TRANSFORMER = [(128, 384, 1536), (128, 768, 3072), (1024, 4096, 4096)]
TUTORIAL_CONFIGS = [(64, 64, 64), (128, 128, 64), (128, 128, 128)]  # BLOCK_M, BLOCK_N, BLOCK_K (GROUP_M 8)
# (C, H, W, OC, KH, KW, stride, pad, what)
CONV = [
    (3, 224, 224, 64, 7, 7, 2, 3, "conv1 (stem)"),
    (64, 56, 56, 64, 3, 3, 1, 1, "layer1 3x3"),
    (256, 56, 56, 64, 1, 1, 1, 0, "layer1 1x1 reduce"),
    (64, 56, 56, 256, 1, 1, 1, 0, "layer1 1x1 expand"),
    (128, 28, 28, 128, 3, 3, 1, 1, "layer2 3x3"),
    (256, 14, 14, 256, 3, 3, 1, 1, "layer3 3x3"),
    (512, 7, 7, 512, 3, 3, 1, 1, "layer4 3x3"),
]
QUICK_CONV = [1, 2]
MAX_CALL_S = 12.0  # a shape whose slowest contender is predicted to take longer per call is skipped


# ---------------------------------------------------------------------------------- contenders


def tutorial_matmul():
    """A launcher for examples/matmul.py's kernel writing into a preallocated C, or None."""
    try:
        from matmul import matmul_kernel
    except Exception as e:  # noqa: BLE001 - the example is optional for the benchmark
        print(f"note: examples/matmul.py not importable ({e}); 'ky tutorial' is n/a")
        return None

    def launch(a, b, c, bm, bn, bk):
        M, K = a.shape
        N = b.shape[1]
        grid = (ky.cdiv(M, bm) * ky.cdiv(N, bn),)
        matmul_kernel[grid](a, b, c, M, N, K, K, 1, N, 1, N, 1, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8)

    return launch


def best_tutorial_config(launch, a, b, c, ref, configs):
    """(config, ms of one timed run, per-config ms) of the fastest tutorial config; errors are n/a."""
    times = {}
    for cfg in configs:
        try:
            launch(a, b, c, *cfg)  # compile + first touch
            ky.synchronize()
            if rel_err(c, ref) > 1e-4:
                print(f"note: tutorial config {cfg} gives a wrong result (rel err {rel_err(c, ref):.1e})")
                continue
            times[cfg] = time_once_ms(lambda: launch(a, b, c, *cfg))
        except ky.KaiyuanError as e:
            print(f"note: tutorial config {cfg} failed: {e}")
    if not times:
        return None, None, {}
    best = min(times, key=times.get)
    return best, times[best], times


def gemm_row(M, N, K, peak, launch_tut, ops_matmul, torch, configs):
    rng = np.random.default_rng(M + N + K)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    c = np.empty((M, N), np.float32)
    t0 = time.perf_counter()
    ref = a @ b
    np_once = time.perf_counter() - t0
    fns, notes, errs = {"numpy": lambda: a @ b}, [], {}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        fns["torch"] = lambda: torch.matmul(ta, tb)
    first_ms = {}
    if ops_matmul is not None:
        try:
            t0 = time.perf_counter()
            out = np.asarray(ops_matmul(a, b))
            first_ms["ops"] = (time.perf_counter() - t0) * 1e3  # includes autotuning + compiling
            errs["ops"] = rel_err(out, ref)
            fns["ky.ops"] = lambda: ops_matmul(a, b)
        except Exception as e:  # noqa: BLE001 - report the failure, keep benchmarking the rest
            notes.append(f"ky.ops.matmul failed: {type(e).__name__}: {e}")
    tut_cfg, tut_times = None, {}
    if launch_tut is not None:
        tut_cfg, _, tut_times = best_tutorial_config(launch_tut, a, b, c, ref, configs)
        if tut_cfg is not None:
            errs["tutorial"] = rel_err(c, ref)
            fns["ky tutorial"] = lambda: launch_tut(a, b, c, *tut_cfg)
    t = interleaved(fns, rounds=10, budget_s=20.0, burst_ms=20)
    flops = 2 * M * N * K
    gf = {k: flops / v / 1e6 for k, v in t.items()}
    return {
        "shape": f"{M}x{N}x{K}", "M": M, "N": N, "K": K, "flops": flops,
        "ms": t, "GFLOPs": gf,
        "fraction_of_peak": {k: v / peak for k, v in gf.items()} if peak else None,
        "tutorial_config": list(tut_cfg) if tut_cfg else None,
        "tutorial_config_ms": {str(k): v for k, v in tut_times.items()},
        "ops_first_call_ms": first_ms.get("ops"),
        "rel_err": errs, "notes": notes, "numpy_once_s": np_once,
    }


# ---------------------------------------------------------------------------------------- conv


def conv_numpy(x, w, stride, pad):
    """im2col + BLAS reference (batch 1, NCHW)."""
    xp = np.pad(x[0], ((0, 0), (pad, pad), (pad, pad)))
    C, KH, KW = w.shape[1:]
    win = np.lib.stride_tricks.sliding_window_view(xp, (KH, KW), axis=(1, 2))[:, ::stride, ::stride]
    OH, OW = win.shape[1:3]
    cols = np.ascontiguousarray(win.transpose(1, 2, 0, 3, 4)).reshape(OH * OW, C * KH * KW)
    return (w.reshape(w.shape[0], -1) @ cols.T).reshape(1, w.shape[0], OH, OW)


def conv_row(spec, peak, ops_conv, torch):
    C, H, W, OC, KH, KW, stride, pad, what = spec
    rng = np.random.default_rng(C + H + OC)
    x = rng.standard_normal((1, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((OC, C, KH, KW), dtype=np.float32) / np.sqrt(C * KH * KW)).astype(np.float32)
    ref = conv_numpy(x, w, stride, pad)
    OH, OW = ref.shape[2:]
    fns, notes, errs = {"numpy im2col": lambda: conv_numpy(x, w, stride, pad)}, [], {}
    if torch is not None:
        import torch.nn.functional as F

        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        errs["torch"] = rel_err(F.conv2d(tx, tw, stride=stride, padding=pad).numpy(), ref)
        fns["torch"] = lambda: F.conv2d(tx, tw, stride=stride, padding=pad)
    if ops_conv is not None:
        try:
            errs["ops"] = rel_err(np.asarray(ops_conv(x, w, stride=stride, padding=pad)), ref)
            fns["ky.ops"] = lambda: ops_conv(x, w, stride=stride, padding=pad)
        except Exception as e:  # noqa: BLE001
            notes.append(f"ky.ops.conv2d failed: {type(e).__name__}: {e}")
    t = interleaved(fns, rounds=10, budget_s=10.0, burst_ms=20)
    flops = 2 * OC * OH * OW * C * KH * KW
    gf = {k: flops / v / 1e6 for k, v in t.items()}
    return {"layer": what, "shape": f"{C}x{H}x{W} {KH}x{KW}/{stride} p{pad} -> {OC}", "flops": flops,
            "ms": t, "GFLOPs": gf, "fraction_of_peak": {k: v / peak for k, v in gf.items()} if peak else None,
            "rel_err": errs, "notes": notes}


# ------------------------------------------------------------------------------------ printing


def print_gemm(rows, peak):
    cols = ["ky.ops", "ky tutorial", "numpy", "torch"]
    hdr = ["M x N x K"] + [f"{c} GF/s" for c in cols] + [f"{c} %pk" for c in cols] + ["ops/torch", "best tut cfg"]
    out = []
    for r in rows:
        gf, fp = r["GFLOPs"], r["fraction_of_peak"] or {}
        speed = gf["ky.ops"] / gf["torch"] if "ky.ops" in gf and "torch" in gf else None
        out.append([r["shape"]] + [fmt(gf.get(c), ".1f") for c in cols] +
                   [fmt(100 * fp[c] if c in fp else None, ".0f", "%") for c in cols] +
                   [fmt(speed, ".2f", "x"), "x".join(map(str, r["tutorial_config"])) if r["tutorial_config"] else "n/a"])
    print(table(out, hdr))
    for r in rows:
        for n in r["notes"]:
            print(f"  {r['shape']}: {n}")


def print_conv(rows):
    cols = ["ky.ops", "numpy im2col", "torch"]
    hdr = ["layer", "shape"] + [f"{c} ms" for c in cols] + [f"{c} GF/s" for c in cols] + ["%pk ops", "ops/torch"]
    out = []
    for r in rows:
        t, gf, fp = r["ms"], r["GFLOPs"], r["fraction_of_peak"] or {}
        speed = t["torch"] / t["ky.ops"] if "ky.ops" in t and "torch" in t else None
        out.append([r["layer"], r["shape"]] + [fmt(t.get(c), ".3f") for c in cols] + [fmt(gf.get(c), ".1f") for c in cols]
                   + [fmt(100 * fp["ky.ops"] if "ky.ops" in fp else None, ".0f", "%"), fmt(speed, ".2f", "x")])
    print(table(out, hdr))
    for r in rows:
        for n in r["notes"]:
            print(f"  {r['layer']}: {n}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    p.add_argument("--sizes", help="comma-separated square sizes (default 256,...,4096; quick: 256,512)")
    p.add_argument("--no-transformer", action="store_true")
    p.add_argument("--no-conv", action="store_true")
    p.add_argument("--max-call-s", type=float, default=MAX_CALL_S,
                   help="skip a shape whose slowest contender is predicted to take longer per call")
    p.add_argument("--json", default=str(RESULTS / "gemm.json"))
    args = p.parse_args(argv)

    torch = torch_or_none()
    ops_matmul, ops_conv = optional_op("matmul"), optional_op("conv2d")
    launch_tut = tutorial_matmul()
    info = machine()
    t0 = time.perf_counter()
    peak, peak_src = peak_gflops()
    peak_s = time.perf_counter() - t0
    print(f"kaiyuan {info['kaiyuan']} on cpu; {info['cores']} cores; {info['cpu']}")
    print(f"numpy {info['numpy']} ({info['numpy_blas']}); torch {info['torch'] or 'n/a'} "
          f"({info['torch_threads']} threads); ISA {', '.join(info['isa'] or [])}")
    print(f"measured fp32 FMA peak: {fmt(peak, '.1f', ' GFLOP/s')} ({peak_src}; {peak_s:.1f} s)")
    print("thread environment (applies to every contender): " + ", ".join(f"{k}={v}" for k, v in info["env"].items() if v))
    print(f"kaiyuan.ops.matmul: {'present' if ops_matmul else 'n/a'}; kaiyuan.ops.conv2d: "
          f"{'present' if ops_conv else 'n/a'}\n")

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([256, 512] if args.quick else SQUARE)
    shapes = [(n, n, n) for n in sizes]
    if not args.no_transformer:
        shapes += TRANSFORMER[:1] if args.quick else TRANSFORMER
    configs = TUTORIAL_CONFIGS[:2] if args.quick else TUTORIAL_CONFIGS
    rows, skipped = [], []
    largest = None  # (flops, GFLOP/s of its slowest contender) of the largest shape timed: predicts the next
    with ky.device("cpu"):
        for M, N, K in shapes:
            flops = 2 * M * N * K
            predicted = flops / largest[1] / 1e9 if largest else 0.0
            if predicted > args.max_call_s:
                note = (f"{M}x{N}x{K} skipped: the slowest contender would take about "
                        f"{predicted:.0f} s per call (> --max-call-s {args.max_call_s:g})")
                print(note)
                skipped.append(note)
                continue
            r = gemm_row(M, N, K, peak, launch_tut, ops_matmul, torch, configs)
            rows.append(r)
            if largest is None or flops >= largest[0]:
                largest = (flops, min(r["GFLOPs"].values()))
            print(f"  {r['shape']}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["ms"].items()), flush=True)
        print("\nGEMM, fp32 (GF/s = GFLOP/s; %pk = fraction of the measured peak; ops/torch = speed ratio)")
        print_gemm(rows, peak)
        for n in skipped:
            print("note:", n)
        conv_rows = []
        if not args.no_conv:
            specs = [CONV[i] for i in QUICK_CONV] if args.quick else CONV
            for spec in specs:
                conv_rows.append(conv_row(spec, peak, ops_conv, torch))
                print(f"  {conv_rows[-1]['layer']}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in conv_rows[-1]["ms"].items()),
                      flush=True)
            print("\nconv2d, fp32, batch 1, NCHW (ResNet-50 layers; ops/torch = speed ratio)")
            print_conv(conv_rows)
    path = write_json(args.json, {"machine": info, "peak_GFLOPs": peak, "peak_source": peak_src, "quick": args.quick,
                                  "gemm": rows, "gemm_skipped": skipped, "conv": conv_rows})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
