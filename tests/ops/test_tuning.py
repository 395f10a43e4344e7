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
