import gc

import pytest

import kaiyuan.runtime as ky
from kaiyuan.runtime.errors import OutOfMemoryError
from kaiyuan.runtime.memory import CachingAllocator, caching_allocator, size_class


def test_size_classes():
    assert size_class(0) == 512 and size_class(1) == 512 and size_class(512) == 512
    assert size_class(513) == 1024
    assert size_class(1 << 20) == 1 << 20
    big = (1 << 20) + 1
    assert big <= size_class(big) <= big * 1.125 + 1
    assert size_class(3_000_000) == size_class(3_000_001)  # one bin serves nearby sizes


def test_reuse_is_a_cache_hit_and_stats_track():
    before = ky.memory_stats("fakedev")
    t = ky.empty((100,), "fp32", device="fakedev")
    s = ky.memory_stats("fakedev")
    assert s["allocated_bytes"] == before["allocated_bytes"] + 512
    assert s["num_allocs"] == before["num_allocs"] + 1
    del t
    gc.collect()
    s2 = ky.memory_stats("fakedev")
    assert s2["num_frees"] == before["num_frees"] + 1
    assert s2["allocated_bytes"] == before["allocated_bytes"]
    assert s2["reserved_bytes"] >= 512
    backend_allocs = ky.get_device("fakedev").allocator.alloc_calls
    u = ky.empty((120,), "fp32", device="fakedev")  # same 512 B class
    assert ky.memory_stats("fakedev")["cache_hits"] == s2["cache_hits"] + 1
    assert ky.get_device("fakedev").allocator.alloc_calls == backend_allocs
    del u


def test_peak_and_empty_cache():
    ca = caching_allocator("fakedev")
    a = ky.empty((4096,), "fp32", device="fakedev")  # 16 KiB
    b = ky.empty((4096,), "fp32", device="fakedev")
    peak = ky.memory_stats("fakedev")["peak_allocated_bytes"]
    assert peak >= 2 * 16384
    del a, b
    gc.collect()
    s = ky.memory_stats("fakedev")
    assert s["peak_allocated_bytes"] == peak and s["allocated_bytes"] < peak
    backend = ky.get_device("fakedev").allocator
    frees = backend.free_calls
    ky.empty_cache("fakedev")
    assert backend.free_calls >= frees + 2
    assert ky.memory_stats("fakedev")["reserved_bytes"] == ca.allocated


def test_buffer_is_exact_size_view_of_block():
    t = ky.empty((3,), "fp32", device="fakehost")
    assert t.buffer.nbytes == 12
    assert t.buffer.owner.nbytes == 512
    assert t.device.allocator.host_view(t.buffer).nbytes == 12


def test_explicit_free_returns_block_once():
    ca = CachingAllocator(ky.get_device("fakedev"))
    buf = ca.alloc(100)
    ca.free(buf)
    ca.free(buf)
    assert buf.freed and ca.stats()["num_frees"] == 1 and ca.stats()["allocated_bytes"] == 0


def test_oom_empties_cache_and_retries():
    dev = ky.get_device("fakedev")
    dev.allocator.limit = dev.allocator.used + 3 * 1024
    ca = CachingAllocator(dev)
    a = ca.alloc(2048)
    ca.free(a)  # cached: holds 2 KiB of the 3 KiB the backend has
    b = ca.alloc(3000)  # needs the cache emptied first
    assert b.nbytes == 3000 and ca.stats()["reserved_bytes"] == 3072
    with pytest.raises(OutOfMemoryError):
        ca.alloc(4096)
