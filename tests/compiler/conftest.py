import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every compiler test gets its own empty disk cache and no dump folder."""
    d = tmp_path / "kycache"
    monkeypatch.setenv("KAIYUAN_CACHE_DIR", str(d))
    monkeypatch.delenv("KAIYUAN_DUMP", raising=False)
    return d
