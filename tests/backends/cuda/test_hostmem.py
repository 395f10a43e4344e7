"""Host pages registered for kernels (hostmem.py), checked against a fake driver that behaves as
CUDA's does: a page may be registered once; unregistering takes the start of a registration."""

import gc

import numpy as np
import pytest

from kaiyuan.backends.cuda import hostmem
from kaiyuan.backends.cuda.hostmem import PAGE, HostRegistry


class FakeDriver:
    CU_MEMHOSTREGISTER_DEVICEMAP, CU_MEMHOSTREGISTER_PORTABLE = 2, 1

    def __init__(self):
        self.live: dict[int, int] = {}  # start -> size
        self.calls = []

    def cuMemHostRegister(self, start, size, flags):
        assert start % PAGE == 0 and size % PAGE == 0 and flags == 3
        assert all(start + size <= s or s + n <= start for s, n in self.live.items()), "page registered twice"
        self.live[start] = size
        self.calls.append(("register", start, size))

    def cuMemHostUnregister(self, start):
        assert start in self.live, "unregister of an address that starts no registration"
        del self.live[start]
        self.calls.append(("unregister", start))


class FakeContext:
    host_pointers_usable = True

    def activate(self):
        pass


class Owner:  # stands for a Buffer: the registration lives as long as it does
    pass


@pytest.fixture
def fake(monkeypatch):
    drv = FakeDriver()
    monkeypatch.setattr(hostmem, "api", lambda: drv)
    monkeypatch.setattr(hostmem, "call", lambda fn, *args, what=None: fn(*args))
    return drv


def test_overlapping_requests_register_each_page_once(fake):
    reg = HostRegistry(FakeContext())
    base = 100 * PAGE
    a, b, c = Owner(), Owner(), Owner()
    reg.pin(a, base + 10, 100)                  # page 100
    reg.pin(b, base + 50, 2 * PAGE)             # pages 100..102: only 101..102 are new
    reg.pin(c, base + 20, 10)                   # inside page 100: nothing new
    assert fake.calls == [("register", base, PAGE), ("register", base + PAGE, 2 * PAGE)]
    del a, c
    gc.collect()
    assert len(fake.live) == 2                  # b still uses both regions
    del b
    gc.collect()
    assert fake.live == {}
    assert sorted(fake.calls[-2:]) == [("unregister", base), ("unregister", base + PAGE)]


def test_device_pointer_is_the_host_address_with_unified_addressing(fake):
    reg = HostRegistry(FakeContext())
    x = np.zeros(1000, np.float32)
    reg.pin(x, x.ctypes.data, x.nbytes)
    assert reg.device_pointer(x.ctypes.data + 8) == x.ctypes.data + 8
    assert fake.live
