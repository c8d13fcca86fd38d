"""Streaming fits: re-iterable batch sources, running moments, reservoir, the stream driver.

``DeepStructureLearner.fit_stream`` reads its data several times (a first pass for the
preprocessing statistics and a held sample, then passes for every layer), one batch at a
time; nothing here keeps more than one batch, the moments (O(n_features^2) for ZCA) and
the held sample (O(n_held * n_features)). Nothing here imports the estimators: layers are
driven through ``partial_fit`` / ``transform``.
"""

import time

import numpy as np
import scipy.sparse as sp

from ._progress import Progress


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


# --------------------------------------------------------------------------------------
# The streaming fit of a stack of layers (DeepStructureLearner.fit_stream): the stream,
# its first pass, and how one layer is learned from it. The stacking loop and the depth
# rule are the learner's, the same for the in-memory fit.
# --------------------------------------------------------------------------------------


class BatchStream:
    """A re-readable stream of checked, dense, non-empty batches.

    Parameters
    ----------
    batches : iterable of array-like, or callable
        See :func:`batch_source`.
    n_passes_needed : int
        Passes that will be read (a one-shot iterator is refused when more than one).
    check_batch : callable
        ``check_batch(batch, first_pass) -> array``: validates one batch (the caller's
        data checks; on the first pass they also set the feature count).
    """

    def __init__(self, batches, n_passes_needed, check_batch):
        self._next = batch_source(batches, n_passes_needed)
        self._check = check_batch

    def read(self, *, first_pass=False):
        """One pass: checked dense batches (a sparse batch is densified, one at a time)."""
        for batch in self._next():
            batch = self._check(batch, first_pass)
            if sp.issparse(batch):
                batch = batch.toarray()  # one batch at a time: preprocessing centres it
            if batch.shape[0]:
                yield batch


def first_pass(stream, *, full_covariance, n_held, random_state):
    """Moments of the whole stream and a uniform held sample of its rows, in one pass.

    Returns
    -------
    moments : RunningMoments
        Mean and variances (or covariance, ``full_covariance``) of every row.
    held : ndarray of shape (min(n_held, n_rows), n_features)
        A uniform random sample of the rows (reservoir sampling).
    n_batches : int
        Non-empty batches in one pass.
    """
    moments = None
    reservoir = Reservoir(n_held, random_state)
    n_batches = 0
    for batch in stream.read(first_pass=True):
        if moments is None:
            moments = RunningMoments(batch.shape[1], full=full_covariance)
        moments.update(batch)
        reservoir.update(batch)
        n_batches += 1
    if moments is None or moments.n < 2:
        raise ValueError(
            "fit_stream needs at least 2 rows in the stream, got "
            f"{0 if moments is None else moments.n}."
        )
    return moments, reservoir.sample(), n_batches


class StreamLayerFitter:
    """Learns one layer online from the stream sent through the layers below it.

    Called as ``fitter(layer, Z_held, below)``, like the in-memory ``layer.fit(Z)``: the
    layer is initialised on ``Z_held`` (the held sample's inputs of this layer, a uniform
    sample of the stream), then takes ``n_passes`` passes of ``partial_fit`` over the
    stream, every batch preprocessed and transformed by the (fixed) ``below`` layers.

    Parameters
    ----------
    stream : BatchStream
    preprocess : callable
        The fitted preprocessing, ``preprocess(batch) -> inputs of the first layer``.
    n_passes, n_batches : int
        Passes per layer, batches per pass (for the progress bar).
    name : str
        Label of the progress bar and log lines.
    verbose : int
    log : callable
        ``log(message)``, the learner's verbose log.
    """

    def __init__(self, stream, preprocess, *, n_passes, n_batches, name, verbose, log):
        self.stream = stream
        self.preprocess = preprocess
        self.n_passes = n_passes
        self.n_batches = n_batches
        self.name = name
        self.verbose = verbose
        self.log = log

    def __call__(self, layer, Z_held, below):
        layer.partial_fit(Z_held)  # initialised on a uniform sample of the stream
        depth = len(below) + 1
        bar = Progress(self.n_passes * self.n_batches, desc=f"{self.name} layer {depth}",
                       verbose=self.verbose, unit="batch")
        t0 = time.perf_counter()
        for p in range(self.n_passes):
            for batch in self.stream.read():
                Z = self.preprocess(batch)
                for fitted in below:
                    Z = fitted.transform(Z)
                layer.partial_fit(Z)
                bar.update(objective=layer.objective_history_[-1])
            self.log(
                f"layer {depth} pass {p + 1}/{self.n_passes}: surrogate objective "
                f"{layer.objective_history_[-1]:.6e} after {layer.n_iter_} batches "
                f"[{time.perf_counter() - t0:.1f}s]"
            )
        bar.close()
