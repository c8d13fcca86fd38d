"""Warnings specific to sklearn-structlearn (the errors are ValueError / TypeError)."""

__all__ = ["ZeroCodesWarning"]


class ZeroCodesWarning(UserWarning):
    """The code penalty is at or above ``alpha_max``: every code is exactly zero.

    Raised by :func:`~sklearn_structlearn.group_sparse_encode` and by
    :meth:`GroupSparseCodingLayer.fit <sklearn_structlearn.GroupSparseCodingLayer.fit>`
    when ``alpha`` switches off every group of every sample although the data are not
    zero: the outputs carry no information. Lower ``alpha`` (below
    :func:`~sklearn_structlearn.alpha_max`) or use ``alpha="auto"``.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sklearn_structlearn import alpha_max, group_sparse_encode
    >>> from sklearn_structlearn.exceptions import ZeroCodesWarning
    >>> X, D = np.eye(2), np.eye(2)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     codes = group_sparse_encode(X, D, alpha=2 * alpha_max(X, D))
    >>> caught[0].category is ZeroCodesWarning, bool(np.all(codes == 0))
    (True, True)
    """
