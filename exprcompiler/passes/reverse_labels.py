"""The per-instruction adjoint sweep's v̄ labels as columns, not a Label each.

Where it sits: inside passes/reverse.vjp, between its sweep and its finish. A
gradient of a front end's trace (loaded into its builder as it is, builder_load;
no labels taken, no tag) names nearly every adjoint v̄_k after the trace's v_k.
Made as Label objects, those were made once per primal variable (derived_labels)
and read back one by one by the finish (labels.as_labels: 0.45 µs an operation of
the gradient at 10^3). Here the builder's list gets a placeholder for them
(labels.LOADED, as builder_load's for a loaded trace: whatever reads one as a label
fails loudly), the sweep notes which trace variable each v̄ is of (`named`), and
`swept_labels` makes the columns with NumPy from the trace's own.
"""

from __future__ import annotations

from array import array
from itertools import compress
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..trace.labels import KINDS, LOADED, ODD, Labels, as_labels
from .replay import derived

if TYPE_CHECKING:
    from ..trace.ir import Builder, Trace

_V, _BAR = KINDS.index("v"), KINDS.index("bar")   # (labels.py's kind codes)


def as_columns(b: "Builder", trace: "Trace", taken: set) -> bool:
    """Whether vjp's v̄ labels can be columns: `trace` loaded in `b` with its
    labels as columns, none of them taken (no tag "2" to give)."""
    return b._loaded == len(trace.instrs) and not taken and isinstance(trace.labels, Labels)


def bar_markers(trace: "Trace") -> tuple[list, bytes]:
    """derived_labels(trace.labels, "bar") with LOADED for each v̄ of a common
    label (v, k) (no base, no tag: its v̄ is (bar, k)); and per variable, the kind
    code of its v̄ in the columns where so (_BAR), else 0. C-level maps over the
    columns, no NumPy: at 10^2 operations this is a fixed cost of the gradient."""
    labels = trace.labels
    code = labels.kinds.translate(_BAR_OF_V)
    bar = [LOADED] * len(labels)
    for i in compress(range(len(code)), code.translate(_IS_ZERO)):
        bar[i] = derived(labels[i], "bar")
    return bar, code


_BAR_OF_V = bytes(_BAR if k == _V else 0 for k in range(256))   # (bytes.translate tables)
_IS_ZERO = bytes([1] + [0] * 255)


def swept_labels(b: "Builder", trace: "Trace", named: dict, markers: tuple) -> Optional[Labels]:
    """The labels of what was built after the loaded `trace`, as columns for
    Builder.finish(labels_after=...): `named` holds builder var -> trace var k for
    each v̄ given (placeholder or Label), `markers` is the sweep's bar_markers. Where
    the builder holds a label `named` does not, the placeholders are made Labels in
    the builder's list instead (and None returned: finish reads them all)."""
    n0, labels = len(trace.instrs), trace.labels
    m = len(b.labels) - n0
    if len(named) != m - b.labels[n0:].count(None):
        built_labels = b.labels
        for var, k in named.items():
            if built_labels[var] is LOADED:
                built_labels[var] = derived(labels[k], "bar")
        return None
    bar, code = markers
    # (few NumPy calls: at 10^2 operations their fixed costs are most of the time)
    at = np.fromiter(named.keys(), np.intp, len(named))
    at -= n0
    src = np.fromiter(named.values(), np.intp, len(named))
    bars = np.frombuffer(code, np.uint8)[src]   # (the v̄ kinds in `named`'s order, set in `kinds` last)
    indexes = np.zeros(m, labels.indexes.typecode)
    indexes[at] = np.frombuffer(labels.indexes, labels.indexes.typecode)[src]
    odd = {}
    rest = (bars == 0).nonzero()[0]
    if len(rest):   # the others: their Labels (an input's v̄, with a base: odd, as as_labels has it)
        places, few = at[rest].tolist(), [bar[k] for k in src[rest].tolist()]
        if not all(label[2] is not None for label in few):
            few = as_labels(few)
            bars[rest] = np.frombuffer(few.kinds, np.uint8)
            if few.indexes.typecode == "q":   # (an index past int32)
                indexes = indexes.astype(np.int64)
            indexes[places] = few.indexes
            odd = {places[j]: label for j, label in few.odd.items()}
        else:
            bars[rest] = ODD
            indexes[places] = 0
            odd = dict(zip(places, few))
    kinds = np.zeros(m, np.uint8)
    kinds[at] = bars
    column = array("q" if indexes.itemsize == 8 else "i")
    column.frombytes(indexes.tobytes())
    return Labels(kinds.tobytes(), column, odd)
