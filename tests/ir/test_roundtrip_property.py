"""Property: random element-wise expression trees over random dtypes and shapes, built with the
ky/arith/math op constructors, verify, and print → parse → print gives the same text."""

from __future__ import annotations

import math as pymath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.dialects import arith, func, math
from xdsl.dialects.builtin import (
    BFloat16Type,
    FileLineColLoc,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
)
from xdsl.ir import Block, Region

from kaiyuan.ir import arith_ext, ky, parse_module, print_module, verify_module

INTS = [IntegerType(8), IntegerType(16), IntegerType(32), IntegerType(64)]
FLOATS = [Float16Type(), BFloat16Type(), Float32Type(), Float64Type()]
SHAPES = [(), (4,), (2, 8), (2, 2, 4)]

INT_BIN = [arith.AddiOp, arith.SubiOp, arith.MuliOp, arith.AndIOp, arith.OrIOp, arith.XOrIOp, arith.MaxSIOp,
           arith.MinUIOp, arith.DivSIOp, arith.RemUIOp, arith.ShLIOp, arith.ShRSIOp]
FLOAT_BIN = [arith.AddfOp, arith.SubfOp, arith.MulfOp, arith.DivfOp, arith.MaximumfOp, arith.MinimumfOp,
             arith_ext.RemFOp, math.PowFOp]
FLOAT_UN = [arith.NegfOp, math.ExpOp, math.SqrtOp, math.TanhOp, math.FloorOp, math.AbsFOp]

step = st.tuples(st.sampled_from(["bin", "un", "cmp", "cast", "const"]), st.integers(0, 10**6),
                 st.integers(0, 10**6), st.integers(0, 10**6))


class _Gen:
    def __init__(self, shape, elem, seed_line):
        self.shape = shape
        self.pool: dict = {}  # element type → values
        self.block = Block(arg_types=[ky.PtrType(elem), IntegerType(32)])
        self.line = seed_line
        ptr = self.block.args[0]
        if shape:
            n = pymath.prod(shape)
            r = self.add(ky.MakeRangeOp(0, n)).result
            if len(shape) > 1:
                r = self.add(ky.ReshapeOp(r, list(shape))).result
            ptr = self.add(ky.AddPtrOp(self.add(ky.SplatOp(ptr, list(shape))).result, r)).result
        self.ptr = ptr
        self.put(self.add(ky.LoadOp(ptr)).result)

    def add(self, op):
        self.line += 1
        if self.line % 3:
            op.location = FileLineColLoc(StringAttr("gen.py"), IntAttr(self.line), IntAttr(1))
        self.block.add_op(op)
        return op

    def put(self, v):
        self.pool.setdefault(ky.element_of(v.type), []).append(v)
        return v

    def scalar_const(self, elem, k):
        attr = FloatAttr(float(k % 7) + 0.5, elem) if elem in FLOATS else IntegerAttr(k % 100, elem)
        c = self.add(arith.ConstantOp(attr)).result
        return c if not self.shape else self.add(ky.SplatOp(c, list(self.shape))).result

    def step(self, kind, a, b, c):
        elems = list(self.pool)
        elem = elems[a % len(elems)]
        vals = self.pool[elem]
        x, y = vals[b % len(vals)], vals[c % len(vals)]
        is_f = elem in FLOATS
        tile = ky.with_element
        if kind == "bin":
            cls = (FLOAT_BIN if is_f else INT_BIN)[b % (len(FLOAT_BIN) if is_f else len(INT_BIN))]
            self.put(self.add(cls(x, y)).result)
        elif kind == "un" and is_f:
            self.put(self.add(FLOAT_UN[c % len(FLOAT_UN)](x)).result)
        elif kind == "cmp":
            cmp = (arith_ext.CmpfOp(x, y, ["olt", "oge", "une", "oeq"][c % 4]) if is_f
                   else arith_ext.CmpiOp(x, y, ["slt", "ult", "eq", "sge"][c % 4]))
            cond = self.add(cmp).result
            self.add(arith_ext.SelectOp(cond, x, y))
            self.put(self.block.last_op.result)
        elif kind == "cast":
            target = (FLOATS + INTS)[c % 8]
            if target == elem:
                return
            t = tile(x.type, target)
            if is_f and target in FLOATS:
                if {elem, target} == {Float16Type(), BFloat16Type()}:
                    return
                wider = target.bitwidth > elem.bitwidth
                op = (arith.ExtFOp if wider else arith.TruncFOp)(x, t)
            elif is_f:
                op = (arith_ext.FPToSIOp if b % 2 else arith_ext.FPToUIOp)(x, t)
            elif target in FLOATS:
                op = (arith_ext.SIToFPOp if b % 2 else arith_ext.UIToFPOp)(x, t)
            else:
                wider = target.width.data > elem.width.data
                op = (arith_ext.ExtSIOp if wider and b % 2 else arith_ext.ExtUIOp if wider else arith_ext.TruncIOp)(x, t)
            self.put(self.add(op).result)
        elif kind == "const":
            self.put(self.scalar_const(elem, b))

    def finish(self, name):
        elem = ky.element_of(self.ptr.type).pointee
        vals = self.pool.get(elem)
        self.add(ky.StoreOp(self.ptr, vals[-1]))
        self.add(func.ReturnOp())
        f = func.FuncOp(name, ([a.type for a in self.block.args], []), Region([self.block]))
        m = ModuleOp([f])
        m.attributes["ky.version"] = StringAttr(ky.VERSION)
        return m


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(SHAPES), elem=st.sampled_from(INTS + FLOATS), steps=st.lists(step, max_size=14),
       line=st.integers(1, 5000))
def test_random_expression_modules_verify_and_round_trip(shape, elem, steps, line):
    g = _Gen(shape, elem, line)
    for s in steps:
        g.step(*s)
    module = g.finish("rand")
    verify_module(module)
    text = print_module(module)
    again = print_module(parse_module(text))
    assert again == text
    assert print_module(parse_module(again)) == again


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=3),
       elem=st.sampled_from(INTS + FLOATS))
def test_tile_shaping_ops_round_trip(shape, elem):
    blk = Block(arg_types=[ky.PtrType(elem)])
    n = pymath.prod(shape)
    ops = [ky.MakeRangeOp(0, n)]
    ops.append(ky.ReshapeOp(ops[-1].result, shape))
    ops.append(ky.ExpandDimsOp(ops[-1].result, 0))
    tr = ky.TransOp(ops[-1].result, list(range(len(shape) + 1))[::-1])
    ptr = ky.SplatOp(blk.args[0], ky.shape_of(tr.result.type))
    ap = ky.AddPtrOp(ptr.result, tr.result)
    ld = ky.LoadOp(ap.result)
    ops += [tr, ptr, ap, ld, ky.StoreOp(ap.result, ld.result), func.ReturnOp()]
    for op in ops:
        blk.add_op(op)
    module = ModuleOp([func.FuncOp("shape", ([blk.args[0].type], []), Region([blk]))])
    verify_module(module)
    text = print_module(module)
    assert print_module(parse_module(text)) == text
