"""The element-wise engine: one generated kaiyuan kernel runs a whole expression over N inputs.

Stages of `run_expr(expr, inputs, out)`:
  1. type the expression (ew_expr) and check it produces out's dtype;
  2. address every operand through its strides broadcast to out's shape (0 on broadcast dims),
     then merge the dims that every operand walks as one (`_common.collapse`);
  3. classify each operand: "c" (its offset is the flat output index: contiguous and full size,
     the fast path), "s" (one element, loaded once as a scalar) or "g" (general: the flat index
     is split into coordinates and multiplied by the operand's strides);
  4. find the kernel for (expression, dtypes, modes, number of dims, index width): in memory, else
     generate its kaiyuan.language source, write it under the kernel cache dir (the frontend reads
     kernels from files) and import it. Shapes and strides are run-time arguments, so one kernel
     serves every shape with the same modes and rank;
  5. launch it over the flattened output, BLOCK elements a program.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from pathlib import Path

from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError
from ._common import I32_MAX, Context, Operand, broadcast_strides, collapse
from .ew_expr import TABLE, compute_name, const_literal, leaf_type, node_type, split, type_of

BLOCK = 1024
GENERATOR_VERSION = 1  # bump when the generated source changes meaning

_KERNELS: dict = {}
_LOCK = threading.Lock()


def result_dtype(expr, in_dtypes):
    """The numpy dtype `expr` produces from inputs of dtypes `in_dtypes` (raises if it is ill-typed)."""
    return type_of(expr, [to_dtype(d) for d in in_dtypes], {}).np


def run_expr(expr, inputs: list, out) -> None:
    """Evaluate `expr` over `inputs` (numpy arrays or ky.Tensors, broadcast numpy-style to
    out.shape) and write the result into `out` (a numpy array or ky.Tensor of the result dtype).
    `out` may be one of the inputs only where that input has out's shape and strides (each
    element is read before it is written, by the same lane)."""
    ctx = Context("element-wise", list(inputs) + [out])
    ins = [ctx.operand(x, f"input {i}") for i, x in enumerate(inputs)]
    o = ctx.operand(out, "out")
    if o.obj is not out and not hasattr(out, "__dlpack__"):
        raise ArgumentError("element-wise: out must be a numpy array or ky.Tensor that can be written in place")
    dtypes = tuple(x.dtype for x in ins)
    want, used = _signature(expr, dtypes)
    if want != o.dtype:
        raise ArgumentError(f"element-wise: the expression produces {want.np.name}, out is {o.dtype.np.name}")
    n = 1
    for d in o.shape:
        n *= d
    if n == 0:
        return
    strides = [o.strides] + [_strides_to(ins[i], o.shape, i) for i in used]
    shape, cstrides = collapse(o.shape, *strides)
    modes = tuple(_mode(shape, s, is_out=(j == 0)) for j, s in enumerate(cstrides))
    wide = n > I32_MAX or any(sum(abs(s) * (d - 1) for d, s in zip(shape, st)) > I32_MAX for st in cstrides)
    general = "g" in modes
    kernel = _kernel(expr, dtypes, used, want, modes, len(shape) if general else 1, wide)
    args = [o.obj] + [ins[i].obj for i in used] + [n]
    if general:
        args += list(shape[1:])
        args += [s for m, st in zip(modes, cstrides) if m == "g" for s in st]
    kernel[(-(-n // BLOCK),)](*args, BLOCK=BLOCK)


_SIGNATURES: dict = {}
_FAST: dict = {}  # (expr, ...) -> kernel: skips repr(expr) when the caller reuses an expression
_FAST_MAX = 4096


def _signature(expr, dtypes: tuple):
    """(result dtype, sorted used input indices) of expr over inputs of `dtypes`, memoised."""
    key = (expr, dtypes)
    try:
        hit = _SIGNATURES.get(key)
    except TypeError:  # an unhashable constant value
        return type_of(expr, list(dtypes), {}), tuple(sorted(_inputs_of(expr)))
    if hit is None:
        hit = (type_of(expr, list(dtypes), {}), tuple(sorted(_inputs_of(expr))))
        if len(_SIGNATURES) >= _FAST_MAX:
            _SIGNATURES.clear()
        _SIGNATURES[key] = hit
    return hit


def _inputs_of(expr, acc=None) -> set:
    acc = set() if acc is None else acc
    if expr[0] == "in":
        acc.add(int(expr[1]))
    elif expr[0] != "const":
        for sub in split(expr)[1]:
            _inputs_of(sub, acc)
    return acc


def _strides_to(x: Operand, shape, i: int) -> tuple:
    """x's strides seen at out's shape; an ArgumentError when numpy broadcasting does not allow it."""
    if x.ndim > len(shape) or any(a not in (1, b) for a, b in zip(x.shape[::-1], shape[::-1])):
        raise ArgumentError(f"element-wise: input {i} of shape {tuple(x.shape)} does not broadcast to "
                            f"the output shape {tuple(shape)}")
    return broadcast_strides(x, x.ndim, shape)


def _mode(shape, strides, is_out: bool) -> str:
    if not is_out and all(s == 0 for s in strides):
        return "s"
    inner, dense = 1, True
    for d, s in zip(reversed(shape), reversed(strides)):
        if d > 1 and s != inner:
            dense = False
        inner *= d
    return "c" if dense else "g"


# ------------------------------------------------------------------------- kernel generation


def _kernel(expr, dtypes, used, want, modes, ndim, wide):
    """The loaded kernel for this specialisation. Its identity is the expression's text (so equal
    expressions built anew, even with NaN constants, share a kernel) plus the operand facts."""
    fast_key = (expr, tuple(dtypes[i] for i in used), used, modes, ndim, wide)
    try:
        kernel = _FAST.get(fast_key)
    except TypeError:
        fast_key, kernel = None, None
    if kernel is not None:
        return kernel
    key = (repr(expr), tuple(dtypes[i].name for i in used), used, want.name, modes, ndim, wide)
    kernel = _KERNELS.get(key)
    if kernel is None:
        with _LOCK:
            kernel = _KERNELS.get(key)
            if kernel is None:
                kernel = _KERNELS[key] = _load(generate(key, expr, list(dtypes)))
    if fast_key is not None:
        if len(_FAST) >= _FAST_MAX:
            _FAST.clear()
        _FAST[fast_key] = kernel
    return kernel


def generate(key, expr, in_dtypes) -> str:
    """The kaiyuan.language source of the kernel for `key` (see `run_expr` for its parts)."""
    _, _, used, out_name, modes, ndim, wide = key
    params = ["out_ptr"] + [f"x{i}_ptr" for i in used] + ["N"]
    general = "g" in modes
    if general:
        params += [f"n{d}" for d in range(1, ndim)]
        params += [f"s{j}_{d}" for j, m in enumerate(modes) if m == "g" for d in range(ndim)]
    body = ["pid = kl.program_id(0)" + (".to(kl.int64)" if wide else ""),
            "offs = pid * BLOCK + kl.arange(0, BLOCK)",
            "mask = offs < N"]
    if general:
        body.append("r = offs")
        for d in range(ndim - 1, 0, -1):
            body += [f"i{d} = r % n{d}", f"r = r // n{d}"]
        body.append("i0 = r")

    def address(j: int, ptr: str) -> str:
        if modes[j] == "c":
            return f"{ptr} + offs"
        return ptr + "".join(f" + i{d} * s{j}_{d}" for d in range(ndim))

    gen = _Emitter(in_dtypes, body)
    for j, i in enumerate(used, start=1):
        t = in_dtypes[i]
        load = f"kl.load(x{i}_ptr)" if modes[j] == "s" else f"kl.load({address(j, f'x{i}_ptr')}, mask=mask)"
        body.append(f"a{i} = kl.cast({load}, \"{compute_name(t)}\")")
    result = gen.value(expr)
    body.append(f"kl.store({address(0, 'out_ptr')}, {result}, mask=mask)")
    lines = [f"# Generated by kaiyuan.ops.ew_kernel (version {GENERATOR_VERSION}); do not edit.",
             f"# {out_name} = {key[0]}",
             "import kaiyuan.language as kl",
             "from kaiyuan.compiler import jit",
             "from kaiyuan.ops import ew_lib as L",
             "",
             'INF = float("inf")',
             'NEG_INF = float("-inf")']
    lines += [f"K{k} = {lit}" for k, lit in enumerate(gen.consts)]
    dns = [p for p in params if not p.endswith("_ptr")]  # shapes, strides: never constexprs
    name = _kernel_name(expr)
    lines += ["", "", f"@jit(do_not_specialize={dns!r})",
              f"def {name}({', '.join(params)}, BLOCK: kl.constexpr):"]
    lines += ["    " + b for b in body]
    lines += ["", "", f"KERNEL = {name}"]
    return "\n".join(lines) + "\n"


def _kernel_name(expr) -> str:
    """ew_<functions in the expression>, so profiles and dumps say what a kernel computes."""
    heads: list[str] = []

    def walk(e):
        head, subs, _ = split(e)
        if head not in ("in", "const"):
            word = "".join(c if c.isalnum() else "_" for c in head)
            if word not in heads:
                heads.append(word)
            for sub in subs:
                walk(sub)

    walk(expr)
    return ("ew_" + "_".join(heads))[:48].rstrip("_") if heads else "ew_copy"


class _Emitter:
    """Writes one `vK = ...` line per distinct sub-expression (equal sub-tuples share a line)."""

    def __init__(self, in_dtypes, body: list):
        self.in_dtypes, self.body = in_dtypes, body
        self.consts: list[str] = []
        self.memo: dict = {}

    def value(self, expr) -> str:
        return self._visit(expr)[0]

    def _visit(self, expr):
        try:
            hit = self.memo.get(expr)
        except TypeError:  # an unhashable constant value: no sharing
            hit = None
        if hit is not None:
            return hit
        head, subs, attrs = split(expr)
        t = leaf_type(expr, self.in_dtypes) if head in ("in", "const") else None
        if head == "in":
            out = (f"a{int(expr[1])}", t)
        elif head == "const":
            self.consts.append(const_literal(expr[1], t))
            code = f'kl.full((), K{len(self.consts) - 1}, "{compute_name(t)}")'
            out = (self._line(code, t), t)
        else:
            args = [self._visit(s) for s in subs]
            t = node_type(head, [a[1] for a in args], attrs)
            out = (self._line(self._code(head, args, attrs, t), t), t)
        try:
            self.memo[expr] = out
        except TypeError:
            pass
        return out

    def _code(self, head, args, attrs, t) -> str:
        names, types = [a[0] for a in args], [a[1] for a in args]
        if head.startswith("cast:"):
            if t.name in ("fp16", "bf16"):  # round to the narrow type here, hold it in fp32
                return f'kl.cast(kl.cast({names[0]}, "{t.name}"), "fp32")'
            return f'kl.cast({names[0]}, "{t.name}")'
        return TABLE[head].emit(names, types, attrs)

    def _line(self, code: str, t) -> str:
        name = f"v{len(self.body)}"
        self.body.append(f'{name} = kl.cast({code}, "{compute_name(t)}")')
        return name


# ----------------------------------------------------------------------------------- loading


def _source_dir() -> Path:
    """Where generated kernels are written: <kernel cache dir>/elementwise (a temp dir if that
    cannot be created)."""
    from ..compiler.cache import cache_dir

    d = cache_dir() / "elementwise"
    try:
        d.mkdir(parents=True, exist_ok=True)
        return d
    except OSError:
        d = Path(tempfile.gettempdir()) / f"kaiyuan-elementwise-{os.getuid()}"
        d.mkdir(parents=True, exist_ok=True)
        return d


def _load(source: str):
    """Write `source` to a file named by its hash (atomically) and import it; returns its KERNEL."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    path = _source_dir() / f"ew_{digest}.py"
    if not path.exists() or path.read_text() != source:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    name = f"kaiyuan_ew_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.KERNEL
