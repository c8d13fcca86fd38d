"""Thread control: Numba threads for our kernels, BLAS threads for the products around them.

The kernels and the BLAS products run one after the other, never nested, so each may use
``n_jobs`` threads; what must not happen is BLAS spawning its own full pool inside worker
processes of a ``GridSearchCV(n_jobs=...)`` -- threadpoolctl caps it to ours.
"""

import threading
from contextlib import contextmanager

import numba
from threadpoolctl import threadpool_limits

# Numba's default "workqueue" threading layer is not re-entrant: two Python threads
# launching parallel kernels at once abort the process. Serialising the launches keeps
# concurrent ``transform`` calls correct (each kernel already uses every thread).
_PARALLEL_LAUNCH = threading.Lock()


def effective_n_jobs(n_jobs):
    """Number of threads for ``n_jobs`` (None: all Numba threads, -1: all, -k: all but k-1).

    Like scikit-learn's OpenMP-based estimators (KMeans, HistGradientBoosting), ``None``
    uses every core available to Numba (``NUMBA_NUM_THREADS``), not one.
    """
    max_threads = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return max_threads
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive int or -1.")
    if n_jobs < 0:
        return max(max_threads + 1 + n_jobs, 1)
    return min(n_jobs, max_threads)


@contextmanager
def thread_limits(n_jobs):
    """Run the block with ``n_jobs`` Numba threads and at most ``n_jobs`` BLAS threads."""
    n_threads = effective_n_jobs(n_jobs)
    previous = numba.get_num_threads()
    with threadpool_limits(limits=n_threads, user_api="blas"):
        numba.set_num_threads(n_threads)
        try:
            yield n_threads
        finally:
            numba.set_num_threads(previous)
