"""Numerical-stability rewrites (issue 18): rules as data (rules.py), one rewriter
(rewrite.py) run on the primal trace before differentiation and on the derivative
trace after it, the firings shown by explain (show.py), and a catalogue of classic
unstable formulas checked against mpmath (catalogue.py, bench/stability.py)."""

from .rewrite import STAGES, Firing, stabilize
from .rules import RULES, Rule

__all__ = ["stabilize", "Firing", "STAGES", "RULES", "Rule"]

# The default of compile_*(stable=...). Off, from the measurements (README, "Numerical
# stability"; bench/stability.py times every scalar catalogue entry on 10⁶ points where
# its naive form is accurate): most rewrites cost what the naive forms do there, but
# log(1 - e^x) (1.1-1.5x) and C's own e^x - 1 and three-term forms (1.1-1.2x) still cost
# more than the 10% a rewrite may cost where it was not needed; a compile step cannot
# know the input range; and the lecture's tables would show the rewritten trace.
# `explain(expr, stability=True)` shows what it would change.
DEFAULT_STABLE = False


def stabilized(trace, stage: str, stable, sink=None):
    """`trace` with the rules of `stage` applied when `stable` is true (as it is, else);
    the firings are appended to the list `sink` when one is given. What compile_*'s
    `stable=` does, before the sweeps (stage "primal") and after them ("derivative")."""
    if not isinstance(stable, bool):
        raise TypeError(f"stable must be True or False, not {stable!r}")
    if not stable:
        return trace
    new, firings = stabilize(trace, stage)
    if sink is not None:
        sink.extend(firings)
    return new


__all__ += ["DEFAULT_STABLE", "stabilized"]
