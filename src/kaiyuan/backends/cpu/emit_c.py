"""The C emitter: one `ky` function → one C translation unit.

Layout of the output:
  prelude.h                                   (math, bf16, atomics, the assert slot)
  static inline void ky_program(args..., px, py, pz, gx, gy, gz)   one program of the grid
  int64_t ky_range(args, gx, gy, gz, t0, t1)                       programs t0..t1-1 of the grid
                                                                   (one thread: launch.c shares a
                                                                   launch out over the threads)
  int64_t ky_error_slot(reset)                                     the assert slot (launch.c)
  const char *ky_signature(void), ky_assert_text(k)                self-description for load()

Values: scalars are C locals; tile values live in loop bodies as scalar temporaries (`t12`), and
those that `fusion.py` marks as materialised also get a stack array (`a12[1024]`, 64-byte
aligned, declared at the top of ky_program; above STACK_LIMIT they move to a per-thread heap
scratch allocated once). Reductions, dots, scans, atomics, print and assert are in
`emit_tiles.py`; scf control flow is here.
"""

from __future__ import annotations

import math
import os

from xdsl.ir import Block, Operation

from ...ir.ky import PtrType, shape_of
from ...ir.text import op_location
from ...runtime.errors import UnsupportedError
from . import direct, dot, emit_tiles
from ...compiler.cfamily.ctext import c_string, flat
from ...compiler.cfamily.ctype import ctype
from ...compiler.cfamily.elementwise import lane_expr
from .emit_scf import SCF_HANDLERS
from ...compiler.cfamily.fusion import VIEW_OPS, Group, is_cheap, is_tile, plan_function

STACK_LIMIT = 512 * 1024
PRELUDE = open(os.path.join(os.path.dirname(__file__), "prelude.h")).read()
AXES = "xyz"


class Emitter:
    def __init__(self, func_op: Operation):
        self.func = func_op
        self.plan = plan_function(func_op, direct.DirectOperands())
        self.body: list[str] = []
        self.depth = 1
        self.ids: dict = {}
        self.alias: dict = {}          # value -> C name it shares (scf results, block args)
        self.decls: dict[str, tuple[str, int]] = {}   # array name -> (ctype, elements)
        self.temps: set = set()        # tile values with a temp in the loop body being emitted
        self.idx: tuple = ()
        self.asserts: list[tuple[str, str]] = []
        self.uid = 0
        self.dot_kinds: set[str] = set()   # ky.dot kernels used (dot.py)

    # ---------------------------------------------------------------- names and references
    def line(self, s: str) -> None:
        self.body.append("    " * self.depth + s)

    def fresh(self, base: str) -> str:
        self.uid += 1
        return f"{base}{self.uid}"

    def vid(self, v) -> int:
        return self.ids.setdefault(v, len(self.ids))

    def sname(self, v) -> str:
        return self.alias.get(v) or f"v{self.vid(v)}"

    def aname(self, v) -> str:
        """Array holding tile `v` (declared on first use)."""
        if v in self.alias:
            return self.alias[v]
        name = f"a{self.vid(v)}"
        self.declare(name, v.type)
        return name

    def declare(self, name: str, t) -> str:
        self.decls[name] = (ctype(t), math.prod(shape_of(t)))
        return name

    def ref(self, v, idx) -> str:
        """C expression of lane `idx` of value `v` (a scalar's name for scalars)."""
        if not is_tile(v):
            return self.sname(v)
        if v in self.temps and tuple(idx) == self.idx:
            return f"t{self.vid(v)}"
        if is_cheap(v, self.plan):
            return self.lane(v.owner, idx)
        if v in self.plan.arrays or v in self.alias:
            shape = shape_of(v.type)
            if len(shape) < 2:
                return f"{self.aname(v)}[{flat(idx, shape)}]"
            # row pointer, then the lane: gcc's data-ref analysis takes `a[(i0) * 64 + i1]` read
            # under a store mask for a gather (vgatherdps, ~1 element per cycle on Zen 4) and
            # `(a + (i0) * 64)[i1]` for the contiguous masked load it is
            return f"({self.aname(v)} + ({flat(idx[:-1], shape[:-1])}) * {shape[-1]})[{idx[-1]}]"
        raise UnsupportedError(f"internal: tile value of {v.owner.name} has no storage")

    # ---------------------------------------------------------------- one lane of a tile op
    def lane(self, op: Operation, idx) -> str:
        name = op.name
        if name == "ky.make_range":
            return f"((int32_t)({op.start.value.data} + {idx[0]}))"
        if name == "ky.splat":
            return self.sname(op.src)
        if name in VIEW_OPS:
            return self.ref(op.src, self.view_index(op, idx))
        if name == "ky.addptr":
            return f"({self.ref(op.ptr, idx)} + {self.index64(op.offset, idx)})"
        if name == "ky.load":
            return self.load_expr(op, idx)
        if name == "ky.program_id":
            return "p" + AXES[op.axis.value.data]
        if name == "ky.num_programs":
            return "g" + AXES[op.axis.value.data]
        e = lane_expr(op, [self.ref(o, idx) for o in op.operands])
        if e is None:
            raise UnsupportedError(f"op {name} is not supported by the cpu backend", loc=op_location(op))
        return e

    def index64(self, v, idx) -> str:
        """An element offset as a 64-bit C expression. Cheap add/sub/mul/ext chains are rebuilt in
        int64 (an offset whose 32-bit arithmetic wraps addresses outside any buffer anyway), so
        `p + (s + i)` stays affine in the loop index and gcc emits vector loads, not gathers."""
        op = v.owner
        if is_tile(v) and is_cheap(v, self.plan):
            if op.name in ("arith.addi", "arith.subi", "arith.muli"):
                sym = {"arith.addi": "+", "arith.subi": "-", "arith.muli": "*"}[op.name]
                return f"({self.index64(op.lhs, idx)} {sym} {self.index64(op.rhs, idx)})"
            if op.name in VIEW_OPS:
                return self.index64(op.src, self.view_index(op, idx))
            if op.name == "arith.extsi":
                return self.index64(op.operands[0], idx)
            if op.name == "ky.make_range":
                return f"((int64_t){op.start.value.data} + {idx[0]})"
        return f"((int64_t){self.ref(v, idx)})"

    def view_index(self, op: Operation, idx) -> tuple:
        src = shape_of(op.src.type)
        if op.name == "ky.broadcast":
            return tuple("0" if s == 1 else i for s, i in zip(src, idx))
        if op.name == "ky.expand_dims":
            a = op.axis.value.data
            return tuple(idx[:a]) + tuple(idx[a + 1:])
        if op.name == "ky.trans":
            order = list(op.order.get_values())
            out = [None] * len(order)
            for i, o in enumerate(order):
                out[o] = idx[i]
            return tuple(out)
        f = flat(idx, shape_of(op.result.type))            # reshape: row-major order kept
        strides = [math.prod(src[k + 1:]) for k in range(len(src))]
        return tuple(f"(({f}) / {s}) % {n}" for s, n in zip(strides, src))

    def load_expr(self, op: Operation, idx) -> str:
        p = f"(*({self.ref(op.ptr, idx)}))"
        if op.mask is None:
            return p
        other = self.ref(op.other, idx) if op.other is not None else f"(({ctype(op.result.type)})0)"
        return f"({self.ref(op.mask, idx)} ? {p} : {other})"

    # ---------------------------------------------------------------- loops over tiles
    lane_index = ""  # set while emitting a lane-blocked loop: the lane variable of its inner level

    def open_loops(self, shape, simd: bool = True, prefix: str = "i", clauses: str = "", lanes: int = 0) -> tuple:
        """Loops over a tile; with `lanes`, the innermost loop is split into blocks of `lanes`
        and a lane loop (see emit_tiles.LANES)."""
        idx = tuple(f"{prefix}{k}" for k in range(len(shape)))
        for k, (i, n) in enumerate(zip(idx, shape)):
            inner = k == len(shape) - 1
            if inner and lanes:
                self.line(f"for (int {i}b = 0; {i}b < {n}; {i}b += {lanes}) {{")
                self.depth += 1
                self.line("#pragma omp simd")
                self.line(f"for (int {i}l = 0; {i}l < {lanes}; {i}l++) {{")
                self.depth += 1
                self.line(f"int {i} = {i}b + {i}l;")
                self.lane_index = f"{i}l"
                continue
            if simd and inner:
                self.line(f"#pragma omp simd {clauses}".rstrip())
            self.line(f"for (int {i} = 0; {i} < {n}; {i}++) {{")
            self.depth += 1
        return idx

    def close_loops(self, shape, lanes: bool = False) -> None:
        for _ in range(len(shape) + (1 if lanes else 0)):
            self.depth -= 1
            self.line("}")

    def emit_group(self, g: Group) -> None:
        live = self.live_ops(g)
        if not live:
            return
        reduces = [op for op in g.ops if op.name == "ky.reduce"]
        clauses = [emit_tiles.open_fused_reduce(self, op) for op in reduces]
        blocked = bool(reduces) and emit_tiles.lane_blocked(g.shape[-1])
        self.idx = self.open_loops(g.shape, clauses=" ".join(clauses), lanes=emit_tiles.LANES if blocked else 0)
        self.temps = set()
        for op in g.ops:
            if op not in live:
                continue
            if op.name == "ky.reduce":
                emit_tiles.fused_reduce_step(self, op, self.idx)
                continue
            if op.name == "ky.store":
                m = f"if ({self.ref(op.mask, self.idx)}) " if op.mask is not None else ""
                self.line(f"{m}*({self.ref(op.ptr, self.idx)}) = {self.ref(op.value, self.idx)};")
                continue
            r = op.results[0]
            self.line(f"{ctype(r.type)} t{self.vid(r)} = {self.lane(op, self.idx)};")
            self.temps.add(r)
            if r in self.plan.arrays:
                self.line(f"{self.aname(r)}[{flat(self.idx, g.shape)}] = t{self.vid(r)};")
        self.close_loops(g.shape, lanes=blocked)
        self.temps, self.idx, self.lane_index = set(), (), ""
        for op in reduces:
            emit_tiles.close_fused_reduce(self, op)

    def live_ops(self, g: Group) -> set:
        live: set = set()
        for op in reversed(g.ops):
            if op.name in ("ky.store", "ky.reduce") or any(r in self.plan.arrays for r in op.results) or any(
                    u.operation in live for r in op.results for u in r.uses):
                live.add(op)
        return live

    # ---------------------------------------------------------------- blocks and ops
    def emit_block(self, block: Block, terminator=None) -> None:
        for item in self.plan.items[block]:
            if isinstance(item, Group):
                self.emit_group(item)
            elif item.name in ("scf.yield", "scf.condition", "ky.yield"):
                terminator(item)
            else:
                self.emit_op(item)

    def emit_op(self, op: Operation) -> None:
        name = op.name
        handler = emit_tiles.HANDLERS.get(name) or SCF_HANDLERS.get(name)
        if handler is not None:
            handler(self, op)
        elif name == "func.return":
            pass
        elif name == "ky.load":
            self.line(f"{ctype(op.result.type)} {self.sname(op.result)} = {self.load_expr(op, ())};")
        elif name == "ky.store":
            m = f"if ({self.sname(op.mask)}) " if op.mask is not None else ""
            self.line(f"{m}*({self.sname(op.ptr)}) = {self.sname(op.value)};")
        elif len(op.results) == 1 and not op.regions:
            r = op.results[0]
            self.line(f"{ctype(r.type)} {self.sname(r)} = {self.lane(op, ())};")
        else:
            raise UnsupportedError(f"op {name} is not supported by the cpu backend", loc=op_location(op))

    # ---------------------------------------------------------------- carried values
    def bind(self, values, names) -> None:
        for v, n in zip(values, names):
            self.alias[v] = n

    def new_vars(self, values, prefix: str) -> list[str]:
        """Fresh C storage (scalar local or array) for each value type; scalars declared here."""
        names = []
        for v in values:
            n = self.fresh(prefix)
            if is_tile(v):
                self.declare(n, v.type)
            else:
                self.line(f"{ctype(v.type)} {n};")
            names.append(n)
        return names

    def nbytes(self, name: str) -> int:
        """Bytes of a declared tile array (not sizeof: above STACK_LIMIT the array is a pointer)."""
        t, n = self.decls[name]
        return _SIZE.get(t, 8) * n

    def assign(self, targets: list[str], values) -> None:
        """targets[k] = values[k], all read before any is written (scf.yield %b, %a swaps)."""
        staged = []
        for tgt, v in zip(targets, values):
            if is_tile(v):
                src = self.aname(v)
                if src == tgt:
                    continue
                if src in targets:
                    tmp = self.declare(self.fresh("stage"), v.type)
                    self.line(f"memcpy({tmp}, {src}, {self.nbytes(tmp)});")
                    src = tmp
                staged.append(f"memcpy({tgt}, {src}, {self.nbytes(tgt)});")
            else:
                tmp = self.fresh("y")
                self.line(f"{ctype(v.type)} {tmp} = {self.sname(v)};")
                staged.append(f"{tgt} = {tmp};")
        for s in staged:
            self.line(s)

    # ---------------------------------------------------------------- the translation unit
    def emit(self) -> str:
        block = self.func.regions[0].blocks[0]
        params = []
        for k, a in enumerate(block.args):
            params.append(f"{ctype(a.type)} arg{k}")
            self.alias[a] = f"arg{k}"
        self.emit_block(block)
        total = sum(_bytes(t, n) for t, n in self.decls.values())
        decls = self.array_decls(total)
        pids = ", ".join(f"int32_t p{a}" for a in AXES) + ", " + ", ".join(f"int32_t g{a}" for a in AXES)
        program = [f"static inline void ky_program({', '.join(params + [pids])}) {{", *decls, *self.body, "}"]
        return "\n".join([PRELUDE, dot.helpers(self.dot_kinds), *program, self.launcher(block.args), self.tables(block.args)]) + "\n"

    def array_decls(self, total: int) -> list[str]:
        if total <= STACK_LIMIT:
            return [f"    {t} {n}[{c}] __attribute__((aligned(64)));" for n, (t, c) in self.decls.items()]
        out = ["    static __thread char *ky_scratch;",
               f"    if (!ky_scratch) ky_scratch = (char *)aligned_alloc(64, {total});"]
        off = 0
        for n, (t, c) in self.decls.items():
            out.append(f"    {t} *{n} = ({t} *)(ky_scratch + {off});")
            off += _bytes(t, c)
        return out

    def launcher(self, args) -> str:
        unpack = [f"    {ctype(a.type)} arg{k} = {_unpack(a.type, f'args[{k}]')};" for k, a in enumerate(args)]
        call = "ky_program(" + "".join(f"arg{k}, " for k in range(len(args)))
        return "\n".join([
            "int64_t ky_range(const uint64_t *args, int64_t gx, int64_t gy, int64_t gz, int64_t t0, int64_t t1) {",
            *unpack,
            "    ky_failed_here = 0;",
            "    for (int64_t t = t0; t < t1; t++)",
            f"        {call}(int32_t)(t % gx), (int32_t)((t / gx) % gy), (int32_t)(t / (gx * gy)), "
            "(int32_t)gx, (int32_t)gy, (int32_t)gz);",
            "    return ky_failed_here;",
            "}",
            "int64_t ky_error_slot(int64_t reset) {",
            "    if (reset) __atomic_store_n(&ky_err_op, -1, __ATOMIC_RELAXED);",
            "    return __atomic_load_n(&ky_err_op, __ATOMIC_ACQUIRE);",
            "}",
        ])

    def tables(self, args) -> str:
        sig = ";".join(str(a.type) for a in args)
        rows = ", ".join(c_string(f"{loc}\x1f{msg}") for loc, msg in self.asserts) or '""'
        return "\n".join([
            f'const char *ky_signature(void) {{ return {c_string(sig)}; }}',
            f"static const char *ky_assert_table[] = {{{rows}}};",
            "const char *ky_assert_text(int64_t k) { return ky_assert_table[k]; }",
        ])


_SIZE = {"_Bool": 1, "int8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8, "_Float16": 2, "ky_bf16": 2,
         "float": 4, "double": 8}


def _bytes(t: str, n: int) -> int:
    return (_SIZE.get(t, 8) * n + 63) // 64 * 64


def _unpack(t, src: str) -> str:
    c = ctype(t)
    if isinstance(t, PtrType):
        return f"({c})(uintptr_t){src}"
    if c == "float":
        return f"ky_u2f((uint32_t){src})"
    if c == "double":
        return f"ky_u2d({src})"
    if c == "_Float16":
        return f"KY_BITCAST(_Float16, uint16_t, (uint16_t){src})"
    if c == "_Bool":
        return f"(_Bool)({src} & 1)"
    return f"({c}){src}"



def emit_c(func_op: Operation) -> tuple[str, Emitter]:
    e = Emitter(func_op)
    return e.emit(), e
