"""Thread control: Numba threads for our kernels, BLAS threads for the products around them.

The kernels and the BLAS products run one after the other, never nested, so each may use
``n_jobs`` threads; what must not happen is BLAS spawning its own full pool inside worker
processes of a ``GridSearchCV(n_jobs=...)`` -- threadpoolctl caps it to ours. A code solve
on several threads goes further: it shares its products out to its own threads and holds
BLAS to one (``serial_blas``), because BLAS's idle workers spin after a threaded call.
"""

import os
import sys
import threading
from contextlib import contextmanager

import numba
from threadpoolctl import ThreadpoolController

from ._param_validation import N_JOBS, validate_named


def _choose_fork_safe_layer():
    """Ask Numba for a fork-safe threading layer, unless the user chose one.

    Left to itself, Numba picks the first layer it can load among ``tbb``, ``omp`` and
    ``workqueue``; on Linux without TBB that is ``omp`` on GNU OpenMP (libgomp), which is
    not fork-safe: after one parallel launch, the children of a fork-based
    ``multiprocessing.Pool`` that call a kernel abort ("fork() called from a process
    already using GNU OpenMP") and the pool waits for them forever. Numba's
    ``"forksafe"`` choice picks ``tbb`` when installed (thread- and fork-safe), else
    ``omp`` where OpenMP is fork-safe (not Linux), else ``workqueue`` (fork-safe; not
    thread-safe, which the lock below makes up for). Our kernels run as fast on
    ``workqueue`` as on ``omp``: they schedule their own chunks (``_solvers``).

    Numba reads the setting at its first parallel launch in the process, so this is done
    at import, and only when neither ``NUMBA_THREADING_LAYER`` /
    ``NUMBA_THREADING_LAYER_PRIORITY`` nor ``numba.config.THREADING_LAYER`` was set by
    the user, and no parallel kernel has run yet (the layer cannot change afterwards).
    """
    if any(name in os.environ for name in
           ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY")):
        return
    from numba.np.ufunc import parallel

    if parallel._is_initialized or numba.config.THREADING_LAYER != "default":
        return
    numba.config.THREADING_LAYER = "forksafe"


_choose_fork_safe_layer()

# Held around every multi-threaded kernel launch. The code kernels run on the driver's own
# pool of threads (``_solvers._encode``; ``n_jobs`` threads each), so concurrent
# ``transform`` calls take turns, each with the threads it was given. Numba's
# "workqueue" threading layer (the fork-safe layer without TBB) is moreover not
# re-entrant: two Python threads launching ``parallel=True`` kernels at once abort the
# process, so any such kernel must be launched under this lock too.
_PARALLEL_LAUNCH = threading.Lock()


def _default_n_threads(max_threads):
    """All Numba threads, or fewer when ``OMP_NUM_THREADS`` asks for fewer.

    joblib's worker processes (``GridSearchCV(n_jobs=k)``, ``cross_validate``...) set
    ``OMP_NUM_THREADS = n_cores // k`` and dask workers set it to 1, precisely so that k
    processes times their threads do not oversubscribe the cores. scikit-learn's OpenMP
    estimators honour it through ``omp_get_max_threads``; Numba does not read it, so we do.
    """
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        limit = int(value)
    except ValueError:
        return max_threads
    return min(limit, max_threads) if limit > 0 else max_threads


def effective_n_jobs(n_jobs):
    """Number of threads for ``n_jobs`` (None: all Numba threads, -1: all, -k: all but k-1).

    Like scikit-learn's OpenMP-based estimators (KMeans, HistGradientBoosting), ``None``
    uses every core available to Numba (``NUMBA_NUM_THREADS``), not one -- capped by
    ``OMP_NUM_THREADS`` when it is set (as joblib and dask set it in their worker
    processes), so that parallel model selection does not oversubscribe the cores. An
    explicit ``n_jobs`` is obeyed (up to ``NUMBA_NUM_THREADS``).
    """
    max_threads = numba.config.NUMBA_NUM_THREADS
    # before anything runs: n_jobs=1.5 or "2" is an error (e.g. set_params after fit)
    validate_named({"n_jobs": N_JOBS}, {"n_jobs": n_jobs}, "thread_limits")
    if n_jobs is None:
        return _default_n_threads(max_threads)
    if n_jobs < 0:
        return max(max_threads + 1 + n_jobs, 1)
    return min(n_jobs, max_threads)


# The BLAS thread limit is process-wide (Numba's is per thread). Python threads entering and
# leaving ``thread_limits`` concurrently would each restore the limit they found on entry --
# possibly another thread's -- and leave BLAS capped after all of them returned. So the first
# entry sets the limit, later (concurrent or nested) entries share it, and the last exit
# restores the original. While any code solve shares its products out to its own threads
# (``serial_blas``), the limit is one thread.
_BLAS_LOCK = threading.Lock()
# "limit": the one set now (None: the original limits)
_blas = {"users": 0, "n_threads": None, "serial": 0, "limiter": None, "limit": None}
_controller = {"controller": None, "n_modules": -1}


def _blas_controller():
    """A ``ThreadpoolController``, rebuilt only when modules were imported since.

    Building one inspects every loaded library (about 4 ms here, paid on every ``transform``
    call when it was built each time); changing a limit through it costs microseconds.
    A native library arrives with the import of a module, so a grown ``sys.modules`` is the
    sign to look again (as scikit-learn, the controller is otherwise kept).
    """
    if _controller["n_modules"] != len(sys.modules):
        _controller["controller"] = ThreadpoolController()
        _controller["n_modules"] = len(sys.modules)
    return _controller["controller"]


def _apply_blas_limit():
    """Under ``_BLAS_LOCK``: set the limit the current users need -- one thread during a
    ``serial_blas`` block, else the shared ``n_jobs``, else (nobody left) the original.
    Nested and concurrent entries mostly need the limit already set: nothing is called."""
    limit = 1 if _blas["serial"] else _blas["n_threads"] if _blas["users"] else None
    if limit == _blas["limit"]:
        return
    if limit is None:
        _blas["limiter"].restore_original_limits()
        _blas["limiter"] = None
    elif _blas["limiter"] is None:
        # the first limiter remembers the original limits; later changes go through the
        # same controller (never rebuilt while a limit is set: a library it had not seen
        # would miss the restore)
        _blas["limiter"] = _blas_controller().limit(limits=limit, user_api="blas")
    else:
        _controller["controller"].limit(limits=limit, user_api="blas")
    _blas["limit"] = limit


def _reset_after_fork():
    """In a forked child only the forking thread survives, and it is never inside one of
    our kernel launches or ``thread_limits`` blocks (no code of ours forks): a lock that
    another thread held at the fork would stay locked forever in the child, and the BLAS
    limit that thread set would never be restored. (A ``Lock`` may be released by any
    thread; the locks are released in place because other modules hold them by name.)"""
    for lock in (_PARALLEL_LAUNCH, _BLAS_LOCK):
        if lock.locked():
            lock.release()
    if _blas["limiter"] is not None:
        _blas["limiter"].restore_original_limits()
    _blas.update(users=0, n_threads=None, serial=0, limiter=None, limit=None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@contextmanager
def _blas_limits(n_threads):
    with _BLAS_LOCK:
        if _blas["users"] == 0:
            _blas["n_threads"] = n_threads
        _blas["users"] += 1
        _apply_blas_limit()
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas["users"] -= 1
            _apply_blas_limit()


@contextmanager
def serial_blas():
    """BLAS on one thread for the block: the caller shares the work out to its own threads.

    A multi-threaded BLAS call leaves its worker threads spinning for a while after it
    returns (OpenBLAS: about 0.1 s), taking a core from the threads that run the code
    kernels next -- on two cores, a code solve of 2,000 rows ran no faster on two threads
    than on one. So a solve on several threads computes its products in row blocks on its
    own threads, each block a one-thread BLAS call, and BLAS never wakes its pool.
    """
    with _BLAS_LOCK:
        _blas["serial"] += 1
        _apply_blas_limit()
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas["serial"] -= 1
            _apply_blas_limit()


@contextmanager
def thread_limits(n_jobs):
    """Run the block with ``n_jobs`` Numba threads and at most ``n_jobs`` BLAS threads.

    Thread-safe: Numba's thread count is per thread; the BLAS limit, process-wide, is set by
    the first of concurrent callers and restored when the last one leaves.
    """
    n_threads = effective_n_jobs(n_jobs)
    previous = numba.get_num_threads()
    with _blas_limits(n_threads):
        numba.set_num_threads(n_threads)
        try:
            yield n_threads
        finally:
            numba.set_num_threads(previous)
