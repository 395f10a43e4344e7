"""The backend contract (DESIGN.md §5): the few classes a chip vendor implements.

A backend is a package that registers a `Backend` subclass under the entry-point group
`kaiyuan.backends`. Generic code reaches backends only through the registry
(`kaiyuan.runtime.registry`), never by importing them by name. docs/backends.md is the porting
guide; tests/backends/ is the conformance suite every backend passes unchanged.

    Backend   -- finds its devices, says why it is absent
    Device    -- properties and capabilities; owns an Allocator and a Compiler
    Allocator -- alloc/free device memory, copies host<->device and device<->device
    Compiler  -- an ordered list of named Stages from `ky` IR to a binary; loads a Program
    Program   -- a loaded binary; launches on a grid, with kernel arguments
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .dtypes import DType


@dataclass(eq=False)
class Buffer:
    """A block of device memory. `handle` is the backend's own (host backends: a numpy uint8 array)."""

    device: "Device"
    nbytes: int
    handle: Any
    owner: Any = None  # keeps an imported host object (numpy array, dlpack capsule) alive
    freed: bool = False
    address: int | None = None  # host address of byte 0 when the CPU can address it (host backends)


@dataclass(frozen=True)
class PointerArg:
    """A pointer kernel argument: `buffer` + `offset` bytes, pointing at elements of `dtype`."""

    buffer: Buffer
    offset: int
    dtype: DType


class ScalarArg:
    """A scalar kernel argument: `value` as a `dtype`. Immutable by convention; a plain slotted
    class, not a frozen dataclass, because one is made per scalar per launch (0.1 us, not 0.4)."""

    __slots__ = ("value", "dtype")

    def __init__(self, value: int | float | bool, dtype: DType):
        self.value, self.dtype = value, dtype

    def __eq__(self, other) -> bool:
        return type(other) is ScalarArg and self.value == other.value and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash((self.value, self.dtype))

    def __repr__(self) -> str:
        return f"ScalarArg(value={self.value!r}, dtype={self.dtype!r})"


KernelArg = PointerArg | ScalarArg


@dataclass(frozen=True)
class Stage:
    """One named step of a backend's pipeline.

    kind: "ir" (run takes and returns an xDSL module, printed into `asm`), "text" (returns source
    text such as C), "binary" (returns bytes, the artefact that is cached and loaded).
    `run(artifact, meta)` gets the previous stage's output and the kernel's metadata dict.
    """

    name: str
    kind: str
    run: Callable[[Any, dict], Any]


class Allocator(ABC):
    @abstractmethod
    def alloc(self, nbytes: int) -> Buffer: ...

    @abstractmethod
    def free(self, buffer: Buffer) -> None: ...

    @abstractmethod
    def copy_in(self, dst: Buffer, offset: int, src: np.ndarray) -> None:
        """Host → device: write the bytes of contiguous `src` at `dst` + `offset`."""

    @abstractmethod
    def copy_out(self, src: Buffer, offset: int, dst: np.ndarray) -> None:
        """Device → host: fill contiguous `dst` from `src` + `offset`."""

    @abstractmethod
    def copy(self, dst: Buffer, dst_offset: int, src: Buffer, src_offset: int, nbytes: int) -> None: ...

    def host_view(self, buffer: Buffer) -> np.ndarray | None:
        """A zero-copy uint8 view of the buffer when device memory is host memory, else None."""
        return None

    def wrap_host(self, array: np.ndarray) -> Buffer | None:
        """Import a host array without copying when the device can address it, else None."""
        return None


class Program(ABC):
    @abstractmethod
    def launch(self, grid: tuple[int, int, int], args: list[KernelArg]) -> None:
        """Run every program of `grid` to completion (the stream decides when this is called)."""

    def bind(self, grid: tuple[int, int, int], args: list[KernelArg]):
        """A zero-argument callable that launches `grid` with `args` again (a captured launch,
        kaiyuan.runtime.capture). Backends override it to convert the arguments once."""
        return lambda: self.launch(grid, args)

    # A backend may define `bind_list(cls, launches) -> callable` (a classmethod): one callable
    # that replays consecutive captured launches of its programs in order (the cpu backend makes
    # it one C call). kaiyuan.runtime.capture.replay_list uses it where present.


class Compiler(ABC):
    target: str = ""

    @abstractmethod
    def stages(self, options: dict) -> list[Stage]:
        """The ordered pipeline, first stage consuming the frontend's `ky` module."""

    @abstractmethod
    def load(self, binary: bytes, meta: dict) -> Program: ...

    def toolchain_version(self) -> str:
        """Part of the cache key: changes when the backend's toolchain changes."""
        return ""


@dataclass(frozen=True)
class Capabilities:
    """What a device's hardware offers, so generic code (kernel tilings, autotune configs, tests)
    can decide without naming a backend. A backend returns one from `Device.capabilities`;
    docs/backends.md ("Capability flags") says what each field means to the compiler."""

    vector_width_bits: int = 0        # widest SIMD register one lane sees (0: scalar only)
    local_memory_bytes: int = 0       # on-chip memory one program's lanes share (OpenCL local, CUDA shared)
    max_program_lanes: int = 1        # work-items/threads that run one program together
    compute_units: int = 1            # programs that run at the same time (cores, SMs, compute units)
    matrix_unit: str | None = None    # "fma-microkernel", "tensor-core", "cube", ... or None
    atomics: tuple[str, ...] = ("add", "max", "min", "and", "or", "xor", "xchg", "cas")
    float16: bool = True              # fp16 loads/stores/arithmetic are supported
    bfloat16: bool = True
    float64: bool = True


@dataclass
class Device(ABC):
    backend: "Backend"
    index: int = 0
    properties: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.backend.name if self.index == 0 and self.backend.single else f"{self.backend.name}:{self.index}"

    @property
    @abstractmethod
    def allocator(self) -> Allocator: ...

    @property
    @abstractmethod
    def compiler(self) -> Compiler: ...

    @property
    def is_host(self) -> bool:
        """True when buffers live in host memory (zero-copy with numpy)."""
        return False

    @property
    def capabilities(self) -> Capabilities:
        """The hardware's capability flags (the defaults describe a scalar host)."""
        return Capabilities()

    @property
    def is_reference(self) -> bool:
        """True for a reference implementation that runs kernels to check them, not for speed:
        timing it means nothing, so autotuning and libraries use small fixed configs there."""
        return False

    def __repr__(self) -> str:
        return f"device({self.name!r})"

    # `with ky.device("interp"):` makes this the default device of the thread (runtime/registry.py).
    def __enter__(self) -> "Device":
        from .registry import push_device

        push_device(self)
        return self

    def __exit__(self, *exc) -> None:
        from .registry import pop_device

        pop_device()


class Backend(ABC):
    name: str = ""
    single: bool = True  # one device, named without an index ("cpu")

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when usable here; otherwise why not (shown by `ky.devices()`)."""

    def device_count(self) -> int:
        return 0 if self.unavailable_reason() else 1

    @abstractmethod
    def device(self, index: int = 0) -> Device: ...

    def offline_compiler(self, target: str) -> Compiler | None:
        """A Compiler for `target` (what follows "name:" in `ky.compile(target="name:target")`
        when it is not a device index, e.g. an architecture) that works without the device being
        present; its `load` may return None. None: this backend cannot compile offline."""
        return None


class CompileOnlyDevice(Device):
    """The device-like target of `ky.compile(kernel, target="name:arch")` for a backend's offline
    compiler: it compiles, but has no memory and runs nothing (the result's `program` is the
    compiler's `load`, usually None)."""

    def __init__(self, backend: Backend, target: str, compiler: Compiler):
        super().__init__(backend, 0, {"target": target, "compile_only": True})
        self.target, self._compiler = target, compiler

    @property
    def name(self) -> str:
        return f"{self.backend.name}:{self.target}"

    @property
    def compiler(self) -> Compiler:
        return self._compiler

    @property
    def allocator(self) -> Allocator:
        from .errors import DeviceError

        raise DeviceError(f"{self.name} is a compile-only target: it has no memory and runs no kernels",
                          hint=f"use it with ky.compile(...) only; run on a present device (see `kaiyuan devices`)")
