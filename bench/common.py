"""Shared helpers of the benchmarks in bench/ (not part of the test run).

- `interleaved(fns)`: median ms of each contender, timed in interleaved rounds (A B C A B C ...),
  so a machine whose speed drifts (a shared VM) slows every contender alike. Rounds adapt to a
  time budget, so a 5-second GEMM gets 3 rounds and a 50-microsecond one gets many; short calls
  run in bursts.
- `QUIET_THREADS`: environment for benchmarks that put several thread pools in one process
  (numpy's OpenBLAS, torch's OpenMP, kaiyuan's OpenMP). By default each pool's idle workers spin
  (OpenBLAS ~0.1 s, libgomp ~300k iterations) before sleeping, taking the cores from whichever
  contender runs next: on a 2-core machine a 0.2 ms GEMM then measures 5-20 ms. bench/gemm.py and
  bench/attention.py set these (unless already set) before numpy or torch load, for every
  contender alike, and record them in their JSON.
- `machine()`: what the figures were measured on (CPU, cores, library versions, BLAS).
- `peak_gflops()`: the machine's measured fp32 FMA peak from the cpu backend, if it provides it.
- `optional_op(name)`: a `kaiyuan.ops` function, or None while the library lacks it ("n/a").
- `table(...)`, `fmt(...)`, `write_json(...)`: printing and results.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
for _p in (ROOT / "src", ROOT / "examples"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import kaiyuan as ky  # noqa: E402


QUIET_THREADS = {"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "0"}


def _sync():
    ky.synchronize()


def interleaved(fns: dict, rounds: int = 15, budget_s: float | None = None, min_rounds: int = 3,
                burst_ms: float = 0.0, max_burst: int = 50, block: int = 0, warmup: int = 1) -> dict:
    """Median ms per call of each function, timed in interleaved rounds (A B C A B C ...) so
    that a machine whose speed drifts (a shared VM) slows every contender alike.

    Each function runs once untimed first (compiles, warms caches). With `burst_ms`, a round runs
    a short function back to back until about that long (at most `max_burst` calls) and counts
    the mean per call: what one library's leftover threads (OpenBLAS and OpenMP workers spinning
    or asleep on a halted vCPU) cost the next contender is then paid once per burst, not per
    call. With `block`, a round runs the function `block` times back to back, timing each call,
    and keeps the median call: the steady-state latency of a model served back to back, without
    the first call after another library, which can wait for cores that library's idle workers
    still spin on (onnxruntime's pool spins by default: a kaiyuan MiniLM run right after an
    onnxruntime run took 53 ms, back to back 18). With `budget_s`, the number of rounds is cut so
    that all rounds together take about that long (never fewer than `min_rounds`). `warmup`:
    untimed calls of each function first (a graph session compiles on its first run and
    captures its launches on the second)."""
    first = {}
    for k, f in fns.items():
        for _ in range(warmup - 1):
            f()
        t0 = time.perf_counter()
        f()
        _sync()
        first[k] = time.perf_counter() - t0
    if block:
        return _blocks(fns, first, rounds, budget_s, min_rounds, block)
    calls = {k: max(1, min(max_burst, int(burst_ms / 1e3 / max(t, 1e-7)))) if burst_ms else 1 for k, t in first.items()}
    if budget_s is not None:
        per_round = max(sum(first[k] * calls[k] for k in fns), 1e-6)
        rounds = max(min_rounds, min(rounds, int(budget_s / per_round)))
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            n = calls[k]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            _sync()
            samples[k].append((time.perf_counter() - t0) * 1e3 / n)
    return {k: float(np.median(v)) for k, v in samples.items()}


def _blocks(fns: dict, first: dict, rounds: int, budget_s, min_rounds: int, block: int) -> dict:
    """interleaved(..., block=n): per round and function, the median of n back-to-back calls."""
    if budget_s is not None:
        per_round = max(sum(first.values()) * block, 1e-6)
        rounds = max(min_rounds, min(rounds, int(budget_s / per_round)))
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            calls = []
            for _ in range(block):
                t0 = time.perf_counter()
                f()
                _sync()
                calls.append((time.perf_counter() - t0) * 1e3)
            samples[k].append(float(np.median(calls)))
    return {k: float(np.median(v)) for k, v in samples.items()}


def time_once_ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    _sync()
    return (time.perf_counter() - t0) * 1e3


# ------------------------------------------------------------------------------ the machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_or_none():
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "no torch here"
        return None
    return torch


def blas_name() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy: no dict mode
        return "?"


def machine() -> dict:
    torch = torch_or_none()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kaiyuan": ky.__version__,
        "numpy": np.__version__,
        "numpy_blas": blas_name(),
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch else None,
        "isa": ky.get_device("cpu").properties.get("isa"),
        "python": platform.python_version(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                                               "OMP_WAIT_POLICY", "KAIYUAN_AUTOTUNE")},
    }


_PEAK_NAMES = ("peak_gflops", "measure_peak_gflops", "peak_fp32_gflops", "measure_peak", "peak_fma_gflops", "peak")


def peak_gflops() -> tuple[float | None, str]:
    """(fp32 FMA GFLOP/s of this machine as the cpu backend measures it, where it came from);
    (None, reason) when the backend has no peak function yet."""
    try:
        mod = importlib.import_module("kaiyuan.backends.cpu.peak")
    except ImportError as e:
        return None, f"n/a (kaiyuan.backends.cpu.peak: {e})"
    names = [n for n in _PEAK_NAMES if callable(getattr(mod, n, None))]
    names += [n for n in dir(mod) if "peak" in n.lower() and not n.startswith("_") and n not in names
              and callable(getattr(mod, n))]
    for name in names:
        fn, value, how = getattr(mod, name), None, ""
        for call_args, how in (((0,), "0: all cores"), ((), "")):  # all cores when it takes a thread count
            try:
                value = fn(*call_args)
                break
            except TypeError:
                continue
        if isinstance(value, dict):  # a report: take its fp32 figure
            value = next((v for k, v in value.items() if "gflop" in k.lower() and isinstance(v, (int, float))), None)
        if isinstance(value, (int, float)) and value > 0:
            return float(value), f"kaiyuan.backends.cpu.peak.{name}({how})"
    return None, "n/a (no usable peak function in kaiyuan.backends.cpu.peak)"


def optional_op(name: str):
    """`kaiyuan.ops.<name>`, or None when the operator library does not have it (yet)."""
    try:
        ops = importlib.import_module("kaiyuan.ops")
    except Exception as e:  # noqa: BLE001 - missing, or broken mid-edit: either way "n/a"
        if not _OPS_WARNED:
            _OPS_WARNED.append(e)
            print(f"note: kaiyuan.ops does not import ({type(e).__name__}: {e}); its rows are n/a")
        return None
    return getattr(ops, name, None)


_OPS_WARNED: list = []


# ------------------------------------------------------------------------------- reporting


def fmt(v, spec: str = ".2f", suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{v:{spec}}{suffix}"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "-" * (sum(widths) + 2 * (len(widths) - 1))] + [line(r) for r in rows])


def write_json(path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def rel_err(x, ref) -> float:
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(x - ref).max() / max(np.abs(ref).max(), 1e-30))
