"""Fit and transform on dask arrays: data spread over a cluster, or larger than memory.

Two functions, thin over the estimators' streaming methods:

- :func:`fit_dask` learns from a dask array one block of rows at a time, in the array's
  block order: through ``partial_fit`` (a :class:`~sklearn_structlearn.GroupSparseCodingLayer`),
  each step running as a task on the worker that holds the block, or through
  :meth:`~sklearn_structlearn.DeepStructureLearner.fit_stream` (the deep learner, which
  needs several passes and a held sample), the blocks being computed on the cluster
  and fetched one at a time;
- :func:`transform_dask` maps ``transform`` (or ``encode``) over the blocks, lazily,
  with the right output shape.

Both give the results of the in-memory calls on the same blocks: ``fit_dask(layer, X)``
is ``for block in blocks: layer.partial_fit(block)``, ``transform_dask(est, X)`` is
``est.transform(X)``.

Why not only ``dask_ml.wrappers``? ``Incremental`` and ``ParallelPostFit`` work with
these estimators (with scikit-learn 1.9 and dask-ml 2025.1) but need care:
``Incremental`` wants a scorer (an unsupervised transformer has no ``score``: pass
``scoring=``) and shuffles the blocks unless ``shuffle_blocks=False``;
``ParallelPostFit.transform`` assumes the output has as many columns as the input, so
the lazy result reports a wrong shape (the computed values are right); neither drives
the multi-pass ``fit_stream`` of the deep learner. See the "scaling" page of the docs.
"""

import copy

import numpy as np

from ._param_validation import StrOptions, int_in, validate_params

__all__ = ["fit_dask", "transform_dask"]


def _require_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError(
            "sklearn_structlearn.distributed needs dask: pip install "
            "'sklearn-structlearn[dask]' (dask, distributed, dask-ml)."
        ) from exc
    return dask, da


def _check_dask_array(X, da):
    if not isinstance(X, da.Array):
        raise TypeError(
            f"X must be a dask.array.Array, got {type(X).__name__}; for data in memory call "
            "the estimator's fit / partial_fit / transform directly."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-d (n_samples, n_features), got shape {X.shape}.")
    if len(X.chunks[1]) > 1:
        # a batch is a block of whole rows: every feature of a sample in one block
        X = X.rechunk({1: -1})
    return X


def _partial_fit_step(estimator, block):
    # a copy: a task must not mutate its input (dask may keep it or run the task twice)
    estimator = copy.deepcopy(estimator)
    return estimator.partial_fit(block)


# not prefer_skip_nested_validation: the estimator's own fit checks its parameters
@validate_params({"estimator": "no_validation", "X": "no_validation",
                  "n_passes": [int_in(1)]}, prefer_skip_nested_validation=False)
def fit_dask(estimator, X, *, n_passes=1, **fit_params):
    """Fit ``estimator`` on a dask array, one block of rows at a time, in block order.

    Parameters
    ----------
    estimator : GroupSparseCodingLayer, DeepStructureLearner or estimator
        An estimator with ``fit_stream`` (used when present) or ``partial_fit``. It is
        fitted in place (and returned), like ``fit``.
    X : dask.array.Array of shape (n_samples, n_features)
        The data, chunked along the rows (the row blocks are the batches; chunks along
        the features are merged).
    n_passes : int, default=1
        Passes over the blocks: for ``partial_fit``, the blocks are streamed
        ``n_passes`` times; for ``fit_stream``, it is its ``n_passes`` (per layer).
    **fit_params
        Passed to ``fit_stream`` (e.g. ``n_held``).

    Returns
    -------
    estimator : object
        The fitted estimator.

    Notes
    -----
    With ``partial_fit`` every step is a task on the worker holding the block: the
    blocks never travel, the estimator's state (``O(n_components * n_features)``)
    does. The steps depend on each other, so they run one after the other -- the
    parallelism is inside each step (the code solver's threads) and in computing the
    blocks. With ``fit_stream`` the blocks are computed on the cluster and fetched by
    the client one at a time (a few passes are needed; see
    :meth:`~sklearn_structlearn.DeepStructureLearner.fit_stream`).

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn_structlearn import GroupSparseCodingLayer
    >>> from sklearn_structlearn.distributed import fit_dask, transform_dask
    >>> X = da.random.RandomState(0).standard_normal((400, 16), chunks=(100, 16))
    >>> layer = fit_dask(GroupSparseCodingLayer(n_components=8, group_size=2, alpha=0.5,
    ...                                         random_state=0), X)
    >>> layer.n_iter_  # one partial_fit per block
    4
    >>> Z = transform_dask(layer, X)  # lazy
    >>> Z.shape, Z.compute().shape
    ((400, 4), (400, 4))
    """
    dask, da = _require_dask()
    X = _check_dask_array(X, da)
    if hasattr(estimator, "fit_stream"):
        blocks = X.to_delayed().ravel()

        def batches():
            for block in blocks:
                yield block.compute()

        return estimator.fit_stream(batches, n_passes=n_passes, **fit_params)
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(
            f"{type(estimator).__name__} has neither fit_stream nor partial_fit; fit_dask "
            "streams blocks to one of them."
        )
    if fit_params:
        raise TypeError(
            f"fit_params {sorted(fit_params)} are only used with fit_stream, and "
            f"{type(estimator).__name__} has none."
        )
    step = dask.delayed(copy.deepcopy(estimator), pure=False)
    for _ in range(n_passes):
        for block in X.to_delayed().ravel():
            step = dask.delayed(_partial_fit_step, pure=False)(step, block)
    fitted = step.compute()
    # in place, like fit: the caller's object becomes the fitted estimator
    estimator.__dict__.update(fitted.__dict__)
    return estimator


def _apply(block, estimator, method):
    return getattr(estimator, method)(block)


@validate_params({"estimator": "no_validation", "X": "no_validation",
                  "method": [StrOptions({"transform", "encode"})]},
                 prefer_skip_nested_validation=False)
def transform_dask(estimator, X, *, method="transform"):
    """Lazily apply a fitted estimator's ``transform`` (or ``encode``) to a dask array.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted transformer with ``get_feature_names_out`` (``method="transform"``),
        or a :class:`~sklearn_structlearn.GroupSparseCodingLayer` (``method="encode"``,
        the raw codes).
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked along the rows.
    method : {"transform", "encode"}, default="transform"
        Which method to map over the blocks.

    Returns
    -------
    Z : dask.array.Array of shape (n_samples, n_outputs)
        Lazy outputs, one block per block of rows of ``X``, of the dtype of ``X``
        (float32 stays float32; other dtypes give float64). ``Z.compute()`` equals
        ``getattr(estimator, method)(X.compute())`` up to rounding: in float32, BLAS may
        round a block's products differently from the whole array's (its kernel depends
        on the shape), a few float32 ulps that a stack of layers can carry into the
        outputs.
    """
    dask, da = _require_dask()
    X = _check_dask_array(X, da)
    if method == "transform":
        n_out = len(estimator.get_feature_names_out())
    else:  # "encode"
        n_out = estimator.n_components_
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    # one copy of the estimator in the graph, shared by every block's task
    shared = dask.delayed(estimator, pure=True)
    return X.map_blocks(_apply, shared, method, chunks=(X.chunks[0], (n_out,)), dtype=dtype,
                        meta=np.empty((0, 0), dtype=dtype))
