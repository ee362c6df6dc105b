"""Build the hand-written reference C of the seed functions, scalar and vectorized.

    python build_scripts/build_reference.py [--out FOLDER] [--force]

A thin wrapper over exprcompiler.bench.reference, which `exprc bench` uses: the
source ships in the package (exprcompiler/bench/seeds_ref.c) and the libraries go
into the C backend's cache unless --out names another folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exprcompiler.backends import c_build  # noqa: E402
from exprcompiler.bench.reference import ReferenceError, load_reference  # noqa: E402,F401
from exprcompiler.bench.seeds import SEEDS as ALL_SEEDS  # noqa: E402

# The two-input seeds: tests/test_reference_c.py unpacks two inputs per seed. The
# bench's own tests (tests/test_bench*.py) check every seed.
SEEDS = {name: s for name, s in ALL_SEEDS.items() if len(s.inputs) == 2}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for the libraries (default: the C kernel cache)")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()
    try:
        refs = load_reference(args.out, args.force)
    except ReferenceError as err:
        print(f"build_reference: error: {err}", file=sys.stderr)
        return 2
    compiler, version = c_build.find_compiler()
    print(f"compiler: {compiler} ({version})")
    for ref in refs.values():
        print(f"{ref.name:10s} {ref.path}\n{'':10s} flags: {' '.join(ref.flags)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
