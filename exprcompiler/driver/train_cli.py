"""`exprc train` (the comparison in the lecture notes this project follows: logistic
regression against a two-layer network) and `exprc demo` (the tour, driver/demo.py).

    exprc train --data digits --model logistic,mlp --optimizer sgd --epochs 30 --batch 64 --lr 0.1
    exprc train --data ~/mnist --labels digit --model mlp --hidden 64 --plot curves.png

Part of the driver (see driver/__init__.py); registered on exprc's subcommands by
`add_train_commands(sub)` in exprcompiler/cli.py, which turns every user mistake
raised here into one line on stderr. The table's header is printed when the first
model's steps start (its options checked, its gradient compiled) and each row as soon
as its model is trained, so a long run shows what it is doing; the time column is
the whole run, compiling the gradient included, and "per epoch" the steps alone.
"""

from __future__ import annotations

import time

from . import progress
from ..cli_input import add_dtype_flag
from .data import LABELS, MISSING_SKLEARN, load_digits, load_mnist
from .models import ACTIVATIONS, build
from .plots import have_matplotlib, plot_history
from .train import OPTIMIZERS, train

DEFAULT_LR = {"sgd": 0.1, "subgradient": 0.1, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 0.003,
              "adam": 0.01}
NOTES = ("the lecture notes this project follows (MNIST, odd/even, 5 epochs): logistic 87.30%, "
         "network 92.40% test accuracy")
TIME = "time incl. compile"   # train() compiles the loss's gradient before its first step
PER_EPOCH = "per epoch (steps)"  # TrainResult.train_time: the step loop alone


def add_train_commands(sub) -> None:
    """Register `train` and `demo` on an argparse subparsers object."""
    help_text = "train logistic regression and a neural network on digits; print the comparison table"
    p = sub.add_parser("train", help=help_text, description=help_text)
    p.add_argument("--data", default="digits", metavar="digits|FOLDER",
                   help="'digits' (scikit-learn's embedded 8×8 digits) or a folder with the four "
                        "MNIST IDX files (default: digits)")
    p.add_argument("--labels", choices=LABELS, default="parity",
                   help="parity: odd/even, as in the lecture notes this project follows; digit: "
                        "ten classes (default: parity)")
    p.add_argument("--model", default="logistic,mlp", metavar="logistic|mlp",
                   help="logistic, mlp, or both separated by a comma (default: logistic,mlp)")
    p.add_argument("--hidden", default="32", metavar="32[,16]", help="the network's hidden layer sizes (default: 32)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="default: relu")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd", metavar="OPTIMIZER",
                   help=f"one of {', '.join(OPTIMIZERS)} (default: sgd)")
    p.add_argument("--lr", type=float, metavar="X",
                   help="step size (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    p.add_argument("--epochs", type=int, default=30, metavar="N", help="default: 30")
    p.add_argument("--batch", type=int, default=64, metavar="N", help="examples per step (default: 64)")
    p.add_argument("--l2", type=float, default=0.0, metavar="X", help="L2 penalty λ Σ w² on the weights")
    p.add_argument("--validation", type=float, metavar="FRACTION",
                   help="hold out this fraction of the training data and report its loss")
    p.add_argument("--patience", type=int, metavar="N",
                   help="early stopping: stop after N epochs without a lower validation loss "
                        "(default validation 0.2)")
    p.add_argument("--restarts", type=int, default=1, metavar="N", help="random restarts, keeping the best")
    p.add_argument("--seed", type=int, default=0, help="initialization, batches and the test split (default: 0)")
    p.add_argument("--limit", type=int, metavar="N", help="MNIST: use the first N examples of each part")
    p.add_argument("--backend", choices=("numpy", "c"), default="numpy", help="default: numpy")
    add_dtype_flag(p)
    p.add_argument("--plot", metavar="PATH", help="draw the training curves to PATH (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    help_text = "the tour: trace tables, generated code, a gradient check, gradient descent, training"
    d = sub.add_parser("demo", help=help_text, description=help_text)
    d.add_argument("--epochs", type=int, default=30, metavar="N", help="training epochs on digits (default: 30)")
    d.add_argument("--ascii", action="store_true", help="plain ASCII names (vbar_4)")
    d.set_defaults(func=cmd_demo)


def load(data: str, labels: str, seed: int, limit=None):
    from ..cli import UserError
    if data == "digits":
        try:
            return load_digits(labels, seed=seed)
        except ImportError:
            raise UserError(MISSING_SKLEARN) from None
    try:
        return load_mnist(data, labels, limit=limit)
    except FileNotFoundError as err:
        raise UserError(f"--data: {err} (or use --data digits)") from None


def compare(ds, models, *, optimizer="sgd", lr=None, quiet=False, on_row=None, **options):
    """Train each model on the data set: [(model, result, test accuracy, seconds)], the
    seconds from the call of train() to its result, compiling included. `on_row` is
    called with each row as soon as it is done."""
    lr = learning_rate(optimizer, lr)
    rows = []
    for model in models:
        t0 = time.perf_counter()
        r = train(model, data=(ds.X_train, ds.y_train), optimizer=optimizer, lr=lr, quiet=quiet, **options)
        rows.append((model, r, r.score(ds.X_test, ds.y_test), time.perf_counter() - t0))
        if on_row is not None:
            on_row(rows[-1])
    return rows


def learning_rate(optimizer: str, lr=None) -> float:
    return DEFAULT_LR.get(optimizer, 0.01) if lr is None else lr


def layout(names, opts):
    """(header, row) of the comparison table for these model names and optimizer texts
    ("sgd lr=0.1"): known before training, so the header can be printed first."""
    width = max(len("model"), *map(len, names))
    w_opt = max(len("optimizer"), *map(len, opts))
    head = (f"{'model':<{width}}  {'optimizer':<{w_opt}}  {'epochs':>6}  {'train acc':>9}  {'test acc':>8}  "
            f"{TIME:>{len(TIME)}}  {PER_EPOCH:>{len(PER_EPOCH)}}")

    def row(model, r, test_acc, seconds) -> str:
        return (f"{model.name:<{width}}  {_optimizer(r):<{w_opt}}  {r.epochs:>6}  {r.accuracy:>9.2%}  "
                f"{test_acc:>8.2%}  {seconds:>{len(TIME) - 1}.2f}s  "
                f"{r.train_time / max(r.epochs, 1) * 1e3:>{len(PER_EPOCH) - 2}.2f}ms")
    return head, row


def _optimizer(r) -> str:
    return f"{r.optimizer} lr={r.options['lr']:g}"


def table(rows) -> list[str]:
    """The comparison of the lecture notes: model, accuracies, time."""
    head, row = layout([m.name for m, *_ in rows], [_optimizer(r) for _, r, *_ in rows])
    return [head] + [row(*cells) for cells in rows]


def _show(lines) -> None:
    """Lines on stdout now (not at the end of the command), as exprc writes its output."""
    from ..cli import _write
    status = _write("\n".join(lines) + "\n")
    if status:  # the reader went away, or the terminal cannot show the text (said once)
        raise SystemExit(status)


def cmd_train(args) -> str:
    from ..cli import UserError
    names = [m.strip() for m in args.model.split(",") if m.strip()]
    bad = [m for m in names if m not in ("logistic", "mlp")]
    if bad or not names:
        raise UserError(f"--model: {', '.join(bad) or 'nothing given'}: use logistic, mlp or logistic,mlp")
    try:
        hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        raise UserError(f"--hidden: {args.hidden!r} is not a list of sizes such as 32 or 64,32") from None
    if args.plot is not None and not have_matplotlib():
        raise UserError("--plot needs matplotlib, which is not installed (pip install 'exprcompiler[plot]')")
    validation = args.validation
    if args.patience is not None and validation is None:
        validation = 0.2
    ds = load(args.data, args.labels, args.seed, args.limit)
    models = [build(name, ds.n_features, ds.classes, hidden, args.activation) for name in names]
    lr = learning_rate(args.optimizer, args.lr)
    head, row = layout([m.name for m in models], [f"{args.optimizer} lr={lr:g}"] * len(models))
    shown: list = []

    def header():  # once the first model's input is checked: a refused option prints one line only
        if not shown:
            shown.append(_show([str(ds), "", head]))
    with progress.before_first_bar(header):
        rows = compare(ds, models, optimizer=args.optimizer, lr=lr, epochs=args.epochs, batch=args.batch,
                       l2=args.l2, validation=validation, patience=args.patience, restarts=args.restarts,
                       seed=args.seed, backend=args.backend, dtype=args.dtype, quiet=args.quiet,
                       on_row=lambda cells: (header(), _show([row(*cells)])))
    lines = []
    for model, r, *_ in rows:
        if r.stopped_early or r.diverged or len(r.runs) > 1 or r.best_epoch != r.epochs:
            lines.append(f"{model.name}: {r.message}" + (f" (best of {len(r.runs)} runs: seed {r.seed})"
                                                         if len(r.runs) > 1 else ""))
    if args.data == "digits" and args.labels == "parity":
        lines.append(NOTES)
    if args.plot:
        plot_history({m.name: r for m, r, *_ in rows}, args.plot)
        lines.append(f"wrote {args.plot}")
    return "\n".join(lines) if lines else None


def cmd_demo(args):
    from .demo import run
    if args.epochs < 1:
        from ..cli import UserError
        raise UserError(f"--epochs must be 1 or more, got {args.epochs}")
    run(epochs=args.epochs, ascii=args.ascii)
    return None
