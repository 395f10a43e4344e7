"""kaiyuan (开源): an open, vendor-neutral compute architecture for AI.

    import kaiyuan as ky
    import kaiyuan.language as kl

See README.md for a first kernel and docs/ for the architecture.
"""

__version__ = "0.1.0"

from .runtime import *  # noqa: E402,F401,F403
from .runtime import __all__ as _runtime_all  # noqa: E402
from .compiler import CompiledKernel, JITFunction, compile, jit  # noqa: E402
from .compiler.autotune import Config, autotune, heuristics  # noqa: E402
from .triton import cdiv, next_power_of_2  # noqa: E402

__all__ = list(_runtime_all) + ["CompiledKernel", "JITFunction", "compile", "jit", "Config", "autotune",
                                "heuristics", "cdiv", "next_power_of_2", "__version__"]

from . import ops  # noqa: E402  (the operator library: ky.ops.matmul, ...; imports the compiler)


def __getattr__(name):
    # The graph engine (onnx, the kyg dialect) loads on first use: `import kaiyuan` stays light.
    if name == "InferenceSession":
        from .graph.session import InferenceSession

        return InferenceSession
    raise AttributeError(f"module 'kaiyuan' has no attribute {name!r}")
