"""Numba's on-disk cache of the kernels, dropped when any kernel source changes.

Numba keys a cached function on the contents of the file that defines it, not on the
files of the functions it calls: the code kernels of ``_encode.py`` inline the row solvers
of ``_lasso.py`` and ``_group.py`` and call the helpers of ``_cholesky.py``, so an edit or
an upgrade that changed only those files would keep running the old compiled kernels,
silently. The cache is therefore stamped with a digest of every source file of the
package; another digest removes the package's cache files before any kernel loads them
(numba reads a function's cache at its first call, after the package's import).
"""

import hashlib
import os

STAMP_NAME = "structlearn-kernels.sha256"


def drop_stale_kernels(dispatcher, source_dir):
    """Drop the cache of the kernels of ``source_dir`` if any of its sources changed.

    ``dispatcher`` is one of the package's ``@njit(cache=True)`` functions: its cache
    directory is the one every module of the package uses. Returns the number of cache
    files removed."""
    cache_dir = getattr(getattr(dispatcher, "_cache", None), "_cache_path", None)
    if cache_dir is None:  # caching off, or a numba without this attribute
        return 0
    sources = sorted(name for name in os.listdir(source_dir) if name.endswith(".py"))
    digest = hashlib.sha256()
    for name in sources:
        digest.update(name.encode())
        with open(os.path.join(source_dir, name), "rb") as f:
            digest.update(f.read())
    modules = {os.path.splitext(name)[0] for name in sources}
    return drop_stale_cache(cache_dir, digest.hexdigest(), modules)


def drop_stale_cache(cache_dir, digest, modules):
    """Remove the cache files of ``modules`` from ``cache_dir`` unless its stamp is ``digest``.

    Returns the number of files removed. A failure to read or write (a read-only install,
    another process removing the same files first) leaves the cache as it is: numba
    recompiles whatever it cannot load."""
    stamp = os.path.join(cache_dir, STAMP_NAME)
    try:
        with open(stamp) as f:
            if f.read().strip() == digest:
                return 0
    except OSError:
        pass
    try:
        names = os.listdir(cache_dir)
    except OSError:
        return 0
    removed = 0
    for name in names:
        # numba names a module's cache files "<module>.<function>-<line>.py<ver>[.n].nb[ic]"
        if name.endswith((".nbi", ".nbc")) and name.split(".", 1)[0] in modules:
            try:
                os.remove(os.path.join(cache_dir, name))
                removed += 1
            except OSError:
                pass
    try:
        tmp = f"{stamp}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(digest + "\n")
        os.replace(tmp, stamp)  # atomic: a concurrent import reads the old or the new stamp
    except OSError:
        pass
    return removed
