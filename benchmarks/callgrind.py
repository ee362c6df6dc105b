"""Instruction counts for the benchmarks: a command run under valgrind's callgrind,
collecting only between the client requests it makes itself, and its dumps' totals.

Shared by bench_jacobian_modes.py (a C driver around a kernel's entry) and
bench_dense_point.py (a Python child that dumps one count per row). Counts are
deterministic, so they compare builds where a shared machine's timings cannot.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# Where a command toggles collection itself (CALLGRIND_TOGGLE_COLLECT around what it
# measures), the interpreter's start-up and the setup are left out.
_BASE = ["valgrind", "--tool=callgrind", "--collect-atstart=no"]


def run(command: list, out: Path, *, cache_sim: bool = False, env=None) -> None:
    """Run `command` under callgrind, its dumps written to `out` (and `out`.N for
    each CALLGRIND_DUMP_STATS); cache_sim adds the simulated L1 counts (D1mr, D1mw)."""
    flags = ["--cache-sim=yes"] if cache_sim else []
    subprocess.run(_BASE + flags + ["--compress-strings=no", f"--callgrind-out-file={out}"] + list(command),
                   check=True, capture_output=True, env=env)


def totals(dump: Path) -> dict:
    """{event: total} of one dump (Ir, and Dr, Dw, D1mr, ... with the cache simulation)."""
    events = counts = None
    for line in Path(dump).read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("totals:", "summary:")):
            counts = [int(v) for v in line.split()[1:]]
    if events is None or counts is None:
        raise RuntimeError(f"{dump}: no events or totals in callgrind's output")
    return dict(zip(events, counts + [0] * len(events)))   # callgrind leaves out trailing zeros
