"""Building blocks of streaming fits: re-iterable batch sources, running moments, reservoir.

``DeepStructureLearner.fit_stream`` reads its data several times (a first pass for the
preprocessing statistics and a held sample, then passes for every layer), one batch at a
time; nothing here keeps more than one batch, the moments (O(n_features^2) for ZCA) and
the held sample (O(n_held * n_features)).
"""

import numpy as np


def batch_source(batches, n_passes_needed):
    """A function returning a fresh iterator over the batches at every call.

    ``batches`` is a callable returning an iterable of batches (the way to stream a
    generator: ``lambda: read_batches(path)``), or a re-iterable collection (a list or
    tuple of arrays, a ``torch`` ``DataLoader``...). A one-shot iterator (a generator
    object) is refused when more than one pass is needed: it cannot be read twice.
    """
    if callable(batches) and not hasattr(batches, "__iter__"):
        def fresh():
            iterable = batches()
            if not hasattr(iterable, "__iter__"):
                raise TypeError(
                    f"the batches callable must return an iterable of batches, got "
                    f"{type(iterable).__name__}."
                )
            return iter(iterable)

        return fresh
    if hasattr(batches, "ndim") and hasattr(batches, "shape"):
        raise TypeError(
            f"batches must be an iterable of 2-d batches (or a callable returning one), not "
            f"a single {getattr(batches, 'ndim', '?')}-d array of shape {batches.shape}: "
            "iterating over an array yields its rows. For an array in memory use fit(X) or "
            "fit_stream(numpy.array_split(X, n_batches)); for a dask array use "
            "sklearn_structlearn.distributed.fit_dask."
        )
    if not hasattr(batches, "__iter__"):
        raise TypeError(
            f"batches must be an iterable of batches or a callable returning one, got "
            f"{type(batches).__name__}."
        )
    if iter(batches) is batches and n_passes_needed > 1:
        raise TypeError(
            f"batches is a one-shot iterator (e.g. a generator object), but fit_stream "
            f"reads the stream {n_passes_needed} times (one pass for the preprocessing "
            "statistics, then n_passes per layer). Pass a function returning a fresh "
            "iterator instead, e.g. fit_stream(lambda: make_batches(...))."
        )
    return lambda: iter(batches)


class RunningMoments:
    """Mean and centred second moment (variances or covariance) merged batch by batch.

    Uses the pairwise update of Chan, Golub and LeVeque: merging a batch of ``m`` rows
    with mean ``mu_b`` and centred scatter ``S_b`` into ``(n, mu, S)`` gives
    ``S + S_b + d d^T n m / (n + m)`` with ``d = mu_b - mu`` -- no catastrophic
    cancellation, unlike accumulating the raw ``sum x x^T``. Everything in float64.

    Parameters
    ----------
    n_features : int
    full : bool
        Keep the covariance matrix (True, for ZCA) or only the variances.
    """

    def __init__(self, n_features, full):
        self.n = 0
        self.mean = np.zeros(n_features)
        self.full = full
        self.scatter = np.zeros((n_features, n_features) if full else n_features)

    def update(self, X):
        X = np.asarray(X, dtype=np.float64)
        m = X.shape[0]
        if m == 0:
            return
        mean_b = X.mean(axis=0)
        centred = X - mean_b
        scatter_b = centred.T @ centred if self.full else np.einsum("ij,ij->j", centred,
                                                                     centred)
        delta = mean_b - self.mean
        total = self.n + m
        correction = self.n * m / total
        if self.full:
            self.scatter += scatter_b + correction * np.outer(delta, delta)
        else:
            self.scatter += scatter_b + correction * delta**2
        self.mean += delta * (m / total)
        self.n = total

    def second_moment(self):
        """Population variances (or covariance), as ``numpy.var`` (``ddof=0``)."""
        return self.scatter / max(self.n, 1)


class Reservoir:
    """A uniform random sample of ``size`` rows of a stream (reservoir sampling, Algorithm R).

    After ``n`` rows have been offered, every row is in the sample with probability
    ``min(1, size / n)``, whatever the batch sizes; memory is ``size`` rows.
    """

    def __init__(self, size, random_state):
        self.size = size
        self.rng = random_state
        self.rows = None
        self.n_seen = 0

    def update(self, X):
        m = X.shape[0]
        if m == 0:
            return
        if self.rows is None:
            self.rows = np.empty((self.size, X.shape[1]), dtype=X.dtype)
        # the first rows fill the reservoir
        fill = min(max(self.size - self.n_seen, 0), m)
        if fill:
            self.rows[self.n_seen:self.n_seen + fill] = X[:fill]
        # row number t (0-based, t >= size) replaces a random slot with probability size/(t+1)
        t = self.n_seen + np.arange(fill, m)
        slots = (self.rng.random_sample(t.shape[0]) * (t + 1)).astype(np.int64)
        hits = np.flatnonzero(slots < self.size)
        for i in hits:  # in stream order: a later row overwrites an earlier one
            self.rows[slots[i]] = X[fill + i]
        self.n_seen += m

    def sample(self):
        """The sampled rows, in slot order (``min(size, n_seen)`` of them)."""
        if self.rows is None:
            return None
        return self.rows[:min(self.size, self.n_seen)].copy()
