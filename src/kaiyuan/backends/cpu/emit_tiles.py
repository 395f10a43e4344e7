"""Tile ops that are not element-wise: reduce, scan, dot, atomics, print, assert.

Reductions inline the combiner region as scalar C. Along the last axis the loop carries a scalar
accumulator; a single-op combiner (addf, maxsi, maximumf, ...) becomes
`#pragma omp simd reduction(op:acc)` so gcc vectorises it — maximumf/minimumf use the prelude's
declared reductions ky_maxf/ky_minf, whose lane combine keeps NaN (OpenMP's max would drop it). Along other
axes the combiner runs over whole rows, vectorised across the kept inner dimension.
"""

from __future__ import annotations

import math

from xdsl.ir import BlockArgument

from ...compiler.cfamily.ctext import c_string, flat
from ...compiler.cfamily.ctype import compute_type, ctype, from_compute, to_compute, utype, width
from ...compiler.cfamily.fusion import simple_combiner
from ...compiler.cfamily.support import combine
from ...ir.ky import element_of, shape_of
from ...ir.text import op_location
from . import direct
from .dot import KINDS


def emit_fold(em, op, scan: bool) -> None:
    shape = shape_of(op.srcs[0].type)
    ax = op.axis.value.data
    n, outer, inner = shape[ax], math.prod(shape[:ax]), math.prod(shape[ax + 1:])
    srcs = [em.aname(s) for s in op.srcs]
    types = [ctype(s.type) for s in op.srcs]
    if not scan and not shape_of(op.res[0].type):
        outs = [em.sname(r) for r in op.res]
        for t, o in zip(types, outs):
            em.line(f"{t} {o};")
        at = [lambda o, q, name=o: name for o in outs]
    else:
        dst = [em.aname(r) for r in op.res]
        at = [lambda o, q, j=None, name=d: f"{name}[{o}]" for d in dst]
    em.line(f"for (int o = 0; o < {outer}; o++) {{")
    em.depth += 1
    if inner == 1:
        accs = [em.fresh("acc") for _ in srcs]
        for t, a, s in zip(types, accs, srcs):
            em.line(f"{t} {a} = {s}[o * {n}];")
        red = None if scan else simple_combiner(op)
        if scan:
            for d, a in zip(op.res, accs):
                em.line(f"{em.aname(d)}[o * {n}] = {a};")
        if red:
            em.line(f"#pragma omp simd reduction({red}:{accs[0]})")
        em.line(f"for (int j = 1; j < {n}; j++) {{")
        em.depth += 1
        xs = [em.fresh("x") for _ in srcs]
        for t, x, s in zip(types, xs, srcs):
            em.line(f"{t} {x} = {s}[o * {n} + j];")
        combine(em, op, accs, xs)
        if scan:
            for d, a in zip(op.res, accs):
                em.line(f"{em.aname(d)}[o * {n} + j] = {a};")
        em.depth -= 1
        em.line("}")
        if not scan:
            for k, a in enumerate(accs):
                em.line(f"{at[k]('o', None)} = {a};")
    else:
        dst = [em.aname(r) for r in op.res]
        rowstride = n * inner
        res_row = (lambda j: f"o * {rowstride} + {j} * {inner} + q") if scan else (lambda j: f"o * {inner} + q")
        em.line("#pragma omp simd")
        em.line(f"for (int q = 0; q < {inner}; q++) {{")
        for d, s in zip(dst, srcs):
            em.line(f"    {d}[{res_row(0)}] = {s}[o * {rowstride} + q];")
        em.line("}")
        em.line(f"for (int j = 1; j < {n}; j++) {{")
        em.depth += 1
        em.line("#pragma omp simd")
        em.line(f"for (int q = 0; q < {inner}; q++) {{")
        em.depth += 1
        accs, xs = [em.fresh("acc") for _ in srcs], [em.fresh("x") for _ in srcs]
        prev = (lambda: res_row("(j - 1)")) if scan else (lambda: res_row("j"))
        for t, a, x, d, s in zip(types, accs, xs, dst, srcs):
            em.line(f"{t} {a} = {d}[{prev()}];")
            em.line(f"{t} {x} = {s}[o * {rowstride} + j * {inner} + q];")
        combine(em, op, accs, xs)
        for d, a in zip(dst, accs):
            em.line(f"{d}[{res_row('j')}] = {a};")
        em.depth -= 1
        em.line("}")
        em.depth -= 1
        em.line("}")
    em.depth -= 1
    em.line("}")


def _dot_in_place(em, op) -> bool:
    """The dot may write its result over its accumulator's storage: the accumulator is read by
    nothing else and is defined once per execution of the dot (in the dot's block, or an
    argument of that block) — in `acc = kl.dot(a, b, acc)` inside a K loop, the loop-carried
    tile is then updated in place instead of copied every iteration."""
    acc = op.acc
    if len(list(acc.uses)) != 1:
        return False
    if isinstance(acc, BlockArgument):
        return acc.block is op.parent_block()
    return acc.owner.parent_block() is op.parent_block()


def _dot_operand(em, v, ct: str, count: int) -> str:
    """A tile as an array of the compute type `ct`: itself, or a converted copy."""
    name = em.aname(v)
    if ctype(v.type) == ct:
        return name
    tmp = em.fresh("dk")
    em.decls[tmp] = (ct, count)
    em.line("#pragma omp simd")
    em.line(f"for (int q = 0; q < {count}; q++) {tmp}[q] = ({ct}){to_compute(f'{name}[q]', v.type)};")
    return tmp


def emit_dot(em, op) -> None:
    """Register-blocked micro-kernels (dot.py) for float/double/int32 accumulators; inputs of
    another type are converted into compute-type copies first, loads the plan marks direct are
    read in place when their mask allows (direct.py). Other accumulators (int64, ...) take the
    plain i-k-j loop."""
    (m, k), (_, n) = shape_of(op.a.type), shape_of(op.b.type)
    rt = op.result.type
    ct = compute_type(rt)
    zero = direct.zero_acc(op.acc)
    if not zero and _dot_in_place(em, op):
        em.alias[op.result] = em.aname(op.acc)
    kind = KINDS.get(ct)
    if kind is None:
        return _emit_dot_loop(em, op)
    a, b, family = op.a.owner, op.b.owner, ""
    if a in em.plan.direct:
        a, lda, acs = direct.operand(em, a, "a", False)
    elif direct.transposed_a(op.a):
        a, lda, acs = em.aname(a.src), "1", str(m)
    else:
        a, lda, acs = _dot_operand(em, op.a, ct, m * k), str(k), "1"
    if b in em.plan.direct:
        table = em.plan.direct[b][2]
        b, ldb, _ = direct.operand(em, b, "b", table)
        family = "r" if table else ""
    else:
        b, ldb = _dot_operand(em, op.b, ct, k * n), str(n)
    em.dot_kinds.add(kind + family)
    cin = "0" if zero else _dot_operand(em, op.acc, ct, m * n)   # "0": start from zero
    r = em.aname(op.result)
    out = r if ctype(rt) == ct else cin      # else cin is a compute-type copy: accumulate there
    em.line(f"ky_dot{family}_{kind}({m}, {n}, {k}, {a}, {lda}, {acs}, {b}, {ldb}, {cin}, {out});")
    if out != r:
        em.line("#pragma omp simd")
        em.line(f"for (int q = 0; q < {m * n}; q++) {r}[q] = {from_compute(f'{out}[q]', rt)};")


def _emit_dot_loop(em, op) -> None:
    (m, k), (_, n) = shape_of(op.a.type), shape_of(op.b.type)
    a, b, c, r = em.aname(op.a), em.aname(op.b), em.aname(op.acc), em.aname(op.result)
    at, rt = op.a.type, op.result.type
    ct = compute_type(rt)
    fma = lambda x, y, z: f"({z} + ({ct}){x} * ({ct}){y})"   # noqa: E731
    em.line(f"for (int i = 0; i < {m}; i++) {{")
    em.line(f"    {ct} row[{n}] __attribute__((aligned(64)));")
    em.line(f"    for (int j = 0; j < {n}; j++) row[j] = {to_compute(f'{c}[i * {n} + j]', rt)};")
    em.line(f"    for (int kk = 0; kk < {k}; kk++) {{")
    em.line(f"        {ct} aik = ({ct}){to_compute(f'{a}[i * {k} + kk]', at)};")
    em.line("        #pragma omp simd")
    em.line(f"        for (int j = 0; j < {n}; j++) row[j] = "
            f"{fma('aik', f'({ct})' + to_compute(f'{b}[kk * {n} + j]', at), 'row[j]')};")
    em.line("    }")
    em.line(f"    for (int j = 0; j < {n}; j++) {r}[i * {n} + j] = {from_compute('row[j]', rt)};")
    em.line("}")


def _atomic_expr(kind: str, t, p: str, v: str) -> str:
    T, U = ctype(t), utype(t)
    order = "__ATOMIC_ACQ_REL"
    if compute_type(t) in ("float", "double") :
        x, old = to_compute(v, t), to_compute("_old", t)
        new = {"add": f"{old} + {x}", "fadd": f"{old} + {x}", "max": f"({x} > {old} ? {x} : {old})",
               "min": f"({x} < {old} ? {x} : {old})", "xchg": x}[kind]
        return f"KY_CAS_LOOP({T}, {U}, {p}, {from_compute(new, t)})"
    if kind in ("add", "and", "or", "xor"):
        return f"__atomic_fetch_{kind}({p}, {v}, {order})"
    if kind == "xchg":
        return f"__atomic_exchange_n({p}, {v}, {order})"
    cmp = {"max": (">", T), "min": ("<", T), "umax": (">", U), "umin": ("<", U)}[kind]
    return f"KY_CAS_LOOP({T}, {U}, {p}, (({cmp[1]}){v} {cmp[0]} ({cmp[1]})_old ? ({T})({v}) : _old))"


def emit_atomic(em, op) -> None:
    r = op.results[0]
    shape = shape_of(r.type)
    idx = em.open_loops(shape, simd=False, prefix="u")
    p = em.ref(op.ptr, idx)
    if op.name == "ky.atomic_cas":
        e = f"KY_CAS({ctype(r.type)}, {utype(r.type)}, {p}, {em.ref(op.cmp, idx)}, {em.ref(op.val, idx)})"
    else:
        e = _atomic_expr(op.kind.data, r.type, p, em.ref(op.val, idx))
        if op.mask is not None:
            e = f"({em.ref(op.mask, idx)} ? {e} : ({ctype(r.type)})0)"
    if shape:
        em.line(f"{em.aname(r)}[{flat(idx, shape)}] = {e};")
    else:
        em.line(f"{ctype(r.type)} {em.sname(r)} = {e};")
    em.close_loops(shape)


def _fmt(t) -> tuple[str, str]:
    c = ctype(t)
    if c in ("float", "double", "_Float16", "ky_bf16"):
        return "%g", "(double)" + ("" if c != "ky_bf16" else "ky_bf2f")
    if c == "_Bool":
        return "%s", ""
    return "%lld", "(long long)"


def emit_print(em, op) -> None:
    em.line("#pragma omp critical(ky_print)")
    em.line("{")
    em.depth += 1
    em.line(f'printf("pid (%d, %d, %d) %s", px, py, pz, {c_string(op.prefix.data)});')
    for v in op.args:
        fmt, conv = _fmt(v.type)
        def val(x):
            return f'({x}) ? "True" : "False"' if fmt == "%s" else f"{conv}({x})"
        if not shape_of(v.type):
            em.line(f'printf(" {fmt}", {val(em.sname(v))});')
            continue
        shape, a = shape_of(v.type), em.aname(v)
        em.line(f"for (int k = 0; k < {math.prod(shape)}; k++) {{")
        strides = [math.prod(shape[d:]) for d in range(len(shape))]
        em.line(f'    printf("%s", k == 0 ? " " : "");')
        for s in strides:
            em.line(f'    if (k % {s} == 0) printf("[");')
        em.line(f'    printf("{fmt}", {val(f"{a}[k]")});')
        em.line(f'    int closes = 0;')
        for s in strides:
            em.line(f'    if ((k + 1) % {s} == 0) {{ printf("]"); closes++; }}')
        em.line(f'    if (k + 1 < {math.prod(shape)}) printf(closes ? "\\n" : " ");')
        em.line("}")
    em.line('printf("\\n"); fflush(stdout);')
    em.depth -= 1
    em.line("}")


def emit_assert(em, op) -> None:
    k = len(em.asserts)
    em.asserts.append((op_location(op) or "<unknown>", op.message.data))
    shape = shape_of(op.cond.type)
    if not shape:
        em.line(f"if (!{em.sname(op.cond)}) {{ ky_fail({k}, px, py, pz); return; }}")
        return
    ok = em.fresh("ok")
    em.line(f"_Bool {ok} = 1;")
    idx = em.open_loops(shape, simd=False, prefix="u")
    em.line(f"{ok} &= {em.ref(op.cond, idx)};")
    em.close_loops(shape)
    em.line(f"if (!{ok}) {{ ky_fail({k}, px, py, pz); return; }}")


HANDLERS = {
    "ky.reduce": lambda em, op: emit_fold(em, op, scan=False),
    "ky.scan": lambda em, op: emit_fold(em, op, scan=True),
    "ky.dot": emit_dot,
    "ky.atomic_rmw": emit_atomic,
    "ky.atomic_cas": emit_atomic,
    "ky.print": emit_print,
    "ky.assert": emit_assert,
}


# ------------------------------------------------------------ reductions fused into a group's loop
# A reduction fused into a loop keeps LANES partial accumulators, one per lane of the loop's
# inner `omp simd` level (the loop is split into blocks of LANES): each lane folds its own
# elements, so the accumulators stay in a vector register. gcc's `omp simd reduction` clause
# keeps its private copies in memory and reloads them every iteration (measured: ~15% of a
# softmax); the clause is only used when the loop length is not a multiple of LANES.
LANES = 16
_IDENTITY = {"+": "0", "*": "1", "&": "~0", "|": "0", "^": "0"}


def _acc(em, op):
    return f"racc{em.vid(op.results[0])}"


def lane_blocked(n: int) -> bool:
    return n >= LANES and n % LANES == 0


def _lane(em, acc: str) -> str:
    return f"{acc}_p[{em.lane_index}]" if em.lane_index else acc


def open_fused_reduce(em, op) -> str:
    """Declare the accumulator(s) before the group's loop; return the loop's `reduction(...)`
    clauses (none when the loop is lane-blocked)."""
    red, t = simple_combiner(op), op.srcs[0].type
    acc = _acc(em, op)
    c = ctype(t)
    init = _init(red, t, c)
    em.line(f"{c} {acc} = {init};")
    nan = red.startswith("ky_")
    if nan:
        em.line(f"int {acc}_nan = 0;")
    if lane_blocked(shape_of(t)[0]):
        em.line(f"{c} {acc}_p[{LANES}] __attribute__((aligned(64)));")
        if nan:
            em.line(f"int {acc}_nan_p[{LANES}] __attribute__((aligned(64)));")
        em.line(f"for (int l = 0; l < {LANES}; l++) {{ {acc}_p[l] = {init};{f' {acc}_nan_p[l] = 0;' if nan else ''} }}")
        return ""
    if nan:
        # NaN-propagating max/min, vectorised: a plain max/min reduction (vmaxps) plus a
        # separate "saw a NaN" flag, instead of a declared reduction gcc cannot vectorise well.
        return f"reduction({red[3:6]}:{acc}) reduction(|:{acc}_nan)"
    return f"reduction({red}:{acc})"


def _init(red, t, c) -> str:
    if red in _IDENTITY:
        return f"({c}){_IDENTITY[red]}"
    if c in ("float", "double"):
        return "INFINITY" if "min" in red else "-INFINITY"
    w = width(element_of(t))
    return f"(({c})1 << {w - 1})" if red == "max" else f"(({c})~((({utype(t)})1) << {w - 1}))"


def fused_reduce_step(em, op, idx) -> None:
    acc, x = _acc(em, op), em.fresh("x")
    em.line(f"{ctype(op.srcs[0].type)} {x} = {em.ref(op.srcs[0], idx)};")
    _fold_into(em, op, _lane(em, acc), x, _lane(em, acc + "_nan"))


def _fold_into(em, op, acc: str, x: str, nan: str) -> None:
    red = simple_combiner(op)
    if red.startswith("ky_"):
        cmp = ">" if red.startswith("ky_max") else "<"
        em.line(f"{acc} = {x} {cmp} {acc} ? {x} : {acc};")
        em.line(f"{nan} |= {x} != {x};")
        return
    combine(em, op, [acc], [x])


def close_fused_reduce(em, op) -> None:
    acc = _acc(em, op)
    nan = simple_combiner(op).startswith("ky_")
    if lane_blocked(shape_of(op.srcs[0].type)[0]):
        em.line(f"for (int l = 0; l < {LANES}; l++) {{")
        em.depth += 1
        _fold_into(em, op, acc, f"{acc}_p[l]", f"{acc}_nan")
        if nan:
            em.line(f"{acc}_nan |= {acc}_nan_p[l];")
        em.depth -= 1
        em.line("}")
    if nan:
        em.line(f"if ({acc}_nan) {acc} = NAN;")
    em.line(f"{ctype(op.results[0].type)} {em.sname(op.results[0])} = {acc};")
