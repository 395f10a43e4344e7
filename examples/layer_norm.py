"""Layer norm forward: mean and variance of a row, normalise, scale and shift — one pass.

Rows longer than BLOCK are walked in BLOCK-sized chunks with a loop, as Triton's tutorial does.
Run it: `python examples/layer_norm.py [device]`.
"""

import sys

import numpy as np

import kaiyuan as ky
import kaiyuan.language as kl
from vector_add import bench


@ky.jit
def layer_norm_kernel(x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, stride, n_cols, eps, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    x_ptr += row * stride
    y_ptr += row * stride
    acc = kl.zeros([BLOCK], dtype=kl.float32)
    for off in range(0, n_cols, BLOCK):
        cols = off + kl.arange(0, BLOCK)
        acc += kl.load(x_ptr + cols, mask=cols < n_cols, other=0.0).to(kl.float32)
    mean = kl.sum(acc, axis=0) / n_cols
    acc = kl.zeros([BLOCK], dtype=kl.float32)
    for off in range(0, n_cols, BLOCK):
        cols = off + kl.arange(0, BLOCK)
        x = kl.load(x_ptr + cols, mask=cols < n_cols, other=0.0).to(kl.float32)
        d = kl.where(cols < n_cols, x - mean, 0.0)
        acc += d * d
    rstd = 1.0 / kl.sqrt(kl.sum(acc, axis=0) / n_cols + eps)
    kl.store(mean_ptr + row, mean)
    kl.store(rstd_ptr + row, rstd)
    for off in range(0, n_cols, BLOCK):
        cols = off + kl.arange(0, BLOCK)
        mask = cols < n_cols
        w = kl.load(w_ptr + cols, mask=mask)
        b = kl.load(b_ptr + cols, mask=mask)
        x = kl.load(x_ptr + cols, mask=mask, other=0.0).to(kl.float32)
        kl.store(y_ptr + cols, (x - mean) * rstd * w + b, mask=mask)


def layer_norm(x, w, b, eps=1e-5, BLOCK=1024):
    rows, cols = x.shape
    # outputs come from kaiyuan's caching allocator: reused, so no fresh pages to fault in per call
    y = ky.empty(x.shape, dtype=x.dtype)
    mean = ky.empty((rows,), dtype="fp32")
    rstd = ky.empty((rows,), dtype="fp32")
    layer_norm_kernel[(rows,)](x, y, w, b, mean, rstd, x.strides[0] // x.itemsize, cols, eps,
                               BLOCK=min(BLOCK, ky.next_power_of_2(cols)))
    return y.numpy(), mean.numpy(), rstd.numpy()


def layer_norm_numpy(x, w, b, eps=1e-5):
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def run(rows: int = 4096, cols: int = 1024) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    w = rng.standard_normal(cols, dtype=np.float32)
    b = rng.standard_normal(cols, dtype=np.float32)
    y, _, _ = layer_norm(x, w, b)
    err = float(np.abs(y - layer_norm_numpy(x, w, b)).max())
    assert err < 1e-4, f"layer norm differs from numpy by {err}"
    return {"kernel": "layer norm", "shape": f"{rows}x{cols}", "max_err": err, "bytes": 2 * x.nbytes,
            "ky_ms": bench(lambda: layer_norm(x, w, b)), "numpy_ms": bench(lambda: layer_norm_numpy(x, w, b))}


if __name__ == "__main__":
    with ky.device(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        r = run() if ky.default_device().name == "cpu" else run(32, 1000)
    print(f"layer norm {r['shape']}: max error {r['max_err']:.1e}, kaiyuan {r['ky_ms']:.2f} ms, numpy {r['numpy_ms']:.2f} ms")
