"""Everything kaiyuan measures on an NVIDIA GPU, in one go (not part of the test run).

    python bench/gpu.py [--out DIR] [--quick] [--device cuda:0] [--skip-conformance]

1. The conformance suite (tests/backends, unchanged) on the GPU, in a pytest subprocess
   (KAIYUAN_TEST_DEVICES=cuda:0); its summary and a JUnit XML file go to DIR.
2. Kernel benchmarks in this process: vector add, softmax, layer norm, and matmul at
   1024/2048/4096 in fp32 and fp16 — kaiyuan beside PyTorch (cuBLAS for matmul) and Triton when
   they are installed with CUDA. kaiyuan and Triton run the SAME kernel source (gpu_kernels.py).
   Every result is checked against PyTorch or numpy before it is timed.

Two times per contender, both medians:
  - `ms`: CUDA events around `--iters` back-to-back calls, divided: device time per call. A
    kaiyuan launch returns when its kernel has finished (the backend contract), so its figure
    also holds the host's launch latency; PyTorch and Triton queue calls asynchronously.
  - `wall_ms`: host time of one call followed by a device synchronisation, for everyone alike.

Writes DIR/gpu.json and DIR/gpu.md (default DIR: bench/results/gpu-<date>). `--quick` (about
five minutes): matmul at 1024 and 2048 only, one matmul tiling, fewer repetitions.
Without a GPU it says so and exits with status 1, having measured nothing. `--device cpu` runs
the kaiyuan half on another device, to try the script itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import kaiyuan as ky  # noqa: E402

MATMUL_TILES = [(64, 64, 32), (128, 64, 32), (64, 128, 32), (128, 128, 32), (32, 32, 32)]


# ---------------------------------------------------------------------------- set-up
def load_kernels(name: str, jit, tl):
    """gpu_kernels.py executed with `jit`/`tl` bound to one implementation of the language."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "gpu_kernels.py")
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(jit=jit, tl=tl)
    spec.loader.exec_module(module)
    return module


def peers() -> dict:
    """PyTorch (with CUDA) and Triton, where importable."""
    found = {}
    try:
        import torch

        if torch.cuda.is_available():
            found["torch"] = torch
    except Exception:  # noqa: BLE001 - any import failure means "not here"
        pass
    try:
        import triton
        import triton.language as tl

        if "torch" in found:
            found["triton"] = load_kernels("gpu_kernels_triton", triton.jit, tl)
    except Exception:  # noqa: BLE001
        pass
    return found


def gpu_or_reason(spec: str) -> tuple[object | None, str | None]:
    name = spec.split(":")[0]
    rows = [d for d in ky.devices() if d.name.split(":")[0] == name]
    if not rows or not any(r.available for r in rows):
        return None, rows[0].reason if rows else "not installed"
    return ky.device(spec), None


# ---------------------------------------------------------------------------- timing
class Timer:
    """CUDA-event and wall-clock timing of a call on one stream."""

    def __init__(self, dev, torch, iters: int, reps: int):
        self.dev, self.torch, self.iters, self.reps = dev, torch, iters, reps

    def ky(self, fn) -> dict:
        return self._time(fn, lambda: ky.synchronize(self.dev), self._ky_events())

    def peer(self, fn) -> dict:
        torch = self.torch
        return self._time(fn, torch.cuda.synchronize,
                          lambda: (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))

    def _ky_events(self):
        """Events on the CUDA stream kaiyuan launches on in this thread (None off the GPU)."""
        context = getattr(self.dev, "context", None)
        if context is None:
            return None
        from cuda.bindings import driver

        def make():
            pair = [_CuEvent(driver, context) for _ in range(2)]
            return pair
        return make

    def _time(self, fn, sync, make_events) -> dict:
        fn()
        sync()
        wall = []
        for _ in range(self.reps):
            t0 = time.perf_counter()
            fn()
            sync()
            wall.append((time.perf_counter() - t0) * 1e3)
        out = {"wall_ms": statistics.median(wall)}
        if make_events is not None:
            samples = []
            for _ in range(self.reps):
                start, end = make_events()
                start.record()
                for _ in range(self.iters):
                    fn()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / self.iters)
            out["ms"] = statistics.median(samples)
        else:
            out["ms"] = out["wall_ms"]
        return out


class _CuEvent:
    """torch.cuda.Event's interface over a driver event on kaiyuan's stream of this thread."""

    def __init__(self, driver, context):
        self.driver, self.context = driver, context
        context.activate()
        err, self.event = driver.cuEventCreate(0)
        assert err == driver.CUresult.CUDA_SUCCESS, err

    def record(self):
        (err,) = self.driver.cuEventRecord(self.event, self.context.stream())
        assert err == self.driver.CUresult.CUDA_SUCCESS, err

    def synchronize(self):
        self.driver.cuEventSynchronize(self.event)

    def elapsed_time(self, end) -> float:
        err, ms = self.driver.cuEventElapsedTime(self.event, end.event)
        assert err == self.driver.CUresult.CUDA_SUCCESS, err
        return ms


# ---------------------------------------------------------------------------- the benchmarks
def bench_elementwise(k, dev, timer, found, quick) -> list[dict]:
    rows = []
    n = 1 << 24 if not quick else 1 << 22
    x, y = (np.random.default_rng(i).standard_normal(n, dtype=np.float32) for i in (0, 1))
    kx, ky_, kout = ky.tensor(x, device=dev), ky.tensor(y, device=dev), ky.empty((n,), "fp32", device=dev)
    block = 1024
    launch = lambda: k.add_kernel[(ky.cdiv(n, block),)](kx, ky_, kout, n, BLOCK=block)  # noqa: E731
    launch()
    np.testing.assert_allclose(kout.numpy(), x + y, rtol=1e-6)
    row = {"kernel": "vector add", "shape": f"{n}", "dtype": "fp32", "bytes": 3 * x.nbytes, "ky": timer.ky(launch)}
    if "torch" in found:
        torch = found["torch"]
        tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
        tout = torch.empty_like(tx)
        row["torch"] = timer.peer(lambda: torch.add(tx, ty, out=tout))
        if "triton" in found:
            tk = found["triton"]
            row["triton"] = timer.peer(lambda: tk.add_kernel[(ky.cdiv(n, block),)](tx, ty, tout, n, BLOCK=block))
    rows.append(row)
    return rows


def bench_rows(k, dev, timer, found, quick) -> list[dict]:
    """Softmax and layer norm over 4096 x 1024 fp32 rows (one program per row)."""
    rows_, cols = (4096, 1024) if not quick else (2048, 1024)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((rows_, cols), dtype=np.float32)
    w, b = rng.standard_normal(cols, dtype=np.float32), rng.standard_normal(cols, dtype=np.float32)
    kx, ky_out = ky.tensor(x, device=dev), ky.empty((rows_, cols), "fp32", device=dev)
    kw, kb = ky.tensor(w, device=dev), ky.tensor(b, device=dev)
    out = []

    sm = lambda: k.softmax_kernel[(rows_,)](kx, ky_out, cols, cols, BLOCK=1024)  # noqa: E731
    sm()
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(ky_out.numpy(), e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    row = {"kernel": "softmax", "shape": f"{rows_}x{cols}", "dtype": "fp32", "bytes": 2 * x.nbytes, "ky": timer.ky(sm)}
    ln = lambda: k.layer_norm_kernel[(rows_,)](kx, ky_out, kw, kb, cols, cols, 1e-5, BLOCK=1024)  # noqa: E731
    ln()
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    np.testing.assert_allclose(ky_out.numpy(), (x - mean) / np.sqrt(var + 1e-5) * w + b, rtol=1e-4, atol=1e-4)
    row_ln = {"kernel": "layer norm", "shape": f"{rows_}x{cols}", "dtype": "fp32", "bytes": 2 * x.nbytes,
              "ky": timer.ky(ln)}
    if "torch" in found:
        torch = found["torch"]
        tx, tw, tb = (torch.from_numpy(a).cuda() for a in (x, w, b))
        tout = torch.empty_like(tx)
        row["torch"] = timer.peer(lambda: torch.softmax(tx, dim=1))
        row_ln["torch"] = timer.peer(lambda: torch.nn.functional.layer_norm(tx, (cols,), tw, tb, 1e-5))
        if "triton" in found:
            tk = found["triton"]
            row["triton"] = timer.peer(lambda: tk.softmax_kernel[(rows_,)](tx, tout, cols, cols, BLOCK=1024))
            row_ln["triton"] = timer.peer(
                lambda: tk.layer_norm_kernel[(rows_,)](tx, tout, tw, tb, cols, cols, 1e-5, BLOCK=1024))
    return [row, row_ln]


def bench_matmul(k, dev, timer, found, quick) -> list[dict]:
    sizes = [1024, 2048] if quick else [1024, 2048, 4096]
    rows = []
    for dtype in ("fp32", "fp16"):
        npt = np.float32 if dtype == "fp32" else np.float16
        tile = None
        for n in sizes:
            rng = np.random.default_rng(n)
            a = rng.standard_normal((n, n), dtype=np.float32).astype(npt)
            b = rng.standard_normal((n, n), dtype=np.float32).astype(npt)
            ka, kb, kc = ky.tensor(a, device=dev), ky.tensor(b, device=dev), ky.empty((n, n), "fp32", device=dev)

            def launch(t, ka=ka, kb=kb, kc=kc, n=n):
                bm, bn, bk = t
                k.matmul_kernel[(ky.cdiv(n, bm) * ky.cdiv(n, bn),)](ka, kb, kc, n, n, n, BLOCK_M=bm, BLOCK_N=bn,
                                                                    BLOCK_K=bk, GROUP_M=8)
            if tile is None:  # the tiling is chosen at the first size, by device time
                tile = choose_tile(launch, timer, quick)
            launch(tile)
            ref = a.astype(np.float32) @ b.astype(np.float32)
            err = float(np.abs(kc.numpy() - ref).max() / (np.abs(ref).max() + 1e-30))
            assert err < (1e-4 if dtype == "fp32" else 2e-3), f"matmul {n} {dtype}: relative error {err}"
            row = {"kernel": "matmul", "shape": f"{n}x{n}x{n}", "dtype": dtype, "flops": 2 * n**3,
                   "tile": list(tile), "rel_err": err, "ky": timer.ky(lambda: launch(tile))}
            if "torch" in found:
                torch = found["torch"]
                ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
                row["torch"] = timer.peer(lambda: torch.matmul(ta, tb))
                if "triton" in found:
                    tk, tc = found["triton"], torch.empty((n, n), dtype=torch.float32, device="cuda")
                    row["triton"] = timer.peer(lambda: tk.matmul_kernel[(ky.cdiv(n, 64) * ky.cdiv(n, 64),)](
                        ta, tb, tc, n, n, n, BLOCK_M=64, BLOCK_N=64, BLOCK_K=32, GROUP_M=8))
            rows.append(row)
            print(f"  matmul {n} {dtype}: kaiyuan {row['ky']['ms']:.3f} ms (tile {tile})", flush=True)
    return rows


def choose_tile(launch, timer, quick):
    best, best_ms = None, float("inf")
    for t in MATMUL_TILES[:1] if quick else MATMUL_TILES:
        try:
            ms = timer.ky(lambda: launch(t))["ms"]
        except ky.KaiyuanError as e:  # a tiling the device cannot hold (shared memory): skip it
            print(f"  matmul tile {t}: {e.message}", flush=True)
            continue
        if ms < best_ms:
            best, best_ms = t, ms
    if best is None:
        raise RuntimeError("no matmul tiling ran on this device")
    return best


# ---------------------------------------------------------------------------- conformance
def run_conformance(spec: str, out: Path, quick: bool) -> dict:
    env = {**os.environ, "KAIYUAN_TEST_DEVICES": spec}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={out / 'conformance.xml'}",
           *sorted(str(p) for p in (ROOT / "tests" / "backends").glob("test_*.py"))]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200 if quick else 3600)
    (out / "conformance.txt").write_text(proc.stdout + proc.stderr)
    summary = next((line for line in reversed(proc.stdout.splitlines()) if re.search(r"passed|failed|error", line)), "")
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary)}
    return {"returncode": proc.returncode, "summary": summary.strip("= "), "counts": counts,
            "seconds": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------------------- report
def table(rows: list[dict]) -> str:
    head = "| kernel | shape | dtype | kaiyuan ms | torch ms | triton ms | kaiyuan | torch | torch/kaiyuan |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        ky_ms, t_ms = r["ky"]["ms"], r.get("torch", {}).get("ms")
        tr_ms = r.get("triton", {}).get("ms")
        rate = (lambda ms: f"{r['flops'] / ms / 1e9:.1f} TFLOP/s") if "flops" in r else \
            (lambda ms: f"{r['bytes'] / ms / 1e6:.0f} GB/s")
        f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {r['kernel']} | {r['shape']} | {r['dtype']} | {f(ky_ms)} | {f(t_ms)} | {f(tr_ms)} | "
                     f"{rate(ky_ms)} | {rate(t_ms) if t_ms else 'n/a'} | "
                     f"{f'{t_ms / ky_ms:.2f}' if t_ms else 'n/a'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / f"gpu-{time.strftime('%Y%m%d-%H%M')}")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--quick", action="store_true", help="about five minutes")
    ap.add_argument("--skip-conformance", action="store_true")
    args = ap.parse_args(argv)

    dev, reason = gpu_or_reason(args.device)
    if dev is None:
        print(f"no GPU: {args.device} is not available here ({reason}); nothing was measured.")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    found = peers() if args.device.startswith("cuda") else {}
    print(f"device {dev.name}: {dev.properties}; peers: {sorted(found) or 'none'}", flush=True)
    result = {"device": dev.name, "properties": dev.properties, "quick": args.quick,
              "peers": {"torch": getattr(found.get("torch"), "__version__", None), "triton": "triton" in found}}
    if not args.skip_conformance:
        print("conformance suite ...", flush=True)
        result["conformance"] = run_conformance(dev.name, args.out, args.quick)
        print(f"  {result['conformance']['summary']} ({result['conformance']['seconds']} s)", flush=True)
    import kaiyuan.triton as kt

    kernels = load_kernels("gpu_kernels_ky", kt.jit, kt.language)
    timer = Timer(dev, found.get("torch"), iters=10 if args.quick else 50, reps=5 if args.quick else 11)
    rows = []
    for bench in (bench_elementwise, bench_rows, bench_matmul):
        print(f"{bench.__name__} ...", flush=True)
        rows += bench(kernels, dev, timer, found, args.quick)
    result["kernels"] = rows
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1, default=str))
    text = f"# kaiyuan on {dev.properties.get('name', dev.name)}\n\n{table(rows)}\n"
    if "conformance" in result:
        text += f"\nconformance: {result['conformance']['summary']}\n"
    (args.out / "gpu.md").write_text(text)
    print(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
