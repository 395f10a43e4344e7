"""Small kernels for the opencl tests, and a helper that builds their `ky` function without a
device (the frontend only), for emitter tests that read the generated source."""

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan.compiler.passes import simplify
from kaiyuan.language.frontend import ParamSpec, build_kernel
from kaiyuan.runtime.dtypes import dtype


@ky.jit
def add_kernel(x, y, out, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    m = offs < n
    kl.store(out + offs, kl.load(x + offs, mask=m) + kl.load(y + offs, mask=m), mask=m)


@ky.jit
def softmax_kernel(x_ptr, y_ptr, n_cols, stride, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * stride + cols, mask=mask, other=-float("inf"))
    e = kl.exp(x - kl.max(x, axis=0))
    kl.store(y_ptr + row * stride + cols, e / kl.sum(e, axis=0), mask=mask)


@ky.jit
def dot_kernel(a_ptr, b_ptr, c_ptr, M: kl.constexpr, N: kl.constexpr, K: kl.constexpr):
    rm, rn, rk = kl.arange(0, M), kl.arange(0, N), kl.arange(0, K)
    a = kl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = kl.load(b_ptr + rk[:, None] * N + rn[None, :])
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], kl.dot(a, b))


@ky.jit
def atomic_kernel(p, v, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.atomic_add(p + offs, kl.load(v + offs))


def func_of(kernel, signature: dict, constants: dict | None = None):
    """The simplified `func.func` of `kernel` for `signature` ("*fp32", "i32", ...) and constants."""
    constants = constants or {}
    params = []
    for name in kernel.arg_names:
        if name in constants:
            params.append(ParamSpec(name, "constexpr", value=constants[name]))
        else:
            t = signature[name]
            params.append(ParamSpec(name, "ptr" if t.startswith("*") else "scalar", dtype(t.lstrip("*"))))
    module = simplify(build_kernel(kernel.fn, params, kernel.name))
    return next(op for op in module.ops if op.name == "func.func")
