"""`exprc bench`: the generated gradients against hand-written NumPy and C and against
the tools people would pick instead (SymPy, JAX, PyTorch), on one machine, interleaved.

    cli.py          the command: add_bench_command(subparsers), cmd_bench(args)
    suite_seeds.py  the lecture functions at 10⁶ points      suite_scaling.py  10 … 10⁵ operations
    suite_lsq.py    ½‖Xw − y‖²: gradient, gradient descent    suite_mlp.py      epochs of a network on digits
    mlp.py          ... its trainers: by hand, JAX, PyTorch
    suite_hvp.py    Rosenbrock at one point, second order    rosenbrock.py     ... and by hand
    competitors.py  who runs in `seeds`, as one table        runner.py         interleaved timing, agreement, BLAS threads
    seeds.py        the functions, hand-written in NumPy     seeds_ref.c       ... and in C (package data)
    reference.py    builds and loads seeds_ref.c             worker.py         pinned / time-capped processes
    remote.py       JAX and PyTorch jobs in a worker         machine.py        what the machine is
    report.py       tables, JSON, plot
"""
