"""The kernels' numba cache follows every kernel source, not only the file of the kernel.

Numba keys a cached function on its own file: a kernel that inlines a function of another
module keeps its old compiled code after that module changes (an edit, or an upgrade that
touched only that file). ``_solvers._cache`` stamps the cache with a digest of all the
package's sources; these tests show numba's behaviour and the fix on a small package."""

import os
import subprocess
import sys
import textwrap

import pytest

from sklearn_structlearn._solvers._cache import STAMP_NAME, drop_stale_cache

DEP = """
from numba import njit

@njit(cache=True, inline="always")
def value():
    return {value}
"""

KERNEL = """
from numba import njit
from ._dep import value

@njit(cache=True)
def kernel():
    return value()
"""

INIT = """
import os
from ._kernel import kernel
if os.environ.get("KPKG_STAMP") == "1":
    from sklearn_structlearn._solvers._cache import drop_stale_kernels
    drop_stale_kernels(kernel, os.path.dirname(__file__))
"""


def _write_package(root, value):
    pkg = root / "kpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(INIT))
    (pkg / "_kernel.py").write_text(textwrap.dedent(KERNEL))
    (pkg / "_dep.py").write_text(textwrap.dedent(DEP.format(value=value)))
    return pkg


def _run(root, stamp):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root)] + sys.path),
               KPKG_STAMP="1" if stamp else "0")
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", "import kpkg; print(kpkg.kernel())"],
                         env=env, capture_output=True, text=True, timeout=300, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.parametrize("stamp", [False, True])
def test_edit_of_an_inlined_module_reaches_the_cached_kernel(tmp_path, stamp):
    _write_package(tmp_path, 1)
    assert _run(tmp_path, stamp) == 1  # compiled and cached
    _write_package(tmp_path, 2)  # only the inlined module changes
    # numba alone loads the stale kernel; with the stamp the edit is compiled in
    assert _run(tmp_path, stamp) == (2 if stamp else 1)
    assert _run(tmp_path, stamp) == (2 if stamp else 1)  # and cached again


def test_drop_stale_cache_removes_only_the_package_files(tmp_path):
    names = ["_encode.encode_bcd-67.py311.nbi", "_encode.encode_bcd-67.py311.1.nbc",
             "_lasso.helper-10.py311.nbi", "other.f-1.py311.nbi", "_encode.cpython-311.pyc"]
    for name in names:
        (tmp_path / name).write_text("x")
    assert drop_stale_cache(str(tmp_path), "abc", {"_encode", "_lasso"}) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["other.f-1.py311.nbi", "_encode.cpython-311.pyc", STAMP_NAME])
    assert (tmp_path / STAMP_NAME).read_text().strip() == "abc"
    # same digest: nothing removed, even files compiled since
    (tmp_path / "_encode.encode_bcd-67.py311.nbi").write_text("x")
    assert drop_stale_cache(str(tmp_path), "abc", {"_encode", "_lasso"}) == 0
    assert (tmp_path / "_encode.encode_bcd-67.py311.nbi").exists()
    # another digest: removed again
    assert drop_stale_cache(str(tmp_path), "def", {"_encode", "_lasso"}) == 1


def test_missing_cache_directory_is_left_alone(tmp_path):
    assert drop_stale_cache(str(tmp_path / "absent"), "abc", {"_encode"}) == 0
    assert not (tmp_path / "absent").exists()


def test_package_cache_is_stamped_with_its_sources():
    from sklearn_structlearn import _solvers

    cache_dir = _solvers.encode_lasso._cache._cache_path
    stamp = os.path.join(cache_dir, STAMP_NAME)
    assert os.path.exists(stamp)
    # importing again with unchanged sources removes nothing
    assert _solvers.drop_stale_kernels(_solvers.encode_lasso,
                                       os.path.dirname(_solvers.__file__)) == 0
