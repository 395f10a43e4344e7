import pytest

from kaiyuan.runtime import registry

from .fakes import FakeBackend, FakeDevDevice

FAKES = ("fakehost", "fakedev", "fakemulti", "fakeabsent")


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch):
    """Register the fake backends and make `fakehost` the default device for the test."""
    registry.register_backend(FakeBackend("fakehost"))
    registry.register_backend(FakeBackend("fakedev", FakeDevDevice))
    registry.register_backend(FakeBackend("fakemulti", count=2))
    registry.register_backend(FakeBackend("fakeabsent", reason="no fake hardware in this machine"))
    monkeypatch.setenv("KAIYUAN_DEVICE", "fakehost")
    yield
    for name in FAKES:
        registry.unregister_backend(name)
