"""Fused softmax: one program per row, the row read once, kept in a tile, written once.

numpy computes softmax in five passes over memory (max, subtract, exp, sum, divide); the kernel
does it in one read and one write. Run it: `python examples/softmax.py [device]`.
"""

import sys

import numpy as np

import kaiyuan as ky
import kaiyuan.language as kl
from vector_add import bench


@ky.jit
def softmax_kernel(x_ptr, y_ptr, n_cols, x_stride, y_stride, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * x_stride + cols, mask=mask, other=-float("inf"))
    e = kl.exp(x - kl.max(x, axis=0))  # subtracting the max keeps exp from overflowing
    kl.store(y_ptr + row * y_stride + cols, e / kl.sum(e, axis=0), mask=mask)


def softmax(x: np.ndarray) -> np.ndarray:
    rows, cols = x.shape
    y = ky.empty(x.shape, dtype=x.dtype)  # from the caching allocator: no page faults per call
    block = ky.next_power_of_2(cols)
    softmax_kernel[(rows,)](x, y, cols, x.strides[0] // x.itemsize, y.stride(0), BLOCK=block)
    return y.numpy()


def softmax_numpy(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run(rows: int = 4096, cols: int = 1024) -> dict:
    x = np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32)
    err = float(np.abs(softmax(x) - softmax_numpy(x)).max())
    assert err < 1e-6, f"softmax differs from numpy by {err}"
    return {"kernel": "fused softmax", "shape": f"{rows}x{cols}", "max_err": err, "bytes": 2 * x.nbytes,
            "ky_ms": bench(lambda: softmax(x)), "numpy_ms": bench(lambda: softmax_numpy(x))}


if __name__ == "__main__":
    with ky.device(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        r = run() if ky.default_device().name == "cpu" else run(64, 1000)
    print(f"softmax {r['shape']}: max error {r['max_err']:.1e}, kaiyuan {r['ky_ms']:.2f} ms, numpy {r['numpy_ms']:.2f} ms")
