"""Hypothesis profiles: the default is derandomized, so CI runs the same examples every
time; `pytest --hypothesis-profile=explore` searches new ones (run it when changing passes).
Also what the test files share: the machine's C compiler (HAVE_CC, needs_cc, BACKENDS,
backends_here, has_compiler) and the session's C cache (the private_cache fixture)."""

import contextlib
import os
import shutil
import signal
import zlib

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=500, print_blob=True)
settings.load_profile("default")


def examples(n: int) -> int:
    """A test's example count: n in the default profile (sized for the fast suite's
    time), five times as many in `explore` (its 500 over the default's 100)."""
    return max(1, n * settings().max_examples // 100)


def in_threads(work, count: int = 4) -> None:
    """Run work(k) for k in range(count), each in its own thread, all at once, and wait
    for them (tests of entries that must keep no state between concurrent calls)."""
    import threading
    threads = [threading.Thread(target=work, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def leaves(result):
    """The numbers of a compiled function's (nested tuple) result, in order."""
    if isinstance(result, tuple):
        for r in result:
            yield from leaves(r)
    else:
        yield result


def spy(monkeypatch, owner, name: str) -> list:
    """Wrap `owner.name` (a function or method) for the test: each call's first
    argument (a method's self) is appended to the list returned, then the real one runs."""
    seen: list = []
    real = getattr(owner, name)

    def recording(first, *args, **kwargs):
        seen.append(first)
        return real(first, *args, **kwargs)
    monkeypatch.setattr(owner, name, recording)
    return seen


class TooSlow(Exception):
    """A case past its CPU budget (`within`)."""


@contextlib.contextmanager
def within(seconds: float):
    """Raise TooSlow in the block past `seconds` of CPU: a case that would hang stops
    here instead of stalling the run (Python code, SymPy's included, is interrupted by
    the signal); CPU time, so a loaded machine does not flake."""
    def expire(signum, frame):
        raise TooSlow(f"took more than {seconds} s of CPU")
    old = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


# -- the C compiler and the C cache ---------------------------------------------------------
# Whether cc or gcc is on PATH (what c_build.find_compiler looks for first).
HAVE_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None
NO_CC = "no C compiler on this machine"
needs_cc = pytest.mark.skipif(not HAVE_CC, reason=NO_CC)
# NumPy and C, the C cases collected and skipped where the machine has no compiler.
BACKENDS = ["numpy", pytest.param("c", marks=needs_cc)]


def backends_here(*compiled: str) -> list:
    """"numpy", then the backends `compiled` ("c", "vm") where the machine has a C
    compiler: without one those cases are not collected (BACKENDS skips them)."""
    return ["numpy"] + (list(compiled) if HAVE_CC else [])


def has_compiler() -> bool:
    """Whether c_build finds a C compiler that answers (cc, gcc or clang: the check of
    the benchmark suites, which say what they skipped)."""
    from exprcompiler.backends import c_build
    from exprcompiler.errors import CompileError
    try:
        c_build.find_compiler()
        return True
    except CompileError:
        return False


@pytest.fixture
def private_cache(tmp_path_factory, monkeypatch):
    """EXPRCOMPILER_CACHE at the session's C cache (c-cache under the session's base
    temporary directory, one for all the files that use it), not the user's. A file's
    tests take it with `pytestmark = pytest.mark.usefixtures("private_cache")`."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path_factory.getbasetemp() / "c-cache"))


@contextlib.contextmanager
def environ_kept():
    """os.environ put back as it was before the block. For a block that starts a
    distributed.LocalCluster: each Nanny writes distributed's pre-spawn environment
    (MALLOC_TRIM_THRESHOLD_=65536, OMP_NUM_THREADS=1, MKL_NUM_THREADS=1,
    OPENBLAS_NUM_THREADS=1, PYTHONHASHSEED=6640; __DASK_PARENT_PID besides) into this
    process's os.environ before it starts a worker process, and leaves it there: every
    later test of the pytest (xdist) worker, and every process those start, would have it
    (test_heap_calls' fresh processes then had glibc's thresholds pinned: 1,764 page faults
    a call, and C kernels here one thread). The workers keep theirs: they are started by then."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in [k for k in os.environ if k not in saved]:
            del os.environ[name]
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def module_generator_per_test(request):
    """A test module's generator (`_RNG` or `RNG`) starts each test from a state of that
    test's own, from its node id: its draws do not depend on which tests of the module ran
    before it on its xdist worker, so a bound that a test passes it passes alone, in any
    order and on any worker (two bounds in test_c_stable_rows held only by the draws that
    earlier tests had left)."""
    for name in ("_RNG", "RNG"):
        rng = getattr(request.module, name, None)
        if isinstance(rng, np.random.Generator):
            seed = zlib.crc32(request.node.nodeid.encode())
            rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state


@pytest.fixture(autouse=True, scope="module")
def environ_unchanged_by_the_module():
    """Each test module leaves os.environ as it found it: a leak reaches every later test
    of its xdist worker and every process they start (a LocalCluster's Nannies left
    MALLOC_TRIM_THRESHOLD_ and OMP_NUM_THREADS=1 here: see environ_kept). A module that
    changes it is an error at its teardown, and the environment is put back."""
    before = dict(os.environ)
    yield
    now = dict(os.environ)
    # pytest's own, per phase; and what sklearn, joblib and threadpoolctl set (setdefault)
    # when a module first imports them, which stays for as long as they are loaded
    for name in ("PYTEST_CURRENT_TEST", "KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"):
        before.pop(name, None)
        now.pop(name, None)
    if now != before:
        changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
        for name in [k for k in os.environ if k not in before and k != "PYTEST_CURRENT_TEST"]:
            del os.environ[name]
        os.environ.update(before)
        raise AssertionError(f"this test module left os.environ changed: {changed}")
