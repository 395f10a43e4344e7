"""`@ky.autotune` and `@ky.heuristics` (Triton's names and meaning).

autotune times each `Config` on the device the first time a new `key` (values of the named
arguments) is seen, keeps the fastest, and remembers it in memory and on disk
($KAIYUAN_CACHE_DIR/autotune/<kernel>-<hash>.json), so a later process skips the search.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from ..runtime.errors import ArgumentError, KaiyuanError
from ..runtime.stream import synchronize
from .cache import cache_dir


@dataclass
class Config:
    """Meta-parameters for one autotuning candidate."""

    kwargs: dict
    num_warps: int = 4
    num_stages: int = 2
    num_ctas: int = 1
    maxnreg: int | None = None
    pre_hook: object = None
    extra: dict = field(default_factory=dict)

    def all_kwargs(self) -> dict:
        return dict(self.kwargs)

    def __repr__(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.kwargs.items())


class Autotuner:
    def __init__(self, fn, configs, key, reset_to_zero=None, restore_value=None, warmup=2, rep=5, **_):
        self.fn = fn  # a JITFunction (or another Autotuner/Heuristics wrapper)
        self.configs = list(configs) or [Config({})]
        self.key = list(key)
        self.reset_to_zero = list(reset_to_zero or [])
        self.restore_value = list(restore_value or [])
        self.warmup, self.rep = warmup, rep
        self.best: dict = {}
        self.best_config = None
        self.arg_names = fn.arg_names
        self.__ky_jit_fn__ = getattr(fn, "__ky_jit_fn__", None)
        self.tuning_seconds = 0.0

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.run(*args, grid=grid, **kwargs)

    def _key(self, values) -> str:
        parts = [_launch_device_name(values)]  # the best config on one device says nothing of another
        for k in self.key:
            v = values.get(k)
            parts.append(str(getattr(v, "dtype", "")) + str(getattr(v, "shape", v)) if hasattr(v, "shape") else repr(v))
        return "|".join(parts)

    def _disk_path(self):
        jit = self.__ky_jit_fn__
        ident = f"{getattr(jit, 'where', '')}:{[c.kwargs for c in self.configs]}"
        h = hashlib.sha256(ident.encode()).hexdigest()[:16]
        return cache_dir() / "autotune" / f"{getattr(jit, 'name', 'kernel')}-{h}.json"

    def _load(self) -> dict:
        try:
            return json.loads(self._disk_path().read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, table: dict) -> None:
        path = self._disk_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(table))
            tmp.replace(path)
        except OSError:
            pass

    def run(self, *args, grid, **kwargs):
        values = dict(zip(self.arg_names, args), **kwargs)
        key = self._key(values)
        if key not in self.best:
            table = self._load()
            idx = table.get(key)
            if idx is None or not 0 <= idx < len(self.configs):
                idx = self._tune(args, kwargs, grid)
                table[key] = idx
                self._save(table)
            self.best[key] = self.configs[idx]
        self.best_config = cfg = self.best[key]
        if cfg.pre_hook:
            cfg.pre_hook({**values, **cfg.kwargs})
        return self.fn.run(*args, grid=grid, **kwargs, **cfg.all_kwargs())

    def _tune(self, args, kwargs, grid) -> int:
        start = time.perf_counter()
        times = []
        for cfg in self.configs:
            clash = set(cfg.kwargs) & set(kwargs)
            if clash:
                raise ArgumentError(f"autotuned meta-parameters {sorted(clash)} were also passed by the caller",
                                    hint="leave tuned parameters out of the launch")
            try:
                times.append(self._time(cfg, args, kwargs, grid))
            except KaiyuanError:
                times.append(float("inf"))  # a config that does not compile or fit is skipped
        self.tuning_seconds = time.perf_counter() - start
        best = min(range(len(times)), key=times.__getitem__)
        if times[best] == float("inf"):
            raise ArgumentError("no autotuning config could run", hint="check the configs against the input shapes")
        return best

    def _time(self, cfg, args, kwargs, grid) -> float:
        values = dict(zip(self.arg_names, args), **kwargs)
        saved = {n: _snapshot(values[n]) for n in self.restore_value}
        samples = []
        for i in range(self.warmup + self.rep):
            for n in self.reset_to_zero:
                _zero(values[n])
            t0 = time.perf_counter()
            self.fn.run(*args, grid=grid, **kwargs, **cfg.all_kwargs())
            synchronize()
            if i >= self.warmup:
                samples.append(time.perf_counter() - t0)
        for n, snap in saved.items():
            _restore(values[n], snap)
        return sorted(samples)[len(samples) // 2]


def _launch_device_name(values) -> str:
    """The device a launch with these arguments runs on: that of its ky tensors, else the default."""
    from ..runtime.registry import default_device
    from ..runtime.tensor import Tensor

    for v in values.values():
        if isinstance(v, Tensor):
            return v.device.name
    return default_device().name


def _snapshot(x):
    import numpy as np

    return np.array(np.asarray(x), copy=True)


def _restore(x, snap):
    import numpy as np

    np.asarray(x)[...] = snap


def _zero(x):
    import numpy as np

    np.asarray(x)[...] = 0


class Heuristics:
    """Compute meta-parameters from the arguments: `@heuristics({"EVEN": lambda a: a["n"] % 64 == 0})`."""

    def __init__(self, fn, values: dict):
        self.fn, self.values = fn, values
        self.arg_names = fn.arg_names
        self.__ky_jit_fn__ = getattr(fn, "__ky_jit_fn__", None)

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.run(*args, grid=grid, **kwargs)

    def run(self, *args, grid, **kwargs):
        values = dict(zip(self.arg_names, args), **kwargs)
        for name, f in self.values.items():
            kwargs[name] = values[name] = f(values)
        return self.fn.run(*args, grid=grid, **kwargs)


def autotune(configs, key, prune_configs_by=None, reset_to_zero=None, restore_value=None, warmup=2, rep=5, **kw):
    return lambda fn: Autotuner(fn, configs, key, reset_to_zero, restore_value, warmup, rep)


def heuristics(values: dict):
    return lambda fn: Heuristics(fn, values)
