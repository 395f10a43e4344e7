"""Which devices exist: backends found through entry points, and the default device.

Generic code never imports a backend by name (DESIGN.md §1); it asks this registry. Discovery is
lazy and happens once, so `import kaiyuan` stays cheap and a broken backend only costs the user
when they look for devices. A backend whose import fails, or that says it cannot run here, is
still listed (absent, with the reason) so `ky.devices()` can explain what is missing.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from .backend import Backend, CompileOnlyDevice, Device
from .errors import DeviceError

ENTRY_POINT_GROUP = "kaiyuan.backends"
KNOWN_BACKENDS = ("cpu", "interp", "opencl", "cuda", "npusim")
NOT_INSTALLED = "backend not installed (arrives in a later release)"


@dataclass(frozen=True)
class DeviceInfo:
    """One row of `ky.devices()`."""

    name: str
    available: bool
    reason: str | None = None
    properties: dict = field(default_factory=dict)


class _Registry:
    """Backends by name, absent backends with their reasons, and one cached Device per name."""

    def __init__(self):
        self.lock = threading.RLock()
        self.backends: dict[str, Backend] = {}
        self.absent: dict[str, str] = {}
        self.devices: dict[str, Device] = {}
        self.discovered = False

    def discover(self) -> None:
        with self.lock:
            if self.discovered:
                return
            self.discovered = True
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if ep.name not in self.backends:
                    self._load(ep)

    def _load(self, ep) -> None:
        try:
            backend = ep.load()()
        except Exception as e:  # any import-time failure makes the backend absent, not fatal
            self.absent[ep.name] = f"failed to load {ep.value}: {type(e).__name__}: {e}"
            return
        self.backends[ep.name] = backend

    def reason(self, name: str) -> str | None:
        """Why `name` cannot be used, or None when it can."""
        if name in self.backends:
            try:
                return self.backends[name].unavailable_reason()
            except Exception as e:
                return f"availability check failed: {type(e).__name__}: {e}"
        return self.absent.get(name, NOT_INSTALLED if name in KNOWN_BACKENDS else None)


_REG = _Registry()


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend instance by its `name`: for plugins loaded by hand, and tests."""
    with _REG.lock:
        _REG.discover()
        _REG.backends[backend.name] = backend
        _REG.absent.pop(backend.name, None)
        _forget_devices(backend.name)


def unregister_backend(name: str) -> None:
    """Remove a backend and its cached devices (tests use this to clean up)."""
    with _REG.lock:
        _REG.backends.pop(name, None)
        _forget_devices(name)


def _forget_devices(backend_name: str) -> None:
    for key in [k for k in _REG.devices if k.split(":")[0] == backend_name]:
        del _REG.devices[key]


def _parse(spec: str) -> tuple[str, int]:
    name, _, index = spec.strip().partition(":")
    if index and not index.isdigit():
        raise DeviceError(f"bad device name {spec!r}", hint="write a backend name with an optional index: 'cpu', 'cuda:1'")
    return name, int(index or 0)


def _available_names() -> list[str]:
    return [info.name for info in devices() if info.available]


def _absent_error(spec: str, why: str) -> DeviceError:
    names = _available_names()
    hint = f"available devices: {', '.join(names)}" if names else "no device is available; see `kaiyuan devices`"
    return DeviceError(f"device {spec!r} is not available: {why}", hint=hint)


def get_device(spec: "str | Device | None" = None) -> Device:
    """`None` → the default device; a Device → itself; "cpu", "opencl:1", "cuda" → a cached Device."""
    if type(spec) is str:
        cached = _REG.devices.get(spec)  # the launch hot path: no lock, no parsing, no ABC isinstance
        if cached is not None:
            return cached
    if isinstance(spec, Device):
        return spec
    if spec is None:
        return default_device()
    if not isinstance(spec, str):
        raise DeviceError(f"expected a device name or Device, got {type(spec).__name__}", hint="e.g. ky.device('cpu')")
    with _REG.lock:
        _REG.discover()
        name, index = _parse(spec)
        backend = _REG.backends.get(name)
        key = name if index == 0 and (backend is None or backend.single) else f"{name}:{index}"
        if key in _REG.devices:
            return _REG.devices[key]
        why = _REG.reason(name)
        if backend is None or why is not None:
            raise _absent_error(spec, why or "no backend of that name is known")
        if index >= backend.device_count():
            raise _absent_error(spec, f"{name} has {backend.device_count()} device(s)")
        dev = _REG.devices[key] = backend.device(index)
        return dev


def compile_target(spec: "str | Device | None" = None) -> Device:
    """What `ky.compile(target=spec)` compiles for: a device as `get_device` finds it, or, for
    "name:target" where target is not a device index ("cuda:sm_90"), a CompileOnlyDevice holding
    the backend's `offline_compiler(target)` — present hardware is not needed to compile."""
    if not isinstance(spec, str):
        return get_device(spec)
    name, _, target = spec.strip().partition(":")
    if not target or target.isdigit():
        return get_device(spec)
    with _REG.lock:
        _REG.discover()
        backend = _REG.backends.get(name)
    compiler = backend.offline_compiler(target) if backend is not None else None
    if compiler is None:
        why = "no backend of that name is known" if backend is None else f"{name} cannot compile offline"
        raise DeviceError(f"cannot compile for {spec!r}: {why}",
                          hint="write a device ('cpu', 'cuda:0') or a backend's offline target ('cuda:sm_90')")
    return CompileOnlyDevice(backend, target, compiler)


def devices() -> list[DeviceInfo]:
    """Every known device: present ones with their properties, absent ones with the reason."""
    with _REG.lock:
        _REG.discover()
        names = list(dict.fromkeys([*KNOWN_BACKENDS, *_REG.backends, *_REG.absent]))
        return [info for name in names for info in _backend_rows(name)]


def _backend_rows(name: str) -> list[DeviceInfo]:
    why = _REG.reason(name)
    if why is not None:
        return [DeviceInfo(name, False, why)]
    backend = _REG.backends[name]
    rows = []
    for i in range(backend.device_count()):
        spec = name if backend.single and i == 0 else f"{name}:{i}"
        try:
            rows.append(DeviceInfo(spec, True, None, dict(get_device(spec).properties)))
        except Exception as e:  # a device that fails to open is absent, with its error
            rows.append(DeviceInfo(spec, False, f"{type(e).__name__}: {e}"))
    return rows or [DeviceInfo(name, False, "no devices found")]


# ---- the default device -----------------------------------------------------------------------

_local = threading.local()


def _stack() -> list[Device]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def push_device(dev: Device) -> None:
    """Make `dev` the default device of this thread until the matching `pop_device()`."""
    _stack().append(dev)


def pop_device() -> None:
    _stack().pop()


def default_device() -> Device:
    """Innermost `with ky.device(...)`, else $KAIYUAN_DEVICE, else "cpu"."""
    stack = _local.__dict__.get("stack")  # (a getattr that misses costs an exception)
    if stack:
        return stack[-1]
    return get_device(os.environ.get("KAIYUAN_DEVICE") or "cpu")


def device(spec: "str | Device | None" = None) -> Device:
    """The Device named by `spec`; also a context manager: `with ky.device("interp"): ...`."""
    return get_device(spec)
