"""`python -m exprcompiler` runs the `exprc` command line."""

import sys

from .cli import main

sys.exit(main())
