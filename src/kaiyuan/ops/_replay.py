"""Eager launch plans: an op called again with arguments of a signature it has seen replays the
kernel launches it made then, pointed at the new arrays, instead of running its Python again.

Why: an eager op's launch path is Python — checking inputs, choosing the device, the autotune
key, binding and specialising each kernel argument, converting them for the backend — about
0.1-0.15 ms per call on a 2-core VM, against 13 us for torch.nn.functional.conv2d. For
attention at batch 1 and 128 tokens (0.4 ms of kernel) that is a quarter of the call. A plan hit
costs ~15 us of Python (warm caches; several times that right after a kernel has streamed a few
MB through the caches, which is why every dict, lock and helper object on the path counts).

How (the idea of CUDA graphs, per call signature):
    signature   each argument's type, shape, strides, dtype, device, the alignment of its address
                (kernels specialise on 16-byte alignment) and which arrays overlap (and which of
                those start together); scalars by value; the default device and the autotune
                switch. Anything else (a torch tensor, an unhashable argument, a tensor on a
                device whose memory has no host address) makes the call ineligible: it runs the
                op as usual.
    record      the first call of a signature compiles and tunes, so it runs as usual; the second
                runs under `runtime.capture` and becomes a plan, when (a) it launched at least one
                kernel, (b) nothing in it wrote device memory outside a launch or tuned (the
                capture stays `pure`), and (c) every pointer it passed lies in exactly one of: an
                array argument (or several that start at the same address: one array passed
                twice, as in attention(x, x, x)), or a buffer the caching allocator handed out
                during the call (its result, or scratch such as conv2d's padded input copy).
                Otherwise the signature is marked "run as usual" for good.
    replay      later calls allocate the result again (same size, from the caching allocator;
                scratch stays with the plan between synchronous calls), rebuild the pointer
                arguments at the same byte offsets into the new arrays, and submit the recorded
                launches on the current stream (recorded in turn by an enclosing capture, so the
                graph executor still sees them). Calls whose arrays and buffers have addresses
                seen in one of the last MAX_BOUND calls run the launches bound then, as one
                backend call. The result comes back as the op gave it: the `out` argument
                itself, or the new result buffer seen with the recorded shape, strides and
                dtype, as a numpy array, ky.Tensor or torch tensor like the inputs.

A plan stands for a call exactly when the op's launches depend only on the signature: ops opt in
with `@replayable` after checking that they do no host-side work apart from launches (numpy
copies of awkward inputs are caught by (c), `write_host` and tuning by (b)). KAIYUAN_EAGER_REPLAY=0
turns plans off. `stats()` counts plans, replays and refusals per op.
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

from ..runtime.backend import PointerArg, ScalarArg
from ..runtime.capture import Launch, capture, capturing, record, replay_list
from ..runtime.interop import byte_bounds, data_address, wrap_host_array
from ..runtime.memory import caching_allocator
from ..runtime.registry import default_device
from ..runtime.stream import current_stream, on_default_stream
from ..runtime.tensor import Tensor
from ._common import _AUTOTUNE

MAX_PLANS = 256  # per op; the table is cleared when full (a model's shapes are far fewer)
MAX_BOUND = 4  # bound launch lists per plan (a result alternating between blocks needs two)
_SCALARS = (int, float, bool, str, type(None))
_STATS: dict[str, dict[str, int]] = {}


_ENABLED = [os.environ.get("KAIYUAN_EAGER_REPLAY", "1") != "0"]


def set_enabled(on: bool) -> bool:
    """Turn launch plans on or off for this process (KAIYUAN_EAGER_REPLAY at import); returns the
    previous setting."""
    old, _ENABLED[0] = _ENABLED[0], bool(on)
    return old


def stats() -> dict:
    """{op name: {"plans", "replays", "refused"}} since the process started."""
    return {k: dict(v) for k, v in _STATS.items()}


def replayable(fn):
    """Give eager op `fn` launch plans per call signature (see the module doc)."""
    plans: dict = {}  # signature -> _Plan, or False: this signature runs as usual
    seen: set = set()
    counts = _STATS.setdefault(fn.__name__, {"plans": 0, "replays": 0, "refused": 0})

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if not _ENABLED[0]:
            return fn(*args, **kwargs)
        sig = _signature(args, kwargs)
        if sig is None:
            return fn(*args, **kwargs)
        key, arrays = sig
        plan = plans.get(key)
        if plan:
            counts["replays"] += 1
            return plan.run(args, kwargs, arrays)
        if plan is False:
            return fn(*args, **kwargs)
        if key not in seen:  # the first call compiles and tunes
            if len(seen) >= MAX_PLANS:
                seen.clear()
            seen.add(key)
            return fn(*args, **kwargs)
        with capture() as launches:
            result = fn(*args, **kwargs)
        if len(plans) >= MAX_PLANS:
            plans.clear()
        plans[key] = _Plan.make(launches, args, kwargs, arrays, result) or False
        counts["plans" if plans[key] else "refused"] += 1
        return result

    op.plans = plans
    return op


# ---------------------------------------------------------------------------------- signature


def _signature(args, kwargs):
    """(hashable signature, [(position, array, first byte address, [lo, hi) byte span)]) or None."""
    dev = default_device()
    key = [dev.name, id(dev), _AUTOTUNE[0]]
    arrays = []
    items = list(enumerate(args)) + list(kwargs.items())
    for pos, v in items:
        t = type(v)
        if t in _SCALARS:
            key.append((t, v))
        elif t is np.ndarray:
            addr = data_address(v)
            key.append((v.shape, v.strides, v.dtype, addr % 16, v.flags.writeable))
            span = (addr, addr + v.nbytes) if v.flags.c_contiguous else byte_bounds(v)
            arrays.append((pos, v, addr, span))
        elif t is Tensor:
            base = v.buffer.address
            if base is None or v.buffer.freed:
                return None
            lo, hi = v.byte_span()
            key.append((v.shape, v.stride(), v.dtype.name, v.device.name, (base + v.offset) % 16))
            arrays.append((pos, v, base + v.offset, (base + lo, base + hi)))
        elif t is tuple and all(type(x) in _SCALARS for x in v):
            key.append((t, v))
        else:
            return None
    key.append(tuple(kwargs))
    if len(arrays) > 1:  # which arrays share memory changes what the op may do (in place, copies)
        pairs = _overlaps(arrays)
        key.append(pairs)
        if pairs:  # and which of those start at the same address (one array passed twice: q, q, q)
            key.append(tuple(p for p in pairs if arrays[p[0]][2] == arrays[p[1]][2]))
    return tuple(key), arrays  # (every part is hashable: scalars, tuples of them, numpy dtypes)


def _overlaps(arrays) -> tuple:
    """The pairs (i, j) of arrays whose byte spans overlap; () in the usual case. Pairwise: an
    op has at most a handful of arrays (a sorted sweep comparing neighbours missed an overlap
    across an empty array's span, and cost more for three arrays)."""
    spans = [a[3] for a in arrays]
    pairs = []
    for i in range(len(spans) - 1):
        lo, hi = spans[i]
        for j in range(i + 1, len(spans)):
            b = spans[j]
            if lo < b[1] and b[0] < hi:
                pairs.append((i, j))
    return tuple(pairs)


# ---------------------------------------------------------------------------------- the plan


class _Plan:
    """Recorded launches with their pointer arguments as (slot, byte offset) templates."""

    __slots__ = ("device", "launches", "scratch", "result", "bound", "allocator", "held", "busy", "fresh")

    def __init__(self, device, launches, scratch, result):
        self.device, self.launches, self.scratch, self.result = device, launches, scratch, result
        # {(array addresses, buffer addresses): one callable replaying the launches bound then}
        self.bound: dict = {}
        self.allocator = caching_allocator(device)
        # Scratch (every fresh buffer but the result) is kept by the plan between synchronous
        # calls: a buffer from the caching allocator costs ~10 us of Python per call (its
        # finalizer, size class, lock), and a held one keeps its address, so the bound launches
        # stay valid. `busy` guards it against a second thread replaying the same plan.
        self.fresh = tuple(i == result[1] and result[0] != "arg" for i in range(len(scratch)))
        self.held = None
        self.busy = threading.Lock()

    @classmethod
    def make(cls, launches, args, kwargs, arrays, result):
        """The plan of a recorded call, or None when replaying its launches would not redo it."""
        if not launches or not launches.pure:
            return None
        device = _device_of(launches)
        if device is None:
            return None
        buffers: list = []  # the fresh buffers the launches use, in first-use order
        templates = []
        for launch in launches:
            tmpl = []
            for a in launch.args:
                if type(a) is ScalarArg:
                    tmpl.append(a)
                    continue
                if type(a) is not PointerArg or a.buffer.address is None:
                    return None
                slot = _slot(a.buffer.address + a.offset, arrays, launches, buffers)
                if slot is None:
                    return None
                tmpl.append((slot, a.dtype))
            templates.append((launch.program, launch.grid, tmpl))
        res = _result_recipe(result, args, kwargs, arrays, buffers)
        if res is None:
            return None
        return cls(device, templates, [b.nbytes for b in buffers], res)

    def run(self, args, kwargs, arrays):
        # Synchronous and not captured: scratch is the plan's own, and when every array has the
        # address it had in an earlier call (a loop over the same arrays; results alternating
        # between two blocks), the launches bound then (arguments already converted for the
        # backend, one backend call) run as they are.
        direct = not capturing() and on_default_stream(self.device) and self.busy.acquire(blocking=False)
        if not direct:
            return self._launch(args, kwargs, arrays, [self.allocator.alloc(n) for n in self.scratch], False)
        try:
            if self.held is None:
                self.held = [None if f else self.allocator.alloc(n) for f, n in zip(self.fresh, self.scratch)]
            scratch = [self.allocator.alloc(n) if h is None else h for n, h in zip(self.scratch, self.held)]
            key = (tuple([a[2] for a in arrays]), tuple([b.address for b in scratch]))
            replay = self.bound.get(key)
            if replay is None:
                return self._launch(args, kwargs, arrays, scratch, key)
            replay()
            return self._result(args, kwargs, scratch)
        finally:
            self.busy.release()

    def _launch(self, args, kwargs, arrays, scratch, key):
        """Bind the templates to this call's arrays and buffers and submit them on the current
        stream (recorded by an enclosing capture); `key`: keep the bound launches under it."""
        bases = {pos: _base(v, addr, self.device) for pos, v, addr, _ in arrays}
        stream = current_stream(self.device)
        bound = []
        for program, grid, tmpl in self.launches:
            launch_args = [a if type(a) is ScalarArg else _pointer(a, bases, scratch) for a in tmpl]
            stream.submit(lambda p=program, g=grid, la=launch_args: p.launch(g, la))
            record(program, grid, launch_args)
            bound.append(Launch(program, grid, launch_args))
        if key:
            if len(self.bound) >= MAX_BOUND:
                self.bound.clear()
            self.bound[key] = replay_list(bound)  # (cpu: holds converted words, not the buffers)
        return self._result(args, kwargs, scratch)

    def _result(self, args, kwargs, scratch):
        kind, *rest = self.result
        if kind == "arg":
            pos = rest[0]
            return args[pos] if isinstance(pos, int) else kwargs[pos]
        index, offset, shape, strides, dt = rest
        t = Tensor(scratch[index], shape, dt, strides, offset)
        if kind == "tensor":
            return t
        arr = t.numpy()
        if kind == "torch":
            import torch

            return torch.from_numpy(arr)
        return arr


def _device_of(launches):
    """The device of the call's launches (one device; host memory), or None."""
    devices = {id(a.buffer.device): a.buffer.device for l in launches for a in l.args if type(a) is PointerArg}
    if len(devices) != 1:
        return None
    (dev,) = devices.values()
    return dev if dev.is_host else None


def _slot(address, arrays, launches, buffers):
    """(("arg", position) | ("new", index), byte offset) of a pointer, or None when it is not in
    exactly one array argument (or in several that start at the same address) or buffer
    allocated during the call (`buffers` collects those)."""
    hits = [(("arg", pos), address - first) for pos, _, first, (lo, hi) in arrays if lo <= address < hi]
    if len(hits) > 1 and len({off for _, off in hits}) == 1:
        # arrays starting at the same address (one array passed as several arguments): the
        # signature records which start together, so the first of them stands for all
        hits = hits[:1]
    b = launches.owner_of(address)
    if b is not None:
        if not any(x is b for x in buffers):
            buffers.append(b)
        hits.append((("new", next(i for i, x in enumerate(buffers) if x is b)), address - b.address))
    return hits[0] if len(hits) == 1 else None


def _base(v, addr, device) -> PointerArg:
    """A pointer at element [0, ...] of an array argument (dtype left to the templates)."""
    if type(v) is Tensor:
        return PointerArg(v.buffer, v.offset, v.dtype)
    buffer, offset = wrap_host_array(v, device, addr)
    return PointerArg(buffer, offset, None)


def _pointer(slot_dtype, bases, scratch):
    ((kind, which), offset), dt = slot_dtype
    if kind == "new":
        return PointerArg(scratch[which], offset, dt)
    base = bases[which]
    return PointerArg(base.buffer, base.offset + offset, dt)


def _result_recipe(result, args, kwargs, arrays, buffers):
    """How to rebuild the result: ("arg", position) when the op returned one of its arguments
    (out=), else (kind, fresh buffer index, byte offset, shape, strides, dtype); None if neither."""
    for pos, v in list(enumerate(args)) + list(kwargs.items()):
        if v is result and type(v) in (np.ndarray, Tensor):
            return ("arg", pos)
    kind = "numpy"
    if type(result).__module__.startswith("torch"):
        kind, result = "torch", result.numpy()
    if type(result) is Tensor:
        kind, addr = "tensor", result.buffer.address
        if addr is None:
            return None
        addr += result.offset
        shape, strides, dt = result.shape, result.stride(), result.dtype
    elif type(result) is np.ndarray:
        from ..runtime.dtypes import dtype as to_dtype

        addr, dt = result.__array_interface__["data"][0], to_dtype(result.dtype)
        if any(s % result.itemsize for s in result.strides):
            return None
        shape, strides = result.shape, tuple(s // result.itemsize for s in result.strides)
    else:
        return None
    for i, b in enumerate(buffers):
        if b.address <= addr < b.address + max(b.nbytes, 1):
            return (kind, i, addr - b.address, shape, strides, dt)
    return None
