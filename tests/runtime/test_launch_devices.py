"""Which device a launch runs on, and what its Program receives (compiler/jit.py, `specialise`).

Two fake non-host devices with a recording compiler: `mapdev`, whose allocator maps host arrays
(`Allocator.wrap_host` returns a Buffer, as cuda's registers pages), and `devonly`, whose
allocator cannot (wrap_host returns None). Host arrays launched on mapdev reach its Program as
mapdev buffers; on devonly the launch is refused with the kernel's and the caller's lines."""

from dataclasses import dataclass

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan.runtime import registry
from kaiyuan.runtime.backend import Buffer, Compiler, Program, Stage

from .fakes import DeviceMemoryAllocator, FakeBackend, FakeDevDevice

LAUNCHES: list = []


class RecordingProgram(Program):
    def launch(self, grid, args):
        LAUNCHES.append((grid, args))


class RecordingCompiler(Compiler):
    target = "recording"

    def stages(self, options):
        return [Stage("bin", "binary", lambda module, meta: b"recorded")]

    def load(self, binary, meta):
        return RecordingProgram()


class MappingAllocator(DeviceMemoryAllocator):
    def wrap_host(self, array):
        return Buffer(self.device, array.nbytes, ("mapped", array), owner=array)


@dataclass(eq=False)
class DevOnly(FakeDevDevice):
    @property
    def compiler(self):
        return RecordingCompiler()


@dataclass(eq=False)
class MapDev(DevOnly):
    def __post_init__(self):
        super().__post_init__()
        self._allocator = MappingAllocator(self)


@pytest.fixture(autouse=True)
def recording_devices():
    registry.register_backend(FakeBackend("mapdev", MapDev))
    registry.register_backend(FakeBackend("devonly", DevOnly))
    LAUNCHES.clear()
    yield
    registry.unregister_backend("mapdev")
    registry.unregister_backend("devonly")


@ky.jit
def scale(x_ptr, y_ptr, a, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(y_ptr + offs, kl.load(x_ptr + offs) * a)


@ky.jit
def fill(a, n):
    kl.program_id(0)


def test_host_arrays_are_mapped_by_the_launch_device():
    x, y = np.arange(4, dtype=np.float32), np.zeros(4, np.float32)
    with ky.device("mapdev") as dev:
        scale[(1,)](x, y, 2.0, BLOCK=4)
    (grid, args), = LAUNCHES
    assert [a.buffer.device for a in args[:2]] == [dev, dev]
    assert args[0].buffer.handle == ("mapped", x) and args[1].buffer.handle[1] is y


def test_host_array_beside_a_device_tensor_is_mapped_too():
    t = ky.tensor(np.arange(4, dtype=np.float32), device="mapdev")
    y = np.zeros(4, np.float32)
    scale[(1,)](t, y, 2.0, BLOCK=4)  # the default device is fakehost: the tensor decides
    (grid, args), = LAUNCHES
    assert args[0].buffer is t.buffer and args[1].buffer.device is t.device and args[1].buffer.handle[1] is y


def test_device_that_cannot_map_host_memory_refuses_host_arrays():
    t = ky.zeros((4,), device="devonly")
    with pytest.raises(ky.LaunchError) as err:
        scale[(1,)](t, np.zeros(4, np.float32), 2.0, BLOCK=4)  # REFUSED-LINE
    msg = str(err.value)
    assert "host arrays cannot run on devonly" in msg and "test_launch_devices.py" in msg
    line = next(i for i, s in enumerate(open(__file__), 1) if "# REFUSED-LINE" in s)
    assert err.value.loc.endswith(f"test_launch_devices.py:{line}")
    assert not LAUNCHES


def test_scalars_only_launch_on_a_device_memory_device():
    with ky.device("devonly"):
        fill[(3,)](1.5, 7)  # no pointer at all: nothing to map, nothing to refuse
    (grid, args), = LAUNCHES
    assert grid == (3, 1, 1) and [a.value for a in args] == [1.5, 7]


def test_tensors_of_two_devices_are_refused():
    a = ky.zeros((4,), device="mapdev")
    b = ky.zeros((4,), device="fakehost")
    with pytest.raises(ky.LaunchError, match=r"different devices \(mapdev, fakehost\)"):
        scale[(1,)](a, b, 1.0, BLOCK=4)
