"""`triton.testing` helpers used by Triton's tutorials: do_bench and assert_close."""

from __future__ import annotations

import time

import numpy as np


def do_bench(fn, warmup: int = 25, rep: int = 100, quantiles=None, return_mode: str = "mean", **_):
    """Time `fn()` (milliseconds): run it for about `warmup` ms, then about `rep` ms of samples."""
    from ..runtime.stream import synchronize

    fn()
    synchronize()
    t0 = time.perf_counter()
    fn()
    synchronize()
    once = max(time.perf_counter() - t0, 1e-7)
    for _ in range(max(1, int(warmup / 1e3 / once))):
        fn()
    synchronize()
    samples = []
    for _ in range(max(1, int(rep / 1e3 / once))):
        t = time.perf_counter()
        fn()
        synchronize()
        samples.append((time.perf_counter() - t) * 1e3)
    a = np.array(samples)
    if quantiles is not None:
        q = np.quantile(a, quantiles).tolist()
        return q[0] if len(q) == 1 else q
    return {"mean": a.mean(), "median": float(np.median(a)), "min": a.min(), "max": a.max()}[return_mode]


def assert_close(x, y, atol=None, rtol=None, err_msg=""):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    np.testing.assert_allclose(x, y, atol=atol if atol is not None else 1e-2, rtol=rtol if rtol is not None else 0,
                               err_msg=err_msg)
