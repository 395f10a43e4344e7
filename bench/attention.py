"""Attention benchmark: kaiyuan.ops.scaled_dot_product_attention against PyTorch and numpy.

    python bench/attention.py [--quick] [--seqs 128,512] [--batches 1,8] [--json bench/results/attention.json]

Shapes: (batch, heads 12, sequence L, head dim 64) for query, key and value (self-attention, fp32),
causal and not. Contenders, timed in interleaved rounds (bench/common.py):
  ky.ops  kaiyuan.ops.scaled_dot_product_attention(q, k, v, is_causal=...)  ("n/a" when missing)
  torch   torch.nn.functional.scaled_dot_product_attention on the CPU        ("n/a" without torch)
  numpy   softmax(q @ k^T * scale [+ causal mask]) @ v, one batch entry at a time (BLAS GEMMs)
GFLOP/s = 4*B*H*L*L*D / time (the two GEMMs), halved for causal (half the scores are needed).
Batch 8 runs only for L <= --batch8-max-seq (default 1024): longer ones take minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Idle BLAS/OpenMP workers must not spin while another library runs (QUIET_THREADS in bench/common.py).
for _k, _v in {"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "0"}.items():
    os.environ.setdefault(_k, _v)

from common import RESULTS, fmt, interleaved, machine, optional_op, peak_gflops, rel_err, table, torch_or_none, write_json

import numpy as np  # noqa: E402

import kaiyuan as ky  # noqa: E402

HEADS, HEAD_DIM = 12, 64
SEQS = [128, 512, 1024, 2048]


def sdpa_numpy(q, k, v, causal: bool):
    """Reference attention, one batch entry at a time (keeps the score matrix small)."""
    scale = 1.0 / np.sqrt(q.shape[-1])
    out = np.empty_like(q)
    L, S = q.shape[2], k.shape[2]
    bias = np.where(np.triu(np.ones((L, S), bool), 1), np.float32(-np.inf), np.float32(0)) if causal else None
    for b in range(q.shape[0]):
        s = np.matmul(q[b], k[b].transpose(0, 2, 1)) * np.float32(scale)
        if bias is not None:
            s += bias
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        np.matmul(s, v[b], out=out[b])
    return out


def row(B, L, causal, peak, ops_sdpa, torch, budget_s):
    rng = np.random.default_rng(B * 10007 + L)
    q, k, v = (rng.standard_normal((B, HEADS, L, HEAD_DIM), dtype=np.float32) for _ in range(3))
    ref = sdpa_numpy(q, k, v, causal)
    fns, errs, notes = {"numpy": lambda: sdpa_numpy(q, k, v, causal)}, {}, []
    if torch is not None:
        import torch.nn.functional as F

        tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
        errs["torch"] = rel_err(F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).numpy(), ref)
        fns["torch"] = lambda: F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    first_ms = None
    if ops_sdpa is not None:
        try:
            t0 = time.perf_counter()
            out = np.asarray(ops_sdpa(q, k, v, is_causal=causal))
            first_ms = (time.perf_counter() - t0) * 1e3  # includes autotuning and compiling
            errs["ops"] = rel_err(out, ref)
            fns["ky.ops"] = lambda: ops_sdpa(q, k, v, is_causal=causal)
        except Exception as e:  # noqa: BLE001 - report it, keep benchmarking the others
            notes.append(f"ky.ops.scaled_dot_product_attention failed: {type(e).__name__}: {e}")
    t = interleaved(fns, rounds=10, budget_s=budget_s, burst_ms=20)
    flops = 4 * B * HEADS * L * L * HEAD_DIM // (2 if causal else 1)
    gf = {name: flops / ms / 1e6 for name, ms in t.items()}
    return {"batch": B, "heads": HEADS, "seq": L, "head_dim": HEAD_DIM, "causal": causal, "flops": flops,
            "ms": t, "GFLOPs": gf, "fraction_of_peak": {n: g / peak for n, g in gf.items()} if peak else None,
            "speedup_vs_torch": {n: t["torch"] / ms for n, ms in t.items()} if "torch" in t else None,
            "ops_first_call_ms": first_ms, "rel_err": errs, "notes": notes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="batch 1, sequences 128 and 512 (a smoke run)")
    p.add_argument("--seqs", help="comma-separated sequence lengths (default 128,512,1024,2048)")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--batch8-max-seq", type=int, default=1024, help="batches above 1 only up to this sequence")
    p.add_argument("--budget-s", type=float, default=15.0, help="time for the rounds of one shape")
    p.add_argument("--json", default=str(RESULTS / "attention.json"))
    args = p.parse_args(argv)

    torch = torch_or_none()
    ops_sdpa = optional_op("scaled_dot_product_attention")
    info = machine()
    peak, peak_src = peak_gflops()
    print(f"kaiyuan {info['kaiyuan']} on cpu; {info['cores']} cores; {info['cpu']}; numpy {info['numpy']} "
          f"({info['numpy_blas']}); torch {info['torch'] or 'n/a'} ({info['torch_threads']} threads)")
    print(f"measured fp32 FMA peak: {fmt(peak, '.1f', ' GFLOP/s')} ({peak_src})")
    print("thread environment (applies to every contender): " + ", ".join(f"{k}={v}" for k, v in info["env"].items() if v))
    print(f"kaiyuan.ops.scaled_dot_product_attention: {'present' if ops_sdpa else 'n/a'}\n")

    seqs = [int(s) for s in args.seqs.split(",")] if args.seqs else ([128, 512] if args.quick else SEQS)
    batches = [1] if args.quick else [int(b) for b in args.batches.split(",")]
    rows, skipped = [], []
    with ky.device("cpu"):
        for B in batches:
            for L in seqs:
                if B > 1 and L > args.batch8_max_seq:
                    skipped.append(f"B={B} L={L} skipped (--batch8-max-seq {args.batch8_max_seq})")
                    continue
                for causal in (False, True):
                    r = row(B, L, causal, peak, ops_sdpa, torch, args.budget_s)
                    rows.append(r)
                    print(f"  B={B} L={L} causal={causal}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["ms"].items()),
                          flush=True)
    cols = ["ky.ops", "torch", "numpy"]
    hdr = ["B", "L", "causal"] + [f"{c} ms" for c in cols] + [f"{c} GF/s" for c in cols] + ["ops %pk", "ops vs torch"]
    out = []
    for r in rows:
        t, gf, fp = r["ms"], r["GFLOPs"], r["fraction_of_peak"] or {}
        sp = (r["speedup_vs_torch"] or {}).get("ky.ops")
        out.append([str(r["batch"]), str(r["seq"]), "yes" if r["causal"] else "no"] + [fmt(t.get(c), ".2f") for c in cols]
                   + [fmt(gf.get(c), ".1f") for c in cols]
                   + [fmt(100 * fp["ky.ops"] if "ky.ops" in fp else None, ".0f", "%"), fmt(sp, ".2f", "x")])
    print(f"\nscaled dot-product attention, fp32, {HEADS} heads, head dim {HEAD_DIM} (ops vs torch = torch ms / ky ms)")
    print(table(out, hdr))
    for r in rows:
        for n in r["notes"]:
            print(f"  B={r['batch']} L={r['seq']}: {n}")
    for n in skipped:
        print("note:", n)
    path = write_json(args.json, {"machine": info, "peak_GFLOPs": peak, "peak_source": peak_src, "quick": args.quick,
                                  "rows": rows, "skipped": skipped})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
