"""`python -m kaiyuan` is the `kaiyuan` command."""

from kaiyuan.tools.cli import main

raise SystemExit(main())
