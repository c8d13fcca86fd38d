"""Builders of torch modules from learned structures (torch imported lazily)."""

from numbers import Integral

import numpy as np

from .._torch import import_torch
from ._reference import (
    DEFAULT_N_ITER,
    DEFAULT_RESTART,
    LayerSpec,
    PreprocessingSpec,
    lipschitz_step,
)

_MODES = ("exact", "feedforward")


def _import_torch():
    return import_torch("Exporting to PyTorch")


def _is_fitted_like(est, attribute):
    if not hasattr(est, attribute):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"This {type(est).__name__} instance is not fitted yet (no attribute "
            f"{attribute!r}); call 'fit' before exporting it."
        )


def layer_spec_from_estimator(est):
    """Read the :class:`LayerSpec` of a fitted group sparse coding layer.

    Duck-typed: uses ``components_``, ``connectivity_`` (default ``components_ != 0``),
    ``alpha_`` (default ``alpha`` when numeric), ``group_size``, ``positive_code`` and
    ``pooling`` of ``est``.

    Parameters
    ----------
    est : fitted GroupSparseCodingLayer or alike

    Returns
    -------
    spec : LayerSpec

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from sklearn_structlearn.export import layer_spec_from_estimator
    >>> est = SimpleNamespace(components_=np.eye(4), alpha_=0.5, group_size=2,
    ...                       positive_code=False, pooling="l2")
    >>> layer_spec_from_estimator(est).n_outputs
    2
    """
    _is_fitted_like(est, "components_")
    components = np.asarray(est.components_)
    mask = getattr(est, "connectivity_", None)
    alpha = getattr(est, "alpha_", None)
    if alpha is None:
        alpha = getattr(est, "alpha", None)
        if isinstance(alpha, str) or alpha is None:
            raise ValueError(
                f"{type(est).__name__} has no resolved numeric code penalty 'alpha_'."
            )
    return LayerSpec(
        components=components,
        mask=None if mask is None else np.asarray(mask, dtype=bool),
        alpha=float(alpha),
        group_size=int(getattr(est, "group_size", 1)),
        positive=bool(getattr(est, "positive_code", False)),
        pooling=getattr(est, "pooling", "l2"),
        transform_algorithm=getattr(est, "transform_algorithm", "lasso"),
    )


def preprocessing_spec_from_transformer(transformer, n_features_in=None):
    """Express a fitted affine scikit-learn transformer as a :class:`PreprocessingSpec`.

    Supported: ``None`` / ``"passthrough"`` (returns ``None``), ``StandardScaler``,
    ``PCA``-like transformers (``mean_``, ``components_``, ``whiten``, e.g. ``PCA``,
    ``IncrementalPCA``), ``FunctionTransformer`` with no function, and ``Pipeline`` of
    those (composed into one affine map).

    Parameters
    ----------
    transformer : fitted transformer, "passthrough" or None
    n_features_in : int, default=None
        Used only when the transformer does not record its input width.

    Returns
    -------
    spec : PreprocessingSpec or None

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_structlearn.export import preprocessing_spec_from_transformer
    >>> X = np.arange(12.0).reshape(4, 3)
    >>> sc = StandardScaler().fit(X)
    >>> np.allclose(preprocessing_spec_from_transformer(sc).apply(X), sc.transform(X))
    True
    """
    if transformer is None or (isinstance(transformer, str) and transformer == "passthrough"):
        return None
    if hasattr(transformer, "steps"):  # Pipeline
        spec = None
        for _, step in transformer.steps:
            step_spec = preprocessing_spec_from_transformer(step, n_features_in)
            if step_spec is None:
                continue
            spec = step_spec if spec is None else spec.then(step_spec)
            n_features_in = spec.n_features_out
        return spec
    name = type(transformer).__name__
    if name == "FunctionTransformer" and getattr(transformer, "func", None) is None:
        return None
    if hasattr(transformer, "scale_") and hasattr(transformer, "with_mean"):  # StandardScaler
        n = getattr(transformer, "n_features_in_", n_features_in)
        mean = transformer.mean_ if transformer.with_mean else None
        scale = getattr(transformer, "scale_", None)
        W = None if scale is None else np.diag(1.0 / np.asarray(scale, dtype=np.float64))
        if mean is None and W is None:
            return None
        return PreprocessingSpec(mean=mean, W=W, n_features_in=n)
    if hasattr(transformer, "components_") and hasattr(transformer, "mean_"):  # PCA-like
        W = np.asarray(transformer.components_, dtype=np.float64).T
        if getattr(transformer, "whiten", False):
            # Same guard as sklearn's PCA.transform against dividing by ~0 variances.
            scale = np.sqrt(np.asarray(transformer.explained_variance_, dtype=np.float64))
            scale = np.maximum(scale, np.finfo(scale.dtype).eps)
            W = W / scale
        return PreprocessingSpec(mean=transformer.mean_, W=W)
    raise TypeError(
        f"Cannot export preprocessing {name}: only affine transformers (StandardScaler, "
        "PCA/IncrementalPCA, identity FunctionTransformer, Pipelines of those) are supported."
    )


def layer_specs_from_estimator(est):
    """Layer specs and preprocessing spec of a fitted layer or stacked learner.

    A single layer gives ``([spec], None)``. An estimator with ``layers_`` (e.g.
    ``DeepStructureLearner``) gives one spec per layer, and its fitted
    ``preprocessing_`` transformer (if any) converted with
    :func:`preprocessing_spec_from_transformer`.

    Returns
    -------
    layer_specs : list of LayerSpec
    preprocessing : PreprocessingSpec or None
    """
    if hasattr(est, "layers_"):
        specs = [layer_spec_from_estimator(layer) for layer in est.layers_]
        if hasattr(est, "preprocess_mean_"):
            # DeepStructureLearner stores its preprocessing as the affine map
            # x -> (x - preprocess_mean_) @ preprocess_matrix_ (matrix None: identity).
            # This is the one place that turns it into a spec (to_torch calls here).
            mean = np.asarray(est.preprocess_mean_, dtype=np.float64)
            matrix = getattr(est, "preprocess_matrix_", None)
            if matrix is None and not np.any(mean):
                return specs, None  # preprocessing=None: no identity stage in the network
            W = None if matrix is None else np.asarray(matrix, dtype=np.float64)
            return specs, PreprocessingSpec(mean=mean, W=W)
        pre = preprocessing_spec_from_transformer(getattr(est, "preprocessing_", None))
        return specs, pre
    return [layer_spec_from_estimator(est)], None


def estimator_to_torch(est, *, mode="exact", n_classes=None, n_iter=DEFAULT_N_ITER, dtype=None,
                       restart=DEFAULT_RESTART):
    """``to_torch`` for a fitted layer or stacked learner: specs read, then built.

    See :func:`build_torch_module` for the parameters.
    """
    specs, pre = layer_specs_from_estimator(est)
    return build_torch_module(
        specs, mode=mode, preprocessing=pre, n_classes=n_classes, n_iter=n_iter, dtype=dtype,
        restart=restart,
    )


def _validate(layer_specs, mode, preprocessing, n_classes, n_iter):
    if mode not in _MODES:
        raise ValueError(f"mode must be 'exact' or 'feedforward', got {mode!r}.")
    if isinstance(layer_specs, LayerSpec):
        layer_specs = [layer_specs]
    layer_specs = list(layer_specs)
    if not layer_specs:
        raise ValueError("layer_specs is empty: at least one layer is needed.")
    for i, spec in enumerate(layer_specs):
        if not isinstance(spec, LayerSpec):
            raise TypeError(f"layer_specs[{i}] is a {type(spec).__name__}, expected a LayerSpec.")
    if preprocessing is not None:
        if not isinstance(preprocessing, PreprocessingSpec):
            raise TypeError(
                "preprocessing must be a PreprocessingSpec or None, got "
                f"{type(preprocessing).__name__}."
            )
        if preprocessing.n_features_out != layer_specs[0].n_features:
            raise ValueError(
                f"preprocessing outputs {preprocessing.n_features_out} features but the first "
                f"layer expects {layer_specs[0].n_features}."
            )
    for i in range(1, len(layer_specs)):
        n_out, n_in = layer_specs[i - 1].n_outputs, layer_specs[i].n_features
        if n_out != n_in:
            raise ValueError(
                f"Layer {i - 1} outputs {n_out} features but layer {i} expects {n_in}."
            )
    if n_classes is not None and (
        not isinstance(n_classes, Integral) or isinstance(n_classes, bool) or n_classes < 1
    ):
        raise ValueError(f"n_classes must be None or a positive integer, got {n_classes!r}.")
    if not isinstance(n_iter, Integral) or isinstance(n_iter, bool) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}.")
    return layer_specs


def build_torch_module(layer_specs, *, mode="exact", preprocessing=None, n_classes=None,
                       n_iter=DEFAULT_N_ITER, dtype=None, restart=DEFAULT_RESTART):
    """Build a ``torch.nn.Module`` from learned layer structures.

    Parameters
    ----------
    layer_specs : LayerSpec or list of LayerSpec
        The stacked layers; the outputs of layer ``l`` are the inputs of layer ``l + 1``.
    mode : {"exact", "feedforward"}, default="exact"
        ``"exact"`` reproduces ``transform``: per layer ``n_iter`` unrolled FISTA
        iterations on the masked dictionary with the group soft-threshold, then the
        pooling (it equals :func:`~sklearn_structlearn.export.reference_forward`); a
        ``transform_algorithm="threshold"`` layer is its one proximal step, the
        ``"feedforward"`` layer as initialised.
        ``"feedforward"`` is a fast encoder with the same structure: masked linear
        layers initialised from the dictionaries, a learnable per-group threshold, the
        pooling; meant for supervised fine-tuning.
    preprocessing : PreprocessingSpec, default=None
        Fixed affine map applied first.
    n_classes : int, default=None
        If given, a linear head ``nn.Linear(n_outputs, n_classes)`` is appended, with
        torch's default random initialisation (seed it with ``torch.manual_seed``).
    n_iter : int, default=DEFAULT_N_ITER
        Unrolled iterations per layer in ``"exact"`` mode (ignored otherwise).
    dtype : torch.dtype, default=None
        Floating dtype of parameters and buffers; ``None`` means ``torch.float32``.
    restart : bool, default=DEFAULT_RESTART
        ``"exact"`` mode only: adaptive per-row momentum restart of FISTA (a
        ``torch.where``, so still branch-free and exportable). It needs far fewer
        iterations for the same accuracy; ``False`` gives plain FISTA.

    Returns
    -------
    module : StructuredNet
        A plain ``torch.nn.Module``: dictionaries are parameters; masks, group ids,
        penalties and steps are buffers.

    Raises
    ------
    ImportError
        If torch is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn_structlearn.export import LayerSpec, build_torch_module, reference_forward
    >>> rng = np.random.default_rng(0)
    >>> spec = LayerSpec(rng.normal(size=(4, 6)), alpha=0.5, group_size=2)
    >>> net = build_torch_module([spec], mode="exact", n_iter=50, dtype=torch.float64)
    >>> X = rng.normal(size=(3, 6))
    >>> out = net(torch.from_numpy(X)).detach().numpy()
    >>> bool(np.allclose(out, reference_forward(X, spec, n_iter=50), atol=1e-10))
    True
    """
    layer_specs = _validate(layer_specs, mode, preprocessing, n_classes, n_iter)
    torch = _import_torch()
    from . import _modules

    if dtype is None:
        dtype = torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}.")

    def tensor(a):
        return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.float64)).to(dtype)

    layers = []
    for spec in layer_specs:
        components, mask = tensor(spec.components), torch.as_tensor(spec.mask)
        if mode == "exact" and spec.transform_algorithm == "lasso":
            layer = _modules.UnrolledProxLayer(
                components, mask, alpha=spec.alpha, step=lipschitz_step(spec.components),
                group_size=spec.group_size, positive=spec.positive, pooling=spec.pooling,
                n_iter=n_iter, restart=restart,
            )
        else:  # at initialisation: prox(x D^T), what a "threshold" layer computes
            layer = _modules.FeedforwardLayer(
                components, mask, alpha=spec.alpha, group_size=spec.group_size,
                positive=spec.positive, pooling=spec.pooling,
            )
        layers.append(layer)

    pre = None
    parts = ()
    if preprocessing is not None:
        parts = (preprocessing.mean, preprocessing.W, preprocessing.bias)
    if any(part is not None for part in parts):  # an all-None spec is the identity
        pre = _modules.AffinePreprocessing(*(tensor(part) for part in parts))

    head = None
    if n_classes is not None:
        head = torch.nn.Linear(layer_specs[-1].n_outputs, int(n_classes), dtype=dtype)

    return _modules.StructuredNet(layers, preprocessing=pre, head=head, mode=mode)
