"""Choosing the atoms (or groups) that enter a working set."""

from numba import njit


@njit(cache=True, nogil=True)
def select_largest(values, items, n, k):
    """Reorder ``values[:n]`` (and ``items`` alongside) so that the first ``k`` are the
    largest, the very largest first (the others in no particular order).

    Quickselect, O(n) and no allocation: sorting every violator (``np.argsort``) was 40% of
    the lasso solver's time at small supports (the group solver's choice; the lasso's is
    ``insert_largest`` during its scan)."""
    if k <= 0 or n <= 0:
        return
    k = min(k, n)
    lo = 0
    hi = n - 1
    while lo < hi:
        # median of three as pivot, partition into > pivot | <= pivot (Hoare-style)
        mid = (lo + hi) // 2
        p = values[mid]
        if values[lo] < p:
            p = values[lo] if values[lo] > values[hi] else min(p, values[hi])
        elif values[lo] > p:
            p = values[lo] if values[lo] < values[hi] else max(p, values[hi])
        i = lo
        j = hi
        while i <= j:
            while values[i] > p:
                i += 1
            while values[j] < p:
                j -= 1
            if i <= j:
                tv = values[i]
                values[i] = values[j]
                values[j] = tv
                ti = items[i]
                items[i] = items[j]
                items[j] = ti
                i += 1
                j -= 1
        if k - 1 <= j:
            hi = j
        elif k - 1 >= i:
            lo = i
        else:
            break
    best = 0
    for t in range(1, k):
        if values[t] > values[best]:
            best = t
    tv = values[0]
    values[0] = values[best]
    values[best] = tv
    ti = items[0]
    items[0] = items[best]
    items[best] = ti


@njit(cache=True, nogil=True, inline="always")
def insert_largest(values, items, n, k, v, item):
    """Offer ``(v, item)`` to the ``n`` largest held so far in ``values[:n]`` (``items``
    alongside), sorted largest first, of which at most ``k >= 1`` are kept; returns the new
    count.

    For a scan that wants only the ``k`` largest of many: once ``k`` are held, an offer not
    above ``values[k - 1]`` changes nothing, so the caller can test that bar before calling.
    Inlined: it runs inside the scan's loop."""
    if n == k and not v > values[k - 1]:
        return n
    t = n if n < k else k - 1
    while t > 0 and values[t - 1] < v:
        values[t] = values[t - 1]
        items[t] = items[t - 1]
        t -= 1
    values[t] = v
    items[t] = item
    return n + 1 if n < k else n
