"""`@ky.autotune` and `@ky.heuristics` (Triton's names and meaning).

autotune picks the fastest of several `Config`s (meta-parameter sets) for each *shape class* of a
launch, the first time that class is seen:

  1. The key.  The values of the `key=` arguments, each integer bucketed by `key_bucket`
     ("exact", Triton's default, or "pow2": the next power of two, so n=1000 and n=1024 share a
     result), arrays by dtype and (bucketed) shape; plus the dtypes of every array argument and
     the name of the device the launch runs on.
  2. Memory, then disk.  A winner is kept in memory (`.best`) and in
     $KAIYUAN_CACHE_DIR/autotune/<kernel>-<hash>.json, where each entry's key also holds a
     *machine fingerprint* (CPU model, core counts, the device's properties such as the cpu ISA
     and C compiler, kaiyuan's version): a cache copied from another machine is never trusted.
     Writes are atomic (temporary file + rename); an unreadable or corrupt file is ignored and
     rewritten.
  3. Pruning.  `prune_configs_by={"early_config_prune": f, "perf_model": g, "top_k": k}` as in
     Triton: f(configs, named_args, **kwargs) returns the candidates; g(**named_args, **kwargs,
     **config.kwargs) estimates a time and only the `top_k` best estimates (a count, or a fraction
     when <= 1.0) are timed.
  4. Timing.  The candidates' kernels are first compiled together, one thread per core (the C
     compiler runs outside the GIL; `jit.compile_only`): a cold attention shape tunes in 4.0 s
     instead of 6.1. Each candidate then runs `warmup` times untimed, then the
     candidates are timed in interleaved rounds (A B C A B C ...), up to `rep` rounds, stopping
     once about `budget_ms` per candidate has been spent; a new shape costs compile time plus
     roughly budget_ms per candidate. Each candidate's fastest run wins: on a shared machine noise
     only ever slows a run, and interleaving spreads a slow spell over every candidate instead of
     handing it to whichever one was being timed. On a host device (launches run to completion)
     the timed run replays the launches captured from one run (kaiyuan.runtime.capture), so the
     Python launch path, the same for every config, does not swamp a sub-millisecond kernel.
     A candidate that fails to compile or run (a KaiyuanError: unsupported tile, capacity, ...)
     is skipped with its reason logged; if every one fails, the launch raises an ArgumentError
     (KY-E201) that lists each config's reason.
  5. Reporting.  `.last_tuning_seconds`, `.tuning_log` (one record per tuned key) and an INFO
     line on the "kaiyuan.autotune" logger; `.best_config` (the last launch's), `.best` (key →
     Config) and `.best_config_for(*args, **kwargs)`.

`KAIYUAN_AUTOTUNE=0` turns tuning off: every launch uses the first candidate (after
`early_config_prune`) and the disk cache is neither read nor written (deterministic CI runs).
The variable is read at each launch: switching it back on tunes the keys seen while it was off.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..runtime import capture as _capture
from ..runtime.capture import capture, replay_list
from ..runtime.errors import ArgumentError, KaiyuanError
from ..runtime.registry import default_device
from ..runtime.stream import synchronize
from ..runtime.tensor import Tensor
from .cache import cache_dir
from .jit import JITFunction, compile_only

log = logging.getLogger("kaiyuan.autotune")

_FORMAT = 2  # version of the on-disk table layout


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

    def _record(self) -> dict:
        """What the disk table stores of a config (JSON)."""
        return {"kwargs": self.kwargs, "num_warps": self.num_warps, "num_stages": self.num_stages,
                "num_ctas": self.num_ctas, "maxnreg": self.maxnreg}

    def __repr__(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.kwargs.items())


# ------------------------------------------------------------------------------- shape classes


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


_BUCKETS = {"exact": lambda n: n, "pow2": lambda n: n if n <= 0 else _next_pow2(n)}


def _bucket_fn(key_bucket):
    if callable(key_bucket):
        return key_bucket
    try:
        return _BUCKETS[key_bucket]
    except KeyError:
        raise ArgumentError(f"autotune key_bucket={key_bucket!r} is not known",
                            hint='use "exact", "pow2" or a function int -> int') from None


# ------------------------------------------------------------------------- machine fingerprint


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_fingerprint(device) -> dict:
    """What must be equal for a stored tuning result to be trusted: this machine and device."""
    from .. import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "device": device.name,
        "properties": json.loads(json.dumps(getattr(device, "properties", {}), sort_keys=True, default=str)),
        "kaiyuan": __version__,
    }


def _fingerprint_hash(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def autotune_enabled() -> bool:
    return os.environ.get("KAIYUAN_AUTOTUNE", "1").strip().lower() not in ("0", "false", "off", "no")


# ---------------------------------------------------------------------------------- autotuner


class Autotuner:
    def __init__(self, fn, configs, key, reset_to_zero=None, restore_value=None, warmup=2, rep=5,
                 prune_configs_by=None, key_bucket="exact", budget_ms=50.0, **_):
        self.fn = fn  # a JITFunction (or another Autotuner/Heuristics wrapper)
        self.configs = list(configs) or [Config({})]
        self.key = list(key)
        self.reset_to_zero = list(reset_to_zero or [])
        self.restore_value = list(restore_value or [])
        self.warmup, self.rep, self.budget_ms = warmup, rep, budget_ms
        prune = dict(prune_configs_by or {})
        unknown = set(prune) - {"early_config_prune", "perf_model", "top_k"}
        if unknown:
            raise ArgumentError(f"prune_configs_by has unknown entries {sorted(unknown)}",
                                hint="entries: early_config_prune, perf_model, top_k")
        self.early_config_prune = prune.get("early_config_prune")
        self.perf_model = prune.get("perf_model")
        self.top_k = prune.get("top_k")
        self.key_bucket = key_bucket if callable(key_bucket) else str(key_bucket)
        self._bucket = _bucket_fn(key_bucket)
        self.best: dict = {}  # key -> the Config launches with that key use (Triton calls this `cache`)
        self._untuned: set = set()  # keys whose Config was chosen without tuning (KAIYUAN_AUTOTUNE=0)
        self.best_config = None
        self.arg_names = fn.arg_names
        self.__ky_jit_fn__ = getattr(fn, "__ky_jit_fn__", None)
        self.last_tuning_seconds = 0.0
        self.tuning_log: list[dict] = []
        self._path = None
        self._tuned_names = {k for c in self.configs for k in c.kwargs}

    @property
    def cache(self) -> dict:
        return self.best

    @property
    def tuning_seconds(self) -> float:  # the name used before last_tuning_seconds
        return self.last_tuning_seconds

    @property
    def name(self) -> str:
        return getattr(self.__ky_jit_fn__, "name", "kernel")

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.run(*args, grid=grid, **kwargs)

    def __repr__(self) -> str:
        return f"<ky.autotune of {self.__ky_jit_fn__!r}: {len(self.configs)} configs, key={self.key}>"

    # ------------------------------------------------------------------ keys
    def _key_of(self, values: dict) -> str:
        """device | dtypes of every array argument | bucketed key values (in `key` order)."""
        bucket = self._bucket
        dtypes = [_dtype_str(v.dtype) for v in values.values()
                  if type(v) not in _SCALARS and hasattr(v, "dtype") and hasattr(v, "shape")]
        parts = [launch_device(values).name, ",".join(dtypes)]
        for k in self.key:
            v = values.get(k)
            if isinstance(v, bool) or not isinstance(v, int):
                if hasattr(v, "shape"):
                    parts.append(f"{_dtype_str(v.dtype)}{tuple(bucket(int(d)) for d in v.shape)}")
                else:
                    parts.append(repr(v))
            else:
                parts.append(str(bucket(v)))
        return "|".join(parts)

    def best_config_for(self, *args, **kwargs):
        """The Config chosen for launches like this one (None if that shape class is not tuned yet)."""
        return self.best.get(self._key_of(dict(zip(self.arg_names, args), **kwargs)))

    # ------------------------------------------------------------------ disk
    def _disk_path(self):
        if self._path is None:
            jit = self.__ky_jit_fn__
            try:
                source = inspect.getsource(jit.fn)
            except (OSError, TypeError, AttributeError):
                source = ""
            ident = json.dumps([getattr(jit, "where", ""), source, [c._record() for c in self.configs], self.key,
                                self.key_bucket if isinstance(self.key_bucket, str) else repr(self.key_bucket)],
                               default=str)
            h = hashlib.sha256(ident.encode()).hexdigest()[:16]
            self._path = f"{self.name}-{h}.json"
        return cache_dir() / "autotune" / self._path

    def _load(self) -> dict:
        """The disk table's entries, {} when absent; a corrupt file is logged and treated as empty."""
        path = self._disk_path()
        try:
            text = path.read_text()
        except OSError:
            return {}
        try:
            table = json.loads(text)
            if not isinstance(table, dict) or table.get("format") != _FORMAT or not isinstance(table.get("entries"), dict):
                raise ValueError("not an autotune table of this kaiyuan")
            return table["entries"]
        except ValueError as e:
            log.warning("ignoring corrupt autotune cache %s (%s); it will be rewritten", path, e)
            return {}

    def _save(self, disk_key: str, entry: dict) -> None:
        path = self._disk_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            entries = self._load()  # merge with what other processes wrote since
            entries[disk_key] = entry
            text = json.dumps({"format": _FORMAT, "kernel": self.name, "entries": entries}, indent=1, default=str)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:
            log.warning("could not write autotune cache %s: %s", path, e)

    def _from_record(self, rec) -> Config | None:
        if not isinstance(rec, dict) or not isinstance(rec.get("kwargs"), dict):
            return None
        for c in self.configs:
            if json.loads(json.dumps(c._record(), default=str)) == rec:  # as JSON stored it (tuples as lists)
                return c
        for c in self.configs:
            if c.kwargs == rec["kwargs"]:
                return c
        try:  # a config made by early_config_prune: rebuild it
            return Config(dict(rec["kwargs"]), **{k: rec[k] for k in ("num_warps", "num_stages", "num_ctas", "maxnreg") if k in rec})
        except TypeError:
            return None

    # ------------------------------------------------------------------ launching
    def run(self, *args, grid, **kwargs):
        if kwargs and not self._tuned_names.isdisjoint(kwargs):
            self._check_caller(kwargs)
        values = dict(zip(self.arg_names, args), **kwargs)
        key = self._key_of(values)
        cfg = self.best.get(key)
        enabled = autotune_enabled()
        if cfg is None or (key in self._untuned) == enabled:  # new key, or tuning was switched on/off
            if enabled:
                cfg = self._lookup_or_tune(key, values, args, kwargs, grid)
                self._untuned.discard(key)
            else:
                cfg = self._prune(values, kwargs)[0]
                self._untuned.add(key)
            self.best[key] = cfg
        self.best_config = cfg
        if cfg.pre_hook:
            _capture.taint()  # host code before the launch, which a replay would skip
            cfg.pre_hook({**values, **cfg.kwargs})
        return self.fn.run(*args, grid=grid, **kwargs, **cfg.all_kwargs())

    def _check_caller(self, kwargs):
        clash = self._tuned_names & set(kwargs)
        if clash:
            raise ArgumentError(f"autotuned meta-parameters {sorted(clash)} were also passed by the caller",
                                hint="leave tuned parameters out of the launch")

    def _lookup_or_tune(self, key, values, args, kwargs, grid) -> Config:
        _capture.taint()  # the timing launches are recorded too: a capture of this call cannot replay
        fp = machine_fingerprint(launch_device(values))
        disk_key = f"{_fingerprint_hash(fp)}|{key}"
        entry = self._load().get(disk_key)
        if isinstance(entry, dict) and entry.get("machine") == fp:
            cfg = self._from_record(entry.get("config"))
            # a config the prune now rules out (the configs or the prune changed since) is retuned
            if cfg is not None and any(c.kwargs == cfg.kwargs for c in self._prune(values, kwargs)):
                log.debug("autotune %s: key %s from the disk cache: %r", self.name, key, cfg)
                return cfg
        cfg, record = self._tune(key, values, args, kwargs, grid)
        for n in self.reset_to_zero:  # the real launch starts from zero, as the timed ones did
            _zero(values[n])
        if record["timed"]:
            self._save(disk_key, {"config": cfg._record(), "machine": fp, "ms": record["winner_ms"],
                                  "tuning_seconds": record["seconds"], "tried": len(record["times"]),
                                  "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return cfg

    def _prune(self, values, kwargs) -> list:
        configs = self.configs
        if self.early_config_prune is not None:
            configs = list(self.early_config_prune(configs, dict(values), **kwargs))
            if not configs:
                raise ArgumentError(f"autotune of {self.name}: early_config_prune left no config",
                                    hint="return at least one Config from the prune function")
        if self.perf_model is not None and self.top_k is not None:
            k = self.top_k
            if isinstance(k, float) and k <= 1.0:
                k = int(len(configs) * k)
            k = max(1, int(k))
            if k < len(configs):
                est = [self.perf_model(**values, **kwargs, **c.all_kwargs()) for c in configs]
                order = sorted(range(len(configs)), key=est.__getitem__)
                configs = [configs[i] for i in order[:k]]
        return configs

    def _tune(self, key, values, args, kwargs, grid):
        start = time.perf_counter()
        candidates = self._prune(values, kwargs)
        times, skipped = [], []
        if len(candidates) == 1:  # nothing to compare: the launch itself reports a failure
            best, best_ms = candidates[0], None
        else:
            self._precompile(candidates, args, kwargs, grid)
            runners = []  # (config, timed runner); Configs are not hashable
            for cfg in candidates:
                try:
                    runners.append((cfg, self._warm(cfg, args, kwargs, grid)))
                except KaiyuanError as e:
                    reason = f"{type(e).__name__}: {e.message}"
                    skipped.append((cfg, reason))
                    log.info("autotune %s: skipping config {%r}: %s", self.name, cfg, reason)
            times = [(cfg, sec * 1e3) for (cfg, _), sec in zip(runners, self._rounds([r for _, r in runners]))]
            best, best_ms = min(times, key=lambda t: t[1]) if times else (None, float("inf"))
            if best is None:
                reasons = "; ".join(f"{{{c!r}}}: {r}" for c, r in skipped)
                raise ArgumentError(f"autotune of {self.name}: none of the {len(candidates)} configs could run "
                                    f"for key {key} ({reasons})",
                                    hint="check the configs (block sizes, limits) against the input shapes")
        seconds = time.perf_counter() - start
        self.last_tuning_seconds = seconds
        record = {"key": key, "configs": len(self.configs), "tried": [c for c, _ in times],
                  "times": [(c, ms) for c, ms in times], "skipped": skipped, "winner": best,
                  "winner_ms": best_ms, "seconds": seconds, "timed": bool(times)}
        self.tuning_log.append(record)
        if times:
            ranking = ", ".join(f"{{{c!r}}} {ms:.3f} ms" for c, ms in sorted(times, key=lambda t: t[1]))
            log.info("autotuned %s for key %s in %.2f s: %d configs timed, %d skipped, %d pruned; best {%r} "
                     "(%.3f ms); %s", self.name, key, seconds, len(times), len(skipped),
                     len(self.configs) - len(candidates), best, best_ms, ranking)
        return best, record

    def _precompile(self, candidates, args, kwargs, grid) -> None:
        """Compile the candidates' kernels at once, one thread per core: the C compiler runs
        outside the GIL (a cold attention shape: 5 configs, ~1.2 s of gcc each). Failures are
        left for `_warm` to meet and report; nothing runs here."""
        workers = min(len(candidates), os.cpu_count() or 1)
        inner = self.fn
        while isinstance(inner, Heuristics):
            inner = inner.fn
        if workers < 2 or not isinstance(inner, JITFunction):  # only a jit kernel knows compile_only
            return

        dev = default_device()  # thread-local: the workers must see the caller's `with ky.device`

        def compile_one(cfg):
            with dev, compile_only():
                try:
                    self.fn.run(*args, grid=grid, **kwargs, **cfg.all_kwargs())
                except KaiyuanError:
                    pass

        with ThreadPoolExecutor(workers, thread_name_prefix="kaiyuan-autotune") as pool:
            list(pool.map(compile_one, candidates))

    def _warm(self, cfg, args, kwargs, grid):
        """Run `cfg` `warmup` times untimed (at least once: it compiles); returns its timed runner,
        a function running it once more and returning the seconds it took."""
        values = dict(zip(self.arg_names, args), **kwargs)
        saved = {n: _snapshot(values[n]) for n in self.restore_value}
        device = launch_device(values)
        meta = cfg.all_kwargs()

        def once():
            for n in self.reset_to_zero:
                _zero(values[n])
            if cfg.pre_hook:
                cfg.pre_hook({**values, **meta})
            try:
                t0 = time.perf_counter()
                self.fn.run(*args, grid=grid, **kwargs, **meta)
                synchronize(device)
                return time.perf_counter() - t0
            finally:
                for n, snap in saved.items():  # every run sees the caller's data
                    _restore(values[n], snap)

        spent = 0.0
        for i in range(max(1, self.warmup)):
            spent += once()
            if i > 0 and spent > self.budget_ms / 1e3:  # a slow kernel needs no more warming up
                break
        if not device.is_host:
            return once
        # Time the kernel, not the launch path: on a host device a launch runs to completion, so
        # the captured launches replayed alone are the kernel's time. The Python launch path
        # (~0.1-0.3 ms, the same for every config) would otherwise drown the differences between
        # configs of a sub-millisecond kernel in its noise.
        with capture() as launches:
            once()
        if not launches:
            return once
        replay = replay_list(launches)

        def replayed():
            for n in self.reset_to_zero:
                _zero(values[n])
            if cfg.pre_hook:
                cfg.pre_hook({**values, **meta})
            try:
                t0 = time.perf_counter()
                replay()
                return time.perf_counter() - t0
            finally:
                for n, snap in saved.items():
                    _restore(values[n], snap)

        return replayed

    def _rounds(self, runners: list) -> list:
        """Fastest seconds of each runner, timed in interleaved rounds (see the module doc)."""
        best = [float("inf")] * len(runners)
        budget = self.budget_ms / 1e3 * len(runners)
        spent = 0.0
        for _ in range(max(1, self.rep)):
            for i, once in enumerate(runners):
                t = once()
                best[i] = min(best[i], t)
                spent += t
            if spent > budget:
                break
        return best


_DTYPE_STR: dict = {}


def _dtype_str(dt) -> str:
    """str(dtype), memoised: numpy builds the name anew on every str() (~3 us, 7 per key)."""
    name = _DTYPE_STR.get(dt)
    if name is None:
        name = _DTYPE_STR[dt] = str(dt)
    return name


def launch_device(values):
    """The device a launch with these arguments runs on: that of its ky tensors, else the default."""
    for v in values.values():
        if type(v) not in _SCALARS and isinstance(v, Tensor):
            return v.device
    return default_device()


_SCALARS = {int, float, bool, str, type(None)}


def _launch_device_name(values) -> str:
    return launch_device(values).name


def _snapshot(x):
    import numpy as np

    return np.array(np.asarray(x), copy=True)


def _restore(x, snap):
    import numpy as np

    from ..runtime.tensor import Tensor

    if isinstance(x, Tensor) and not x.device.is_host:
        x.copy_(snap)
    else:
        np.asarray(x)[...] = snap


def _zero(x):
    import numpy as np

    from ..runtime.tensor import Tensor

    if isinstance(x, Tensor) and not x.device.is_host:
        x.copy_(np.zeros(x.shape, x.dtype.np))
    else:
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


def autotune(configs, key, prune_configs_by=None, reset_to_zero=None, restore_value=None, warmup=2, rep=5,
             key_bucket="exact", budget_ms=50.0, **kw):
    """Decorator: `@ky.autotune(configs=[ky.Config({...})], key=["n"])` above `@ky.jit` (see the module doc).

    Extra Triton arguments (`pre_hook`, `post_hook`, `do_bench`, `use_cuda_graph`, `cache_results`)
    are accepted and ignored; results are always cached on disk."""
    return lambda fn: Autotuner(fn, configs, key, reset_to_zero, restore_value, warmup, rep,
                                prune_configs_by=prune_configs_by, key_bucket=key_bucket, budget_ms=budget_ms)


def heuristics(values: dict):
    return lambda fn: Heuristics(fn, values)
