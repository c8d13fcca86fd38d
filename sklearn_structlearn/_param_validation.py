"""Parameter validation: scikit-learn's declarative constraints, imported in this one place.

Every estimator declares its parameters once, in a ``_parameter_constraints`` class
attribute, and its fitting methods are wrapped in :func:`fit_context`, which checks them
all before any work; public functions are wrapped in :func:`validate_params`. A bad value
raises :class:`InvalidParameterError`, a subclass of both ``ValueError`` and ``TypeError``,
with a message naming the parameter, the caller, what was expected and what was given::

    The 'alpha' parameter of GroupSparseCodingLayer must be a float in the range
    [0.0, inf) or a str among {'auto'}. Got -1.0 instead.

The machinery is scikit-learn's (``sklearn.utils._param_validation`` and
``sklearn.base._fit_context``): private API, but stable since scikit-learn 1.2 and used
by third-party estimators. It is imported here only, so that a change upstream is fixed
in one file. The few additions below keep this package's conventions:

- integers are never booleans (``n_components=True`` is a mistake, not 1) and fit in an
  int64 (the Numba kernels take int64: a bigger int would be a Numba typing error);
- floats are never booleans, and never NaN or infinite unless an interval says so;
- the options of a :class:`StrOptions` are listed sorted in messages (a set's order
  changes from run to run).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils._param_validation import StrOptions as _StrOptions

from ._transaction import transactional

__all__ = [
    "HasMethods",
    "INT64_MAX",
    "InvalidParameterError",
    "N_JOBS",
    "StrOptions",
    "fit_context",
    "fit_context_validating_nested",
    "int_in",
    "real_in",
    "validate_named",
    "validate_params",
]

INT64_MAX = int(np.iinfo(np.int64).max)


class _NotBool:
    """Mixin of the intervals below: ``True`` / ``False`` are not numbers here."""

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


class _IntInterval(_NotBool, Interval):
    pass


class _RealInterval(_NotBool, Interval):
    pass


def int_in(left, right=INT64_MAX):
    """Ints in ``[left, right]`` (``right`` defaults to the int64 maximum), never bools."""
    return _IntInterval(Integral, left, right, closed="both")


def real_in(left=None, right=None, *, closed="left"):
    """Real numbers (ints included, bools and NaN excluded) in the given interval.

    With ``None`` bounds and ``closed="left"``, ``+inf`` is excluded; ``closed="both"``
    with both bounds ``None`` accepts every non-NaN float, infinities included.
    """
    return _RealInterval(Real, left, right, closed=closed)


class StrOptions(_StrOptions):
    """scikit-learn's ``StrOptions``, listing its options sorted in messages."""

    def __str__(self):
        return f"a str among {{{', '.join(repr(o) for o in sorted(self.options))}}}"


#: ``n_jobs`` as in joblib: None, a positive count, or a negative one counted from the
#: number of cores (-1: all). 0 has no meaning.
N_JOBS = [None, int_in(1), _IntInterval(Integral, None, -1, closed="right")]

_validated_fit = _fit_context(prefer_skip_nested_validation=True)


def fit_context(fit_method):
    """The decorator of ``fit`` / ``partial_fit`` / ``fit_transform`` / ``fit_stream``.

    Validates the estimator's ``_parameter_constraints`` first (once for
    ``partial_fit``), then runs the method with nested validation skipped (the estimator
    passes checked values on), as a transaction (:mod:`._transaction`): if it raises or is
    interrupted, the estimator is left exactly as it was before the call.
    """
    return _validated_fit(transactional(fit_method))


_validated_fit_nested = _fit_context(prefer_skip_nested_validation=False)


def fit_context_validating_nested(fit_method):
    """:func:`fit_context` for a meta-estimator: the estimators it fits check their own
    parameters (a user's ``structure_learner`` with a bad value fails with its own
    message), instead of being trusted as this package's own calls are."""
    return _validated_fit_nested(transactional(fit_method))


def validate_named(constraints, values, caller):
    """Check ``values`` (a dict name -> value) against ``constraints`` (name -> list).

    For the checks that a declaration cannot express alone: a parameter set after fit
    (``transform`` reading ``pooling``), the entries of a per-layer list (named
    ``"alpha[1]"``), a parameter of a method that is not ``fit``.
    """
    validate_parameter_constraints(constraints, values, caller_name=caller)
