"""Data checks (dtype, shapes of the code problem) with messages that name the argument.

Parameters are validated declaratively (``_param_validation``); the data are checked
here and by scikit-learn's ``check_array`` / ``validate_data``, before any heavy work, so
that a bad array never reaches a Numba kernel (where it would surface as an obscure
typing error or a crash).
"""

import os

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array


def check_numeric_dtype(X, name="X"):
    """Reject arrays of strings, bytes, dates, durations, complex numbers or non-numeric
    objects early.

    ``check_array(X, dtype=float)`` would silently parse strings such as ``"1.5"`` (in a
    string array, an object array or a DataFrame column) and turn dates and durations
    into their integer counts of time units; it rejects complex or non-numeric object
    entries with a message that does not name the argument. Object arrays of numbers stay
    accepted (scikit-learn's convention), as in the command line, which refuses the same
    things. NumPy arrays, (nested) lists and DataFrame columns are inspected; other
    containers (sparse matrices) are left to ``check_array``.
    """
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a DataFrame: column by column
        for column, dtype in zip(X.columns, X.dtypes):
            if getattr(dtype, "kind", "O") in "OSUVMmc":
                check_numeric_dtype(np.asarray(X[column]), f"{name} (column {column!r})")
        return
    if isinstance(X, np.ndarray):
        array = X
    elif isinstance(X, (list, tuple)):
        try:
            array = np.asarray(X)
        except ValueError:  # ragged: check_array reports the shape problem
            return
    else:
        return
    kind = array.dtype.kind
    if kind in "USV":
        raise TypeError(
            f"{name} must hold numbers (float or int), got an array of dtype {array.dtype}; "
            f"convert it explicitly, e.g. {name}.astype(float), if its strings are numbers."
        )
    if kind in "Mm":
        raise TypeError(
            f"{name} must hold numbers (float or int), got an array of dtype {array.dtype} "
            "(dates or durations); convert them explicitly to numbers in the unit you mean, "
            f"e.g. {name}.astype('datetime64[s]').astype(float) for seconds."
        )
    if kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {array.dtype}; pass its real part "
            "(or its modulus) explicitly."
        )
    if kind == "O":
        for entry in array.flat:
            if isinstance(entry, (str, bytes, np.str_, np.bytes_, np.datetime64,
                                  np.timedelta64)):
                raise TypeError(
                    f"{name} must hold numbers (float or int); its object array has an entry "
                    f"that is not one: {entry!r} of type {type(entry).__name__}. Convert it "
                    f"explicitly, e.g. {name}.astype(float), if its strings are numbers."
                )
        try:
            np.asarray(array, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must hold numbers (float or int); its object array has an entry that "
                f"is not one: {exc}"
            ) from exc


#: Largest absolute value of the data, by dtype, within which results are computed to the
#: dtype's precision. float64: squared norms and Gram / covariance sums of the data are
#: formed in float64, which overflows beyond ~1e154 (less a margin for the sums over rows
#: and features) and loses precision in subnormal numbers below ~1e-154. float32: squares
#: are formed in float64, but the data are multiplied by the dictionary in float32, which
#: overflows at 3.4e38 (less a margin for sqrt(n_features)) and turns subnormal below
#: ~1e-38.
MAGNITUDE_RANGE = {np.dtype(np.float64): (1e-150, 1e150), np.dtype(np.float32): (1e-35, 1e35)}


def check_magnitude(X, name="X"):
    """Refuse finite data whose largest absolute value is outside :data:`MAGNITUDE_RANGE`.

    Called on validated (finite, float32 or float64, dense or sparse) arrays. All-zero
    data are accepted. Beyond the range, a computation would overflow or underflow and
    fail with a misleading error, or return wrong results; a rescaled copy does not.
    """
    values = X.data if sp.issparse(X) else X
    if values.size == 0:
        return
    largest = float(max(values.max(), -values.min()))
    # the bounds rounded to the data's dtype, so that data * 1e35 in float32 is in range
    low, high = (float(values.dtype.type(bound)) for bound in MAGNITUDE_RANGE[values.dtype])
    if largest == 0 or low <= largest <= high:
        return
    failure = "overflow" if largest > high else "underflow"
    raise ValueError(
        f"{name} has entries up to {largest:.3g} in absolute value, outside the range "
        f"[{low:.3g}, {high:.3g}] supported for {values.dtype} data (beyond it, squared norms "
        f"{failure} and results would be wrong). Rescale it, e.g. "
        f"{name} / np.abs({name}).max()."
    )


def check_encode_arrays(X, dictionary, *, group_size=1, dtype=None, accept_sparse=False):
    """Validate the data and dictionary of a code problem (``group_sparse_encode``,
    ``alpha_max``): 2-d finite numeric arrays with the same number of features, and a
    number of atoms that ``group_size`` (already checked to be an int >= 1) divides.
    Returns ``X, dictionary``.
    """
    check_numeric_dtype(X, "X")
    check_numeric_dtype(dictionary, "dictionary")
    X = check_array(X, dtype=[np.float64, np.float32] if dtype is None else dtype,
                    input_name="X", accept_sparse=accept_sparse)
    dictionary = check_array(dictionary, dtype=X.dtype, input_name="dictionary",
                             ensure_min_samples=0, ensure_min_features=0)
    check_magnitude(X, "X")
    check_magnitude(dictionary, "dictionary")
    if dictionary.shape[0] == 0:
        raise ValueError(
            f"dictionary must hold at least one atom (row), got shape {dictionary.shape}."
        )
    if dictionary.shape[1] != X.shape[1]:
        raise ValueError(
            f"dictionary has {dictionary.shape[1]} features (columns) but X has {X.shape[1]}; "
            "the dictionary must be of shape (n_components, n_features)."
        )
    if dictionary.shape[0] % group_size:
        raise ValueError(
            f"n_components={dictionary.shape[0]} (rows of the dictionary) must be a multiple "
            f"of group_size={group_size}."
        )
    return X, dictionary


def physical_memory():
    """Bytes of physical memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # e.g. Windows: no sysconf
        return None


def format_bytes(n_bytes):
    """``1.5 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.1f} {unit}" if unit != "B" else f"{int(n_bytes)} B"
        n_bytes /= 1024


def check_memory(needed, what, advice):
    """Refuse, before any work, what needs more memory than the machine has.

    ``needed`` is a *lower bound* (bytes) of what the computation must hold at once, so
    nothing feasible is refused; ``what`` names the parameter and its value and says what
    the memory is for, ``advice`` how to ask for less. Nothing is checked where the
    physical memory is unknown.
    """
    available = physical_memory()
    if available is None or needed <= available:
        return
    raise ValueError(
        f"{what} needs at least {format_bytes(needed)} of memory, more than this machine's "
        f"{format_bytes(available)}; {advice}"
    )
