"""InterpBackend and its single device: host memory, always available."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...runtime.backend import Backend, Device
from ...runtime.errors import DeviceError
from ..host import HostAllocator
from .compiler import InterpCompiler


@dataclass(eq=False)
class InterpDevice(Device):
    def __post_init__(self) -> None:
        self._allocator = HostAllocator(self)
        self._compiler = InterpCompiler()
        self.properties = {"kind": "reference interpreter", "bounds_checked": True,
                           "numpy": np.__version__, **self.properties}

    @property
    def allocator(self) -> HostAllocator:
        return self._allocator

    @property
    def is_reference(self) -> bool:
        return True

    @property
    def compiler(self) -> InterpCompiler:
        return self._compiler

    @property
    def is_host(self) -> bool:
        return True


class InterpBackend(Backend):
    name = "interp"
    single = True

    def __init__(self) -> None:
        self._device: InterpDevice | None = None

    def unavailable_reason(self) -> str | None:
        return None

    def device(self, index: int = 0) -> InterpDevice:
        if index != 0:
            raise DeviceError(f"interp has one device; there is no interp:{index}", hint="use device 'interp'")
        if self._device is None:
            self._device = InterpDevice(self, 0)
        return self._device
