import threading

import pytest

import kaiyuan.runtime as ky
from kaiyuan.runtime import registry
from kaiyuan.runtime.errors import DeviceError

from .fakes import FakeBackend


def test_get_device_by_name_is_cached():
    d = ky.get_device("fakehost")
    assert d.name == "fakehost"
    assert ky.get_device("fakehost") is d
    assert ky.get_device(d) is d


def test_indexed_devices():
    d1 = ky.get_device("fakemulti:1")
    assert d1.index == 1 and d1.name == "fakemulti:1"
    assert ky.get_device("fakemulti") is ky.get_device("fakemulti:0")
    with pytest.raises(DeviceError, match="2 device"):
        ky.get_device("fakemulti:5")


def test_unknown_device_error_code_and_hint():
    with pytest.raises(DeviceError) as e:
        ky.get_device("nosuchthing")
    assert e.value.code == "KY-E500"
    assert "fakehost" in e.value.hint  # the hint lists available devices


def test_absent_backend_reason_in_error_and_listing():
    with pytest.raises(DeviceError, match="no fake hardware"):
        ky.get_device("fakeabsent")
    rows = {info.name: info for info in ky.devices()}
    assert rows["fakeabsent"].available is False
    assert rows["fakeabsent"].reason == "no fake hardware in this machine"
    assert rows["fakehost"].available and rows["fakehost"].properties["memory"] == "host"
    assert {"fakemulti:0", "fakemulti:1"} <= set(rows)


def test_known_backends_listed_even_when_not_installed():
    rows = {info.name: info for info in ky.devices()}
    for name in ("cpu", "interp", "opencl", "cuda", "npusim"):
        assert name in rows or any(row.startswith(name + ":") for row in rows)  # opencl:0, ... when present
    if not rows["cuda"].available:
        assert rows["cuda"].reason


def test_not_installed_reason_for_unprovided_known_backend(monkeypatch):
    monkeypatch.delitem(registry._REG.backends, "npusim", raising=False)
    monkeypatch.delitem(registry._REG.absent, "npusim", raising=False)
    rows = {info.name: info for info in ky.devices()}
    assert rows["npusim"].reason == registry.NOT_INSTALLED
    with pytest.raises(DeviceError, match="later release"):
        ky.get_device("npusim")


def test_broken_entry_point_is_absent_with_reason():
    class BrokenEntryPoint:
        name, value = "brokenbk", "nowhere:Backend"

        def load(self):
            raise ImportError("no module named nowhere")

    reg = registry._Registry()
    reg._load(BrokenEntryPoint())
    assert "ImportError" in reg.reason("brokenbk") and "nowhere" in reg.reason("brokenbk")


def test_bad_device_spec():
    with pytest.raises(DeviceError):
        ky.get_device("fakehost:x")
    with pytest.raises(DeviceError):
        ky.get_device(3.5)


def test_default_device_from_env(monkeypatch):
    assert ky.default_device().name == "fakehost"
    monkeypatch.setenv("KAIYUAN_DEVICE", "fakedev")
    assert ky.default_device().name == "fakedev"
    assert ky.get_device(None).name == "fakedev"


def test_default_device_is_cpu_without_env(monkeypatch):
    monkeypatch.delenv("KAIYUAN_DEVICE")
    monkeypatch.setattr(registry, "get_device", lambda spec=None: spec)
    assert registry.default_device() == "cpu"


def test_with_device_nests_and_restores():
    outer = ky.device("fakedev")
    assert isinstance(outer, ky.Device)
    with outer as d:
        assert d is outer and ky.default_device() is outer
        with ky.device("fakemulti:1"):
            assert ky.default_device().name == "fakemulti:1"
        assert ky.default_device() is outer
    assert ky.default_device().name == "fakehost"


def test_device_context_is_thread_local():
    seen = []
    with ky.device("fakedev"):
        t = threading.Thread(target=lambda: seen.append(ky.default_device().name))
        t.start()
        t.join()
    assert seen == ["fakehost"]


def test_register_replaces_and_unregister_forgets():
    old = ky.get_device("fakehost")
    registry.register_backend(FakeBackend("fakehost"))
    new = ky.get_device("fakehost")
    assert new is not old
    registry.unregister_backend("fakehost")
    with pytest.raises(DeviceError):
        ky.get_device("fakehost")
