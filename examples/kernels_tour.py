"""A tour of the example kernels on every available device, checked against numpy, timed
(`python examples/kernels_tour.py`; `make demo` runs the MiniLM sentence-embedding demo).

Each example asserts its own result against numpy; this prints one table with kaiyuan's time
beside numpy's. The interp backend (the reference interpreter) gets smaller inputs: it runs the
IR op by op in numpy, for checking, not for speed.
"""

import os
import sys

# numpy's OpenBLAS threads spin for a long while after each BLAS call; alternating numpy's matmul
# with a kaiyuan kernel on 2 cores, the spinning threads take the cores kaiyuan's OpenMP team
# needs (512^3 matmul: 6.8 ms instead of 1.7 ms). Ask OpenBLAS to sleep soon; it reads this
# when numpy is first imported, so it must come before the imports below.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

sys.path.insert(0, os.path.dirname(__file__))

import kaiyuan as ky  # noqa: E402
import layer_norm  # noqa: E402
import matmul  # noqa: E402
import softmax  # noqa: E402
import vector_add  # noqa: E402

SIZES = {
    "cpu": [(vector_add, (1 << 24,)), (softmax, (4096, 1024)), (layer_norm, (4096, 1024)), (matmul, (512, 512, 512))],
    "interp": [(vector_add, (1 << 16,)), (softmax, (64, 1000)), (layer_norm, (32, 1000)), (matmul, (64, 48, 80))],
}


def main() -> int:
    print(f"kaiyuan {ky.__version__}")
    for info in ky.devices():
        state = "available" if info.available else f"absent: {info.reason}"
        print(f"  {info.name:<8} {state}")
    print()
    header = f"{'device':<8} {'kernel':<14} {'shape':<12} {'max error':>10} {'kaiyuan ms':>11} {'numpy ms':>9} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    for info in ky.devices():
        if not info.available or info.name not in SIZES:
            continue
        with ky.device(info.name):
            for module, args in SIZES[info.name]:
                r = module.run(*args)
                print(f"{info.name:<8} {r['kernel']:<14} {r['shape']:<12} {r['max_err']:>10.1e} {r['ky_ms']:>11.2f} "
                      f"{r['numpy_ms']:>9.2f} {r['numpy_ms'] / r['ky_ms']:>7.2f}x")
    print("\nspeedup = numpy time / kaiyuan time. All results match numpy.")
    print("interp is the reference interpreter (checks every access; not built for speed);")
    print("matmul here is the Triton-tutorial kernel with 64x64x64 tiles; ky.ops.matmul autotunes its tiles")
    print("(python bench/gemm.py compares both with numpy and PyTorch).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
