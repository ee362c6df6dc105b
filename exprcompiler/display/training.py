"""How a training run shows in a notebook: `TrainResult` and `TrainHistory`
(driver/train_result.py) delegate their `_repr_html_` here — a summary, the loss
curve (an inline SVG drawn by matplotlib, when it is installed) and the per-epoch
table, the first and last epochs of a long run. Without matplotlib everything but
the curve still shows, with a note saying what to install."""

from __future__ import annotations

import io
import math

from .html import esc, paragraph, safe_display, table

# rows of the epoch table: a long run shows its first and last few
HEAD_ROWS = 5
TAIL_ROWS = 5


def _number(x: float, percent: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    # four digits, trailing zeros kept (0.6910, not 0.691, under 0.6919 in the column)
    return f"{x:.2%}" if percent else f"{x:#.4g}".rstrip(".")


def history_table(history) -> str:
    cols = list(history.COLUMNS)
    rows = history.rows()
    # validation columns only when a validation set was measured
    keep = [k for k, c in enumerate(cols) if not c.startswith("val_")
            or any(not math.isnan(r[k]) for r in rows)]
    shown = list(enumerate(rows))
    if len(rows) > HEAD_ROWS + TAIL_ROWS + 1:
        shown = shown[:HEAD_ROWS] + [None] + shown[-TAIL_ROWS:]
    body = []
    for item in shown:
        if item is None:
            body.append(["..."] + [""] * (len(keep) - 1))
            continue
        _, row = item
        body.append([str(int(row[k])) if cols[k] == "epoch" else
                     f"{row[k]:.3f}s" if cols[k] == "time" else
                     _number(row[k], percent="accuracy" in cols[k]) for k in keep])
    return table([cols[k] for k in keep], body, right=list(range(len(keep))))


def loss_curve_svg(history, title: str = "") -> str:
    """The loss (and validation loss) against the epoch, as an SVG element; "" when
    matplotlib is not installed."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        return ""
    epochs, loss, val = history.epoch, history.loss, history.val_loss
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "exprcompiler"}):
        fig = Figure(figsize=(5.0, 2.8), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(epochs, loss, ".-", label="training")
        if len(val) and not all(math.isnan(v) for v in val):
            ax.plot(epochs, val, ".--", label="validation")
            ax.legend(fontsize="small")
        ax.set(xlabel="epoch", ylabel="loss", title=title)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _curve_or_note(history, title: str) -> str:
    if len(history) == 0:
        return paragraph("no epochs ran")
    svg = loss_curve_svg(history, title)
    return svg or paragraph("(the loss curve needs matplotlib: pip install 'exprcompiler[plot]')")


@safe_display
def history_html(history) -> str:
    return "<div>" + _curve_or_note(history, "") + history_table(history) + "</div>"


@safe_display
def result_html(result) -> str:
    summary = "".join(f"{esc(line.strip())}<br/>" for line in str(result).splitlines())
    return (f"<div><p>{summary}</p>" + _curve_or_note(result.history, result.method)
            + history_table(result.history) + "</div>")


__all__ = ["history_html", "result_html", "history_table", "loss_curve_svg"]
