"""Matrix multiplication: each program computes one BLOCK_M x BLOCK_N tile of C, walking K.

Programs are ordered in groups of GROUP_M rows of tiles so neighbouring programs reuse the
same tiles of A (Triton's "grouped ordering"). Run it: `python examples/matmul.py [device]`.
"""

import sys

import numpy as np

import kaiyuan as ky
import kaiyuan.language as kl
from vector_add import bench


@ky.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, BLOCK_K: kl.constexpr, GROUP_M: kl.constexpr):
    pid = kl.program_id(0)
    num_pid_m = kl.cdiv(M, BLOCK_M)
    num_pid_n = kl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (pid // group) * GROUP_M
    group_m = kl.minimum(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group) % group_m
    pid_n = (pid % group) // group_m
    rm = pid_m * BLOCK_M + kl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + kl.arange(0, BLOCK_N)
    rk = kl.arange(0, BLOCK_K)
    acc = kl.zeros((BLOCK_M, BLOCK_N), dtype=kl.float32)
    for k in range(0, K, BLOCK_K):
        a = kl.load(a_ptr + rm[:, None] * stride_am + (k + rk)[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & ((k + rk)[None, :] < K), other=0.0)
        b = kl.load(b_ptr + (k + rk)[:, None] * stride_bk + rn[None, :] * stride_bn,
                    mask=((k + rk)[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = kl.dot(a, b, acc)
    kl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, acc,
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def matmul(a: np.ndarray, b: np.ndarray, BLOCK_M=64, BLOCK_N=64, BLOCK_K=64, GROUP_M=8) -> np.ndarray:
    (M, K), (_, N) = a.shape, b.shape
    c = ky.empty((M, N), dtype="fp32")  # from the caching allocator
    s = a.itemsize
    grid = lambda meta: (ky.cdiv(M, meta["BLOCK_M"]) * ky.cdiv(N, meta["BLOCK_N"]),)  # noqa: E731
    matmul_kernel[grid](a, b, c, M, N, K, a.strides[0] // s, a.strides[1] // s, b.strides[0] // s,
                        b.strides[1] // s, N, 1, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, GROUP_M=GROUP_M)
    return c.numpy()


def run(m: int = 512, n: int = 512, k: int = 512) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    err = float(np.abs(matmul(a, b) - a @ b).max())
    assert err < 1e-3 * np.sqrt(k), f"matmul differs from numpy by {err}"
    return {"kernel": "matmul", "shape": f"{m}x{n}x{k}", "max_err": err, "flops": 2 * m * n * k,
            "ky_ms": bench(lambda: matmul(a, b)), "numpy_ms": bench(lambda: a @ b)}


if __name__ == "__main__":
    with ky.device(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        r = run() if ky.default_device().name == "cpu" else run(64, 48, 80)
    print(f"matmul {r['shape']}: max error {r['max_err']:.1e}, kaiyuan {r['ky_ms']:.2f} ms, numpy {r['numpy_ms']:.2f} ms")
