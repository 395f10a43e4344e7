"""The dispatch table: op name -> builder(op, cx) returning a step closure `step(env)`.

Builders run once, when a program is loaded; steps run per program instance and read/write
value slots of `env` (a list), so no op is looked up by name while a kernel runs.
"""

from __future__ import annotations

from typing import Callable

BUILDERS: dict[str, Callable] = {}


def lowers(*names: str):
    def register(builder: Callable) -> Callable:
        for n in names:
            BUILDERS[n] = builder
        return builder

    return register
