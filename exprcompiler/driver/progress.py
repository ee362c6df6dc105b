"""A progress bar with the running f for long runs: tqdm when it is installed, stderr
is a terminal and the caller did not ask for quiet; otherwise nothing at all.

Part of the driver (see driver/__init__.py): driver/minimize.py and driver/train.py
open one bar per run, once the run's input is checked and its gradient compiled;
`before_first_bar` lets a command print its header at that moment (`exprc train`:
the table's header before the steps, and nothing at all when the input is refused).
tqdm is an optional extra (`pip install 'exprcompiler[progress]'`); logs and pipes
stay clean because a bar is only drawn on a terminal.
"""

from __future__ import annotations

import contextlib
import sys

EVERY = 50  # iterations between bar updates: formatting f costs more than a fast step
_BEFORE: list = []  # callbacks waiting for the next bar to open (before_first_bar)


class _Silent:
    def update(self, k: int, f: float) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, bar, label: str = "f"):
        self.bar = bar
        self.label = label
        self.shown = 0

    def update(self, k: int, f: float) -> None:
        if k - self.shown >= EVERY:
            self.bar.set_postfix_str(f"{self.label}={f:.6g}", refresh=False)
            self.bar.update(k - self.shown)
            self.shown = k

    def close(self) -> None:
        self.bar.close()


def bar(total: int, *, quiet: bool, desc: str, stream=None, label: str = "f", unit: str = "it"):
    """An object with update(k, f) and close(); a real bar only where one is wanted.
    `label` names the running value in the bar (f; training shows the loss)."""
    while _BEFORE:
        _BEFORE.pop(0)()
    stream = sys.stderr if stream is None else stream
    if quiet or stream is None or not getattr(stream, "isatty", lambda: False)():
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return _Bar(tqdm(total=total, desc=desc, leave=False, file=stream, unit=unit), label)


@contextlib.contextmanager
def before_first_bar(callback):
    """Inside the block, `callback()` runs once, when the first bar opens (quiet runs
    open a silent one too); not at all if none does."""
    _BEFORE.append(callback)
    try:
        yield
    finally:
        if callback in _BEFORE:
            _BEFORE.remove(callback)
