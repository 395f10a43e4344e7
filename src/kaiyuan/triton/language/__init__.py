"""`triton.language` under kaiyuan: the same objects as `kaiyuan.language`."""

from ...language import *  # noqa: F401,F403
from ...language import __all__, math  # noqa: F401
