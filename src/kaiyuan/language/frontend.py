"""The kernel frontend: walks a kernel's Python AST and writes `ky` IR (not tracing).

Python control flow becomes structured `scf` ops: `for ... in range()` → `scf.for`, `if` on a
run-time scalar → `scf.if`, `while` → `scf.while`; names reassigned inside them become loop-carried
values or `if` results. `kl.static_range` loops and `if`s on constexprs are resolved while
compiling. Calls to other `@ky.jit` functions are inlined. Every op carries the user's file:line.

Values in a scope are `tensor`s (IR values), `constexpr`s (compile-time numbers, strings, None),
or plain Python objects (modules, functions, dtypes).
"""

from __future__ import annotations

import ast
import builtins as _py
import inspect
import textwrap
from dataclasses import dataclass, field

from xdsl.dialects import func, scf
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Block, Region

from ..ir import ky
from ..runtime import dtypes as dt
from ..runtime.errors import CompilationError, KaiyuanError
from . import builtins as B
from . import semantic as sem
from .core import constexpr, is_ptr, pointer_type, tensor


@dataclass
class FunctionSource:
    """A Python function's AST with its file and globals, parsed once."""

    fn: object
    tree: ast.FunctionDef
    filename: str
    globals: dict
    nonlocals: dict = field(default_factory=dict)


_SOURCES: dict[object, FunctionSource] = {}


def source_of(fn) -> FunctionSource:
    if fn in _SOURCES:
        return _SOURCES[fn]
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        raise CompilationError(f"cannot read the source of {getattr(fn, '__name__', fn)!r}",
                               hint="kernels must be defined in a .py file (not exec'd strings or the REPL)") from None
    text = textwrap.dedent("".join(lines))
    tree = ast.parse(text)
    ast.increment_lineno(tree, first - 1)
    fdef = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    nonlocals = {}
    if fn.__closure__:
        nonlocals = {n: c.cell_contents for n, c in zip(fn.__code__.co_freevars, fn.__closure__)}
    src = FunctionSource(fn, fdef, inspect.getsourcefile(fn) or "<unknown>", fn.__globals__, nonlocals)
    _SOURCES[fn] = src
    return src


def _assigned_names(stmts) -> list[str]:
    """Names (re)bound by statements, in first-assignment order."""
    out: list[str] = []
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in out:
                out.append(n.id)
    return out


class _Return(Exception):
    def __init__(self, value):
        self.value = value


def _is_value(v) -> bool:
    """Can v live in an IR register (be loop-carried or an if result)?"""
    if isinstance(v, tensor):
        return True
    x = v.value if isinstance(v, constexpr) else v
    return isinstance(x, (int, float, bool)) and not isinstance(x, str)


def _same_type(a: tensor, b: tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape


class CodeGenerator(ast.NodeVisitor):
    """Writes the IR of one function body into the builder's current block."""

    def __init__(self, src: FunctionSource, scope: dict):
        self.src = src
        self.scope = dict(scope)
        self.builder = sem.current()

    # ------------------------------------------------------------------ statements
    def run_body(self, stmts):
        for i, s in enumerate(stmts):
            self.visit(s)

    def visit(self, node):
        if hasattr(node, "lineno"):
            self.builder.filename = self.src.filename
            self.builder.line, self.builder.col = node.lineno, node.col_offset + 1
        try:
            return super().visit(node)
        except _Return:
            raise
        except KaiyuanError as e:
            if e.loc is None and isinstance(e, CompilationError):
                e.loc = self.builder.loc()  # e.g. ConstexprError from tensor.__bool__
                e.args = (str(e),)
            raise
        except RecursionError:
            raise
        except Exception as e:  # a bug in a builtin's use: report it at the user's line
            raise CompilationError(f"{type(e).__name__}: {e}", loc=self.builder.loc(),
                                   hint="check the arguments of this line against docs/language.md") from e

    def generic_visit(self, node):
        raise sem.error(f"unsupported Python construct in a kernel: {type(node).__name__}",
                        hint="kernels support assignments, arithmetic, calls, if/for/while, and return")

    def visit_Pass(self, node):
        pass

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring
        self.visit(node.value)

    def visit_Assign(self, node):
        value = self.visit(node.value)
        for target in node.targets:
            self.assign(target, value)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            value = self.visit(node.value)
            ann = self.visit(node.annotation)
            if ann is constexpr:
                value = constexpr(value)
            self.assign(node.target, value)

    def visit_AugAssign(self, node):
        load = ast.Name(node.target.id, ast.Load()) if isinstance(node.target, ast.Name) else None
        if load is None:
            raise sem.error("augmented assignment needs a plain name on the left")
        value = self.binop(node.op, self.visit(load), self.visit(node.value))
        self.assign(node.target, value)

    def assign(self, target, value):
        if isinstance(target, ast.Name):
            if isinstance(value, (int, float, bool)) and not isinstance(value, tensor):
                value = constexpr(value)
            self.scope[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            vals = value.value if isinstance(value, constexpr) else value
            if not isinstance(vals, (tuple, list)) or len(vals) != len(target.elts):
                raise sem.error(f"cannot unpack {value!r} into {len(target.elts)} names")
            for t, v in zip(target.elts, vals):
                self.assign(t, v)
        else:
            raise sem.error("only names and tuples of names can be assigned in a kernel",
                            hint="write memory with kl.store(pointer, value)")

    def visit_Return(self, node):
        raise _Return(self.visit(node.value) if node.value is not None else None)

    def visit_Assert(self, node):
        cond = self.visit(node.test)
        msg = self.visit(node.msg) if node.msg is not None else ""
        msg = msg.value if isinstance(msg, constexpr) else msg
        if isinstance(cond, tensor):
            B.device_assert(cond, str(msg))
        elif not (cond.value if isinstance(cond, constexpr) else cond):
            raise sem.error(f"assertion failed at compile time: {msg}")

    # ---------------------------------------------------------------- control flow
    def visit_If(self, node):
        cond = self.visit(node.test)
        if not isinstance(cond, tensor):
            taken = node.body if (cond.value if isinstance(cond, constexpr) else cond) else node.orelse
            self.run_body(taken)
            return
        c = sem.truthy(cond)
        line = (self.builder.line, self.builder.col)
        names = [n for n in _assigned_names(node.body + node.orelse)]
        before = dict(self.scope)
        then_block, then_scope = self._branch(node.body, before)
        else_block, else_scope = self._branch(node.orelse, before)
        results = []
        for n in names:
            a, b = then_scope.get(n), else_scope.get(n)
            if a is None or b is None or not (_is_value(a) and _is_value(b)):
                continue  # defined in one branch only: not visible after the if
            if a is b:
                continue
            results.append(n)
        types = []
        for n in results:
            a, b = self._to_value(then_scope[n], then_block), self._to_value(else_scope[n], else_block)
            t = sem.promote(a.dtype, b.dtype) if not (is_ptr(a.dtype) or is_ptr(b.dtype)) else a.dtype
            shape = sem.broadcast_shapes(a.shape, b.shape)
            then_scope[n], else_scope[n] = a, b
            types.append((t, shape))
        self.builder.line, self.builder.col = line
        for blk, sc in ((then_block, then_scope), (else_block, else_scope)):
            with _InBlock(self.builder, blk):
                vals = [self._coerce(sc[n], t, s, n) for n, (t, s) in zip(results, types)]
                self.builder.emit(scf.YieldOp(*[v.handle for v in vals]))
        op = self.builder.emit(scf.IfOp(c.handle, [sem.ir_tile(t, s) for t, s in types],
                                        Region([then_block]), Region([else_block])))
        self.scope = before
        for n, r, (t, s) in zip(results, op.results, types):
            self.scope[n] = sem.make(r, t, s)

    def _branch(self, stmts, before):
        block = Block()
        saved_scope = self.scope
        self.scope = dict(before)
        with _InBlock(self.builder, block):
            try:
                self.run_body(stmts)
            except _Return:
                raise sem.error("return inside a run-time `if` is not supported",
                                hint="assign the value to a variable and return it after the if")
        out, self.scope = self.scope, saved_scope
        return block, out

    def _to_value(self, v, block) -> tensor:
        if isinstance(v, tensor):
            return v
        with _InBlock(self.builder, block):
            return sem.to_tensor(v)

    def _coerce(self, v, t, shape, name) -> tensor:
        v = sem.to_tensor(v, None if isinstance(v, tensor) else (t if not is_ptr(t) else None))
        if shape and v.shape != shape:
            v = sem.broadcast_to(v, shape)
        if v.dtype != t:
            if is_ptr(t) or is_ptr(v.dtype):
                raise sem.error(f"`{name}` changes type inside control flow ({v.dtype!r} vs {t!r})")
            v = sem.cast(v, t)
        return v

    def visit_For(self, node):
        if node.orelse:
            raise sem.error("for ... else is not supported in kernels")
        it = node.iter
        fnv = self.visit(it.func) if isinstance(it, ast.Call) else None
        if fnv is B.static_range:
            self._static_for(node, it)
            return
        if fnv is not _py.range and getattr(fnv, "__name__", "") != "range":
            raise sem.error("kernels loop with `for i in range(...)` or `kl.static_range(...)`")
        args = [self.visit(a) for a in it.args]
        if len(args) == 1:
            args = [constexpr(0), args[0], constexpr(1)]
        elif len(args) == 2:
            args = args + [constexpr(1)]
        step = args[2]
        if isinstance(step, constexpr) and step.value <= 0:
            raise sem.error("range() steps must be positive in kernels", hint="count up and compute the index")
        t = dt.int64 if any(isinstance(a, tensor) and a.dtype.bits == 64 for a in args) else dt.int32
        lb, ub, st = [sem.cast(sem.to_tensor(a, t), t) for a in args]
        if not isinstance(node.target, ast.Name):
            raise sem.error("the loop variable must be a single name")
        self._loop(node, lambda carried, blk: self._for_op(node, lb, ub, st, t, carried))

    def _static_for(self, node, it):
        rng = self.visit(it)
        for i in rng:
            self.assign(node.target, constexpr(i))
            self.run_body(node.body)

    def _carried(self, body) -> list[str]:
        return [n for n in _assigned_names(body) if n in self.scope and _is_value(self.scope[n])]

    def _loop(self, node, build):
        """Build a loop, re-running its body until the carried values' types are stable."""
        names = self._carried(node.body)
        if isinstance(node, ast.For) and node.target.id in names:
            names.remove(node.target.id)
        before = dict(self.scope)
        inits = {n: sem.to_tensor(before[n]) for n in names}
        for _attempt in range(4):
            self.scope = dict(before)
            op, outs = build([(n, inits[n]) for n in names], None)
            changed = False
            for n in names:
                out, init = outs[n], inits[n]
                if not _same_type(out, init):
                    if (is_ptr(out.dtype) or is_ptr(init.dtype)) and out.dtype != init.dtype:
                        self._at_assignment(node.body, n)
                        raise sem.error(f"`{n}` changes type inside the loop ({init.dtype!r} before it, "
                                        f"{out.dtype!r} after)",
                                        hint="a loop-carried variable keeps one type; use another name")
                    t = out.dtype if is_ptr(out.dtype) else sem.promote(init.dtype, out.dtype)
                    shape = sem.broadcast_shapes(init.shape, out.shape)
                    inits[n] = self._coerce(init, t, shape, n)
                    changed = True
            if not changed:
                break
        else:
            self.builder.line, self.builder.col = node.lineno, node.col_offset + 1
            raise sem.error("the types of loop-carried values do not settle", hint="give the variables their final type before the loop")
        self.builder.emit(op)
        self._set_loc(op, node)  # emit() stamped the body's last line on it
        self.scope = before
        for n, r in zip(names, op.results):
            self.scope[n] = sem.make(r, inits[n].dtype, inits[n].shape)

    def _at_assignment(self, body, name):
        """Point the builder at the last statement of `body` that assigns `name`."""
        line = None
        for stmt in body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store):
                    line = (n.lineno, n.col_offset + 1)
        if line is not None:
            self.builder.filename = self.src.filename
            self.builder.line, self.builder.col = line

    def _for_op(self, node, lb, ub, st, t, carried):
        block = Block(arg_types=[sem.ir_type(t)] + [sem.ir_tile(v.dtype, v.shape) for _, v in carried])
        self.scope[node.target.id] = sem.make(block.args[0], t)
        for (n, v), a in zip(carried, block.args[1:]):
            self.scope[n] = sem.make(a, v.dtype, v.shape)
        outs = self._body_into(node.body, block, carried)
        op = scf.ForOp(lb.handle, ub.handle, st.handle, [v.handle for _, v in carried], Region([block]))
        self._set_loc(op, node)
        return op, outs

    def _body_into(self, body, block, carried):
        with _InBlock(self.builder, block):
            try:
                self.run_body(body)
            except _Return:
                raise sem.error("return inside a loop is not supported")
            outs = {n: self.scope[n] for n, _ in carried}
            outs = {n: (o if isinstance(o, tensor) else sem.to_tensor(o, v.dtype)) for (n, v), o in zip(carried, outs.values())}
            yielded = []
            for n, v in carried:
                o = outs[n]
                yielded.append(self._coerce(o, v.dtype, v.shape, n) if _same_type(o, v) or self._fits(o, v) else o)
            self.builder.emit(scf.YieldOp(*[y.handle for y in yielded]))
        return outs

    @staticmethod
    def _fits(out: tensor, init: tensor) -> bool:
        """Can `out` be stored in init's type without changing it? (then no re-run is needed)"""
        if is_ptr(out.dtype) or is_ptr(init.dtype):
            return out.dtype == init.dtype and out.shape in (init.shape, ())
        return out.shape in (init.shape, ()) and sem.promote(init.dtype, out.dtype) == init.dtype

    def _set_loc(self, op, node):
        from xdsl.dialects.builtin import FileLineColLoc, IntAttr

        op.location = FileLineColLoc(StringAttr(self.src.filename), IntAttr(node.lineno), IntAttr(node.col_offset + 1))

    def visit_While(self, node):
        if node.orelse:
            raise sem.error("while ... else is not supported in kernels")
        self._loop(node, lambda carried, _: self._while_op(node, carried))

    def _while_op(self, node, carried):
        types = [sem.ir_tile(v.dtype, v.shape) for _, v in carried]
        before_blk, after_blk = Block(arg_types=types), Block(arg_types=types)
        for (n, v), a in zip(carried, before_blk.args):
            self.scope[n] = sem.make(a, v.dtype, v.shape)
        with _InBlock(self.builder, before_blk):
            self.builder.line = node.lineno
            c = self.visit(node.test)
            c = sem.truthy(c if isinstance(c, tensor) else sem.to_tensor(c))
            self.builder.emit(scf.ConditionOp(c.handle, *before_blk.args))
        for (n, v), a in zip(carried, after_blk.args):
            self.scope[n] = sem.make(a, v.dtype, v.shape)
        outs = self._body_into(node.body, after_blk, carried)
        op = scf.WhileOp([v.handle for _, v in carried], types, Region([before_blk]), Region([after_blk]))
        self._set_loc(op, node)
        return op, outs

    def visit_Break(self, node):
        raise sem.error("break is not supported in kernels", hint="use a while loop with a condition")

    def visit_Continue(self, node):
        raise sem.error("continue is not supported in kernels", hint="use an if around the rest of the body")

    # ----------------------------------------------------------------- expressions
    def visit_Constant(self, node):
        return constexpr(node.value)

    def visit_Name(self, node):
        n = node.id
        if n in self.scope:
            return self.scope[n]
        for table in (self.src.nonlocals, self.src.globals):
            if n in table:
                v = table[n]
                return constexpr(v) if isinstance(v, (int, float, bool)) else v
        if hasattr(_py, n):
            return getattr(_py, n)
        raise sem.error(f"name {n!r} is not defined")

    def visit_Tuple(self, node):
        return tuple(self.visit(e) for e in node.elts)

    visit_List = visit_Tuple

    def visit_Attribute(self, node):
        base = self.visit(node.value)
        obj = base.value if isinstance(base, constexpr) and not isinstance(base.value, tensor) else base
        if isinstance(obj, tensor) and node.attr == "dtype":
            return obj.dtype
        try:
            v = getattr(obj, node.attr)
        except AttributeError:
            raise sem.error(f"{obj!r} has no attribute {node.attr!r}") from None
        return constexpr(v) if isinstance(v, (int, float, bool)) and not isinstance(v, tensor) else v

    def visit_Subscript(self, node):
        base = self.visit(node.value)
        idx = self.visit(node.slice)
        if isinstance(base, tensor):
            return base[idx]
        b = base.value if isinstance(base, constexpr) else base
        i = idx.value if isinstance(idx, constexpr) else idx
        v = b[i]
        return constexpr(v) if isinstance(v, (int, float, bool)) else v

    def visit_Slice(self, node):
        parts = [self.visit(p) if p is not None else None for p in (node.lower, node.upper, node.step)]
        return slice(*[p.value if isinstance(p, constexpr) else p for p in parts])

    def visit_JoinedStr(self, node):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(str(v.value))
            else:
                x = self.visit(v.value)
                if isinstance(x, tensor):
                    raise sem.error("f-strings can only format compile-time values")
                out.append(format(x.value if isinstance(x, constexpr) else x))
        return constexpr("".join(out))

    def visit_BinOp(self, node):
        return self.binop(node.op, self.visit(node.left), self.visit(node.right))

    _BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
               ast.Mod: "mod", ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor", ast.LShift: "shl",
               ast.RShift: "shr", ast.Pow: "pow"}

    def binop(self, op, a, b):
        name = self._BINOPS.get(type(op))
        if name is None:
            raise sem.error(f"operator {type(op).__name__} is not supported in kernels")
        if name == "pow":
            if isinstance(a, tensor) or isinstance(b, tensor):
                return B.pow(a, b)
            return constexpr(_cv(a) ** _cv(b))
        return sem.binary(name, a, b)

    def visit_UnaryOp(self, node):
        v = self.visit(node.operand)
        if not isinstance(v, tensor):
            x = _cv(v)
            ops = {ast.USub: lambda: -x, ast.UAdd: lambda: +x, ast.Not: lambda: not x, ast.Invert: lambda: ~x}
            return constexpr(ops[type(node.op)]())
        if isinstance(node.op, ast.USub):
            return sem.neg(v)
        if isinstance(node.op, ast.UAdd):
            return v
        if isinstance(node.op, ast.Invert):
            return sem.invert(v)
        return sem.compare("eq", sem.cast(v, dt.bool_) if v.dtype != dt.bool_ else v, False)

    def visit_BoolOp(self, node):
        vals = [self.visit(v) for v in node.values]
        if not any(isinstance(v, tensor) for v in vals):
            out = _cv(vals[0])
            for v in vals[1:]:
                out = (out and _cv(v)) if isinstance(node.op, ast.And) else (out or _cv(v))
            return constexpr(out)
        out = vals[0]
        for v in vals[1:]:
            out = sem.logical("and" if isinstance(node.op, ast.And) else "or", out, v)
        return out

    _CMP = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}

    def visit_Compare(self, node):
        left = self.visit(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            if isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)):
                # `ptr is not None` on a run-time value is a compile-time identity test (as in
                # Triton: optional pointer arguments are passed as None); `in` needs constants.
                if isinstance(op, (ast.In, ast.NotIn)) and (isinstance(left, tensor) or isinstance(right, tensor)):
                    raise sem.error("`in` compares compile-time values only")
                l, r = _cv(left), _cv(right)
                v = {ast.Is: lambda: l is r, ast.IsNot: lambda: l is not r,
                     ast.In: lambda: l in r, ast.NotIn: lambda: l not in r}[type(op)]()
                cur = constexpr(v)
            else:
                cur = sem.binary(self._CMP[type(op)], left, right)
            result = cur if result is None else (sem.logical("and", result, cur) if isinstance(cur, tensor) or isinstance(result, tensor) else constexpr(_cv(result) and _cv(cur)))
            left = right
        return result

    def visit_IfExp(self, node):
        cond = self.visit(node.test)
        if not isinstance(cond, tensor):
            return self.visit(node.body if _cv(cond) else node.orelse)
        return sem.where(cond, self.visit(node.body), self.visit(node.orelse))

    def visit_Call(self, node):
        fn = self.visit(node.func)
        args = [self.visit(a) for a in node.args if not isinstance(a, ast.Starred)]
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(_cv(self.visit(a.value)))
        kwargs = {k.arg: self.visit(k.value) for k in node.keywords}
        line = node.lineno
        result = self.call(fn, args, kwargs)
        self.builder.line = line
        return result

    def call(self, fn, args, kwargs):
        fn = fn.value if isinstance(fn, constexpr) else fn
        if getattr(fn, "__ky_builtin__", False) or (getattr(fn, "__qualname__", "").startswith("tensor.__getattr__")):
            return fn(*args, **kwargs)
        jit_fn = getattr(fn, "__ky_jit_fn__", None)
        if jit_fn is not None:
            return call_jit(jit_fn, args, kwargs)
        if fn is _py.min or fn is _py.max:
            if any(isinstance(a, tensor) for a in args):
                red = B.minimum if fn is _py.min else B.maximum
                out = args[0]
                for a in args[1:]:
                    out = red(out, a)
                return out
        if fn is _py.abs and args and isinstance(args[0], tensor):
            return B.abs(args[0])
        if fn in (_py.float, _py.int, _py.bool) and args and isinstance(args[0], tensor):
            return sem.cast(args[0], {_py.float: dt.float32, _py.int: dt.int32, _py.bool: dt.bool_}[fn])
        if fn is _py.print:
            B.device_print(*args)
            return None
        if fn is constexpr:
            return constexpr(_cv(args[0]))
        if any(isinstance(a, tensor) for a in list(args) + list(kwargs.values())):
            name = getattr(fn, "__name__", repr(fn))
            raise sem.error(f"cannot call Python function {name!r} on run-time values inside a kernel",
                            hint="decorate it with @ky.jit to inline it, or use a kaiyuan.language builtin")
        out = fn(*[_cv(a) for a in args], **{k: _cv(v) for k, v in kwargs.items()})
        return constexpr(out) if isinstance(out, (int, float, bool)) and not isinstance(out, tensor) else out


def _cv(v):
    return v.value if isinstance(v, constexpr) else v


class _InBlock:
    """Temporarily send new ops into another block."""

    def __init__(self, builder, block):
        self.builder, self.block = builder, block

    def __enter__(self):
        self.saved = self.builder.block
        self.builder.block = self.block

    def __exit__(self, *exc):
        self.builder.block = self.saved


def call_jit(fn, args, kwargs=None):
    """Inline a @jit function: bind its parameters and generate its body here."""
    kwargs = kwargs or {}
    py = getattr(fn, "fn", fn)
    src = source_of(py)
    sig = inspect.signature(py)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        raise sem.error(f"bad call to {py.__name__}: {e}") from None
    bound.apply_defaults()
    scope = {}
    for name, v in bound.arguments.items():
        scope[name] = constexpr(v) if isinstance(v, (int, float, bool, str)) or v is None else v
    b = sem.current()
    saved = (b.filename, b.line, b.col)
    gen = CodeGenerator(src, scope)
    body = src.tree.body
    try:
        for i, s in enumerate(body):
            gen.visit(s)
    except _Return as r:
        if s is not body[-1]:
            raise sem.error("an early return is not supported; return at the end of the function") from None
        return r.value
    finally:
        b.filename, b.line, b.col = saved
    return None


# ------------------------------------------------------------------------------------- kernels


@dataclass(frozen=True)
class ParamSpec:
    """How one kernel parameter is compiled: a pointer, a scalar of a dtype, or a constant."""

    name: str
    kind: str  # "ptr" | "scalar" | "constexpr"
    dtype: object = None  # DType for ptr/scalar
    value: object = None  # constexpr value


def build_kernel(fn, params: list[ParamSpec], name: str | None = None) -> ModuleOp:
    """Generate the `ky` module for kernel `fn` specialised to `params`."""
    src = source_of(fn)
    runtime = [p for p in params if p.kind != "constexpr"]
    arg_types = [sem.ir_type(pointer_type(p.dtype) if p.kind == "ptr" else p.dtype) for p in runtime]
    block = Block(arg_types=arg_types)
    for arg, p in zip(block.args, runtime):
        if p.name.isascii():
            arg.name_hint = p.name  # the IR and its error messages say x_ptr, not %0
    scope = {}
    it = iter(block.args)
    for p in params:
        if p.kind == "constexpr":
            scope[p.name] = constexpr(p.value)
        else:
            t = pointer_type(p.dtype) if p.kind == "ptr" else p.dtype
            scope[p.name] = sem.make(next(it), t)
    builder = sem.Builder(src.filename)
    builder.block = block
    builder.line = src.tree.lineno
    old = sem.set_builder(builder)
    try:
        gen = CodeGenerator(src, scope)
        try:
            gen.run_body(src.tree.body)
        except _Return as r:
            if r.value is not None:
                raise CompilationError("a kernel cannot return a value", loc=builder.loc(),
                                       hint="store results through a pointer argument") from None
        builder.emit(func.ReturnOp())
    finally:
        sem.set_builder(old)
    f = func.FuncOp(name or fn.__name__, (arg_types, []), Region([block]))
    from xdsl.dialects.builtin import FileLineColLoc, IntAttr

    f.location = FileLineColLoc(StringAttr(src.filename), IntAttr(src.tree.lineno), IntAttr(1))
    module = ModuleOp([f])
    module.attributes["ky.version"] = StringAttr(ky.VERSION)
    return module
