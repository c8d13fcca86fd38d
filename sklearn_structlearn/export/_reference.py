"""Plain-NumPy description and reference forward pass of an exported network.

This module has no torch dependency. It defines

- :class:`LayerSpec` and :class:`PreprocessingSpec`, the plain-NumPy description of
  the learned structure that the torch builders consume, and
- :func:`reference_forward`, a NumPy run of *exactly* the algorithm that the
  ``mode="exact"`` torch module unrolls (accelerated proximal gradient, FISTA, with a
  fixed iteration count). It is the float64 ground truth the torch module is tested
  against.

The code problem solved per sample ``x`` by one layer is::

    min_a  1/2 ||x - D^T a||^2 + alpha * sum_g ||a_g||_2     (+ a >= 0 if positive)

with ``D`` the dictionary (``n_components x n_features``) and ``g`` running over
contiguous blocks of ``group_size`` units.
"""

from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

# The group norm, its prox and the pooling are the package's one NumPy definition
# (``_groups.py``); imported here under the names this module always had.
from .._groups import POOLINGS as _POOLINGS
from .._groups import TRANSFORM_ALGORITHMS
from .._groups import group_soft_threshold, pool_codes, threshold_codes

#: Default number of unrolled FISTA iterations per layer of the ``"exact"`` mode. With
#: the default adaptive restart, a default-fitted ``GroupSparseCodingLayer`` on the digits
#: gets, in float32, a relative error to ``transform`` of ~1e-4 after 100 iterations and
#: ~1e-6 to 1e-4 after 200 (the remainder is the solver tolerance of ``transform``
#: itself); plain FISTA (``restart=False``) needs ~300-500 iterations for 5e-4 to 1e-4.
DEFAULT_N_ITER = 300

#: Whether the ``"exact"`` mode restarts the FISTA momentum adaptively (see fista_codes).
DEFAULT_RESTART = True


def _check_pooling(pooling):
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of 'l2', 'max' or None, got {pooling!r}.")
    return pooling


@dataclass
class LayerSpec:
    """Learned structure and weights of one group sparse coding layer.

    Parameters
    ----------
    components : array-like of shape (n_components, n_features)
        The dictionary ``D``; row ``k`` holds the input weights of unit ``k``.
    mask : array-like of bool of shape (n_components, n_features), default=None
        Connectivity mask; ``None`` means ``components != 0``. Entries of
        ``components`` outside the mask are set to zero, so the two always agree.
    alpha : float, default=1.0
        Code penalty of the group-lasso problem, non-negative.
    group_size : int, default=1
        Number of consecutive units per group; must divide ``n_components``.
    positive : bool, default=False
        Whether the codes are constrained non-negative.
    pooling : {"l2", "max", None}, default="l2"
        Group pooling of the codes: the L2 norm of each group, the maximum of the
        absolute codes of each group, or no pooling (raw codes).
    transform_algorithm : {"lasso", "threshold"}, default="lasso"
        How the layer codes its inputs (the layer's parameter of that name): the
        group-lasso codes, or one proximal step from zero, ``prox(x D^T)``.

    Attributes
    ----------
    n_components, n_features, n_groups, n_outputs : int
        Shapes of the layer; ``n_outputs`` is ``n_groups`` when pooled, otherwise
        ``n_components``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.export import LayerSpec
    >>> spec = LayerSpec(np.eye(4, 6), alpha=0.1, group_size=2)
    >>> spec.n_groups, spec.n_outputs, int(spec.mask.sum())
    (2, 2, 4)
    """

    components: np.ndarray
    mask: np.ndarray = None
    alpha: float = 1.0
    group_size: int = 1
    positive: bool = False
    pooling: str = "l2"
    transform_algorithm: str = "lasso"

    def __post_init__(self):
        D = np.array(self.components, dtype=np.float64)
        if D.ndim != 2 or D.shape[0] == 0 or D.shape[1] == 0:
            raise ValueError(f"components must be a non-empty 2D array, got shape {D.shape}.")
        if not np.all(np.isfinite(D)):
            raise ValueError("components must be finite.")
        if self.mask is None:
            mask = D != 0
        else:
            mask = np.asarray(self.mask)
            if mask.shape != D.shape:
                raise ValueError(
                    f"mask has shape {mask.shape}, expected {D.shape} like components."
                )
            mask = mask.astype(bool)
        # Off-mask weights are pruned connections: zero them so D and mask can never disagree.
        D[~mask] = 0.0
        if not isinstance(self.alpha, Real) or not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(f"alpha must be a finite non-negative number, got {self.alpha!r}.")
        if not isinstance(self.group_size, Integral) or self.group_size < 1:
            raise ValueError(f"group_size must be a positive integer, got {self.group_size!r}.")
        if D.shape[0] % self.group_size:
            raise ValueError(
                f"group_size={self.group_size} does not divide n_components={D.shape[0]}."
            )
        _check_pooling(self.pooling)
        if self.transform_algorithm not in TRANSFORM_ALGORITHMS:
            raise ValueError(
                f"transform_algorithm must be one of {TRANSFORM_ALGORITHMS}, got "
                f"{self.transform_algorithm!r}."
            )
        self.components = D
        self.mask = mask
        self.alpha = float(self.alpha)
        self.group_size = int(self.group_size)
        self.positive = bool(self.positive)

    @property
    def n_components(self):
        return self.components.shape[0]

    @property
    def n_features(self):
        return self.components.shape[1]

    @property
    def n_groups(self):
        return self.n_components // self.group_size

    @property
    def n_outputs(self):
        return self.n_components if self.pooling is None else self.n_groups


@dataclass
class PreprocessingSpec:
    """Affine preprocessing ``x -> (x - mean) @ W + bias`` applied before the first layer.

    Parameters
    ----------
    mean : array-like of shape (n_features_in,), default=None
        Subtracted first; ``None`` means zero.
    W : array-like of shape (n_features_in, n_features_out), default=None
        Linear map; ``None`` means identity.
    bias : array-like of shape (n_features_out,), default=None
        Added last; ``None`` means zero. Lets pipelines of affine steps compose into one.
    n_features_in : int, default=None
        Only needed when both ``mean`` and ``W`` are ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.export import PreprocessingSpec
    >>> pre = PreprocessingSpec(mean=np.ones(3), W=2 * np.eye(3))
    >>> pre.apply(np.array([[1.0, 2.0, 3.0]]))
    array([[0., 2., 4.]])
    """

    mean: np.ndarray = None
    W: np.ndarray = None
    bias: np.ndarray = None
    n_features_in: int = field(default=None)

    def __post_init__(self):
        n_in = self.n_features_in
        if self.W is not None:
            self.W = np.array(self.W, dtype=np.float64)
            if self.W.ndim != 2:
                raise ValueError(f"W must be 2D, got shape {self.W.shape}.")
            n_in = self.W.shape[0]
        if self.mean is not None:
            self.mean = np.array(self.mean, dtype=np.float64).ravel()
            if n_in is not None and self.mean.shape[0] != n_in:
                raise ValueError(f"mean has {self.mean.shape[0]} entries, expected {n_in}.")
            n_in = self.mean.shape[0]
        if n_in is None:
            raise ValueError("PreprocessingSpec needs mean, W or n_features_in.")
        self.n_features_in = int(n_in)
        n_out = self.n_features_out
        if self.bias is not None:
            self.bias = np.array(self.bias, dtype=np.float64).ravel()
            if self.bias.shape[0] != n_out:
                raise ValueError(f"bias has {self.bias.shape[0]} entries, expected {n_out}.")
        for name in ("mean", "W", "bias"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be finite.")

    @property
    def n_features_out(self):
        return self.n_features_in if self.W is None else self.W.shape[1]

    def apply(self, X):
        """Apply the affine map to ``X`` of shape (n_samples, n_features_in), in float64."""
        X = np.asarray(X, dtype=np.float64)
        if self.mean is not None:
            X = X - self.mean
        if self.W is not None:
            X = X @ self.W
        if self.bias is not None:
            X = X + self.bias
        return X

    def then(self, other):
        """Compose with a following affine step ``other`` (applied after ``self``) into one spec."""
        if other.n_features_in != self.n_features_out:
            raise ValueError(
                f"Cannot compose: {self.n_features_out} outputs feed {other.n_features_in} inputs."
            )
        # ((x - m1) W1 + b1 - m2) W2 + b2 = (x - m1) W1 W2 + ((b1 - m2) W2 + b2)
        n_mid = self.n_features_out
        W1 = np.eye(self.n_features_in) if self.W is None else self.W
        W2 = np.eye(n_mid) if other.W is None else other.W
        shift = np.zeros(n_mid)
        if self.bias is not None:
            shift = shift + self.bias
        if other.mean is not None:
            shift = shift - other.mean
        bias = shift @ W2
        if other.bias is not None:
            bias = bias + other.bias
        W = None if (self.W is None and other.W is None) else W1 @ W2
        return PreprocessingSpec(
            mean=self.mean,
            W=W,
            bias=bias if np.any(bias) else None,
            n_features_in=self.n_features_in,
        )


# --------------------------------------------------------------------------------------
# The unrolled algorithm (NumPy). Every function here has a torch twin in _modules.py that
# performs the same operations in the same order.
# --------------------------------------------------------------------------------------


def fista_momentum(n_iter):
    """Momentum coefficients ``(t_k - 1) / t_{k+1}`` of FISTA for ``k = 0 .. n_iter - 1``.

    They do not depend on the data, so the exported module bakes them in as constants.

    Examples
    --------
    >>> from sklearn_structlearn.export._reference import fista_momentum
    >>> [round(b, 4) for b in fista_momentum(3)]
    [0.0, 0.2818, 0.434]
    """
    betas = []
    t = 1.0
    for _ in range(int(n_iter)):
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        betas.append(float((t - 1.0) / t_next))
        t = t_next
    return betas


def lipschitz_step(components):
    """Step ``1 / L`` with ``L`` the largest eigenvalue of the Gram matrix ``D D^T``.

    ``L`` is the Lipschitz constant of the gradient of the smooth part of the code
    problem. An all-zero dictionary gets step 1 (every code is zero anyway).
    """
    D = np.asarray(components, dtype=np.float64)
    # eigvalsh on the smaller of D D^T and D^T D: they share their non-zero spectrum.
    gram = D @ D.T if D.shape[0] <= D.shape[1] else D.T @ D
    L = float(np.linalg.eigvalsh(gram)[-1])
    return 1.0 / L if L > 0 else 1.0


def pool(A, group_size, pooling):
    """Pool contiguous groups of codes: ``"l2"`` norm, ``"max"`` of ``|a|``, or ``None``."""
    _check_pooling(pooling)
    return pool_codes(A, group_size, pooling)


def fista_codes(X, components, alpha, group_size=1, positive=False, n_iter=DEFAULT_N_ITER,
                restart=DEFAULT_RESTART):
    """Codes after ``n_iter`` FISTA iterations from zero, in float64.

    Solves, for every row ``x`` of ``X``,
    ``min_a 1/2 ||x - D^T a||^2 + alpha * sum_g ||a_g||_2`` (+ ``a >= 0``), with step
    ``1 / L`` (``L`` = largest eigenvalue of ``D D^T``) and the FISTA momentum
    ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    components : array-like of shape (n_components, n_features)
    alpha : float
    group_size : int, default=1
    positive : bool, default=False
    n_iter : int, default=DEFAULT_N_ITER
    restart : bool, default=DEFAULT_RESTART
        Adaptive (gradient) restart of the momentum, per row: when
        ``(y_k - a_{k+1}) . (a_{k+1} - a_k) > 0`` the momentum is reset (``t = 1``).
        It keeps FISTA's worst-case rate and converges much faster on these problems,
        so far fewer unrolled iterations reach a given accuracy. ``False`` is plain FISTA.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_components)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.export._reference import fista_codes
    >>> codes = fista_codes(np.array([[3.0, 0.5]]), np.eye(2), alpha=1.0, n_iter=50)
    >>> np.round(codes, 6)
    array([[2., 0.]])
    """
    X = np.asarray(X, dtype=np.float64)
    D = np.asarray(components, dtype=np.float64)
    step = lipschitz_step(D)
    C = X @ D.T
    G = D @ D.T
    threshold = alpha * step
    A = np.zeros_like(C)
    Y = A
    if not restart:
        for beta in fista_momentum(n_iter):
            A_next = group_soft_threshold(Y - (Y @ G - C) * step, threshold, group_size, positive)
            Y = A_next + beta * (A_next - A)
            A = A_next
        return A
    t = np.ones((X.shape[0], 1))
    for _ in range(int(n_iter)):
        A_next = group_soft_threshold(Y - (Y @ G - C) * step, threshold, group_size, positive)
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        beta = (t - 1.0) / t_next
        # Momentum pointing against the prox-gradient step: restart this row.
        reset = ((Y - A_next) * (A_next - A)).sum(axis=1, keepdims=True) > 0
        beta = np.where(reset, 0.0, beta)
        t = np.where(reset, 1.0, t_next)
        Y = A_next + beta * (A_next - A)
        A = A_next
    return A


def reference_forward(X, layer_specs, *, preprocessing=None, n_iter=DEFAULT_N_ITER,
                      restart=DEFAULT_RESTART):
    """NumPy float64 forward pass of the ``mode="exact"`` exported network.

    Applies the preprocessing, then for each layer the unrolled FISTA codes (one
    proximal step from zero for a ``transform_algorithm="threshold"`` layer) and the
    pooling; the pooled outputs of a layer are the inputs of the next.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    layer_specs : LayerSpec or list of LayerSpec
    preprocessing : PreprocessingSpec, default=None
    n_iter : int, default=DEFAULT_N_ITER
    restart : bool, default=DEFAULT_RESTART
        Adaptive momentum restart, see :func:`fista_codes`.

    Returns
    -------
    Z : ndarray of shape (n_samples, layer_specs[-1].n_outputs)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn.export import LayerSpec, reference_forward
    >>> spec = LayerSpec(np.eye(2), alpha=1.0, group_size=2, pooling="l2")
    >>> np.round(reference_forward(np.array([[3.0, 4.0]]), spec, n_iter=50), 6)
    array([[4.]])
    """
    if isinstance(layer_specs, LayerSpec):
        layer_specs = [layer_specs]
    Z = np.asarray(X, dtype=np.float64)
    if preprocessing is not None:
        Z = preprocessing.apply(Z)
    for spec in layer_specs:
        if spec.transform_algorithm == "threshold":
            A = threshold_codes(Z, spec.components, spec.alpha, spec.group_size,
                                spec.positive)
        else:
            A = fista_codes(
                Z, spec.components, spec.alpha, spec.group_size, spec.positive,
                n_iter=n_iter, restart=restart,
            )
        Z = pool(A, spec.group_size, spec.pooling)
    return Z
