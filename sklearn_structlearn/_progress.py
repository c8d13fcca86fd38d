"""Progress of long fits: log lines on stdout and, when tqdm is installed, a bar on stderr.

The estimators print one line per outer iteration / layer when ``verbose >= 1`` (those
lines are the record: objective, sparsity, time). ``tqdm`` is optional (the ``progress``
extra): when it is importable and ``verbose >= 1`` a bar with the elapsed time and an
estimate of the time left is drawn on stderr as well, and the log lines are written
through ``tqdm.write`` so that they do not tear the bar. A bar redraws itself with carriage
returns, so it is drawn only where someone watches it live: on a terminal, or in a
Jupyter kernel (tqdm's widget); output sent to a file or a pipe gets the lines alone. Set
the environment variable ``TQDM_DISABLE=1`` to drop the bars on a terminal too.
"""

import os
import sys


def _bars_disabled():
    # read at every fit (tqdm itself reads its TQDM_* variables once, at import)
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes", "on")


def _tqdm():
    """The tqdm class (the notebook widget under Jupyter), or None when not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _watched_live(stream):
    """Whether ``stream`` is shown as it is written: a terminal, or a Jupyter kernel."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def write_line(line):
    """Print ``line`` on stdout, above any open tqdm bar."""
    tqdm = _tqdm() if "tqdm" in sys.modules else None
    if tqdm is not None and getattr(tqdm, "_instances", None):
        tqdm.write(line, file=sys.stdout)
    else:
        print(line)
    sys.stdout.flush()


class Progress:
    """A progress bar over ``total`` steps, or nothing (``verbose == 0``, no tqdm, or stderr
    not watched live: see the module's docstring).

    Parameters
    ----------
    total : int or None
        Expected number of steps (``None``: unknown, the bar only counts).
    desc : str
        Label of the bar.
    verbose : int
        The estimator's ``verbose``; no bar when 0.
    leave : bool, default=True
        Keep the finished bar on screen (False for bars nested in another bar).
    unit : str, default="it"
        Name of a step.

    Examples
    --------
    >>> from sklearn_structlearn._progress import Progress
    >>> with Progress(3, desc="demo", verbose=0) as bar:  # verbose=0: no bar at all
    ...     for step in range(3):
    ...         bar.update(objective=1.0 / (step + 1))
    >>> bar.enabled
    False
    """

    def __init__(self, total, *, desc, verbose, leave=True, unit="it"):
        shown = verbose and not _bars_disabled() and _watched_live(sys.stderr)
        tqdm = _tqdm() if shown else None
        self._bar = None
        if tqdm is not None:
            self._bar = tqdm(total=total, desc=desc, leave=leave, unit=unit, file=sys.stderr,
                             dynamic_ncols=True)

    @property
    def enabled(self):
        """Whether a bar is drawn."""
        return self._bar is not None

    def update(self, n=1, **postfix):
        """Advance by ``n`` steps; keyword arguments are shown after the bar."""
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                                       for k, v in postfix.items()}, refresh=False)
            self._bar.update(n)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
