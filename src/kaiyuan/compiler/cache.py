"""The on-disk kernel cache (DESIGN.md §4).

An entry is keyed by a hash of everything that decides the binary: the `ky` IR text, the target,
the compile options, the backend's toolchain version and kaiyuan's own version. Entries are
written into a temporary folder and renamed into place (atomic: a reader never sees half an
entry). Each entry records the SHA-256 of its binary; an entry that fails that check, or that
cannot be read, is deleted and rebuilt — never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


_EXT = {"ir": ".mlir", "text": ".txt", "binary": ".bin"}
_TEXT_EXT = {"c": ".c", "cl": ".cl", "cu": ".cu", "cuda": ".cu", "ptx": ".ptx"}


def cache_dir() -> Path:
    d = os.environ.get("KAIYUAN_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "kaiyuan"


def cache_key(ir_text: str, target: str, options: dict, toolchain: str) -> str:
    from .. import __version__

    h = hashlib.sha256()
    for part in (ir_text, target, json.dumps(options, sort_keys=True, default=str), toolchain, __version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


_FINGERPRINTS: dict[str, str] = {}


def backend_fingerprint(compiler) -> str:
    """Hash of the source files of the package that defines `compiler`'s class, and of the
    shared code generators (the subpackages of kaiyuan.compiler: cfamily, simt, ...).

    kaiyuan's version number alone does not change when a backend's code generator does (a
    development checkout, a patched install); keying on the generator's own source means a
    changed emitter never gets a binary built by the old one."""
    module = sys.modules.get(type(compiler).__module__)
    folder = Path(getattr(module, "__file__", "") or ".").parent
    key = str(folder)
    if key not in _FINGERPRINTS:
        h = hashlib.sha256()
        shared = sorted(p for p in Path(__file__).parent.iterdir() if (p / "__init__.py").is_file())
        for d in [folder, *shared]:
            for path in sorted(d.glob("*")):
                if path.suffix in (".py", ".h", ".c", ".cl", ".cu") and path.is_file():
                    h.update(f"{d.name}/{path.name}".encode())
                    h.update(path.read_bytes())
        _FINGERPRINTS[key] = h.hexdigest()[:16]
    return _FINGERPRINTS[key]


def stage_filename(index: int, name: str, kind: str) -> str:
    ext = _TEXT_EXT.get(name, _EXT[kind]) if kind == "text" else _EXT[kind]
    return f"{index:02d}-{name}{ext}"


_RECORDERS: list = []


@contextmanager
def recording():
    """Collect every kernel compiled or loaded from the cache inside the `with` block:
    {key: (binary, asm, kinds, meta)}. The offline compiler stores them in a .kym file, and
    `install` puts them back into the disk cache on another run, so nothing recompiles."""
    found: dict = {}
    _RECORDERS.append(found)
    try:
        yield found
    finally:
        _RECORDERS.remove(found)


def record(key: str, binary: bytes, asm: dict, kinds, meta: dict) -> None:
    for found in _RECORDERS:
        found[key] = (binary, asm, [list(k) for k in kinds], meta)


def install(key: str, binary: bytes, asm: dict, kinds, meta: dict) -> None:
    """Put a recorded kernel into the disk cache (unless an entry is there already)."""
    cache = DiskCache()
    if cache.get(key) is None:
        cache.put(key, binary, asm, [tuple(k) for k in kinds], meta)


class DiskCache:
    def __init__(self, root: Path | None = None):
        self.root = root or cache_dir()

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str):
        """(binary, asm, meta) for key, or None. A corrupt entry is removed and reported as a miss."""
        entry = self._entry(key)
        if not entry.is_dir():
            return None
        try:
            manifest = json.loads((entry / "manifest.json").read_text())
            binary = (entry / "binary").read_bytes()
            if hashlib.sha256(binary).hexdigest() != manifest["binary_sha256"]:
                raise ValueError("binary checksum mismatch")
            asm = {}
            for i, (name, kind) in enumerate(manifest["stages"]):
                path = entry / stage_filename(i, name, kind)
                asm[name] = path.read_bytes() if kind == "binary" else path.read_text()
            return binary, asm, manifest["meta"]
        except Exception:
            shutil.rmtree(entry, ignore_errors=True)
            return None

    def put(self, key: str, binary: bytes, asm: dict, kinds: list[tuple[str, str]], meta: dict) -> None:
        entry = self._entry(key)
        tmp = None
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=entry.parent))
            write_stages(tmp, asm, kinds)
            (tmp / "binary").write_bytes(binary)
            manifest = {"binary_sha256": hashlib.sha256(binary).hexdigest(), "stages": kinds, "meta": meta}
            (tmp / "manifest.json").write_text(json.dumps(manifest, default=str))
            try:
                os.rename(tmp, entry)
                tmp = None
            except OSError:  # another process won the race: its entry is as good as ours
                pass
        except OSError:
            pass  # a read-only or full disk makes the cache slower, never wrong
        finally:
            if tmp is not None:  # never leave a half-written entry behind
                shutil.rmtree(tmp, ignore_errors=True)


def write_stages(folder: Path, asm: dict, kinds: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, kind) in enumerate(kinds):
        data = asm[name]
        path = folder / stage_filename(i, name, kind)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
