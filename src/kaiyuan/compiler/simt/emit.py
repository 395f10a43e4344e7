"""The SIMT emitter: one `ky` function → one kernel in a SIMT C dialect.

One program is one work-group / block of L lanes. The fusion plan (cfamily/fusion.py) is the
cpu emitter's: element-wise ops of one shape form a Group, emitted here as ONE lane-strided loop

    for (int k = 0, i = lid; i < N; i += L, k++) { ...one element i of every op of the group... }

Where each tile value lives (storage.py decides):
  - temporaries: `t12`, a C local inside the loop body (values used only in their group);
  - cheap values (ranges, splats, views, integer/pointer arithmetic over them) are recomputed
    at each use, as on cpu;
  - private arrays `p12[ceil(N/L)]`, indexed by `k`: materialised values that every use reads at
    the same element from a loop of the same shape (so the same lane holds it);
  - local arrays `a12[N]` (`__local` / `__shared__`): everything other lanes read — operands of
    reduce, scan, dot and print, views of computed values, loop-carried and scf results.
Scalars are uniform: every lane computes the same value. A scalar produced by one lane (a scalar
atomic) or by all lanes together (a reduction) is broadcast through local memory.

Barriers: each item (a group's loop, a reduce, a copy, ...) is emitted after a barrier only when
it conflicts with what other lanes did to memory since the last barrier (hazards.py). Control
flow on scalars is uniform, so barriers in scf bodies are safe; no barrier is ever emitted
inside a lane loop or a lane-dependent branch.

Reductions, scans, dots, atomics, print and assert are in tiles.py; scf in scf.py.
"""

from __future__ import annotations

import math
import os
import re

from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Block, Operation

from ...ir.ky import PtrType, element_of, shape_of
from ...ir.text import op_location
from ...runtime.errors import UnsupportedError
from ..cfamily.ctext import flat
from ..cfamily.ctype import CTypes
from ..cfamily.elementwise import lane_expr
from ..cfamily.fusion import VIEW_OPS, Group, is_cheap, is_tile, plan_function
from . import scf, tiles
from .hazards import Hazards, item
from .dialect import Dialect
from .source import SimtSource
from .storage import SimtOperands, decide_storage

PRELUDE = open(os.path.join(os.path.dirname(__file__), "prelude.h")).read()
SIZE = {"_Bool": 1, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
        "int64_t": 8, "uint64_t": 8, "ky_f16": 2, "ky_bf16": 2, "float": 4, "double": 8}


class SimtEmitter:
    def __init__(self, func_op: Operation, dialect: Dialect, lanes: int):
        if lanes < 1 or lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two, not {lanes}")
        self.func, self.d, self.L = func_op, dialect, lanes
        self.ptr_types: set[str] = set()
        self.ty = CTypes(half="native" if dialect.half_native else "emulated", pointer=self._ptr_type,
                         math=dialect.math_function, backend=dialect.name)
        self.plan = plan_function(func_op, SimtOperands())
        self.private = decide_storage(func_op, self.plan)
        self.body: list[str] = []
        self.depth = 1
        self.ids: dict = {}
        self.alias: dict = {}             # value -> array name it shares (scf results, block args)
        self.decls: dict[str, tuple[str, int, str]] = {}   # name -> (ctype, elements, "local"/"private")
        self.temps: set = set()
        self.idx: tuple = ()              # multi-index of the lane loop being emitted
        self.loop_shape: tuple = ()
        self.asserts: list[tuple[str, str]] = []
        self.uid = 0
        self.hazards = Hazards()

    # ---------------------------------------------------------------- types and names
    def _ptr_type(self, pointee: str) -> str:
        """Pointer ctypes are typedefs (`kyp_float`) so arrays of them can be local/private."""
        pointee = "uint8_t" if pointee == "_Bool" else pointee     # i1 is one byte in memory
        self.ptr_types.add(pointee)
        return "kyp_" + pointee

    def ctype(self, t) -> str:
        return self.ty.ctype(t)

    def line(self, s: str) -> None:
        self.body.append("    " * self.depth + s)

    def barrier(self) -> None:
        """A barrier now (unless the previous statement is one); memory hazards are cleared."""
        b = self.d.barrier()
        if not self.body or self.body[-1].strip() != b:
            self.line(b)
        self.hazards.barrier()

    def note(self, reads=(), writes=()) -> None:
        self.hazards.note(reads, writes)

    def item(self):
        """`with em.item():` emits one item, after a barrier if its accesses need one."""
        return item(self)

    def fresh(self, base: str) -> str:
        self.uid += 1
        return f"{base}{self.uid}"

    def vid(self, v) -> int:
        return self.ids.setdefault(v, len(self.ids))

    def sname(self, v) -> str:
        return self.alias.get(v) or f"v{self.vid(v)}"

    def declare(self, name: str, t, where: str = "local") -> str:
        n = math.prod(shape_of(t))
        self.decls[name] = (self.ctype(t), n if where == "local" else -(-n // self.L), where)
        return name

    def aname(self, v) -> str:
        """Local array holding all of tile `v` (declared on first use)."""
        if v in self.alias:
            return self.alias[v]
        if v in self.private:
            raise UnsupportedError(f"internal: tile of {v.owner.name} is lane-private, not shared")
        return self.declare(f"a{self.vid(v)}", v.type) if f"a{self.vid(v)}" not in self.decls else f"a{self.vid(v)}"

    def pname(self, v) -> str:
        name = f"p{self.vid(v)}"
        if name not in self.decls:
            self.declare(name, v.type, "private")
        return name

    def flat(self, idx, shape) -> str:
        if tuple(idx) == self.idx and tuple(shape) == self.loop_shape:
            return "i"
        return flat(idx, shape)

    # ---------------------------------------------------------------- references
    def ref(self, v, idx) -> str:
        """C expression of element `idx` of value `v` (a scalar's name for scalars)."""
        if not is_tile(v):
            return self.sname(v)
        if v in self.temps and tuple(idx) == self.idx:
            return f"t{self.vid(v)}"
        if is_cheap(v, self.plan):
            return self.lane(v.owner, idx)
        if v in self.private and v not in self.alias:
            if tuple(idx) != self.idx or shape_of(v.type) != self.loop_shape:
                raise UnsupportedError(f"internal: private tile of {v.owner.name} read at another lane")
            return f"{self.pname(v)}[k]"
        if v in self.plan.arrays or v in self.alias:
            name = self.aname(v)
            self.note(reads=[name])
            return f"{name}[{self.flat(idx, shape_of(v.type))}]"
        raise UnsupportedError(f"internal: tile value of {v.owner.name} has no storage")

    def lane(self, op: Operation, idx) -> str:
        """C expression of element `idx` of the result of element-wise `op`."""
        name = op.name
        if name == "ky.make_range":
            return f"((int32_t)({op.start.value.data} + {idx[0]}))"
        if name == "ky.splat":
            return self.sname(op.src)
        if name in VIEW_OPS:
            return self.ref(op.src, self.view_index(op, idx))
        if name == "ky.addptr":
            return f"({self.ref(op.ptr, idx)} + (int64_t)({self.ref(op.offset, idx)}))"
        if name == "ky.load":
            return self.load_expr(op, idx)
        if name == "ky.program_id":
            return f"((int32_t){self.d.program_id(op.axis.value.data)})"
        if name == "ky.num_programs":
            return f"((int32_t){self.d.num_programs(op.axis.value.data)})"
        e = lane_expr(op, [self.ref(o, idx) for o in op.operands], self.ty)
        if e is None:
            raise UnsupportedError(f"op {name} is not supported by the {self.d.name} backend", loc=op_location(op))
        return e

    def view_index(self, op: Operation, idx) -> tuple:
        src = shape_of(op.src.type)
        if op.name == "ky.broadcast":
            return tuple("0" if s == 1 else i for s, i in zip(src, idx))
        if op.name == "ky.expand_dims":
            a = op.axis.value.data
            return tuple(idx[:a]) + tuple(idx[a + 1:])
        if op.name == "ky.trans":
            out = [None] * len(idx)
            for i, o in enumerate(op.order.get_values()):
                out[o] = idx[i]
            return tuple(out)
        f = self.flat(idx, shape_of(op.result.type))            # reshape: row-major order kept
        strides = [math.prod(src[k + 1:]) for k in range(len(src))]
        return tuple(f"((({f}) / {s}) % {n})" for s, n in zip(strides, src))

    def load_expr(self, op: Operation, idx) -> str:
        self.note(reads=["G" if is_tile(op.result) else "U"])
        p = f"(*({self.ref(op.ptr, idx)}))"
        e = element_of(op.result.type)
        if isinstance(e, IntegerType) and e.width.data == 1:
            p = f"((_Bool){p})"                        # i1 is a byte in memory
        if op.mask is None:
            return p
        other = self.ref(op.other, idx) if op.other is not None else f"(({self.ctype(op.result.type)})0)"
        return f"({self.ref(op.mask, idx)} ? {p} : {other})"

    # ---------------------------------------------------------------- lane loops
    def open_lanes(self, shape) -> tuple:
        """`for` over the elements of a tile of `shape` that this lane owns; returns the multi-index."""
        n = math.prod(shape)
        self.line(f"for (int k = 0, i = lid; i < {n}; i += {self.L}, k++) {{")
        self.depth += 1
        idx = []
        for d in range(len(shape)):
            inner = math.prod(shape[d + 1:])
            e = "i" if len(shape) == 1 else f"(i / {inner})" if d == 0 else \
                f"(i % {shape[d]})" if inner == 1 else f"((i / {inner}) % {shape[d]})"
            idx.append(e)
        self.idx, self.loop_shape = tuple(idx), tuple(shape)
        return self.idx

    def close_lanes(self) -> None:
        self.depth -= 1
        self.line("}")
        self.idx, self.loop_shape, self.temps = (), (), set()

    def emit_group(self, g: Group) -> None:
        live = self.live_ops(g)
        if not live:
            return
        reduces = [op for op in g.ops if op.name == "ky.reduce"]
        with self.item():
            self.group_loop(g, live, reduces)
        for op in reduces:
            tiles.close_fused_reduce(self, op)

    def group_loop(self, g: Group, live, reduces) -> None:
        for op in reduces:
            tiles.open_fused_reduce(self, op)
        self.open_lanes(g.shape)
        for op in g.ops:
            if op not in live:
                continue
            if op.name == "ky.reduce":
                tiles.fused_reduce_step(self, op, self.idx)
            elif op.name == "ky.store":
                self.store(op, self.idx)
            else:
                r = op.results[0]
                self.line(f"{self.ctype(r.type)} t{self.vid(r)} = {self.lane(op, self.idx)};")
                self.temps.add(r)
                if r in self.private:
                    self.line(f"{self.pname(r)}[k] = t{self.vid(r)};")
                elif r in self.plan.arrays:
                    self.line(f"{self.aname(r)}[i] = t{self.vid(r)};")
                    self.note(writes=[self.aname(r)])
        self.close_lanes()

    def store(self, op, idx) -> None:
        self.note(writes=["G" if idx else "U"])
        m = f"if ({self.ref(op.mask, idx)}) " if op.mask is not None else ""
        self.line(f"{m}*({self.ref(op.ptr, idx)}) = {self.ref(op.value, idx)};")

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
        handler = tiles.HANDLERS.get(name) or scf.HANDLERS.get(name)
        if handler is not None:
            handler(self, op)
        elif name == "func.return":
            pass
        elif name == "ky.load":
            with self.item():
                self.line(f"{self.ctype(op.result.type)} {self.sname(op.result)} = {self.load_expr(op, ())};")
        elif name == "ky.store":
            with self.item():
                self.store(op, ())
        elif len(op.results) == 1 and not op.regions and not is_tile(op.results[0]):
            r = op.results[0]
            self.line(f"{self.ctype(r.type)} {self.sname(r)} = {self.lane(op, ())};")
        else:
            raise UnsupportedError(f"op {name} is not supported by the {self.d.name} backend", loc=op_location(op))

    # ---------------------------------------------------------------- carried values
    def bind(self, values, names) -> None:
        for v, n in zip(values, names):
            self.alias[v] = n

    def new_vars(self, values, prefix: str) -> list[str]:
        """Fresh storage for each value: scalars a C local declared here, tiles a local array."""
        names = []
        for v in values:
            n = self.fresh(prefix)
            if is_tile(v):
                self.declare(n, v.type)
            else:
                self.line(f"{self.ctype(v.type)} {n};")
            names.append(n)
        return names

    def assign(self, targets: list[str], values) -> None:
        """targets[k] = values[k], every source read before any target is written (swaps)."""
        staged, copies = [], []
        for tgt, v in zip(targets, values):
            if is_tile(v):
                src = self.aname(v)
                if src == tgt:
                    continue
                if src in targets:
                    tmp = self.fresh("stage")
                    self.declare(tmp, v.type)
                    copies.append((tmp, src, math.prod(shape_of(v.type))))
                    src = tmp
                staged.append((tgt, src, math.prod(shape_of(v.type))))
            else:
                tmp = self.fresh("y")
                self.line(f"{self.ctype(v.type)} {tmp} = {self.sname(v)};")
                staged.append((tgt, tmp, None))
        with self.item():
            for dst, src, n in copies + staged:      # element q is copied by the same lane each time
                if n is None:
                    self.line(f"{dst} = {src};")
                else:
                    self.line(f"for (int q = lid; q < {n}; q += {self.L}) {dst}[q] = {src}[q];")
                    self.note(reads=[src], writes=[dst])

    # ---------------------------------------------------------------- the translation unit
    def emit(self) -> SimtSource:
        block = self.func.regions[0].blocks[0]
        d, params, prologue, layout = self.d, [], [], []
        for k, a in enumerate(block.args):
            self.alias[a] = f"arg{k}"
            if isinstance(a.type, PtrType):
                elem = self.ctype(a.type.pointee)
                elem = "uint8_t" if elem == "_Bool" else elem
                p, pro = d.pointer_params(k, elem)
                params += p
                prologue += pro
                layout.append(("ptr", str(a.type), elem))
            else:
                c = self.ctype(a.type)
                raw = {"_Bool": "uint8_t", "ky_f16": "uint16_t", "ky_bf16": "uint16_t"}.get(c, c)
                if raw == c:
                    params.append(f"{c} arg{k}")
                else:
                    params.append(f"{raw} arg{k}_raw")
                    conv = f"(_Bool)(arg{k}_raw & 1)" if c == "_Bool" else f"KY_BITCAST({c}, uint16_t, arg{k}_raw)"
                    prologue.append(f"{c} arg{k} = {conv};")
                layout.append(("scalar", str(a.type), raw))
        self.emit_block(block)
        while self.body and self.body[-1].strip() == d.barrier():
            self.body.pop()                          # nothing after the last barrier needs it
        slot = bool(self.asserts)
        if slot:
            self.ptr_types.add("int32_t")
            p, pro = d.pointer_params(len(block.args), "int32_t")
            params += p
            prologue += pro
        name = "ky_" + re.sub(r"\W", "_", self.func.sym_name.data)
        local = sum(SIZE.get(t, 8) * n for t, n, w in self.decls.values() if w == "local")
        text = "\n".join([self.head(), d.kernel_signature(name, params) + " {", *self.top(prologue, slot),
                          *self.body, "}"]) + "\n"
        return SimtSource(text, name, self.L, local, list(self.asserts), layout, slot)

    def head(self) -> str:
        defs = ["#define KY_FN " + self.d.function_qualifier()]
        if self.d.half_native:
            defs.append("#define KY_HALF_NATIVE 1")
        if self.d.float64:
            defs.append("#define KY_FLOAT64 1")
        types = [f"typedef {self.d.global_pointer(t)} kyp_{t};" for t in sorted(self.ptr_types)]
        return "\n".join([self.d.prelude(), *defs, PRELUDE, *types, ""])

    def top(self, prologue, slot: bool) -> list[str]:
        out = ["    " + p for p in prologue]
        if slot:
            out.append(f"    kyp_int32_t ky_err = arg{len(self.func.regions[0].blocks[0].args)};")
        out.append(f"    const int lid = {self.d.lane_id()};")
        out += [f"    const int32_t p{a} = (int32_t){self.d.program_id(k)};" for k, a in enumerate("xyz")]
        for n, (t, c, where) in self.decls.items():
            out.append("    " + (self.d.local_array(t, n, c) if where == "local" else f"{t} {n}[{c}];"))
        return out
