"""`ky.devices()` lists cuda — present with its properties on a GPU machine, otherwise absent with
the reason — and never crashes; the reasons for each way the driver can be missing."""

import pytest

import kaiyuan as ky
from kaiyuan.backends.cuda import driver
from kaiyuan.runtime.errors import DeviceError


def _row():
    rows = [d for d in ky.devices() if d.name.split(":")[0] == "cuda"]
    assert rows, "cuda is not listed by ky.devices()"
    return rows


def test_cuda_is_listed_present_or_absent_with_a_reason():
    rows = _row()
    if rows[0].available:
        assert all(r.properties["arch"].startswith("sm_") and r.properties["memory_gib"] > 0 for r in rows)
        assert rows[0].name == "cuda:0"
    else:
        assert len(rows) == 1 and rows[0].reason
        assert any(w in rows[0].reason for w in ("libcuda.so", "cuda-bindings", "GPU", "driver"))


def test_absent_cuda_is_a_device_error_naming_the_reason():
    if _row()[0].available:
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError, match="cuda.*not available") as e:
        ky.device("cuda")
    assert e.value.code == "KY-E500"


def test_reason_without_cuda_bindings(monkeypatch):
    def missing():
        raise ImportError("No module named 'cuda'")

    monkeypatch.setattr(driver, "api", missing)
    assert driver._probe() == "cuda-bindings not installed (pip install 'kaiyuan[cuda]')"


def test_reason_without_the_driver_library(monkeypatch):
    class DynamicLibNotFoundError(RuntimeError):
        pass

    class FakeDriver:
        def cuInit(self, flags):
            raise DynamicLibNotFoundError('"cuda" is an NVIDIA driver library')

    monkeypatch.setattr(driver, "api", FakeDriver)
    assert driver._probe() == "no NVIDIA driver (libcuda.so not found)"


def test_reason_without_a_gpu(monkeypatch):
    real = pytest.importorskip("cuda.bindings.driver")

    class FakeDriver:
        CUresult = real.CUresult

        def cuInit(self, flags):
            return (real.CUresult.CUDA_ERROR_NO_DEVICE,)

    monkeypatch.setattr(driver, "api", FakeDriver)
    assert "no NVIDIA GPU found" in driver._probe()
