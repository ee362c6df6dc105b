"""What a newcomer ran into (issue 17): `exprc train` shows its header before the
steps (driver/progress.before_first_bar) and says what its time column holds; output
that cites the lecture notes names them before calling them "the notes"; the test
extra installs what the plots and the progress bar need, and the README names every
extra. (Repeated --at: tests/test_cli.py; the tables' columns:
tests/test_trace_table_align.py; the parser's work: tests/test_parser_work.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exprcompiler.cli import main as exprc
from exprcompiler.driver import progress
from test_driver_cli import run  # exprc's status and output, --help included

FULL = "the lecture notes this project follows"
REPO = Path(__file__).resolve().parents[1]




def test_train_prints_its_header_before_the_first_step_and_each_row_when_done(capsys, monkeypatch):
    pytest.importorskip("sklearn")
    seen = []  # stdout so far, at each run's first step
    update = progress._Silent.update

    def first_step(self, k, f):
        if not getattr(self, "seen", False):
            self.seen = True
            seen.append(capsys.readouterr().out)
        return update(self, k, f)
    monkeypatch.setattr(progress._Silent, "update", first_step)
    rc = exprc(["train", "--epochs", "2", "--quiet"])
    rest = capsys.readouterr().out
    assert rc == 0
    assert len(seen) == 2  # logistic, then the network
    head = seen[0].splitlines()
    assert head[0].startswith("digits (parity)") and head[-1].startswith("model")
    assert seen[1].startswith("logistic 64→1 ") and seen[1].count("\n") == 1
    assert rest.startswith("mlp 64→32→1 (relu) ")
    # the time column says it holds compiling; per epoch is the steps alone
    assert "time incl. compile" in head[-1] and "per epoch (steps)" in head[-1]
    cells = re.search(r"\s([\d.]+)s\s+([\d.]+)ms$", seen[1].strip())
    total, per_epoch = float(cells[1]), float(cells[2])
    assert total + 0.005 >= 2 * per_epoch / 1e3  # the whole run holds its two epochs of steps


def test_a_refused_train_option_prints_one_line_and_no_header(capsys):
    pytest.importorskip("sklearn")
    rc, out, err = run(capsys, "train", "--epochs", "1", "--batch", "0", "--quiet")
    assert rc == 2 and out == "" and err.count("\n") == 1 and "batch" in err


def test_before_first_bar_runs_once_and_only_inside_its_block():
    calls = []
    with progress.before_first_bar(lambda: calls.append(1)):
        assert calls == []
        progress.bar(3, quiet=True, desc="x")
        progress.bar(3, quiet=True, desc="x")
    assert calls == [1]
    with progress.before_first_bar(lambda: calls.append(2)):
        pass  # no bar: never called, and not left waiting for a later bar
    progress.bar(3, quiet=True, desc="x")
    assert calls == [1]


def _first_notes_mention_is_full(text: str) -> None:
    lowered = text.lower()
    first = lowered.find("the notes")
    full = lowered.find(FULL)
    assert full >= 0, text
    assert first < 0 or full < first, text[max(0, first - 200):first + 100]


def test_train_names_the_lecture_notes(capsys):
    pytest.importorskip("sklearn")
    rc, out, _ = run(capsys, "train", "--model", "logistic", "--epochs", "1", "--quiet")
    assert rc == 0
    _first_notes_mention_is_full(out)


@pytest.mark.parametrize("command", ["train", "minimize"])
def test_help_texts_name_the_lecture_notes_before_saying_the_notes(capsys, command):
    rc, out, _ = run(capsys, command, "--help")
    assert rc == 0
    _first_notes_mention_is_full(" ".join(out.split()))  # argparse wraps lines


def _extras() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["optional-dependencies"]


def _package(requirement: str) -> str:
    return re.split(r"[\[<>=~! ]", requirement, maxsplit=1)[0].lower()


def test_the_test_extra_runs_the_plots_and_the_progress_bar():
    extras = _extras()
    test = {_package(r) for r in extras["test"]}
    for extra in ("plot", "progress", "data", "dask", "notebook"):
        assert {_package(r) for r in extras[extra]} <= test, extra


def test_the_readme_names_every_extra_and_what_graphviz_adds():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for extra in _extras():
        assert f"| `[{extra}]` |" in readme, f"README: no row for the extra [{extra}]"
    assert "`g.scipy(**data)`" in readme and "Graphviz" in readme and "`dot`" in readme
