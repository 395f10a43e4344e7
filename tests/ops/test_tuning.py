"""The tuned path on cpu: autotune picks one of each op's configs and the result stays right."""

import numpy as np
import pytest

import kaiyuan as ky
from kaiyuan import ops
from kaiyuan.ops import gemm

from .conftest import assert_close, to_f64


@pytest.fixture
def tuning():
    old = ops.set_autotune(True)
    yield
    ops.set_autotune(old)


def test_matmul_tuned_on_cpu(tuning, rng):
    if not any(i.name == "cpu" and i.available for i in ky.devices()):
        pytest.skip("no cpu device")
    a, b = rng.standard_normal((70, 50)).astype(np.float32), rng.standard_normal((50, 90)).astype(np.float32)
    with ky.device("cpu"):
        out = ops.matmul(a, b)
    assert_close(out, to_f64(a) @ to_f64(b), "fp32", scale=np.sqrt(50))
    assert gemm.gemm_tuned.best_config in gemm.CPU_CONFIGS


def test_interp_never_tunes(tuning, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    before = gemm.gemm_tuned.best_config
    with ky.device("interp"):
        assert_close(ops.matmul(a, a.T), to_f64(a) @ to_f64(a).T, "fp32")
    assert gemm.gemm_tuned.best_config is before


def test_even_share_keeps_the_configs_that_fill_the_compute_units():
    """3 tiles on 2 cores take two rounds with one core idle in the second: a tiling into 6 or
    12 tiles is kept instead; with one unit, or when no tiling divides evenly, nothing is lost."""
    from kaiyuan.compiler.autotune import Config

    cfgs = [Config({"BLOCK_M": 128, "BLOCK_N": n}) for n in (128, 64, 32)]
    tiles = lambda c: 384 // c.kwargs["BLOCK_N"]  # noqa: E731  (3, 6, 12 tiles)
    assert [c.kwargs["BLOCK_N"] for c in gemm.even_share(cfgs, tiles, 2)] == [64, 32]
    assert gemm.even_share(cfgs, tiles, 1) == cfgs
    assert [c.kwargs["BLOCK_N"] for c in gemm.even_share(cfgs, tiles, 5)] == [32]  # 12/15 beats 6/10
    assert gemm.even_share(cfgs[:1], tiles, 2) == cfgs[:1]


def test_cpu_compute_units_follow_omp_num_threads(monkeypatch):
    """The cpu device's compute units are libgomp's thread count: OMP_NUM_THREADS (its first
    entry), else the usable cores. (The device reads it once, as libgomp does at load.)"""
    import os

    from kaiyuan.backends.cpu.backend import omp_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert omp_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "3,2")
    assert omp_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    assert omp_threads() == len(os.sched_getaffinity(0))
    assert ky.device("cpu").capabilities.compute_units >= 1
