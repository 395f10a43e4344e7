"""The CUDA driver API, reached through `cuda-bindings`, imported only when first needed.

Nothing here runs at import time: `import kaiyuan` must stay cheap and must not fail on a machine
without the package or without an NVIDIA driver. `unavailable_reason()` turns each way the driver
can be missing into one sentence for `ky.devices()`; `call()` turns a failing driver call into a
kaiyuan error (OutOfMemoryError for CUDA_ERROR_OUT_OF_MEMORY, DeviceError otherwise).

Contexts: every device uses its *primary* context (the one the runtime API and PyTorch share), made
current on a thread before that thread's first driver call (`Context.activate`).
"""

from __future__ import annotations

import functools
import threading

from ...runtime.errors import DeviceError, OutOfMemoryError

_state: dict = {}
_lock = threading.Lock()


def api():
    """The `cuda.bindings.driver` module (ImportError when cuda-bindings is not installed)."""
    from cuda.bindings import driver

    return driver


def unavailable_reason() -> str | None:
    """None when the driver initialised and sees at least one GPU; otherwise why not (cached)."""
    with _lock:
        if "reason" not in _state:
            _state["reason"] = _probe()
        return _state["reason"]


def _probe() -> str | None:
    try:
        drv = api()
    except ImportError:
        return "cuda-bindings not installed (pip install 'kaiyuan[cuda]')"
    try:
        (err,) = drv.cuInit(0)
    except Exception as e:  # cuda.pathfinder's DynamicLibNotFoundError, or an OSError from dlopen
        if "NotFound" in type(e).__name__ or isinstance(e, OSError):
            return "no NVIDIA driver (libcuda.so not found)"
        return f"the NVIDIA driver failed to load: {type(e).__name__}: {e}"
    if err == drv.CUresult.CUDA_ERROR_NO_DEVICE:
        return "no NVIDIA GPU found (the driver is installed, cuInit reports no device)"
    if err != drv.CUresult.CUDA_SUCCESS:
        return f"cuInit failed: {_name(err)}"
    err, count = drv.cuDeviceGetCount()
    if err != drv.CUresult.CUDA_SUCCESS or count == 0:
        return "no NVIDIA GPU found"
    return None


def _name(err) -> str:
    return getattr(err, "name", str(err))


def call(fn, *args, what: str | None = None):
    """Call driver function `fn(*args)`; return its outputs (None, one value, or a tuple)."""
    drv = api()
    result = fn(*args)
    err, rest = result[0], result[1:]
    if err != drv.CUresult.CUDA_SUCCESS:
        raise _error(err, what or fn.__name__)
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


def _error(err, what: str):
    drv = api()
    name = _name(err)
    if err == drv.CUresult.CUDA_ERROR_OUT_OF_MEMORY:
        return OutOfMemoryError(f"{what}: {name}", hint="free tensors you no longer need (ky.empty_cache('cuda'))")
    sticky = {"CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_LAUNCH_FAILED", "CUDA_ERROR_ILLEGAL_INSTRUCTION",
              "CUDA_ERROR_MISALIGNED_ADDRESS", "CUDA_ERROR_HARDWARE_STACK_ERROR"}
    if name in sticky:
        return DeviceError(f"{what}: {name} (a kernel faulted; the CUDA context is unusable from now on)",
                           hint="run the kernel on device 'interp' to find the out-of-bounds access; "
                                "restart the process to use the GPU again")
    return DeviceError(f"{what}: {name}")


class Context:
    """The primary context of one GPU, made current on whichever thread uses it."""

    def __init__(self, index: int):
        drv = api()
        self.index = index
        self.cu_device = call(drv.cuDeviceGet, index)
        self.handle = call(drv.cuDevicePrimaryCtxRetain, self.cu_device)
        self._local = threading.local()

    def activate(self) -> None:
        """Make this context current on the calling thread (once per thread)."""
        if getattr(self._local, "active", False):
            return
        call(api().cuCtxSetCurrent, self.handle)
        self._local.active = True

    def stream(self):
        """This thread's CUDA stream. kaiyuan runs a user Stream's work on its own worker thread and
        default-stream work in the caller's thread, so one CUDA stream per thread is one CUDA
        stream per kaiyuan stream: kernels of different kaiyuan streams overlap on the GPU."""
        holder = getattr(self._local, "stream", None)
        if holder is None:
            self.activate()
            holder = self._local.stream = _ThreadStream(self)
        return holder.handle

    @functools.cached_property
    def host_pointers_usable(self) -> bool:
        """Kernels may use a registered host address as it is (unified addressing)."""
        return bool(self.attribute("CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM"))

    def attribute(self, name: str) -> int:
        drv = api()
        return call(drv.cuDeviceGetAttribute, getattr(drv.CUdevice_attribute, f"CU_DEVICE_ATTRIBUTE_{name}"),
                    self.cu_device)

    def compute_capability(self) -> tuple[int, int]:
        return self.attribute("COMPUTE_CAPABILITY_MAJOR"), self.attribute("COMPUTE_CAPABILITY_MINOR")

    def name(self) -> str:
        raw = call(api().cuDeviceGetName, 256, self.cu_device)
        return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")

    def total_memory(self) -> int:
        return int(call(api().cuDeviceTotalMem, self.cu_device))


class _ThreadStream:
    """A CUDA stream owned by one thread; destroyed when the thread (its thread-local) goes."""

    def __init__(self, context: Context):
        drv = api()
        self.context = context
        self.handle = call(drv.cuStreamCreate, drv.CUstream_flags.CU_STREAM_NON_BLOCKING.value)

    def __del__(self):
        try:
            self.context.activate()
            api().cuStreamDestroy(self.handle)
        except Exception:  # at interpreter exit the driver may be gone already
            pass


def driver_version() -> str:
    v = call(api().cuDriverGetVersion)
    return f"{v // 1000}.{v % 1000 // 10}"
