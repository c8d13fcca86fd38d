"""Fits are transactions: one that fails or is interrupted leaves the estimator as it was.

A fit replaces many attributes one after the other (``n_features_in_`` and
``feature_names_in_`` first, then the preprocessing, the dictionary, the layers...), and a
continued fit (``partial_fit``) updates its running statistics in place. An exception or a
``KeyboardInterrupt`` in the middle would otherwise leave a half-updated estimator: new
``n_features_in_`` with old layers, a layer whose statistics saw a batch its dictionary
did not, or a first fit interrupted after ``components_`` was set, which then passes
``check_is_fitted`` and transforms.

:func:`transactional` runs a fitting method on private copies of the estimator's fitted
state (its parameters are shared, never copied: a fit does not change them) and puts the
original state back -- the same objects -- if the method raises anything, including
``KeyboardInterrupt``. Both swaps are a single assignment of ``__dict__``, so an interrupt
cannot land between two attributes. A ``RandomState`` passed as ``random_state`` is
rewound too, so that retrying the call draws the same numbers.

Copying costs one copy of the fitted state per call: small next to any fit (for
``partial_fit``, next to coding one batch and updating the dictionary).
"""

import copy
import functools

import numpy as np

__all__ = ["transactional"]

# values that cannot be changed in place: shared, not copied
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, np.generic)


def _copy_state(value):
    """A copy of ``value`` that a fit may change in place without touching ``value``.

    ``copy.deepcopy`` with fast paths for what fitted state is made of: arrays, and long
    lists of numbers (``objective_history_`` grows by one float per ``partial_fit``
    batch; deep-copying such a list element by element would cost a microsecond per
    entry at every call).
    """
    if isinstance(value, _IMMUTABLE):
        return value
    if type(value) is np.ndarray and value.dtype != object:
        return value.copy()
    if type(value) is list:
        return [v if isinstance(v, _IMMUTABLE) else _copy_state(v) for v in value]
    if type(value) is dict:
        return {k: _copy_state(v) for k, v in value.items()}
    return copy.deepcopy(value)


def transactional(fit_method):
    """Decorate a fitting method so that it either completes or changes nothing."""

    @functools.wraps(fit_method)
    def wrapper(estimator, *args, **kwargs):
        before = estimator.__dict__
        params = estimator.get_params(deep=False)
        work = {name: value if name in params else _copy_state(value)
                for name, value in before.items()}
        rng = params.get("random_state")
        rng_state = rng.get_state() if isinstance(rng, np.random.RandomState) else None
        estimator.__dict__ = work
        try:
            return fit_method(estimator, *args, **kwargs)
        except BaseException:
            estimator.__dict__ = before
            if rng_state is not None:
                rng.set_state(rng_state)
            raise

    return wrapper
