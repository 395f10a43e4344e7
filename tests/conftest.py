"""Session-wide test setup.

Compiled kernels go to a per-session temporary cache, so a test run neither reads stale
entries from nor writes into the user's ~/.cache/kaiyuan. An explicit KAIYUAN_CACHE_DIR wins
(CI may point it somewhere on purpose).
"""

import os
import shutil
import tempfile

_OWNED_CACHE: str | None = None


def pytest_configure(config):
    global _OWNED_CACHE
    if not os.environ.get("KAIYUAN_CACHE_DIR"):
        _OWNED_CACHE = tempfile.mkdtemp(prefix="kaiyuan-test-cache-")
        os.environ["KAIYUAN_CACHE_DIR"] = _OWNED_CACHE


def pytest_unconfigure(config):
    global _OWNED_CACHE
    if _OWNED_CACHE is not None:
        os.environ.pop("KAIYUAN_CACHE_DIR", None)
        shutil.rmtree(_OWNED_CACHE, ignore_errors=True)
        _OWNED_CACHE = None
