"""`@ky.jit`: specialise, compile (once per specialisation), and launch kernels.

A launch `kernel[grid](*args, **constexprs)`:
  1. binds the arguments to the kernel's parameters;
  2. classifies each: constexpr (compile-time value), pointer (array/tensor → `*dtype`), or scalar
     (`i1`/`i32`/`i64`/`fp32`; integers equal to 1 become constants, as in Triton);
  3. finds the compiled kernel for that specialisation in memory (else the frontend writes IR
     and `pipeline.compile_module` compiles it, using the disk cache);
  4. evaluates the grid (a tuple, or a callable of the meta-parameters);
  5. submits the launch to the device's current stream.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from contextlib import contextmanager

import numpy as np

from ..runtime import capture as _capture
from ..runtime.backend import Buffer, PointerArg, ScalarArg
from ..runtime.dtypes import BY_NAME, _TABLE, dtype as to_dtype
from ..runtime.errors import ArgumentError, KaiyuanError, LaunchError
from ..runtime.interop import as_kernel_pointer, host_array, host_device, wrap_host_array
from ..runtime.registry import default_device, get_device
from ..runtime.stream import current_stream
from ..runtime.tensor import Tensor
from .pipeline import CompiledKernel, compile_module

_NP_DTYPES = {d.np: d for d in _TABLE if d.kind != "uint" or d.np.kind == "u"}
_compile_only = threading.local()


@contextmanager
def compile_only():
    """Launches this thread makes inside the block compile (or find) their kernel and return it
    without running anything: the autotuner compiles its candidates in parallel this way."""
    old = _compile_only.__dict__.get("on", False)
    _compile_only.on = True
    try:
        yield
    finally:
        _compile_only.on = old

# Launch options Triton accepts that mean nothing on our backends (kept for compatibility).
_LAUNCH_OPTIONS = {"num_warps", "num_stages", "num_ctas", "maxnreg", "enable_fp_fusion", "debug",
                   "launch_cooperative_grid", "waves_per_eu", "matrix_instr_nonkdim", "kpack"}


def _is_constexpr_annotation(ann) -> bool:
    from ..language.core import constexpr

    if ann is constexpr:
        return True
    return isinstance(ann, str) and ann.split(".")[-1] == "constexpr"


class JITFunction:
    """A kernel: the Python function plus its compiled specialisations."""

    def __init__(self, fn, do_not_specialize=(), name: str | None = None):
        self.fn = fn
        self.__ky_jit_fn__ = self
        functools.update_wrapper(self, fn)
        sig = inspect.signature(fn)
        self.params = list(sig.parameters.values())
        self.arg_names = [p.name for p in self.params]
        self.constexprs = {p.name for p in self.params if _is_constexpr_annotation(p.annotation)}
        self.do_not_specialize = {self.arg_names[d] if isinstance(d, int) else d for d in do_not_specialize}
        self.name = name or fn.__name__
        self.cache: dict = {}
        self._layouts: dict = {}   # (number of positional args, kwargs names) -> layout (see _fast_specialise)
        self._by_signature: dict = {}  # signature key -> (specs, kernel)
        self._last: _LastLaunch | None = None
        self._last_refs: list = []  # weak references to the last launch's array arguments
        code = fn.__code__
        self.where = f"{code.co_filename}:{code.co_firstlineno}"

    def __repr__(self) -> str:
        return f"<ky.jit kernel {self.name} at {self.where}>"

    def __call__(self, *args, **kwargs):
        raise LaunchError(f"kernel {self.name} was called like a Python function", loc=self.where,
                          hint=f"launch it on a grid: {self.name}[(n,)](...)")

    def __getitem__(self, grid):
        return functools.partial(self.run, grid=grid)

    # -------------------------------------------------------------------- binding
    def bind(self, args, kwargs) -> dict:
        if len(args) > len(self.params):
            raise ArgumentError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}",
                                loc=self.where, hint=f"parameters: {', '.join(self.arg_names)}")
        values = dict(zip(self.arg_names, args))
        for k, v in kwargs.items():
            if k in values:
                raise ArgumentError(f"{self.name} got two values for {k!r}", loc=self.where)
            if k not in self.arg_names:
                if k in _LAUNCH_OPTIONS:
                    continue
                raise ArgumentError(f"{self.name} has no parameter {k!r}", loc=self.where,
                                    hint=f"parameters: {', '.join(self.arg_names)}")
            values[k] = v
        for p in self.params:
            if p.name not in values:
                if p.default is inspect.Parameter.empty:
                    raise ArgumentError(f"{self.name} is missing argument {p.name!r}", loc=self.where,
                                        hint=f"parameters: {', '.join(self.arg_names)}")
                values[p.name] = p.default
        return values

    # ------------------------------------------------------------------ launching
    def run(self, *args, grid, **kwargs):
        try:
            return self._run(args, kwargs, grid)
        except LaunchError as e:
            if e.loc == self.where:  # a malformed launch: point at the caller's line, not the kernel's
                e.loc = _caller_location()
                e.message += f" (kernel defined at {self.where})"
                e.args = (str(e),)
            raise

    def _run(self, args, kwargs, grid):
        if _compile_only.__dict__.get("on"):
            return self._kernel_only(args, kwargs)
        memo = self._last
        if memo is not None and memo.matches(args, kwargs):
            values, launch_args, device, kernel = memo.values, memo.launch_args, memo.device, memo.kernel
        else:
            fast = self._fast_specialise(args, kwargs)
            if fast is not None:
                launch_args, device, kernel = fast
                values = dict(zip(self.arg_names, args))
                values.update(kwargs)
            else:
                values = self.bind(args, kwargs)
                specs, launch_args, device = self.specialise(values)
                kernel = self.kernel_for(specs, device)
                self._remember(args, kwargs, kernel)
            # Remember the launch only when these objects were launched last time as well: an op
            # that makes a new output per call never repeats, and a memo would hold its last
            # output alive, so the next call could not reuse that block. Weak references, not
            # ids: a fresh output often gets the id of the one freed just before it.
            objs = [a for a in args if type(a) not in _NUMBERS]
            last = self._last_refs
            repeated = len(last) == len(objs) and all(
                (r() if type(r) is weakref.ref else r) is a for r, a in zip(last, objs))
            self._last_refs = [_weak(a) for a in objs]
            reusable = repeated and all(type(a) in _REUSABLE for a in args) and all(
                type(v) in _REUSABLE for v in kwargs.values())
            self._last = _LastLaunch(args, kwargs, values, launch_args, device, kernel) if reusable else None
        grid3 = _grid(grid, values, self)
        if grid3[0] * grid3[1] * grid3[2] == 0:
            return kernel
        program = kernel.program
        current_stream(device).submit(lambda: program.launch(grid3, launch_args))
        if _capture._local.__dict__.get("launches") is not None:
            _capture.record(program, grid3, launch_args)
        return kernel

    def _kernel_only(self, args, kwargs) -> CompiledKernel:
        """The kernel a launch with these arguments runs, compiled if need be; nothing runs."""
        fast = self._fast_specialise(args, kwargs)
        if fast is not None:
            return fast[2]
        specs, _, device = self.specialise(self.bind(args, kwargs))
        return self.kernel_for(specs, device)

    # ------------------------------------------------------------------ the signature fast path
    def _layout(self, npos: int, names: tuple):
        """How launches with `npos` positional arguments and keyword arguments `names` map onto the
        parameters: ((name, is constexpr, may specialise), ...) in the order specialise() sees
        them, or None when they do not name every parameter exactly once (the slow path binds)."""
        seq = self.arg_names[:npos] + list(names)
        if npos > len(self.arg_names) or sorted(seq) != sorted(self.arg_names):
            return None
        return tuple((n, n in self.constexprs, n not in self.do_not_specialize) for n in seq)

    def _signature(self, args, kwargs):
        """(signature key, launch args, device) of a launch, or None for an unusual one.

        The key holds what specialise() derives a specialisation from (constexpr values, scalar
        classes, pointer dtypes and alignment, the device), so launches with equal keys use the
        same kernel. Anything unusual (DLPack objects, strided numpy arrays, host arrays for a
        non-host device, tensors of two devices, defaulted parameters) returns None: the general
        path binds, checks and reports it."""
        shape = (len(args), tuple(kwargs)) if kwargs else len(args)
        layout = self._layouts.get(shape, False)
        if layout is False:
            layout = self._layouts[shape] = self._layout(len(args), tuple(kwargs))
        if layout is None:
            return None
        key, launch_args, device, host = [shape], [], None, None
        vals = args + tuple(kwargs.values()) if kwargs else args
        for (name, const, spec), v in zip(layout, vals):
            t = type(v)
            if const:
                key.append((t, v))
                continue
            if t is int:
                if v == 1 and spec:
                    key.append(_ONE)
                    continue
                tn = "i32" if -(2**31) <= v < 2**31 else ("i64" if -(2**63) <= v < 2**63 else "u64")
                key.append((tn, spec and v % 16 == 0))
                launch_args.append(ScalarArg(v, BY_NAME[tn]))
            elif t is float:
                key.append(_FLOAT)
                launch_args.append(ScalarArg(v, _FP32))
            elif t is bool:
                key.append(_BOOL)
                launch_args.append(ScalarArg(v, _I1))
            elif v is None:
                key.append(None)
            elif t is np.ndarray and v.dtype in _NP_DTYPES and v.flags.c_contiguous:
                if host is None:
                    host = default_device()
                    if not host.is_host:
                        return None
                dt, addr = _NP_DTYPES[v.dtype], v.ctypes.data
                key.append((dt, addr % 16 == 0))
                launch_args.append(PointerArg(Buffer(host, v.nbytes, v.reshape(-1).view(np.uint8), owner=v,
                                                     address=addr), 0, dt))
            elif t is Tensor:
                if device is None:
                    device = v.device
                elif v.device is not device:
                    return None
                ptr = PointerArg(v.buffer, v.offset, v.dtype)
                key.append((v.dtype, _aligned16(ptr)))
                launch_args.append(ptr)
            else:
                return None
        if device is None:
            device = host or default_device()
        elif host is not None and not device.is_host:
            return None
        key.append(device.name)  # (a Device is not hashable; the kernel cache keys by name too)
        return tuple(key), launch_args, device

    def _fast_specialise(self, args, kwargs):
        """(launch args, device, kernel) of a launch whose signature was seen before, else None.
        ~1 us per argument, against ~3 for binding and specialising."""
        sig = self._signature(args, kwargs)
        if sig is None:
            return None
        try:
            kernel = self._by_signature.get(sig[0])
        except TypeError:                    # an unhashable constexpr
            return None
        return None if kernel is None else (sig[1], sig[2], kernel)

    def _remember(self, args, kwargs, kernel) -> None:
        """File the kernel the general path found under this launch's signature key."""
        sig = self._signature(args, kwargs)
        if sig is None or len(self._by_signature) > 4096:
            return
        try:
            self._by_signature[sig[0]] = kernel
        except TypeError:
            pass

    def kernel_for(self, specs, device) -> CompiledKernel:
        key = (device.name, specs)
        kernel = self.cache.get(key)
        if kernel is None:
            kernel = self.cache[key] = self.compile_specs(specs, device)
        return kernel

    def specialise(self, values: dict):
        """(hashable specialisation, kernel arguments, device) for bound argument values."""
        specs, launch_args, device = [], [], None
        host = None  # the device host arrays are wrapped for, looked up once per launch
        hosted = []  # (index in launch_args, argument) of each host array
        for name, v in values.items():
            if name in self.constexprs:
                specs.append((name, "constexpr", _hashable(v)))
                continue
            if isinstance(v, (bool, int, float)) or v is None:
                spec, arg = self._scalar(name, v)
                specs.append(spec)
                if arg is not None:
                    launch_args.append(arg)
                continue
            if host is None and not isinstance(v, Tensor):
                host = host_device()
            if type(v) is np.ndarray and v.flags.c_contiguous and v.dtype in _NP_DTYPES:
                # the common case, kept short: a contiguous numpy array borrowed by a host device
                dt, addr = _NP_DTYPES[v.dtype], v.ctypes.data
                ptr = PointerArg(Buffer(host, v.nbytes, v.reshape(-1).view(np.uint8), owner=v, address=addr), 0, dt)
                specs.append((name, "ptr", dt.name, addr % 16 == 0))
                hosted.append((len(launch_args), v))
                launch_args.append(ptr)
                continue
            try:
                ptr, dev, dt = as_kernel_pointer(v, host)
            except KaiyuanError as e:
                raise ArgumentError(f"argument {name!r} of {self.name}: {e.message}", loc=self.where, hint=e.hint) from None
            if dev is not None:
                if device is not None and dev is not device:
                    raise LaunchError(f"{self.name}: arguments are on different devices ({device.name}, {dev.name})",
                                      loc=self.where, hint="move them with .to(device) first")
                device = dev
            else:
                hosted.append((len(launch_args), v))
            specs.append((name, "ptr", dt.name, _aligned16(ptr)))
            launch_args.append(ptr)
        if device is None:
            device = default_device()
        if hosted and not device.is_host:
            self._import_host(hosted, launch_args, device)
        return tuple(specs), launch_args, device

    def _import_host(self, hosted, launch_args, device) -> None:
        """Host arrays launched on a device whose memory is not host memory: that device's
        `Allocator.wrap_host` maps them (docs/backends.md); a device that cannot is refused."""
        for i, v in hosted:
            try:
                buffer, offset = wrap_host_array(host_array(v), device)
            except KaiyuanError:
                raise LaunchError(f"{self.name}: host arrays cannot run on {device.name}", loc=self.where,
                                  hint=f"pass ky tensors on {device.name}: ky.tensor(a, device={device.name!r})") from None
            launch_args[i] = PointerArg(buffer, offset, launch_args[i].dtype)

    def _scalar(self, name, v):
        if v is None:
            return (name, "constexpr", None), None
        if isinstance(v, bool):
            return (name, "scalar", "i1", False), ScalarArg(v, BY_NAME["i1"])
        if isinstance(v, int):
            if v == 1 and name not in self.do_not_specialize:
                return (name, "constexpr", 1), None
            t = "i32" if -(2**31) <= v < 2**31 else ("i64" if -(2**63) <= v < 2**63 else "u64")
            div16 = v % 16 == 0 and name not in self.do_not_specialize
            return (name, "scalar", t, div16), ScalarArg(v, BY_NAME[t])
        return (name, "scalar", "fp32", False), ScalarArg(v, BY_NAME["fp32"])

    # ------------------------------------------------------------------ compiling
    def compile_specs(self, specs, device, options=None) -> CompiledKernel:
        from ..language.frontend import ParamSpec, build_kernel

        params = []
        for s in specs:
            if s[1] == "constexpr":
                params.append(ParamSpec(s[0], "constexpr", value=s[2]))
            else:
                params.append(ParamSpec(s[0], s[1], to_dtype(s[2])))
        module = build_kernel(self.fn, params, self.name)
        meta = {
            "name": self.name,
            "source": self.where,
            "arg_names": [p.name for p in params if p.kind != "constexpr"],
            "arg_types": [("*" if p.kind == "ptr" else "") + p.dtype.name for p in params if p.kind != "constexpr"],
            "constants": {p.name: _jsonable(p.value) for p in params if p.kind == "constexpr"},
            "divisible_by_16": [s[0] for s in specs if s[1] != "constexpr" and s[3]],
        }
        return compile_module(module, device, meta, options)


_NUMBERS = {int, float, bool}
_ONE, _FLOAT, _BOOL = "1", "f", "b"  # signature-key entries (see JITFunction._signature)
_FP32, _I1 = BY_NAME["fp32"], BY_NAME["i1"]

# Argument types whose memory cannot move while we hold them (a numpy array we reference cannot be
# resized in place; a ky.Tensor's buffer is fixed). DLPack producers (torch) can swap storage.
_REUSABLE = {np.ndarray, Tensor, int, float, bool, str, type(None)}


def _weak(a):
    """A weak reference to `a`, or `a` itself where it takes none (None, str, tuples)."""
    try:
        return weakref.ref(a)
    except TypeError:
        return a


class _LastLaunch:
    """The previous launch's arguments and what was derived from them.

    A kernel is usually launched again and again on the same arrays (a training step, a
    benchmark loop). When every argument is the same object as last time (same dtype; scalars
    equal) and the default device is unchanged, the binding, specialisation and pointer
    arguments are reused: the launch costs a few identity checks instead of ~15 us of Python.
    It holds the last launch's arguments alive until the next launch of this kernel."""

    __slots__ = ("args", "kwargs", "dtypes", "values", "launch_args", "device", "kernel", "default")

    def __init__(self, args, kwargs, values, launch_args, device, kernel):
        self.args, self.kwargs = args, kwargs
        self.dtypes = tuple(getattr(a, "dtype", None) for a in args)
        self.values, self.launch_args, self.device, self.kernel = values, launch_args, device, kernel
        self.default = default_device()

    def matches(self, args, kwargs) -> bool:
        if len(args) != len(self.args) or kwargs.keys() != self.kwargs.keys():
            return False
        for a, b, dt in zip(args, self.args, self.dtypes):
            if a is not b and not (type(a) is type(b) and type(a) in (int, float, bool) and a == b):
                return False
            if dt is not None and a.dtype is not dt:
                return False
        for k, v in kwargs.items():
            old = self.kwargs[k]
            if v is not old and not (type(v) is type(old) and v == old):
                return False
        return default_device() is self.default


def _caller_location() -> str | None:
    """file:line of the innermost frame outside kaiyuan (the user's launch)."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(package + os.sep) and "functools" not in path:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _aligned16(ptr) -> bool:
    """Is the address 16-byte aligned? Host buffers (numpy handles) wrap the caller's array, so
    their offset alone says nothing: use the real address there."""
    return ((ptr.buffer.address or 0) + ptr.offset) % 16 == 0


def _hashable(v):
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


def _jsonable(v):
    return v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)


def _grid(grid, values, kernel) -> tuple[int, int, int]:
    if callable(grid):
        grid = grid(values)
    if isinstance(grid, int):
        grid = (grid,)
    try:
        g = tuple(int(x) for x in grid)
    except (TypeError, ValueError):
        raise LaunchError(f"{kernel.name}: the grid must be a tuple of up to 3 integers, got {grid!r}",
                          loc=kernel.where, hint="e.g. kernel[(triton.cdiv(n, BLOCK),)](...)") from None
    if not 1 <= len(g) <= 3:
        raise LaunchError(f"{kernel.name}: the grid has {len(g)} dimensions; it must have 1, 2 or 3",
                          loc=kernel.where, hint="flatten extra dimensions into one and recover them with // and %")
    if any(x < 0 for x in g):
        raise LaunchError(f"{kernel.name}: grid {g} has a negative size", loc=kernel.where)
    return g + (1,) * (3 - len(g))


def jit(fn=None, *, do_not_specialize=(), **_ignored):
    """Decorator: make `fn` a kernel launched as `fn[grid](*args)` (Triton's `triton.jit`)."""
    if fn is None:
        return lambda f: JITFunction(f, do_not_specialize=do_not_specialize)
    return JITFunction(fn, do_not_specialize=do_not_specialize)


def compile(kernel, target: str | None = None, signature: dict | None = None, constants: dict | None = None,
            options: dict | None = None) -> CompiledKernel:
    """Compile without launching: `ky.compile(k, target="cpu", signature={"x_ptr": "*fp32", "n": "i32"},
    constants={"BLOCK": 1024})`. The result's `.asm` maps each stage name to its text.
    `target` is a device, or "name:arch" for a backend's offline compiler ("cuda:sm_90"): then
    nothing needs to be present and the result's `program` is None."""
    from ..runtime.registry import compile_target

    if not isinstance(kernel, JITFunction):
        raise ArgumentError(f"ky.compile needs a @ky.jit kernel, got {kernel!r}")
    device = compile_target(target)
    signature, constants = dict(signature or {}), dict(constants or {})
    specs = []
    for name in kernel.arg_names:
        if name in constants:
            specs.append((name, "constexpr", _hashable(constants.pop(name))))
        elif name in signature:
            t = str(signature.pop(name))
            kind = "ptr" if t.startswith("*") else "scalar"
            specs.append((name, kind, to_dtype(t.lstrip("*")).name, kind == "ptr"))  # pointers assumed 16-byte aligned
        elif name in kernel.constexprs:
            raise ArgumentError(f"constexpr parameter {name!r} of {kernel.name} needs a value in constants=",
                                loc=kernel.where)
        else:
            raise ArgumentError(f"parameter {name!r} of {kernel.name} is missing from signature=",
                                loc=kernel.where, hint='e.g. signature={"x_ptr": "*fp32", "n": "i32"}')
    extra = list(signature) + list(constants)
    if extra:
        raise ArgumentError(f"{kernel.name} has no parameters {extra}", loc=kernel.where)
    return kernel.compile_specs(tuple(specs), device, options)
