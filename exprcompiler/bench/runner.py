"""The interleaved runner: every candidate once per round (A B C ... after warm-up,
the order rotated by one each round), medians and min–max, and the agreement of
every candidate's results with the reference's.

Interleaving is what lets ratios hold on a noisy shared machine: a slow stretch hits
every candidate of a round alike. Rotation matters too: what ran just before a call
(heap state after a free, data still in cache) shifts its time by up to 1.5 ms.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np


@dataclass
class Candidate:
    """One implementation of one task. `run()` times one call (seconds);
    `result()` gives its outputs as a flat list of arrays, for the agreement check.
    `family` names the hand-written reference its ratio is taken to ("C" or
    "NumPy"). An implementation that cannot run has `missing` set ("not installed")."""
    label: str
    threads: str
    family: str = ""
    run: Optional[Callable[[], float]] = None
    result: Optional[Callable[[], list]] = None
    missing: str = ""


def local(label: str, threads, family: str, fn: Callable, /, *args, **kwargs) -> Candidate:
    """A candidate that calls `fn(*args, **kwargs)` in this process."""
    def run() -> float:
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        return time.perf_counter() - t0
    return Candidate(label, str(threads), family, run,
                     lambda: flat_arrays(fn(*args, **kwargs)))


def calls_for(call: Callable, target: float) -> int:
    """How many calls of `call` last about `target` seconds. Three untimed calls first:
    a first call's one-off costs (an entry loaded, a fast path learnt) timed as the
    calibration made every batch of the first one-point model of `exprc bench mechanics`
    one call long, and its timings 10x what the call costs. Then the count doubles until
    the timed calls last a tenth of `target`."""
    for _ in range(3):
        call()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        elapsed = time.perf_counter() - t0
        if elapsed >= target / 10 or n >= 100_000:
            return max(1, min(100_000, round(target * n / max(elapsed, 1e-9))))
        n *= 2


class Batch:
    """A timed sample of a call that takes microseconds: `batch()` calls fn(*args)
    `calls` times and returns the mean seconds per call. The first batch sets `calls`
    so that one batch lasts about `target` seconds; every later batch does the same work."""

    def __init__(self, fn: Callable, args: tuple, target: float):
        self.fn, self.args, self.target, self.calls = fn, args, target, 0

    def __call__(self) -> float:
        fn, args = self.fn, self.args
        if not self.calls:
            self.calls = calls_for(lambda: fn(*args), self.target)
        t0 = time.perf_counter()
        for _ in range(self.calls):
            fn(*args)
        return (time.perf_counter() - t0) / self.calls


class BlasThreads:
    """NumPy's BLAS thread count, set through threadpoolctl when it is installed.

    BLAS reads OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS only when NumPy
    is first imported, which has happened long before a suite runs; threadpoolctl
    changes the count of the loaded library instead (a call costs about a microsecond,
    so a candidate sets its count before each timed sample). Without threadpoolctl
    the count stays what the environment made it, and `describe()` says so."""

    def __init__(self):
        self._libs = None
        self.missing = ""
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            self.missing = "threadpoolctl not installed"
            return
        self._libs = ThreadpoolController().select(user_api="blas").lib_controllers

    def set(self, n: int) -> None:
        for lib in self._libs or ():
            lib.set_num_threads(n)

    def label(self, n: int) -> str:
        """The thr cell of a NumPy row at `n` threads."""
        return str(n) if self._libs is not None else "env"

    def describe(self) -> str:
        if self._libs is None:
            return f"NumPy's BLAS threads: as the environment set them ({self.missing})"
        return "NumPy's BLAS: " + ", ".join(f"{lib.internal_api} {lib.version}"
                                            for lib in self._libs) + \
            ", threads set per row through threadpoolctl"

    def wrap(self, n: int, c: "Candidate") -> "Candidate":
        """The candidate with the BLAS count set to `n` before each run and result."""
        if c.run is None:
            return c
        run, result = c.run, c.result

        def timed():
            self.set(n)
            return run()

        def outputs():
            self.set(n)
            return result()
        c.run, c.result = timed, outputs
        return c


def flat_arrays(result) -> list:
    """(y, (g1, g2)) or y -> [y, g1, g2] as float64 arrays."""
    out, stack = [], [result]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        else:
            out.append(np.asarray(item, dtype=np.float64))
    return out


def rel_error(got: Sequence, want: Sequence) -> float:
    """Max relative difference, the denominator floored at 1 (values cross zero).
    NaN where either side is NaN or the counts differ: never "close"."""
    if len(got) != len(want):
        return float("nan")
    worst = 0.0
    for g, w in zip(got, want):
        g, w = np.broadcast_arrays(np.asarray(g, dtype=float), np.asarray(w, dtype=float))
        with np.errstate(all="ignore"):
            err = np.abs(g - w) / np.maximum(1.0, np.abs(w))
        if np.isnan(err).any():
            return float("nan")
        worst = max(worst, float(np.max(err, initial=0.0)))
    return worst


@dataclass(frozen=True)
class Timing:
    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Timing":
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    def as_dict(self) -> dict:
        return {"median_s": self.median, "min_s": self.low, "max_s": self.high,
                "rounds": self.rounds}


def ratio_to(median: float, refs: dict, threads: str) -> Optional[float]:
    """`median` over the reference's at the same threads (`refs`: {threads: median}), or
    at the reference's first thread count when it has none there; None without a reference."""
    base = refs.get(threads) or next(iter(refs.values()), None)
    return median / base if base else None


def labelled(*labels: str) -> Callable[[Sequence[Candidate]], list]:
    """run_interleaved's `reference`: the outputs of the group's candidate with one of `labels`."""
    return lambda group: next(c for c in group if c.label in labels).result()


def run_interleaved(groups: Sequence[Sequence[Candidate]], repeat: int,
                    reference: Callable[[Sequence[Candidate]], list]) -> tuple[dict, dict]:
    """Time every runnable candidate `repeat` times, interleaved within each group.
    `reference(group)` gives the outputs a group's candidates are checked against.
    Returns ({id(candidate): Timing}, {id(candidate): max relative error})."""
    errors = {}
    for group in groups:  # the agreement check doubles as the warm-up
        want = reference(group)
        for c in group:
            if c.run is not None:
                errors[id(c)] = rel_error(c.result(), want)
                c.run()
    samples: dict[int, list] = {id(c): [] for g in groups for c in g if c.run is not None}
    for r in range(repeat):
        for group in groups:
            live = [c for c in group if c.run is not None]
            k = r % len(live) if live else 0
            for c in live[k:] + live[:k]:
                samples[id(c)].append(c.run())
    return {key: Timing.of(s) for key, s in samples.items()}, errors
