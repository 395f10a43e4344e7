"""Tiny backends for runtime tests, so they do not depend on the real cpu/interp backends.

`fakehost` keeps buffers in host memory (HostAllocator); `fakedev` keeps them in a private
bytearray-like store that numpy cannot see, to exercise the copy paths of non-host devices;
`fakeabsent` is a backend that says it cannot run here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kaiyuan.backends.host import HostAllocator
from kaiyuan.runtime.backend import Allocator, Backend, Buffer, Compiler, Device
from kaiyuan.runtime.errors import OutOfMemoryError


class NoCompiler(Compiler):
    def stages(self, options):
        return []

    def load(self, binary, meta):
        raise NotImplementedError


@dataclass(eq=False)
class FakeHostDevice(Device):
    def __post_init__(self):
        self._allocator = HostAllocator(self)
        self.properties = {"memory": "host", "index": self.index}

    @property
    def allocator(self):
        return self._allocator

    @property
    def compiler(self):
        return NoCompiler()

    @property
    def is_host(self):
        return True


class DeviceMemoryAllocator(Allocator):
    """Memory the host cannot view: handles are opaque ids into a private dict."""

    def __init__(self, device, limit=1 << 30):
        self.device, self.limit, self.used = device, limit, 0
        self.store: dict[int, np.ndarray] = {}
        self.next_id = 0
        self.alloc_calls = self.free_calls = 0

    def alloc(self, nbytes):
        self.alloc_calls += 1
        if self.used + nbytes > self.limit:
            raise OutOfMemoryError(f"fake device full ({self.used} + {nbytes} > {self.limit})")
        self.next_id += 1
        self.store[self.next_id] = np.zeros(nbytes, np.uint8)
        self.used += nbytes
        return Buffer(self.device, nbytes, self.next_id)

    def free(self, buffer):
        self.free_calls += 1
        self.used -= self.store.pop(buffer.handle).nbytes
        buffer.freed = True

    def copy_in(self, dst, offset, src):
        data = np.ascontiguousarray(src).reshape(-1).view(np.uint8)
        self.store[dst.handle][offset:offset + data.nbytes] = data

    def copy_out(self, src, offset, dst):
        dst.reshape(-1).view(np.uint8)[:] = self.store[src.handle][offset:offset + dst.nbytes]

    def copy(self, dst, dst_offset, src, src_offset, nbytes):
        self.store[dst.handle][dst_offset:dst_offset + nbytes] = self.store[src.handle][src_offset:src_offset + nbytes]


@dataclass(eq=False)
class FakeDevDevice(Device):
    def __post_init__(self):
        self._allocator = DeviceMemoryAllocator(self)
        self.properties = {"memory": "device"}

    @property
    def allocator(self):
        return self._allocator

    @property
    def compiler(self):
        return NoCompiler()


class FakeBackend(Backend):
    def __init__(self, name, device_cls=FakeHostDevice, reason=None, count=1):
        self.name, self.device_cls, self.reason, self.count = name, device_cls, reason, count
        self.single = count == 1

    def unavailable_reason(self):
        return self.reason

    def device_count(self):
        return 0 if self.reason else self.count

    def device(self, index=0):
        return self.device_cls(self, index)
