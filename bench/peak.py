"""The machine's peak fp32 FMA rate, per core and for all cores (the cpu backend's toolchain).

    python bench/peak.py

A C loop of independent vector FMAs (src/kaiyuan/backends/cpu/peak.py), built with the same
compiler and flags as kernels; the vector width is the one the dot micro-kernels use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kaiyuan.backends.cpu import peak  # noqa: E402


def main() -> None:
    cores = os.cpu_count() or 1
    one = peak.peak_gflops(1)
    every = peak.peak_gflops(0)
    print(f"vector path: {peak.isa()}")
    print(f"peak fp32 FMA: {one:.1f} GFLOP/s on 1 core, {every:.1f} GFLOP/s on {cores} cores")


if __name__ == "__main__":
    main()
