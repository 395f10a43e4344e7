"""Fusion passes: rewrite operator patterns onto kaiyuan's fused library operators.

    fold_conv_batch_norm  Conv → BatchNormalization (inference)  ⇒  Conv with rescaled weights.
    fuse_conv_epilogue  Conv [+ r] [→ ReLU | GELU | SiLU]  ⇒  kaiyuan.Conv(x, W, b, r) {activation}:
                     the residual add and activation run in the convolution's store.
    fuse_layer_norm  x - mean, / sqrt(var + eps), · γ, + β over the last axis  ⇒  LayerNormalization.

    fuse_attention   MatMul(q·s1, kᵀ·s2) [/ c] [+ mask] → Softmax(-1) [→ Where(IsNaN(p), 0, p)]
                     → MatMul(p, v)  ⇒  kaiyuan.Attention(q, k, v[, mask]) {scale}: one
                     flash-attention kernel; the score matrix is never written to memory.
    fuse_linear      MatMul(x, W) [+ b] [→ GELU | ReLU | SiLU] [+ r]  ⇒  kaiyuan.Linear(x, W, b, r)
                     {activation}: one GEMM whose epilogue adds the bias, applies the activation
                     and adds the residual while the tile is still in registers.
    fuse_sibling_linears  Linears reading one x (Q, K, V)  ⇒  one Linear over the weights side by
                     side, sliced per consumer (strided views in the plan).
    pack_weights     Linear or MatMul by a constant W (K, N >= 64)  ⇒  Linear with W packed into
                     panels of 64 columns (`gemm.pack_b`), read by each GEMM tile as one stream.

Both run on specialised graphs (static shapes) after folding and simplification, so constants
are folded and the shapes they check are known. A pattern is rewritten only when every
intermediate value has no other user (its value must not be needed elsewhere), and the fused
op is placed where the pattern's last op was, where all its operands are already defined.
Ops left without users are erased by the DCE that follows.
"""

from __future__ import annotations

import math
from contextvars import ContextVar

import numpy as np
from xdsl.ir import Operation, SSAValue

from .attributes import tensor_type, type_dtype, type_shape
from xdsl.dialects.builtin import NoneType

from .dialect import NoneOp, is_absent, make_op, node_name, op_type
from .dialect import attrs as op_attrs
from .model import GraphModel
from .rewrite import constant_value

GELU_TOL = 1e-6
FUSIONS: ContextVar = ContextVar("kaiyuan_fusions", default=None)


def note(kind: str, fused: Operation, ops: list[Operation]) -> None:
    """Tell whoever listens (FUSIONS, a list: `kaiyuan compile --dump-ir`) which nodes became one."""
    log = FUSIONS.get()
    if log is not None:
        names = ", ".join(node_name(o) for o in ops if o is not None)
        log.append(f"{kind} '{node_name(fused)}' <- {names}")


# ----------------------------------------------------------------------- matching helpers
def producer(v: SSAValue | None, kind: str) -> Operation | None:
    """The op defining v when it is an ai.onnx `kind` op."""
    if v is None or not isinstance(v.owner, Operation):
        return None
    return v.owner if op_type(v.owner) == ("", kind) else None


def users(v: SSAValue) -> list[Operation]:
    return [u.operation for u in v.uses]


def only_user(v: SSAValue, kind: str) -> Operation | None:
    """The single user of v when it is an ai.onnx `kind` op (and v has no other user)."""
    us = users(v)
    if len(us) == 1 and op_type(us[0]) == ("", kind):
        return us[0]
    return None


def scalar(model: GraphModel, v: SSAValue) -> float | None:
    c = constant_value(model, v)
    if c is None or c.size != 1:
        return None
    return float(np.asarray(c).reshape(()))


def other_operand(op: Operation, v: SSAValue) -> SSAValue:
    a, b = op.operands
    return b if a is v else a


def is_returned(model: GraphModel, v: SSAValue) -> bool:
    return any(r is v for r in model.returned())


def place(model: GraphModel, new: Operation, last: Operation) -> SSAValue:
    """Insert `new` before `last` and send `last`'s users to new's result."""
    last.parent_block().insert_op_before(new, last)
    out = new.results[0]
    if last.results[0].name_hint:
        out.name_hint = last.results[0].name_hint
    last.results[0].replace_all_uses_with(out)
    return out


def absent(model: GraphModel, before: Operation) -> SSAValue:
    """A `kyg.none` value (an absent optional operand) defined just before `before`."""
    op = NoneOp.create(result_types=[NoneType()])
    before.parent_block().insert_op_before(op, before)
    return op.results[0]


# ------------------------------------------------------------------------------- linear
def match_gelu(model: GraphModel, z: SSAValue) -> Operation | None:
    """The last op of z * 0.5 * (1 + erf(z / sqrt 2)) (any association of the two Muls), or None."""
    us = users(z)
    if len(us) != 2:
        return None
    div = next((u for u in us if op_type(u) == ("", "Div") and u.operands[0] is z), None)
    mul = next((u for u in us if op_type(u) == ("", "Mul")), None)
    if div is None or mul is None:
        return None
    c = scalar(model, div.operands[1])
    if c is None or abs(c - math.sqrt(2.0)) > 1e-5:
        return None
    erf = only_user(div.results[0], "Erf")
    add = erf and only_user(erf.results[0], "Add")
    if add is None or scalar(model, other_operand(add, erf.results[0])) != 1.0:
        return None
    t = add.results[0]
    half = lambda op, v: op is not None and abs((scalar(model, other_operand(op, v)) or 0) - 0.5) < GELU_TOL  # noqa: E731
    # form A: Mul(z, t) then Mul(., 0.5);  form B: Mul(z, 0.5) then Mul(., t)
    if other_operand(mul, z) is t:
        last = only_user(mul.results[0], "Mul")
        return last if half(last, mul.results[0]) else None
    if half(mul, z):
        last = only_user(mul.results[0], "Mul")
        if last is not None and other_operand(last, mul.results[0]) is t and only_user(t, "Mul") is last:
            return last
    return None


def _activation(model: GraphModel, z: SSAValue):
    """(activation name, last op) of an activation applied to z, or ("", None)."""
    relu = only_user(z, "Relu")
    if relu is not None:
        return "relu", relu
    gelu = match_gelu(model, z)
    if gelu is not None:
        return "gelu", gelu
    us = users(z)
    if len(us) == 2:
        sig = next((u for u in us if op_type(u) == ("", "Sigmoid")), None)
        mul = next((u for u in us if op_type(u) == ("", "Mul")), None)
        if sig is not None and mul is not None and other_operand(mul, z) is sig.results[0] \
                and len(users(sig.results[0])) == 1:
            return "silu", mul
    return "", None


def fuse_linear(model: GraphModel) -> GraphModel:
    """MatMul by a 2-D constant, with its bias, activation and residual add → kaiyuan.Linear."""
    model = model.copy()
    for mm in [op for op in model.block.ops if op_type(op) == ("", "MatMul")]:
        x, w = mm.operands
        wshape, xshape = type_shape(w.type), type_shape(x.type)
        if constant_value(model, w) is None or len(wshape) != 2 or len(xshape) < 2:
            continue
        last, z = mm, mm.results[0]
        chain = [mm]
        bias = residual = None
        add = only_user(z, "Add") if not is_returned(model, z) else None
        if add is not None:
            b = other_operand(add, z)
            if constant_value(model, b) is not None and type_shape(b.type) == (wshape[1],):
                bias, last, z = b, add, add.results[0]
                chain.append(add)
        act = ""
        if not is_returned(model, z):
            act, act_last = _activation(model, z)
            if act_last is not None:
                chain.extend(_between(z, act_last))
                last, z = act_last, act_last.results[0]
        add = only_user(z, "Add") if not is_returned(model, z) else None
        if add is not None:
            r = other_operand(add, z)
            if r.type == z.type and r is not z:
                residual, last, z = r, add, add.results[0]
                chain.append(add)
        if last is mm:
            continue
        none = lambda: absent(model, last)  # noqa: E731
        operands = [x, w, bias if bias is not None else none()]
        if residual is not None:
            operands.append(residual)
        fused = make_op("Linear", operands, [z.type], {"activation": act} if act else {},
                        node_name=node_name(last), domain="kaiyuan")
        place(model, fused, last)
        note("Linear" + (f"+{act}" if act else ""), fused, chain)
    return model


def _between(z: SSAValue, last: Operation) -> list[Operation]:
    """The ops from z's users up to `last` (a small activation subgraph), in block order."""
    seen, todo = [], [u for u in users(z)]
    while todo:
        op = todo.pop()
        if op in seen:
            continue
        seen.append(op)
        if op is not last:
            todo.extend(u for r in op.results for u in users(r))
    block_order = {op: i for i, op in enumerate(last.parent_block().ops)}
    return sorted(seen, key=lambda o: block_order.get(o, 0))


# ---------------------------------------------------------------------------- attention
def _scaled(model: GraphModel, v: SSAValue):
    """(value, factor): v = Mul(u, c) with a scalar constant c → (u, c); else (v, 1)."""
    mul = producer(v, "Mul")
    if mul is not None and len(users(v)) == 1:
        for a, b in (mul.operands, mul.operands[::-1]):
            c = scalar(model, b)
            if c is not None:
                return a, c
    return v, 1.0


def _key_from_transposed(model: GraphModel, kt: SSAValue, before: Operation) -> SSAValue | None:
    """K ([.., Lk, D]) from Kᵀ ([.., D, Lk]): the Transpose that made Kᵀ with its last two
    axes swapped back (or a new Transpose of Kᵀ)."""
    tr = producer(kt, "Transpose")
    rank = len(type_shape(kt.type))
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    if tr is not None and len(users(kt)) == 1:
        perm = op_attrs(tr).get("perm") or list(range(rank))[::-1]
        src, perm = tr.operands[0], [perm[i] for i in swap]
    else:
        src, perm = kt, swap
    shape = type_shape(src.type)
    out_shape = tuple(shape[p] for p in perm)
    op = make_op("Transpose", [src], [tensor_type(type_dtype(kt.type), out_shape)], {"perm": perm},
                 node_name=node_name(before) + "/key")
    before.parent_block().insert_op_before(op, before)
    return op.results[0]


def fuse_attention(model: GraphModel) -> GraphModel:
    """softmax(q kᵀ · scale + mask) v → kaiyuan.Attention (see the module docstring)."""
    model = model.copy()
    for sm in [op for op in model.block.ops if op_type(op) == ("", "Softmax")]:
        x = sm.operands[0]
        shape = type_shape(x.type)
        if len(shape) != 4 or op_attrs(sm).get("axis", -1) not in (-1, 3):
            continue
        mask = causal = None
        add = producer(x, "Add")
        where = producer(x, "Where")
        if add is not None and len(users(x)) == 1:
            for s, m in (add.operands, add.operands[::-1]):
                if producer(s, "MatMul") or producer(s, "Div") or producer(s, "Mul"):
                    x, mask = s, m
                    break
        elif where is not None and len(users(x)) == 1:
            found = _where_mask(model, where, shape)
            if found is None:
                continue
            x, mask, causal = found
        scale = 1.0
        div = producer(x, "Div")
        if div is not None and len(users(x)) == 1 and scalar(model, div.operands[1]):
            scale, x = 1.0 / scalar(model, div.operands[1]), div.operands[0]
        elif producer(x, "Mul") is not None and len(users(x)) == 1:
            x, scale = _scaled(model, x)
        mm = producer(x, "MatMul")
        if mm is None or len(users(x)) != 1:
            continue
        q, s1 = _scaled(model, mm.operands[0])
        kt, s2 = _scaled(model, mm.operands[1])
        p = sm.results[0]
        guard = _nan_guard(model, p)
        if guard is not None:
            p = guard.results[0]
        pv = only_user(p, "MatMul")
        if pv is None or pv.operands[0] is not p:
            continue
        v = pv.operands[1]
        if len(type_shape(q.type)) != 4 or len(type_shape(v.type)) != 4:
            continue
        k = _key_from_transposed(model, kt, pv)
        if isinstance(mask, np.ndarray):
            from .rewrite import insert_constant

            mask = insert_constant(model, mask, pv, node_name(pv) + "/mask")
        operands = [q, k, v] + ([mask] if mask is not None else [])
        attrs = {"scale": float(scale * s1 * s2)}
        if causal:
            attrs["causal"] = 1
        fused = make_op("Attention", operands, [pv.results[0].type], attrs, node_name=node_name(pv), domain="kaiyuan")
        place(model, fused, pv)
        note("Attention" + ("(causal)" if causal else ""), fused, [mm, add, where, sm, guard, pv])
    return model


def _where_mask(model: GraphModel, where: Operation, shape: tuple):
    """Scores masked by Where(c, fill, s) or Where(c, s, fill) with a constant condition c and a
    scalar fill (masked_fill): (s, None, True) when c is exactly the causal mask (the fused kernel
    skips those blocks), else (s, additive mask array, False); None when it is not that pattern."""
    c, a, b = where.operands
    cond = constant_value(model, c)
    if cond is None:
        return None
    for s, fill, masked_where in ((b, a, True), (a, b, False)):
        f = scalar(model, fill)
        if f is not None and (producer(s, "MatMul") or producer(s, "Div") or producer(s, "Mul")):
            keep = ~cond.astype(bool) if masked_where else cond.astype(bool)
            lq, lk = shape[-2], shape[-1]
            if keep.shape[-2:] == (lq, lk) and lq == lk and keep.ndim == 2 and f == -np.inf \
                    and np.array_equal(keep, np.tril(np.ones((lq, lk), bool))):
                return s, None, True
            dt = type_dtype(s.type)
            return s, np.where(keep, dt.type(0), dt.type(f)), False
    return None


def _nan_guard(model: GraphModel, p: SSAValue) -> Operation | None:
    """Where(IsNaN(p), 0, p) applied to the softmax output (exporters add it for rows that are
    fully masked), or None."""
    us = users(p)
    isnan = next((u for u in us if op_type(u) == ("", "IsNaN")), None)
    where = next((u for u in us if op_type(u) == ("", "Where")), None)
    if len(us) != 2 or isnan is None or where is None:
        return None
    c, zero, same = where.operands
    if c is isnan.results[0] and same is p and scalar(model, zero) == 0.0:
        return where
    return None




# --------------------------------------------------------------------------- layer norm
def fuse_layer_norm(model: GraphModel) -> GraphModel:
    """The decomposed layer norm older exporters write (opset < 17 has no LayerNormalization):
    d = x - ReduceMean(x); y = d / Sqrt(ReduceMean(d^2) + eps) [* gamma] [+ beta], all over the
    last axis  →  LayerNormalization(x, gamma, beta) {axis = -1, epsilon}: one row kernel
    instead of seven passes over the tensor."""
    model = model.copy()
    domain = "" if model.opset >= 17 else "kaiyuan"  # ai.onnx has LayerNormalization from opset 17
    for sub in [op for op in model.block.ops if op_type(op) == ("", "Sub")]:
        x, mean = sub.operands
        rm = producer(mean, "ReduceMean")
        if rm is None or rm.operands[0] is not x or not _last_axis(model, rm, x):
            continue
        d = sub.results[0]
        us = users(d)
        pow_ = next((u for u in us if op_type(u) == ("", "Pow") and scalar(model, u.operands[1]) == 2.0), None)
        div = next((u for u in us if op_type(u) == ("", "Div") and u.operands[0] is d), None)
        if len(us) != 2 or pow_ is None or div is None:
            continue
        rm2 = only_user(pow_.results[0], "ReduceMean")
        add = rm2 and _last_axis(model, rm2, pow_.results[0]) and only_user(rm2.results[0], "Add")
        eps = add and scalar(model, other_operand(add, rm2.results[0]))
        sqrt = add and only_user(add.results[0], "Sqrt")
        if eps is None or sqrt is None or div.operands[1] is not sqrt.results[0]:
            continue
        last, z, chain = div, div.results[0], [rm, sub, pow_, rm2, add, sqrt, div]
        n = type_shape(x.type)[-1]
        gamma = beta = None
        mul = only_user(z, "Mul")
        if mul is not None and constant_value(model, other_operand(mul, z)) is not None \
                and type_shape(other_operand(mul, z).type) == (n,):
            gamma, last, z = other_operand(mul, z), mul, mul.results[0]
            chain.append(mul)
        bias = only_user(z, "Add")
        if gamma is not None and bias is not None and constant_value(model, other_operand(bias, z)) is not None \
                and type_shape(other_operand(bias, z).type) == (n,):
            beta, last, z = other_operand(bias, z), bias, bias.results[0]
            chain.append(bias)
        if gamma is None:
            dt = type_dtype(x.type)
            from .rewrite import insert_constant

            gamma = insert_constant(model, np.ones(n, dt), sub, node_name(last) + "/gamma")
        operands = [x, gamma] + ([beta] if beta is not None else [])
        fused = make_op("LayerNormalization", operands, [z.type], {"axis": -1, "epsilon": float(eps)},
                        node_name=node_name(last), domain=domain)
        place(model, fused, last)
        note("LayerNormalization", fused, chain)
    return model


def _last_axis(model: GraphModel, rm: Operation, x: SSAValue) -> bool:
    """Whether ReduceMean `rm` reduces exactly x's last axis, keeping dims."""
    a = op_attrs(rm)
    axes = a.get("axes")
    if axes is None and len(rm.operands) > 1:
        c = constant_value(model, rm.operands[1])
        axes = None if c is None else [int(v) for v in np.ravel(c)]
    rank = len(type_shape(x.type))
    return a.get("keepdims", 1) == 1 and axes is not None and [ax % rank for ax in axes] == [rank - 1]


# ------------------------------------------------------------------------ conv + batch norm
def fold_conv_batch_norm(model: GraphModel) -> GraphModel:
    """Conv(x, W[, b]) → BatchNormalization (inference; constant scale, bias, mean, var)  ⇒
    Conv(x, W·s, (b - mean)·s + β) with s = γ / sqrt(var + eps) per output channel: the norm
    costs nothing at run time (the weights are rewritten once, here)."""
    from .rewrite import insert_constant

    model = model.copy()
    for bn in [op for op in model.block.ops if op_type(op) == ("", "BatchNormalization")]:
        y = bn.operands[0]
        conv = producer(y, "Conv")
        if conv is None or len(users(y)) != 1 or len(bn.results) != 1 or is_returned(model, y):
            continue
        params = [constant_value(model, v) for v in bn.operands[1:5]]
        w = constant_value(model, conv.operands[1])
        b = constant_value(model, conv.operands[2]) if len(conv.operands) > 2 else None
        if w is None or any(p is None for p in params) or (len(conv.operands) > 2 and b is None):
            continue
        gamma, beta, mean, var = (np.asarray(p, np.float64) for p in params)
        eps = float(op_attrs(bn).get("epsilon", 1e-5))
        s = gamma / np.sqrt(var + eps)
        new_w = (w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
        new_b = (((b.astype(np.float64) if b is not None else 0.0) - mean) * s + beta).astype(w.dtype)
        name = node_name(bn)
        ops = [insert_constant(model, new_w, conv, name + "/weight"), insert_constant(model, new_b, conv, name + "/bias")]
        fused = make_op("Conv", [conv.operands[0], *ops], [bn.results[0].type], op_attrs(conv), node_name=name)
        place(model, fused, bn)
        note("Conv+BatchNormalization", fused, [conv, bn])
    return model


def fuse_conv_epilogue(model: GraphModel) -> GraphModel:
    """Conv [+ r] [→ ReLU | GELU | SiLU]  ⇒  kaiyuan.Conv(x, W, b, r) {activation}: the residual
    add and the activation run in the convolution's store while the tile is in registers (after
    BN folding this is a ResNet block's whole conv-BN-add-ReLU), so the conv's output is written
    once instead of being re-read by an Add and a Relu. Order: activation(conv + b + r)."""
    model = model.copy()
    for conv in [op for op in model.block.ops if op_type(op) == ("", "Conv")]:
        last, z = conv, conv.results[0]
        chain, residual = [conv], None
        add = only_user(z, "Add") if not is_returned(model, z) else None
        if add is not None:
            r = other_operand(add, z)
            if r.type == z.type and r is not z:
                residual, last, z = r, add, add.results[0]
                chain.append(add)
        act = ""
        if not is_returned(model, z):
            act, act_last = _activation(model, z)
            if act_last is not None:
                chain.extend(_between(z, act_last))
                last, z = act_last, act_last.results[0]
        if last is conv:
            continue
        x, w = conv.operands[:2]
        operands = [x, w, conv.operands[2] if len(conv.operands) > 2 else absent(model, last)]
        if residual is not None:
            operands.append(residual)
        attrs = dict(op_attrs(conv))
        if act:
            attrs["activation"] = act
        fused = make_op("Conv", operands, [z.type], attrs, node_name=node_name(last), domain="kaiyuan")
        place(model, fused, last)
        note("Conv" + ("+Add" if residual is not None else "") + (f"+{act}" if act else ""), fused, chain)
    return model


def fuse_sibling_linears(model: GraphModel) -> GraphModel:
    """kaiyuan.Linear ops that read the same x, each with a constant W_i (K, N_i), an optional
    constant bias, the same activation and no residual (a transformer's Q, K and V projections)
    ⇒ one Linear over the weights side by side (K, ΣN_i) and a Slice of its output's last axis
    per original output (the plan makes each Slice a strided view, so nothing is copied).

    Why: one GEMM of 128 x 1152 x 384 keeps both cores busy with 18 tiles where three of
    128 x 384 x 384 have 6 each, and reads x once instead of three times."""
    from .rewrite import insert_constant

    model = model.copy()
    groups: dict = {}
    for op in model.block.ops:
        if op_type(op) != ("kaiyuan", "Linear") or len(op.operands) > 3:
            continue
        x, w = op.operands[0], op.operands[1]
        wv = constant_value(model, w)
        b = op.operands[2] if len(op.operands) > 2 and not is_absent(op.operands[2]) else None
        bv = constant_value(model, b) if b is not None else None
        if wv is None or wv.ndim != 2 or (b is not None and bv is None) or op_attrs(op).get("out_features"):
            continue
        key = (x, str(op_attrs(op).get("activation", "")), wv.dtype.str, wv.shape[0])
        groups.setdefault(key, []).append((op, wv, bv))
    for (x, act, _, _), members in groups.items():
        if len(members) < 2:
            continue
        first = members[0][0]
        ws = [wv for _, wv, _ in members]
        n = [wv.shape[1] for wv in ws]
        name = node_name(first) + "+siblings"
        w = insert_constant(model, np.concatenate(ws, axis=1), first, name + "/weight")
        has_bias = any(bv is not None for _, _, bv in members)
        bias = (insert_constant(model, np.concatenate([bv if bv is not None else np.zeros(k, ws[0].dtype)
                                                       for (_, _, bv), k in zip(members, n)]), first, name + "/bias")
                if has_bias else absent(model, first))
        out_t = members[0][0].results[0].type
        shape = list(type_shape(out_t))
        shape[-1] = sum(n)
        fused = make_op("Linear", [x, w, bias], [tensor_type(type_dtype(out_t), tuple(shape))],
                        {"activation": act} if act else {}, node_name=name, domain="kaiyuan")
        first.parent_block().insert_op_before(fused, first)
        start = 0
        for (op, _, _), k in zip(members, n):
            bounds = [insert_constant(model, np.array([v], np.int64), op, f"{node_name(op)}/{what}")
                      for what, v in (("starts", start), ("ends", start + k), ("axes", -1))]
            piece = make_op("Slice", [fused.results[0], *bounds], [op.results[0].type], node_name=node_name(op))
            place(model, piece, op)
            start += k
        note("Linear siblings", fused, [op for op, _, _ in members])
    return model


def pack_weights(model: GraphModel) -> GraphModel:
    """kaiyuan.Linear (and a MatMul by a constant) with a constant W (K, N), N >= PANEL  ⇒  the same
    Linear with W packed once into panels of PANEL columns (`gemm.pack_b`) and {out_features: N}.

    Why: a GEMM tile reads K rows of a row-major W, each N elements from the next; a run that
    streams its weights from memory (a transformer at batch 1: 90 MB for MiniLM, more than the
    caches) pays a new page per row. In panels a tile's rows are one sequential stream: a
    128x1536x384 linear whose weight is not in cache ran 5-6% over its in-cache time packed,
    16-21% unpacked. Runs last, after every fusion has taken its MatMuls."""
    from ..ops.gemm import PANEL, pack_b
    from .rewrite import insert_constant

    model = model.copy()
    done: dict = {}  # weight value -> its packed constant (a weight shared by several ops is packed once)
    for op in list(model.block.ops):
        kind = op_type(op)
        if kind not in (("kaiyuan", "Linear"), ("", "MatMul")):
            continue
        x, w = op.operands[0], op.operands[1]
        value = constant_value(model, w)
        if (value is None or value.ndim != 2 or value.shape[1] < PANEL or len(type_shape(x.type)) < 2
                or value.dtype.name not in ("float32", "float64", "float16", "bfloat16")):
            continue
        if w not in done:
            done[w] = insert_constant(model, pack_b(value), op, node_name(op) + "/packed_weight")
        packed = done[w]
        attrs = dict(op_attrs(op)) if kind[0] == "kaiyuan" else {}
        attrs["out_features"] = int(value.shape[1])
        rest = list(op.operands[2:]) if kind[0] == "kaiyuan" else [absent(model, op)]
        fused = make_op("Linear", [x, packed, *rest], [op.results[0].type], attrs, node_name=node_name(op),
                        domain="kaiyuan")
        place(model, fused, op)  # the old op and the unpacked weight are left to DCE
    return model


FUSION_PASSES = [("fold_conv_batch_norm", fold_conv_batch_norm), ("fuse_conv_epilogue", fuse_conv_epilogue),
                 ("fuse_layer_norm", fuse_layer_norm), ("fuse_attention", fuse_attention), ("fuse_linear", fuse_linear),
                 ("fuse_sibling_linears", fuse_sibling_linears)]
