"""Skip marker for tests that need NVRTC (cuda-bindings + nvidia-cuda-nvrtc), not a GPU."""

import pytest


def _nvrtc_reason() -> str | None:
    try:
        from kaiyuan.backends.cuda import nvrtc

        nvrtc.version()
    except Exception as e:  # ToolchainError without cuda-bindings, OSError without libnvrtc
        return f"NVRTC unavailable: {e}"
    return None


REASON = _nvrtc_reason()
requires_nvrtc = pytest.mark.skipif(REASON is not None, reason=REASON or "")
