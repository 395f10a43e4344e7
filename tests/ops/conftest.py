"""tests/ops: every op against numpy in float64 (or torch for conv/attention/norm semantics).

`device` runs a test once per available host device (cpu, interp) inside `with ky.device(...)`;
tests keep interp cases tiny (interp runs the IR in numpy). `small` tells a test it is on interp.
"""

import numpy as np
import pytest

import kaiyuan as ky


def available_devices() -> list[str]:
    return [info.name for info in ky.devices() if info.available and info.name in ("cpu", "interp")]


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        names = available_devices()
        metafunc.parametrize("device", names, indirect=True, ids=names)


@pytest.fixture
def device(request):
    with ky.device(request.param) as dev:
        yield dev


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# Tolerances, relative to the float64 reference's scale (see docs/ops.md): the output is rounded
# once to its dtype, and fp32 accumulation adds ~sqrt(K) ulps.
TOL = {"fp64": 1e-10, "fp32": 2e-5, "fp16": 2e-3, "bf16": 1.6e-2, "i8": 0}


def to_f64(x) -> np.ndarray:
    a = x.numpy() if isinstance(x, ky.Tensor) else np.asarray(x)
    return np.asarray(a, dtype=np.float64)


def assert_close(out, ref, dtype: str, scale: float | None = None):
    out, ref = to_f64(out), np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    s = scale if scale is not None else max(1.0, float(np.abs(ref).max(initial=0.0)))
    err = float(np.abs(out - ref).max(initial=0.0))
    assert err <= TOL[dtype] * s, f"{dtype}: max error {err:.3g} > {TOL[dtype]} * {s:.3g}"


def rand(rng, shape, dtype: str):
    if dtype == "i8":
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.standard_normal(shape).astype(ky.dtype(dtype).np)


@pytest.fixture(autouse=True)
def no_tuning():
    """Tuning compiles every config of every new specialisation: tests use each op's first cpu
    config (test_tuning.py covers the tuned path)."""
    from kaiyuan import ops

    old = ops.set_autotune(False)
    yield
    ops.set_autotune(old)
