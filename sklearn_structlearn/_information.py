"""How much of its input a layer keeps: the measurements behind the "auto" rules.

The efficient coding principle asks a layer to keep its input's information while
coding it sparsely. Three measurable forms of "keeps its input's information" are used
by the "auto" rules (:mod:`sklearn_structlearn.penalties`) and the depth rule of
:class:`~sklearn_structlearn.DeepStructureLearner`:

- :func:`explained_variance`: the fraction of the input's variance that the codes
  reconstruct through the dictionary, ``1 - ||X - A D||^2 / ||X||^2``. It is what the
  code penalty trades against sparsity, so the "auto" code penalty targets it
  (:func:`~sklearn_structlearn.penalties.auto_alpha`).
- :func:`decoding_information`: how much of the input a *linear read-out of the
  outputs* recovers, on held-out rows, as a fraction of variance and as a Gaussian
  lower bound on the mutual information ``I(X; Z)`` in bits. Unlike a sum of the
  outputs' marginal entropies it does not grow with the number of outputs or their
  density by construction: outputs that add nothing to what the others already say
  about the input add nothing to the bound. It measures what a layer hands on (pooled
  outputs or codes), so it sees what pooling throws away.
- :func:`input_scale`: the root-mean-square norm of the rows, the code penalty at which
  a sample of that norm gets all-zero codes on *every* dictionary of unit-norm atoms
  (``|d_k . x| <= ||x||``). Code penalties given relative to it are scale free and need
  no fitted dictionary: ``alpha = alpha_relative * input_scale(X)``.

Everything here reads arrays; nothing solves a coding problem or fits an estimator.
"""


import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

__all__ = [
    "explained_variance",
    "input_scale",
    "decoding_information",
]


def explained_variance(X, codes, components):
    """Fraction of the variance (energy) of ``X`` that ``codes @ components`` reconstructs.

    ``1 - ||X - codes @ components||_F^2 / ||X||_F^2``, with ``X`` taken as given (the
    layers see centred, preprocessed inputs, so its energy is its variance). 1 is a
    perfect reconstruction, 0 is the all-zero code; it can be negative for a
    reconstruction worse than zero.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs of the layer.
    codes : ndarray of shape (n_samples, n_components)
        Their codes.
    components : ndarray of shape (n_components, n_features)
        The dictionary.

    Returns
    -------
    ratio : float
        ``nan`` when ``X`` is all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._information import explained_variance
    >>> D = np.eye(3)
    >>> X = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    >>> round(explained_variance(X, X * [1, 1, 0], D), 3)  # drops 4 of 9
    0.556
    """
    X = np.asarray(X, dtype=np.float64)
    residual = X - np.asarray(codes, dtype=np.float64) @ np.asarray(components, dtype=np.float64)
    energy = float(np.einsum("ij,ij->", X, X))
    if energy == 0:
        return float("nan")
    return 1.0 - float(np.einsum("ij,ij->", residual, residual)) / energy


def input_scale(X):
    """Root-mean-square row norm of ``X``: the natural unit of the code penalty.

    With unit-norm atoms, ``|d_k . x| <= ||x||``, so ``alpha >= ||x||`` gives ``x``
    all-zero codes on every dictionary; a code penalty written as a fraction of this
    scale (``alpha = alpha_relative * input_scale(X)``) therefore means the same thing
    on data of any scale and any number of features, and needs no fitted dictionary
    (unlike a fraction of ``alpha_max(X, D)``, which depends on ``D``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs of the layer (centred).

    Returns
    -------
    scale : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._information import input_scale
    >>> input_scale(np.array([[3.0, 4.0], [0.0, 5.0]]))
    5.0
    """
    if sp.issparse(X):
        energy = float(X.multiply(X).sum())
    else:
        X = np.asarray(X, dtype=np.float64)
        energy = float(np.einsum("ij,ij->", X, X))
    return float(np.sqrt(energy / max(X.shape[0], 1)))


# ridge penalties tried by the decoder, relative to the number of training rows: from
# almost none (as many informative outputs as rows) to strong enough to silence
# hundreds of noise outputs
_RIDGE_GRID = np.logspace(-4, 2, 13)


def _ridge_solutions(Z, Y, penalties):
    """Ridge coefficients ``(Z^T Z + penalty I)^-1 Z^T Y`` for every penalty, by one SVD."""
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    UtY = U.T @ Y
    for penalty in penalties:
        yield penalty, Vt.T @ ((s / (s**2 + penalty))[:, None] * UtY)


def _fit_decoder(Z, Y):
    """Ridge decoder ``Z -> Y`` with its penalty chosen on a third of the rows.

    (An inner hold-out rather than leave-one-out: with more outputs than rows the
    leave-one-out shortcut of an almost unpenalised ridge is numerically unreliable.)
    """
    n = Z.shape[0]
    n_val = max(1, n // 3)
    fit, val = slice(n_val, None), slice(0, n_val)
    errors = [(float(np.sum((Y[val] - Z[val] @ W) ** 2)), penalty)
              for penalty, W in _ridge_solutions(Z[fit], Y[fit], (n - n_val) * _RIDGE_GRID)]
    best = min(errors)[1] * n / (n - n_val)
    return next(_ridge_solutions(Z, Y, [best]))[1]


def decoding_information(X, Z, *, test_fraction=0.5, max_samples=4000, random_state=0):
    """How much of the input ``X`` a linear read-out of the outputs ``Z`` recovers.

    A ridge regression from the centred outputs (scaled by their overall RMS) to the
    centred inputs is fitted on
    one part of the rows (its penalty chosen on a hold-out inside that part, from
    ``n_train * logspace(-4, 2, 13)``) and evaluated on the other rows. With ``E`` the
    held-out residuals it returns

    - ``r2 = 1 - tr Cov(E) / tr Cov(X)``, the fraction of the input's variance the
      outputs keep in linearly readable form;
    - ``bits = 1/2 log2 det Cov(X) - 1/2 log2 det Cov(E)``: for Gaussian ``X`` this is
      a lower bound on the mutual information ``I(X; Z)`` (the residual of the best
      linear decoder upper-bounds the conditional entropy ``H(X | Z)``); the
      determinants are regularised by ``1e-6`` times the mean input variance, which
      caps the bits an input direction can contribute.

    Adding outputs that say nothing new about ``X`` leaves both numbers unchanged (up
    to estimation noise): the decoder is scored on rows it was not fitted on, with its
    penalty chosen against overfitting, so a dense or wide output is not rewarded for
    being dense or wide. Both are invariant to rescaling (and shifting) the outputs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs of the layer.
    Z : ndarray of shape (n_samples, n_outputs)
        What the layer hands on (pooled outputs or codes).
    test_fraction : float, default=0.5
        Fraction of the rows held out for evaluation.
    max_samples : int, default=4000
        Rows used (a random subsample above).
    random_state : int, RandomState instance or None, default=0
        Seeds the subsample and the split.

    Returns
    -------
    r2 : float
        Fraction of the input's variance recovered (<= 1).
    bits : float
        Gaussian lower bound on ``I(X; Z)``, in bits.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_structlearn._information import decoding_information
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2000, 4))
    >>> r2_all, bits_all = decoding_information(X, X @ rng.standard_normal((4, 6)))
    >>> r2_half, bits_half = decoding_information(X, X[:, :2])
    >>> round(r2_all, 2), round(r2_half, 1)
    (1.0, 0.5)
    >>> bool(bits_all > bits_half > 0)
    True
    """
    rng = check_random_state(random_state)
    X = np.asarray(X, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    n = X.shape[0]
    rows = rng.permutation(n)[:min(n, max_samples)]
    n_test = max(1, int(round(test_fraction * len(rows))))
    test, train = rows[:n_test], rows[n_test:]
    if len(train) < 2:
        raise ValueError(f"decoding_information needs at least 3 rows, got {n}.")
    x_mean = X[train].mean(axis=0)
    Xc_train, Xc_test = X[train] - x_mean, X[test] - x_mean
    z_mean = Z[train].mean(axis=0)
    Ztr, Zte = Z[train] - z_mean, Z[test] - z_mean
    # one scale for all outputs (not one per output): standardising a unit that is
    # active on a handful of training rows would blow it up on the held-out rows
    scale = np.sqrt(np.mean(Ztr**2))
    if scale > 0:
        E = Xc_test - (Zte / scale) @ _fit_decoder(Ztr / scale, Xc_train)
    else:
        E = Xc_test
    cov_x = Xc_test.T @ Xc_test / len(test)
    cov_e = E.T @ E / len(test)
    total = float(np.trace(cov_x))
    if total <= 0:
        return float("nan"), 0.0
    r2 = 1.0 - float(np.trace(cov_e)) / total
    floor = 1e-6 * total / X.shape[1] * np.eye(X.shape[1])
    _, logdet_x = np.linalg.slogdet(cov_x + floor)
    _, logdet_e = np.linalg.slogdet(cov_e + floor)
    return r2, float(0.5 * (logdet_x - logdet_e) / np.log(2.0))
