"""`python -m exprcompiler.bench [SUITE ...] [options]`: `exprc bench` on its own."""

import argparse
import sys

from .cli import add_bench_command


def main(argv=None) -> int:
    from ..cli import UserError
    parser = argparse.ArgumentParser(prog="python -m exprcompiler")
    add_bench_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        out = args.func(args)
    except UserError as err:
        print(f"exprc: error: {err}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
