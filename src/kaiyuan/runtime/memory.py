"""A caching allocator per device, over the backend's own `Allocator`.

Device allocation is slow on real chips (and even numpy's is not free), and training loops
allocate the same sizes every step, so freed blocks are kept, binned by size class, and handed
out again. Small sizes round up to 512 B; large sizes to one of eight steps per power of two,
which bounds the waste to 12.5% while keeping the number of bins small. A backend
OutOfMemoryError first returns the cache to the backend and retries once.

Callers get a *view* buffer of exactly the size they asked for (so bounds checks in the interp
backend stay exact); the cached block behind it is its `owner`, and goes back to the cache when
the view buffer is garbage collected (or explicitly `free`d).
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict

import numpy as np

from . import capture as _capture
from .backend import Buffer, Device
from .errors import OutOfMemoryError

SMALL_GRANULE = 512
SMALL_LIMIT = 1 << 20
LOG2_STEPS_PER_OCTAVE = 3  # eight size classes between consecutive powers of two


def size_class(nbytes: int) -> int:
    """The block size that serves a request of `nbytes`."""
    if nbytes <= SMALL_LIMIT:
        return max(SMALL_GRANULE, -(-nbytes // SMALL_GRANULE) * SMALL_GRANULE)
    octave = (nbytes - 1).bit_length() - 1  # 2**octave < nbytes <= 2**(octave + 1)
    step = 1 << (octave - LOG2_STEPS_PER_OCTAVE)
    return -(-nbytes // step) * step


class CachingAllocator:
    """Keeps freed blocks of one device for reuse; counts what it does for `memory_stats`."""

    def __init__(self, device: Device):
        self.device = device
        self.lock = threading.RLock()  # an RLock: a GC finalizer may free while we hold it
        self.cache: dict[int, list[Buffer]] = defaultdict(list)
        self.live: dict[int, weakref.finalize] = {}  # id(block) → its release hook
        self.allocated = self.reserved = self.peak = 0
        self.num_allocs = self.num_frees = self.cache_hits = 0

    def alloc(self, nbytes: int) -> Buffer:
        """A buffer of exactly `nbytes`; its block returns to the cache when the buffer dies."""
        size = size_class(nbytes)
        with self.lock:
            block = self._take_cached(size) or self._alloc_block(size)
            self.allocated += size
            self.peak = max(self.peak, self.allocated)
            self.num_allocs += 1
        handle = block.handle[:nbytes] if isinstance(block.handle, np.ndarray) else block.handle
        buffer = Buffer(self.device, nbytes, handle, owner=block, address=block.address)
        # Tied to the buffer, not to a tensor: a launch still queued on a stream holds the buffer,
        # so its memory cannot be handed out again before that work ran.
        self.live[id(block)] = weakref.finalize(buffer, self._release, block)
        _capture.allocated(buffer)
        return buffer

    def free(self, buffer: Buffer) -> None:
        """Return a buffer from `alloc` to the cache now, instead of when it is collected."""
        fin = self.live.get(id(buffer.owner))
        if buffer.freed or fin is None:
            return
        buffer.handle, buffer.freed = None, True
        fin()

    def _release(self, block: Buffer) -> None:
        with self.lock:
            self.live.pop(id(block), None)
            self.cache[block.nbytes].append(block)
            self.allocated -= block.nbytes
            self.num_frees += 1

    def _take_cached(self, size: int) -> Buffer | None:
        bin_ = self.cache.get(size)
        if bin_:
            self.cache_hits += 1
            return bin_.pop()
        return None

    def _alloc_block(self, size: int) -> Buffer:
        try:
            block = self.device.allocator.alloc(size)
        except OutOfMemoryError:
            self.empty_cache()
            block = self.device.allocator.alloc(size)  # a second failure reaches the user
        self.reserved += size
        return block

    def empty_cache(self) -> None:
        """Give every cached block back to the backend allocator."""
        with self.lock:
            blocks = [b for bin_ in self.cache.values() for b in bin_]
            self.cache.clear()
            for block in blocks:
                self.device.allocator.free(block)
                self.reserved -= block.nbytes

    def stats(self) -> dict:
        with self.lock:
            return {
                "allocated_bytes": self.allocated,
                "reserved_bytes": self.reserved,
                "peak_allocated_bytes": self.peak,
                "num_allocs": self.num_allocs,
                "num_frees": self.num_frees,
                "cache_hits": self.cache_hits,
            }


_allocators: dict[str, CachingAllocator] = {}
_allocators_lock = threading.Lock()


def caching_allocator(device=None) -> CachingAllocator:
    """The caching allocator of `device` (default: the default device); one per Device object."""
    from .registry import get_device

    dev = get_device(device)
    with _allocators_lock:
        ca = _allocators.get(dev.name)
        if ca is None or ca.device is not dev:
            ca = _allocators[dev.name] = CachingAllocator(dev)
        return ca


def memory_stats(device=None) -> dict:
    """allocated/reserved/peak bytes and alloc/free/cache-hit counts of a device's allocator.

    Byte counts are in block sizes (requests rounded up to their size class)."""
    return caching_allocator(device).stats()


def empty_cache(device=None) -> None:
    """Return the device's cached free blocks to its backend allocator."""
    caching_allocator(device).empty_cache()
