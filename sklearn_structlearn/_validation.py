"""Parameter checks with messages that name the parameter and what was expected.

Estimators store their parameters untouched in ``__init__`` and call these in ``fit``,
before any heavy work, so that a bad value never reaches a Numba kernel (where it would
surface as an obscure typing error or a crash).
"""

import numbers

import numpy as np


def check_int(value, name, *, min_value=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}.")
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}.")
    return int(value)


def check_float(value, name, *, min_value=None, strict=False, allow_auto=False, allow_none=False):
    if value is None and allow_none:
        return None
    if allow_auto and isinstance(value, str) and value == "auto":
        return "auto"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        expected = 'a float or "auto"' if allow_auto else "a float"
        raise TypeError(f"{name} must be {expected}, got {value!r}.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    if min_value is not None and (value < min_value or (strict and value == min_value)):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {min_value}, got {value}.")
    return value


def check_option(value, name, options):
    if not any(value is o or (isinstance(o, str) and value == o) for o in options):
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}.")
    return value


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return bool(value)
