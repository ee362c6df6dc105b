"""`python -m exprcompiler.bench [SUITE ...] [options]`: `exprc bench` on its own;
`one_cpu(suite, ...)`: the benchmarks/ scripts that run one suite on one core."""

import argparse
import sys

from .cli import add_bench_command
from .worker import pin


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


def one_cpu(suite: str, description: str, quick_help: str, repeat: int) -> int:
    """`suite` with --threads 1 and the whole process (so its JAX or PyTorch workers
    too) pinned to the first CPU it may use: every competitor shares one core. Reads
    --repeat, --quick and --json from the command line."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--repeat", type=int, default=repeat, help="interleaved rounds")
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", metavar="PATH", help="write every number and the machine to PATH")
    args = ap.parse_args()
    pin(1)
    return main([suite, "--threads", "1", "--repeat", str(args.repeat)]
                + (["--quick"] if args.quick else [])
                + (["--json", args.json] if args.json else []))


if __name__ == "__main__":
    sys.exit(main())
