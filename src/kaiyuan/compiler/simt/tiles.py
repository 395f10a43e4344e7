"""Tile ops that are not element-wise, for the SIMT emitter: reduce, scan, dot, atomics, print,
assert.

Reductions. A 1-D reduce fused into its group (fusion.py rule 3) keeps one accumulator per lane,
initialised to the combiner's identity, that folds the lane's strided elements; the L partials
then meet in a tree in local memory (`lane_tree`). An unfused reduce to a scalar does the same
from its local operand (lanes without an element take no part in the tree). A reduce that keeps
dimensions gives each lane whole output elements (sequential over the reduced axis). Scans give
each lane whole rows. The combiner region is inlined as scalar C.

Dot: each lane computes whole output elements (i, j), reading the operands from local memory,
accumulating in the accumulator's compute type; `acc = dot(a, b, acc)` updates acc's storage in
place (each element is read and written by the same lane).

Atomics run per element in a lane loop; a scalar atomic runs on lane 0 and its old value is
broadcast. Print runs on lane 0. Assert: each lane checks its elements, a local flag makes the
verdict uniform, then every lane leaves the program together.
"""

from __future__ import annotations

import math

from xdsl.ir import BlockArgument

from ...ir.ky import element_of, shape_of
from ...ir.text import op_location
from ...runtime.errors import UnsupportedError
from ..cfamily.ctext import c_string
from ..cfamily.ctype import is_float, width
from ..cfamily.fusion import simple_combiner
from ..cfamily.support import combine
from .storage import SimtOperands


# ------------------------------------------------------------------ combiner and lane tree
def _scratch(em, j: int, ctype: str) -> str:
    name = f"ky_red{j}_{ctype}"
    em.decls.setdefault(name, (ctype, em.L, "local"))
    return name


def lane_tree(em, op, accs: list[str], types: list[str], count: str) -> list[str]:
    """Combine the partials `accs` of lanes 0..count-1 (`count` a C expression <= L); return
    local-memory expressions every lane may read for the result (valid until the next tree)."""
    em.trees = getattr(em, "trees", 0) + 1      # alternate buffers: no wait for the last result's readers
    scr = [_scratch(em, 2 * j + em.trees % 2, t) for j, t in enumerate(types)]
    with em.item():
        em.line(f"if (lid < {count}) {{ {' '.join(f'{s}[lid] = {a};' for s, a in zip(scr, accs))} }}")
        em.note(writes=scr)
    em.barrier()
    em.line(f"for (int s = {em.L // 2}; s > 0; s >>= 1) {{")     # one barrier in a loop, not log2(L)
    em.depth += 1
    em.line(f"if (lid < s && lid + s < {count}) {{")
    em.depth += 1
    xs = [em.fresh("x") for _ in scr]
    for t, a, x, sc in zip(types, accs, xs, scr):
        em.line(f"{t} {x} = {sc}[lid + s];")
        em.line(f"{a} = {sc}[lid];")
    combine(em, op, accs, xs)
    for a, sc in zip(accs, scr):
        em.line(f"{sc}[lid] = {a};")
    em.depth -= 1
    em.line("}")
    em.line(em.d.barrier())
    em.depth -= 1
    em.line("}")
    em.hazards.barrier()
    em.note(reads=scr)
    return [f"{sc}[0]" for sc in scr]


# ------------------------------------------------------------------ reductions fused into a group
_IDENTITY = {"+": "0", "*": "1", "&": "~0", "|": "0", "^": "0"}


def _identity(red: str, t, c: str) -> str:
    if red in _IDENTITY:
        return f"(({c}){_IDENTITY[red]})"
    if c in ("float", "double"):
        return "((" + c + ")INFINITY)" if "min" in red else "((" + c + ")-INFINITY)"
    w = width(element_of(t))
    return f"(({c})((uint64_t)1 << {w - 1}))" if red == "max" else f"(({c})~((uint64_t)1 << {w - 1}))"


def open_fused_reduce(em, op) -> None:
    t = op.srcs[0].type
    c = em.ctype(t)
    em.line(f"{c} racc{em.vid(op.results[0])} = {_identity(simple_combiner(op), t, c)};")


def fused_reduce_step(em, op, idx) -> None:
    x = em.fresh("x")
    em.line(f"{em.ctype(op.srcs[0].type)} {x} = {em.ref(op.srcs[0], idx)};")
    combine(em, op, [f"racc{em.vid(op.results[0])}"], [x])


def close_fused_reduce(em, op) -> None:
    acc, c = f"racc{em.vid(op.results[0])}", em.ctype(op.srcs[0].type)
    res = lane_tree(em, op, [acc], [c], str(em.L))
    em.line(f"{em.ctype(op.results[0].type)} {em.sname(op.results[0])} = {res[0]};")


# ------------------------------------------------------------------ reduce and scan
def emit_fold(em, op, scan: bool) -> None:
    shape = shape_of(op.srcs[0].type)
    ax = op.axis.value.data
    n, outer, inner = shape[ax], math.prod(shape[:ax]), math.prod(shape[ax + 1:])
    srcs = [em.aname(s) for s in op.srcs]
    types = [em.ctype(s.type) for s in op.srcs]
    if not scan and not shape_of(op.res[0].type):
        return _fold_to_scalar(em, op, srcs, types, n)
    dst = [em.aname(r) for r in op.res]
    with em.item():
        em.note(reads=srcs, writes=dst)
        _fold_rows(em, op, srcs, dst, types, n, outer, inner, scan)


def _fold_rows(em, op, srcs, dst, types, n, outer, inner, scan) -> None:
    em.line(f"for (int r = lid; r < {outer * inner}; r += {em.L}) {{")
    em.depth += 1
    em.line(f"int base = (r / {inner}) * {n * inner} + r % {inner};")
    out = (lambda j: f"base + {j} * {inner}") if scan else (lambda j: "r")
    accs = [em.fresh("acc") for _ in srcs]
    for t, a, s in zip(types, accs, srcs):
        em.line(f"{t} {a} = {s}[base];")
    if scan:
        for d, a in zip(dst, accs):
            em.line(f"{d}[{out(0)}] = {a};")
    em.line(f"for (int j = 1; j < {n}; j++) {{")
    em.depth += 1
    xs = [em.fresh("x") for _ in srcs]
    for t, x, s in zip(types, xs, srcs):
        em.line(f"{t} {x} = {s}[base + j * {inner}];")
    combine(em, op, accs, xs)
    if scan:
        for d, a in zip(dst, accs):
            em.line(f"{d}[{out('j')}] = {a};")
    em.depth -= 1
    em.line("}")
    if not scan:
        for d, a in zip(dst, accs):
            em.line(f"{d}[r] = {a};")
    em.depth -= 1
    em.line("}")


def _fold_to_scalar(em, op, srcs, types, n: int) -> None:
    accs = [em.fresh("acc") for _ in srcs]
    with em.item():
        em.note(reads=srcs)
        _fold_lanes(em, op, srcs, types, n, accs)
    res = lane_tree(em, op, accs, types, str(min(n, em.L)))
    for r, e in zip(op.res, res):
        em.line(f"{em.ctype(r.type)} {em.sname(r)} = {e};")


def _fold_lanes(em, op, srcs, types, n: int, accs) -> None:
    for t, a in zip(types, accs):
        em.line(f"{t} {a} = ({t})0;")
    em.line(f"if (lid < {n}) {{")
    em.depth += 1
    for a, s in zip(accs, srcs):
        em.line(f"{a} = {s}[lid];")
    em.line(f"for (int j = lid + {em.L}; j < {n}; j += {em.L}) {{")
    em.depth += 1
    xs = [em.fresh("x") for _ in srcs]
    for t, x, s in zip(types, xs, srcs):
        em.line(f"{t} {x} = {s}[j];")
    combine(em, op, accs, xs)
    em.depth -= 1
    em.line("}")
    em.depth -= 1
    em.line("}")


# ------------------------------------------------------------------ dot
def _in_place(op) -> bool:
    """The dot may write its result over its accumulator: nothing else reads the accumulator and
    it is defined once per execution of the dot (in the dot's block, or that block's argument)."""
    acc = op.acc
    if len(list(acc.uses)) != 1:
        return False
    if isinstance(acc, BlockArgument):
        return acc.block is op.parent_block()
    return acc.owner.parent_block() is op.parent_block()


def emit_dot(em, op) -> None:
    (m, k), (_, n) = shape_of(op.a.type), shape_of(op.b.type)
    rt, at, bt = op.result.type, op.a.type, op.b.type
    ct = em.ty.compute_type(rt)
    zero = SimtOperands().zero_acc(op.acc)
    if not zero and _in_place(op) and op.acc not in em.private:
        em.alias[op.result] = em.aname(op.acc)
    a, b, r = em.aname(op.a), em.aname(op.b), em.aname(op.result)
    c = None if zero else em.aname(op.acc)
    with em.item():
        em.note(reads=[a, b] + ([c] if c else []), writes=[r])
        _dot_loop(em, op, a, b, c, r, m, n, k, zero)


ROW_BLOCK = 4      # rows of C one lane accumulates at once in the register-blocked dot


def _dot_loop(em, op, a, b, c, r, m, n, k, zero) -> None:
    rt, at, bt = op.result.type, op.a.type, op.b.type
    ct = em.ty.compute_type(rt)
    if n % em.L == 0 and m % ROW_BLOCK == 0 and n // em.L <= 8:
        return _dot_blocked(em, a, b, c, r, m, n, k, zero, rt, at, bt, ct)
    em.line(f"for (int e = lid; e < {m * n}; e += {em.L}) {{")
    em.depth += 1
    em.line(f"int di = e / {n}, dj = e % {n};")
    em.line(f"{ct} s = {'(' + ct + ')0' if zero else em.ty.to_compute(f'{c}[e]', rt)};")
    av = em.ty.to_compute(f"{a}[di * {k} + kk]", at)
    bv = em.ty.to_compute(f"{b}[kk * {n} + dj]", bt)
    em.line(f"for (int kk = 0; kk < {k}; kk++) s += ({ct}){av} * ({ct}){bv};")
    em.line(f"{r}[e] = {em.ty.from_compute('s', rt)};")
    em.depth -= 1
    em.line("}")


def _dot_blocked(em, a, b, c, r, m, n, k, zero, rt, at, bt, ct) -> None:
    """Lane `lid` owns columns lid, lid + L, ... (CN of them) of C and walks its rows ROW_BLOCK at
    a time, keeping ROW_BLOCK x CN sums in registers: per step of K, CN loads of B (consecutive
    across lanes) and ROW_BLOCK of A (the same for every lane) feed ROW_BLOCK * CN FMAs."""
    cn, rb, L = n // em.L, ROW_BLOCK, em.L
    em.line(f"for (int i0 = 0; i0 < {m}; i0 += {rb}) {{")
    em.depth += 1
    em.line(f"{ct} s[{rb}][{cn}];")
    init = f"({ct})0" if zero else em.ty.to_compute(f"{c}[(i0 + ri) * {n} + lid + {L} * ci]", rt)
    em.line(f"for (int ri = 0; ri < {rb}; ri++) for (int ci = 0; ci < {cn}; ci++) s[ri][ci] = {init};")
    em.line(f"for (int kk = 0; kk < {k}; kk++) {{")
    em.depth += 1
    em.line(f"{ct} bv[{cn}];")
    em.line(f"for (int ci = 0; ci < {cn}; ci++) bv[ci] = ({ct}){em.ty.to_compute(f'{b}[kk * {n} + lid + {L} * ci]', bt)};")
    em.line(f"for (int ri = 0; ri < {rb}; ri++) {{")
    em.line(f"    {ct} av = ({ct}){em.ty.to_compute(f'{a}[(i0 + ri) * {k} + kk]', at)};")
    em.line(f"    for (int ci = 0; ci < {cn}; ci++) s[ri][ci] += av * bv[ci];")
    em.line("}")
    em.depth -= 1
    em.line("}")
    em.line(f"for (int ri = 0; ri < {rb}; ri++) for (int ci = 0; ci < {cn}; ci++) "
            f"{r}[(i0 + ri) * {n} + lid + {L} * ci] = {em.ty.from_compute('s[ri][ci]', rt)};")
    em.depth -= 1
    em.line("}")


# ------------------------------------------------------------------ atomics
def _atomic_stmt(em, op, kind: str | None, t, p: str, v: str, cmp: str | None, out: str) -> None:
    """`out = old value` after the atomic update of *p: the dialect's own atomic when it has one
    (dialect.atomic_rmw), else a compare-and-swap loop on the bit pattern."""
    c, u, w = em.ctype(t), em.ty.utype(t), width(element_of(t))
    if w not in (32, 64):
        raise UnsupportedError(f"{w}-bit atomics are not supported by the {em.d.name} backend",
                               loc=op_location(op), hint="use 32- or 64-bit data for atomics")
    q = f"(({em._ptr_type(u)}){p})"
    bits = lambda x: f"KY_BITCAST({u}, {c}, {x})"   # noqa: E731
    if cmp is not None:
        em.line(f"{out} = KY_BITCAST({c}, {u}, {em.d.atomic_cas(w, q, bits(cmp), bits(v))});")
        return
    native = em.d.atomic_rmw(kind, c, p, v)
    if native is not None:
        em.line(f"{out} = {native};")
        return
    new = {"fadd": f"(_o + {v})", "and": f"(_o & {v})", "or": f"(_o | {v})", "xor": f"(_o ^ {v})",
           "xchg": f"({v})", "max": f"(({v}) > _o ? ({v}) : _o)", "min": f"(({v}) < _o ? ({v}) : _o)",
           "umax": f"(({u})({v}) > ({u})_o ? ({v}) : _o)", "umin": f"(({u})({v}) < ({u})_o ? ({v}) : _o)",
           "add": f"(_o + {v})" if is_float(element_of(t)) else f"(({c})(({u})_o + ({u})({v})))"}[kind]
    em.line("{")
    em.line(f"    {u} _ob = *{q}, _seen;")
    em.line(f"    {c} _o;")
    em.line(f"    while (1) {{ _o = KY_BITCAST({c}, {u}, _ob); {c} _n = {new}; "
            f"_seen = {em.d.atomic_cas(w, q, '_ob', bits('_n'))}; if (_seen == _ob) break; _ob = _seen; }}")
    em.line(f"    {out} = _o;")
    em.line("}")


def emit_atomic(em, op) -> None:
    r = op.results[0]
    shape = shape_of(r.type)
    c = em.ctype(r.type)
    kind = None if op.name == "ky.atomic_cas" else op.kind.data
    if not shape:
        b = _scratch(em, 0, c)
        with em.item():
            em.note(reads=["G"], writes=["G", b])
            em.line("if (lid == 0) {")
            em.depth += 1
            cond = f"{em.sname(op.mask)}" if op.name != "ky.atomic_cas" and op.mask is not None else "1"
            em.line(f"{c} _old = ({c})0;")
            em.line(f"if ({cond}) {{")
            cmp = em.sname(op.cmp) if kind is None else None
            _atomic_stmt(em, op, kind, r.type, em.sname(op.ptr), em.sname(op.val), cmp, "_old")
            em.line("}")
            em.line(f"{b}[0] = _old;")
            em.depth -= 1
            em.line("}")
        em.barrier()                         # lane 0's old value, to every lane
        em.line(f"{c} {em.sname(r)} = {b}[0];")
        em.note(reads=[b])
        return
    with em.item():
        em.note(reads=["G"], writes=["G"])
        idx = em.open_lanes(shape)
        em.line(f"{c} _old = ({c})0;")
        cond = em.ref(op.mask, idx) if kind is not None and op.mask is not None else "1"
        em.line(f"if ({cond}) {{")
        cmp = em.ref(op.cmp, idx) if kind is None else None
        _atomic_stmt(em, op, kind, r.type, em.ref(op.ptr, idx), em.ref(op.val, idx), cmp, "_old")
        em.line("}")
        if list(r.uses):
            em.line(f"{em.aname(r)}[i] = _old;")
            em.note(writes=[em.aname(r)])
        em.close_lanes()


# ------------------------------------------------------------------ print and assert
def _fmt(em, t) -> tuple[str, callable]:
    c = em.ctype(t)
    if c in ("float", "double", "ky_f16", "ky_bf16"):
        cast = "(double)" if em.d.float64 else "(float)"
        return "%g", lambda x: f"{cast}{em.ty.to_compute(x, t)}"
    if c == "_Bool":
        return "%s", None
    if width(element_of(t)) == 64:
        f, cast = em.d.printf_int64()
        return f, lambda x: f"{cast}({x})"
    return "%d", lambda x: f"(int)({x})"


def emit_print(em, op) -> None:
    """Lane 0 prints `pid (x, y, z) prefix values` as one printf when the line is short (lines of
    concurrent programs do not interleave), else piece by piece."""
    reads = []
    fmt, args = ["pid (%d, %d, %d) "], ["px", "py", "pz"]
    fmt.append(op.prefix.data.replace("%", "%%"))
    for v in op.args:
        f, conv = _fmt(em, v.type)
        shape = shape_of(v.type)
        if not shape:
            elems = [(em.sname(v), "")]
        else:
            a, total = em.aname(v), math.prod(shape)
            reads.append(a)
            strides = [math.prod(shape[d:]) for d in range(len(shape))]
            elems = []
            for q in range(total):
                opens = "".join("[" for s in strides if q % s == 0)
                closes = "".join("]" for s in strides if (q + 1) % s == 0)
                sep = "" if q + 1 == total else ("\n" if closes else " ")
                elems.append((f"{a}[{q}]", (opens, closes + sep)))
        fmt.append(" ")
        for x, deco in elems:
            pre, post = deco if deco else ("", "")
            if f == "%s":
                fmt.append(pre + "%s" + post)
                args.append(f'(({x}) ? "True" : "False")')
            else:
                fmt.append(pre + f + post)
                args.append(conv(x))
    with em.item():
        em.note(reads=reads)
        _print_lines(em, fmt, args)


def _print_lines(em, fmt, args) -> None:
    em.line("if (lid == 0) {")
    em.depth += 1
    text = "".join(fmt) + "\n"
    if len(args) <= 64:
        em.line(f"printf({', '.join([c_string(text)] + args)});")
    else:   # long tiles: conversion by conversion
        pieces = text.split("%")
        em.line(f"printf({c_string(pieces[0])});")
        for p, a in zip(pieces[1:], args):
            conv_len = 1 if p[0] in "dgs%" else 3 if p.startswith("lld") else 2
            em.line(f"printf({c_string('%' + p[:conv_len])}, {a});")
            if p[conv_len:]:
                em.line(f"printf({c_string(p[conv_len:])});")
    if em.d.printf_prologue():
        em.line(em.d.printf_prologue())
    em.depth -= 1
    em.line("}")


def emit_assert(em, op) -> None:
    k = len(em.asserts)
    em.asserts.append((op_location(op) or "<unknown>", op.message.data))
    shape = shape_of(op.cond.type)
    fail = (f"if (lid == 0 && {em.d.atomic_cas(32, '((kyp_uint32_t)ky_err)', '(uint32_t)-1', f'(uint32_t){k}')}"
            f" == (uint32_t)-1) {{ ky_err[1] = px; ky_err[2] = py; ky_err[3] = pz; }}")
    em._ptr_type("uint32_t")
    if not shape:
        em.line(f"if (!{em.sname(op.cond)}) {{ {fail} return; }}")
        return
    flag = _scratch(em, 0, "int32_t")
    ok = em.fresh("ok")
    with em.item():
        em.note(writes=[flag])
        em.line(f"if (lid == 0) {flag}[0] = 0;")
    em.barrier()
    with em.item():
        em.line(f"_Bool {ok} = 1;")
        idx = em.open_lanes(shape)
        em.line(f"{ok} &= {em.ref(op.cond, idx)};")
        em.close_lanes()
    em.line(f"if (!{ok}) {flag}[0] = 1;")   # every lane that saw a failure writes the same 1
    em.barrier()
    em.line(f"if ({flag}[0]) {{ {fail} return; }}")
    em.note(reads=[flag])


HANDLERS = {
    "ky.reduce": lambda em, op: emit_fold(em, op, scan=False),
    "ky.scan": lambda em, op: emit_fold(em, op, scan=True),
    "ky.dot": emit_dot,
    "ky.atomic_rmw": emit_atomic,
    "ky.atomic_cas": emit_atomic,
    "ky.print": emit_print,
    "ky.assert": emit_assert,
}
