"""Vector add: the first kaiyuan kernel.

Each program adds one BLOCK-sized slice of x and y; the mask keeps the last, partial slice
inside the arrays. Run it: `python examples/vector_add.py [device]`.
"""

import sys
import time

import numpy as np

import kaiyuan as ky
import kaiyuan.language as kl


@ky.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    offsets = pid * BLOCK + kl.arange(0, BLOCK)
    mask = offsets < n  # the last program may run past the end
    x = kl.load(x_ptr + offsets, mask=mask)
    y = kl.load(y_ptr + offsets, mask=mask)
    kl.store(out_ptr + offsets, x + y, mask=mask)


def add(x: np.ndarray, y: np.ndarray, out=None, BLOCK: int = 4096) -> np.ndarray:
    if out is None:
        out = ky.empty(x.shape, dtype=x.dtype)  # from the caching allocator: no page faults per call
    n = x.size
    add_kernel[(ky.cdiv(n, BLOCK),)](x, y, out, n, BLOCK=BLOCK)
    return np.asarray(out)


def bench(fn, repeat: int = 5) -> float:
    """Median wall time of fn() in milliseconds."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ky.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run(n: int = 1 << 24) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    err = float(np.abs(add(x, y) - (x + y)).max())
    assert err == 0.0, f"vector add differs from numpy by {err}"
    out = np.empty_like(x)
    return {"kernel": "vector add", "shape": f"{n}", "max_err": err, "bytes": 3 * x.nbytes,
            "ky_ms": bench(lambda: add(x, y)), "numpy_ms": bench(lambda: np.add(x, y, out=out))}


if __name__ == "__main__":
    with ky.device(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        r = run(1 << 24 if ky.default_device().name == "cpu" else 1 << 16)
    print(f"vector add of {r['shape']} floats: max error {r['max_err']}, kaiyuan {r['ky_ms']:.2f} ms, "
          f"numpy {r['numpy_ms']:.2f} ms")
