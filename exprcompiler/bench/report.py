"""What a suite returns, and how it is shown: a text table, JSON, a bar chart."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class SuiteResult:
    """`records` hold every number (JSON); `table` is the same rows as text cells
    under `headers`; `notes` go above the table and `legend` below it; `ratios` are
    the (label, ratio) bars of the plot."""
    name: str
    notes: list[str]
    headers: list[str]
    table: list[list[str]]
    records: list[dict]
    legend: list[str] = field(default_factory=list)
    ratios: list[tuple[str, float]] = field(default_factory=list)

    def text(self) -> str:
        widths = [max([len(h), *(len(r[k]) for r in self.table if k < len(r))])
                  for k, h in enumerate(self.headers)]
        numeric = [k > 0 and all(_numeric(r[k]) for r in self.table if k < len(r) and r[k])
                   for k in range(len(self.headers))]

        def line(cells):  # a short row (a missing competitor) ends in free text
            full = len(cells) if len(cells) == len(widths) else len(cells) - 1
            out = [c.rjust(w) if num else c.ljust(w)
                   for c, w, num in zip(cells[:full], widths, numeric)]
            return "  ".join(out + cells[full:]).rstrip()
        body = [line(self.headers)] + [line(r) for r in self.table]
        return "\n".join([f"== {self.name} ==", *self.notes, "", *body, "", *self.legend]).rstrip()

    def as_json(self) -> dict:
        return {"suite": self.name, "notes": self.notes, "rows": self.records,
                "legend": self.legend}


def _numeric(cell: str) -> bool:
    return cell[:1].isdigit() or cell[:1] in "-–>" or cell == "nan"


def ms(seconds: Optional[float]) -> str:
    return "–" if seconds is None else _three(1e3 * seconds)


def us(seconds: Optional[float]) -> str:
    return "–" if seconds is None else _three(1e6 * seconds)


def span(t, unit=ms) -> str:
    """The min–max cell of a runner.Timing, in `unit` (ms or us)."""
    return f"{unit(t.low)}–{unit(t.high)}"


def _three(x: float) -> str:
    """Three significant digits, whole numbers from 100 up."""
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def ratio(x: Optional[float], digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def err(x: Optional[float]) -> str:
    return "–" if x is None else ("nan" if math.isnan(x) else f"{x:.1e}")


def write_json(path: str, machine: dict, results: list[SuiteResult]) -> None:
    from ..cli import UserError
    data = clean({"machine": machine, "suites": [r.as_json() for r in results]})
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, allow_nan=False)
            fh.write("\n")
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


def clean(x):
    """JSON has no NaN or inf: they become strings, as repr prints them."""
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x


def plot(path: str, results: list[SuiteResult]) -> None:
    """One horizontal bar chart per suite that has ratios (the caller checked that
    matplotlib is installed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..cli import UserError
    shown = [r for r in results if r.ratios]
    if not shown:
        raise UserError("--plot: no suite that was run has ratios to draw")
    fig, axes = plt.subplots(len(shown), 1, squeeze=False,
                             figsize=(8, 1 + 0.25 * sum(len(r.ratios) for r in shown)))
    for ax, r in zip(axes[:, 0], shown):
        labels, values = zip(*r.ratios)
        ax.barh(range(len(values)), values)
        ax.set_yticks(range(len(values)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{r.name}: time / hand-written reference (lower is faster)", fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    finally:
        plt.close(fig)
