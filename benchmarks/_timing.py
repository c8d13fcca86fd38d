"""Timing helpers shared by the benchmarks.

Everything here is deliberately small and dependency-free (NumPy, threadpoolctl and
optionally numba), so that the numbers it produces are easy to audit:

- :func:`measure` runs a callable a few times and keeps the *median* wall-clock and CPU
  time (the machine is shared and noisy; the median is robust to one slow repeat).
- :func:`pinned_threads` pins BLAS/OpenMP pools (threadpoolctl) and numba's thread
  count, so that every solver in one row of a table uses the same number of cores.
- :func:`format_table` prints a markdown table with, for every time column, its ratio
  to a baseline column.
- :func:`refuse_existing` and :func:`dump_json_new`: a result file is never overwritten
  (refused before the run starts, and opened in exclusive mode at the end).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

from threadpoolctl import threadpool_limits


@dataclass
class Timing:
    """Median timings of one configuration, in seconds."""

    wall: float
    cpu: float
    repeats: int
    walls: list = field(default_factory=list)
    cpus: list = field(default_factory=list)
    # Set when the figure was measured on a subsample of rows and scaled up linearly.
    extrapolated_from: int | None = None
    scale: float = 1.0

    def as_dict(self):
        return asdict(self)

    @property
    def cpu_per_wall(self):
        """Average number of busy cores (CPU time / wall time) of the median run."""
        return self.cpu / self.wall if self.wall > 0 else float("nan")


def measure(func, *, repeats=3, min_repeats=1, budget=None, warmup=0, scale=1.0,
            extrapolated_from=None):
    """Run ``func()`` several times and return its median wall and CPU time.

    Parameters
    ----------
    func : callable
        Called with no argument; its return value of the *last* run is returned too.
    repeats : int
        Maximum number of timed runs.
    min_repeats : int
        Always do at least this many timed runs, even past ``budget``.
    budget : float or None
        Stop repeating once the timed runs add up to more than this many seconds
        (slow solvers then get fewer repeats rather than blowing the time budget).
    warmup : int
        Untimed runs first (JIT compilation, page faults, thread-pool start-up).
    scale, extrapolated_from
        When ``func`` only solves a subsample, ``scale`` multiplies the timings
        (linear extrapolation in the number of rows) and ``extrapolated_from``
        records the subsample size so that tables can mark the figure.

    Returns
    -------
    timing : Timing
    result : object
        Return value of the last call.
    """
    result = None
    for _ in range(warmup):
        result = func()
    walls, cpus = [], []
    while len(walls) < repeats:
        c0, w0 = time.process_time(), time.perf_counter()
        result = func()
        w1, c1 = time.perf_counter(), time.process_time()
        walls.append(w1 - w0)
        cpus.append(c1 - c0)
        if len(walls) >= min_repeats and budget is not None and sum(walls) > budget:
            break
    # process_time only sees this process: solvers that farm work out to worker
    # processes (joblib/loky) report too little CPU. Wall time is the headline figure.
    timing = Timing(
        wall=statistics.median(walls) * scale,
        cpu=statistics.median(cpus) * scale,
        repeats=len(walls),
        walls=[w * scale for w in walls],
        cpus=[c * scale for c in cpus],
        extrapolated_from=extrapolated_from,
        scale=scale,
    )
    return timing, result


@contextlib.contextmanager
def pinned_threads(n_threads):
    """Pin BLAS/OpenMP thread pools and numba to ``n_threads`` inside the block.

    threadpoolctl covers every BLAS and OpenMP runtime already loaded in the process
    (OpenBLAS of NumPy/SciPy, the OpenMP runtimes of scikit-learn and SPAMS), so import
    the solvers *before* entering the context.
    """
    numba_prev = None
    try:
        import numba

        numba_prev = numba.get_num_threads()
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # numba is optional for the harness itself
        numba = None
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        if numba is not None and numba_prev is not None:
            numba.set_num_threads(numba_prev)


def peak_rss_mib():
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def refuse_existing(parser, path, option="--json"):
    """Stop with an argparse error when ``path`` exists: checked before the work, not after."""
    if path and os.path.exists(path):
        parser.error(f"{option} {path} exists; refusing to overwrite it")


def dump_json_new(path, data, **kwargs):
    """Write ``data`` as JSON to a *new* file (``FileExistsError`` if it appeared meanwhile)."""
    with open(path, "x") as f:
        json.dump(data, f, indent=1, **kwargs)


def fmt_seconds(seconds):
    """Short human-readable duration."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 100:
        return f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


def format_table(rows, columns, *, baseline=None, ratio_columns=None, ratios_only=False,
                 title=None):
    """Format ``rows`` (list of dicts) as a markdown table.

    Parameters
    ----------
    rows : list of dict
        One dict per row; missing keys print as ``-``.
    columns : list of (key, header, formatter)
        ``formatter`` maps the value to a string (``None``: ``str``).
    baseline : str or None
        Key of a numeric column. When given, every key in ``ratio_columns`` gets an
        extra column ``"<header> / <baseline header>"`` (value divided by the baseline
        value of the same row): > 1 means slower than the baseline.
    ratio_columns : list of str
        Keys of the columns to divide by ``baseline``.
    ratios_only : bool
        Print only the ratio for the columns in ``ratio_columns`` (compact tables).
    """
    header_of = {key: header for key, header, _ in columns}
    out_cols = []
    for key, header, formatter in columns:
        has_ratio = baseline is not None and ratio_columns and key in ratio_columns
        if not (has_ratio and ratios_only):
            out_cols.append((header, _cell(key, formatter)))
        if has_ratio:
            out_cols.append(
                (f"{header} / {header_of.get(baseline, baseline)}", _ratio_cell(key, baseline))
            )
    lines = []
    if title:
        lines.append(f"### {title}")
        lines.append("")
    lines.append("| " + " | ".join(h for h, _ in out_cols) + " |")
    lines.append("|" + "|".join("---" for _ in out_cols) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell(row) for _, cell in out_cols) + " |")
    return "\n".join(lines)


def _cell(key, formatter):
    def cell(row):
        value = row.get(key)
        if value is None:
            return "-"
        return formatter(value) if formatter is not None else str(value)

    return cell


def _ratio_cell(key, baseline):
    def cell(row):
        num, den = row.get(key), row.get(baseline)
        if num is None or den is None or den == 0:
            return "-"
        return f"{num / den:.2f}x"

    return cell
