"""LpPool (ONNX 18+; 1-D and 2-D): y = (sum over the window of |x|^p)^(1/p).

Built from kernels that exist: |x|^p (one element-wise kernel) into scratch memory, the average
pool with count_include_pad=1 (zero padding adds nothing to the sum, and the mean over the whole
window times the window size is the sum), then (k·m)^(1/p) written in place (another element-wise
kernel). Three launches, no kernel of its own.
"""

from __future__ import annotations

import math

from .ew_kernel import run_expr
from .nn_pool import _pool_infer, _pool_run, pool_geometry
from .nn_util import FLOATS, np_names, scratch, shape_of
from .schema import OpDef, register

X = ("in", 0)


def _run(inputs, attrs, consts, outputs):
    x, y = inputs[0], outputs[0]
    p = int(attrs["p"])
    dt = x.dtype
    kernel, *_ = pool_geometry("AveragePool", attrs, shape_of(x))
    powed = scratch(x, shape_of(x), dt)
    run_expr(("pow", ("abs", X), ("const", float(p), str(dt))), [x], powed)
    avg = {k: v for k, v in attrs.items() if k != "p"}
    _pool_run("AveragePool")([powed], {**avg, "count_include_pad": 1}, consts, [y])
    window = float(math.prod(kernel))
    run_expr(("pow", ("mul", X, ("const", window, str(dt))), ("const", 1.0 / p, str(dt))), [y], y)


def _infer(types, attrs, consts):
    return _pool_infer("AveragePool")(types, {k: v for k, v in attrs.items() if k != "p"}, consts)


register(OpDef("LpPool", _infer, _run, since=18, attrs={"auto_pad": "NOTSET", "ceil_mode": 0, "dilations": None,
                                                        "kernel_shape": None, "pads": None, "strides": None, "p": 2},
               dtypes=np_names(FLOATS), doc=__doc__))
