"""The depth rule against a supervised read-out (issue 12).

Does the depth ``DeepStructureLearner`` chooses agree with the depth a read-out of its
outputs prefers, and do the kept layers keep most of their input's information? For
every data set, with every choice left at its default but ``max_depth=3`` and
``random_state=0``:

1. **Forced stack.** ``DeepStructureLearner(max_depth=3, depth_tol=-inf)`` stacks three
   layers whatever the rule says. Layer ``l`` is fitted from the same seed and on the
   same inputs as in every learner below (the seeds are drawn before stacking), so depth
   ``d`` of this stack *is* the depth-``d`` learner; the benchmark checks it (the kept
   layers of every rule learner are compared with the forced ones, ``same layers``).
2. **Read-out per depth.** The outputs of the top layer at depth ``d = 1, 2, 3`` (what
   ``transform`` would hand on at that depth; ``d = 0``: the raw input features, for
   reference) are read by the read-out of ``bench_features.py``, imported from it:
   ``StandardScaler`` + ``LogisticRegression``, ``C`` chosen on the training data only
   (``fit_readout_small``: 3-fold inner CV over ``C in {1e-3, ..., 10}``;
   Fashion-MNIST: ``fit_readout_holdout``, a hold-out inside the training images over
   ``C in {1e-2, 1e-1, 1}``, then refitted). The read-out *prefers* the learned depth of
   best test accuracy; a depth is *within noise* of it when its accuracy is less than
   two standard errors of the paired difference below (the same test rows:
   ``se = std(correct_best - correct_d) / sqrt(n_test)``).
3. **What each layer keeps** (measured on the structure-learning rows): the learner's
   own ``decodable_variances_`` (fraction of the preprocessed input's variance a ridge
   read-out of the depth-``d`` outputs recovers on held-out rows), the same fraction
   of the layer's *own* input (layer ``d - 1``'s outputs, or the preprocessed input;
   ``_information.decoding_information``), ``entropies_`` (the summed binned marginal
   entropies, bits, low for sparse outputs by construction) and their ratio to the
   layer below, and ``redundancies_``.
4. **The rules.** ``DeepStructureLearner(max_depth=3, random_state=0,
   depth_criterion=c)`` for ``c`` in ``information`` (the default), ``redundancy`` and
   ``entropy`` (each with the default ``depth_tol=0.01``), each fitted as a learner of
   its own (``--criteria``, all three by default): the depth it keeps,
   ``stop_reason_``, the score it compared with ``depth_tol`` for every layer it
   tried, and its ``summary()`` (the text the CLI prints after the data line; the
   default rule's is quoted in the report). Every rule's decision is also *replayed*
   from the forced stack's scores (``decodable_variances_``, ``redundancies_``,
   ``entropy_gains_``: the same layers, so the same scores); a rule left out of
   ``--criteria`` (to save its fit on a slow machine) is reported from the replay
   only, and says so.

Data:

- **digits**: ``load_digits`` / 16, one stratified 70/30 split (seed 0, the split of
  ``bench_features.py``); the structure is learned on the 70% part.
- **Fashion-MNIST**: the structure is learned on ``STRUCT`` training images (random,
  seed 0, no labels), the read-out trained on ``TRAIN`` training images and tested on
  ``TEST`` official test images (``bench_features.load_datasets``; default 1500 /
  5000 / 2000, smaller than ``bench_features``' protocol to fit the time here).
- **planted**: a planted two-level hierarchy (the data of
  ``tests/test_deep.py::_hierarchical_data``, harder): 24 sparse parts
  (``make_planted_structure``: 64 inputs, fan-in 6), 8 objects of 3 parts each; every
  sample shows 2 objects (all 3 parts of each, magnitudes uniform in [0.5, 1.5]) plus
  ``--clutter`` (2) single parts of other objects, and Gaussian noise ``--noise``
  (0.1). The read-out target is which pair of objects is present (28 classes): it
  depends on the objects, not on single parts. 1000 samples, stratified 70/30 split
  (seed 0); the structure is learned on the 70% part.

Threads (BLAS, OpenMP, Numba) are pinned to ``--threads`` (1) for everything; wall and
CPU time (``time.process_time``) of every fit are reported.

Run::

    python benchmarks/bench_depth.py --quick                     # a minute or two: subsamples
    python benchmarks/bench_depth.py --json bench_depth.json     # the full run
    python benchmarks/bench_depth.py --datasets digits planted

Markdown report on stdout, progress on stderr, every figure in ``--json`` (never
overwritten). Fashion-MNIST needs the Debian package ``dataset-fashion-mnist`` (or
``--data PATH``); it is skipped with a note when the files are absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import (  # noqa: E402
    dump_json_new,
    fmt_seconds,
    format_table,
    pinned_threads,
    refuse_existing,
)
from bench_features import (  # noqa: E402
    _log,
    _timed,
    fit_readout_holdout,
    fit_readout_small,
    load_datasets,
)

MAX_DEPTH = 3
CRITERIA = ("information", "redundancy", "entropy")
DATASETS = ("digits", "fashion", "planted")


# ---------------------------------------------------------------------------- data
def planted_hierarchy(n_samples=1000, *, noise=0.1, n_clutter=2, seed=0):
    """Parts co-active in objects, with clutter; returns ``X`` and the object-pair label.

    24 parts (sparse atoms of 64 inputs, fan-in 6) grouped into 8 objects of 3 parts;
    each sample shows 2 objects (all their parts) and ``n_clutter`` single parts of
    other objects. ``y`` indexes the (unordered) pair of objects shown.
    """
    from sklearn_structlearn.datasets import make_planted_structure

    rng = np.random.RandomState(seed)
    base = make_planted_structure(n_samples=10, n_features=64, n_components=24,
                                  group_size=1, fan_in=6, active_groups=1,
                                  random_state=seed)
    objects = rng.permutation(24).reshape(8, 3)
    pairs = {pair: k for k, pair in enumerate(
        (a, b) for a in range(8) for b in range(a + 1, 8))}
    active = np.zeros((n_samples, 24), dtype=bool)
    y = np.empty(n_samples, dtype=np.int64)
    for i in range(n_samples):
        shown = np.sort(rng.choice(8, 2, replace=False))
        y[i] = pairs[tuple(shown)]
        active[i, objects[shown].ravel()] = True
        others = np.flatnonzero(~active[i])
        active[i, rng.choice(others, n_clutter, replace=False)] = True
    codes = active * rng.uniform(0.5, 1.5, size=active.shape)
    X = codes @ base.dictionary + noise * rng.standard_normal((n_samples, 64))
    return X, y


def load(names, args):
    """Each data set as a dict: fit / train / test rows, labels, read-out kind, protocol."""
    out = {}
    feature_sets = [n for n in names if n in ("digits", "fashion")]
    for name, info in load_datasets(feature_sets, args).items():
        if name == "digits":
            tr, te = info["folds"][0]
            X, y = info["X"], info["y"]
            out[name] = dict(X_fit=X[tr], X_train=X[tr], y_train=y[tr], X_test=X[te],
                             y_test=y[te], readout="small", protocol=info["protocol"])
        else:
            out[name] = dict(X_fit=info["X_struct"], X_train=info["X_train"],
                             y_train=info["y_train"], X_test=info["X_test"],
                             y_test=info["y_test"], readout="holdout",
                             protocol=info["protocol"])
    if "planted" in names:
        X, y = planted_hierarchy(args.planted_samples, noise=args.noise,
                                 n_clutter=args.clutter, seed=0)
        tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y,
                                  random_state=0)
        out["planted"] = dict(
            X_fit=X[tr], X_train=X[tr], y_train=y[tr], X_test=X[te], y_test=y[te],
            readout="small",
            protocol=(f"planted hierarchy, {len(y)} samples (8 objects of 3 parts, 2 "
                      f"objects + {args.clutter} clutter parts per sample, noise "
                      f"{args.noise:g}); target: the pair of objects (28 classes); "
                      "stratified 70/30 split"))
    # keep the order asked for
    return {name: out[name] for name in names if name in out}


# ---------------------------------------------------------------------------- measures
def _learner(args, **params):
    from sklearn_structlearn import DeepStructureLearner

    return DeepStructureLearner(max_depth=MAX_DEPTH, random_state=0, n_jobs=args.threads,
                                **params)


def _outputs(learner, X, depth):
    """What ``transform`` hands on at ``depth`` (``depth = 0``: the raw input)."""
    X = np.asarray(X, dtype=np.float64)
    return X if depth == 0 else learner._forward(X, depth)


def _readout(data, Z_train, Z_test):
    if data["readout"] == "small":
        clf, C = fit_readout_small(Z_train, data["y_train"])
    else:
        n_train = len(Z_train)
        clf, C, _ = fit_readout_holdout(Z_train, data["y_train"],
                                        min(20000, n_train // 3), min(10000, n_train // 6))
    correct = clf.predict(Z_test) == data["y_test"]
    return float(correct.mean()), C, correct


def measure_depths(data, forced):
    """Read-out accuracy and what is kept, at every depth of the forced stack."""
    from sklearn_structlearn._information import decoding_information

    rows = []
    below = forced._preprocess(np.asarray(data["X_fit"], dtype=np.float64))
    for depth in range(MAX_DEPTH + 1):
        t0 = time.perf_counter()
        Z_train = _outputs(forced, data["X_train"], depth)
        Z_test = _outputs(forced, data["X_test"], depth)
        acc, C, correct = _readout(data, Z_train, Z_test)
        row = dict(depth=depth, width=int(Z_train.shape[1]), accuracy=acc, C=C,
                   correct=correct)
        if depth >= 1:
            own = _outputs(forced, data["X_fit"], depth)
            r2_own, bits_own = decoding_information(below, own, random_state=0)
            below = own
            entropies = forced.entropies_
            row.update(
                decodable=float(forced.decodable_variances_[depth - 1]),
                decodable_own=float(r2_own), bits_own=float(bits_own),
                entropy=float(entropies[depth]),
                entropy_ratio=float(entropies[depth] / entropies[depth - 1]),
                redundancy=float(forced.redundancies_[depth]))
        else:
            row.update(entropy=float(forced.entropies_[0]),
                       redundancy=float(forced.redundancies_[0]))
        rows.append(row)
        _log(f"    depth {depth}: width {row['width']}, read-out accuracy {acc:.4f} "
             f"(C={C:g}) [{time.perf_counter() - t0:.0f}s]")
    # the read-out's preference among the learned depths, and what is within noise of it
    learned = rows[1:]
    best = max(learned, key=lambda r: (r["accuracy"], -r["depth"]))
    for row in rows:
        diff = best["correct"].astype(float) - row["correct"].astype(float)
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        row["gap"] = float(diff.mean())
        row["gap_se"] = se
        row["within_noise"] = bool(row["gap"] <= 2 * se)
    return rows, best["depth"]


def rule_scores(learner, criterion):
    """The score ``criterion`` compares with ``depth_tol`` for every tried layer >= 2."""
    r2 = learner.decodable_variances_
    R = learner.redundancies_
    tried = len(r2)
    return {"information": [float(r2[d] - r2[d - 1]) for d in range(1, tried)],
            "redundancy": [float(R[d] - R[d + 1]) for d in range(1, tried)],
            "entropy": [float(g) for g in learner.entropy_gains_[1:]]}[criterion]


def replay_rule(forced, criterion, depth_tol):
    """The depth ``criterion`` keeps, read from the scores of the forced stack's layers
    (which are the layers every rule learner fits: checked by ``same layers``)."""
    scores = rule_scores(forced, criterion)
    depth = 1
    for score in scores:
        if score < depth_tol:
            break
        depth += 1
    return depth, scores


def fit_rule(data, criterion, forced, args):
    """A learner with the depth rule ``criterion``: its decision and its summary."""
    learner = _learner(args, depth_criterion=criterion)
    _, wall, cpu = _timed(lambda: learner.fit(data["X_fit"]))
    same = all(np.array_equal(a.components_, b.components_)
               and np.array_equal(a.connectivity_, b.connectivity_)
               for a, b in zip(learner.layers_, forced.layers_))
    return dict(criterion=criterion, fitted=True, depth=int(learner.n_layers_),
                stop_reason=learner.stop_reason_, depth_tol=float(learner.depth_tol),
                scores=rule_scores(learner, criterion), same_layers=bool(same),
                replayed_depth=replay_rule(forced, criterion, learner.depth_tol)[0],
                decodable_variances=[float(v) for v in learner.decodable_variances_],
                entropies=[float(h) for h in learner.entropies_],
                candidate_entropies=[float(h) for h in learner.candidate_entropies_],
                redundancies=[float(r) for r in learner.redundancies_],
                entropy_gains=[float(g) for g in learner.entropy_gains_],
                summary=learner.summary(), fit_wall=wall, fit_cpu=cpu)


def run(name, data, args):
    _log(f"[{name}] forced stack: max_depth={MAX_DEPTH}, depth_tol=-inf, "
         f"{len(data['X_fit'])} rows x {data['X_fit'].shape[1]} features")
    forced = _learner(args, depth_tol=-np.inf)
    _, wall, cpu = _timed(lambda: forced.fit(data["X_fit"]))
    _log(f"  fitted in {wall:.0f}s (CPU {cpu:.0f}s); widths "
         f"{[int(layer.n_components_) for layer in forced.layers_]}")
    depths, preferred = measure_depths(data, forced)
    rules = []
    for criterion in CRITERIA:
        if criterion in args.criteria:
            _log(f"[{name}] depth_criterion={criterion!r}")
            rule = fit_rule(data, criterion, forced, args)
        else:
            depth_tol = _learner(args).depth_tol
            depth, scores = replay_rule(forced, criterion, depth_tol)
            rule = dict(criterion=criterion, fitted=False, depth=depth, replayed_depth=depth,
                        depth_tol=float(depth_tol), scores=scores[:depth], same_layers=None,
                        stop_reason="-", fit_wall=None, fit_cpu=None)
        chosen = depths[rule["depth"]]
        rule.update(accuracy=chosen["accuracy"], agrees=chosen["within_noise"],
                    gap=chosen["gap"], gap_se=chosen["gap_se"])
        _log(f"  {criterion}: depth {rule['depth']} ({rule['stop_reason']}), read-out "
             f"there {chosen['accuracy']:.4f}, same layers as forced: {rule['same_layers']}")
        rules.append(rule)
    for row in depths:
        row["correct"] = None  # not for the JSON
    forced_info = dict(fit_wall=wall, fit_cpu=cpu,
                       widths=[int(layer.n_components_) for layer in forced.layers_],
                       alphas=[float(layer.alpha_) for layer in forced.layers_],
                       summary=forced.summary())
    return dict(protocol=data["protocol"], forced=forced_info, depths=depths,
                preferred=preferred, rules=rules)


# ---------------------------------------------------------------------------- report
def _pct(value):
    return "-" if value is None else f"{value:.1%}"


def _acc_cell(row):
    if row["depth"] == 0:
        return f"{row['accuracy']:.4f}"
    if row["gap"] <= 0:
        return f"{row['accuracy']:.4f} (best)"
    return (f"{row['accuracy']:.4f} (-{row['gap']:.4f} ± {row['gap_se']:.4f}"
            + (", within noise)" if row["within_noise"] else ")"))


def report(results, args, meta):
    lines = [
        "# Depth rule against a read-out: DeepStructureLearner(max_depth=3)",
        "",
        f"Date {meta['date']}; machine: {meta['machine']}; threads pinned to "
        f"{args.threads} (BLAS, OpenMP, Numba); load average (1, 5, 15 min) at start "
        f"{meta['load']}, at the end {meta.get('load_end', '-')}; total wall time "
        f"{meta.get('total_wall', '-')}, CPU {meta.get('total_cpu', '-')}."
        + (" **Quick mode (subsamples).**" if args.quick else ""),
        "",
        "Read-out at every depth: StandardScaler + LogisticRegression, C chosen on the "
        "training data only (bench_features' `fit_readout_small` / `fit_readout_holdout`). "
        "Depth 0 = the raw input features (reference). ± = standard error of the paired "
        "difference to the best learned depth on the same test rows; *within noise* = "
        "less than 2 of them below. `decodable` = the learner's `decodable_variances_` "
        "(the preprocessed input's variance a ridge read-out of the outputs recovers on "
        "held-out rows); `of own input` = the same for the layer's own input; `entropy` = "
        "`entropies_` (summed binned marginal entropies, bits).",
        "",
        "## Summary",
        "",
    ]
    summary = []
    for name, r in results.items():
        acc = {row["depth"]: row for row in r["depths"]}
        noise = [row["depth"] for row in r["depths"][1:] if row["within_noise"]]
        cells = dict(data=name, readout=f"{r['preferred']} ({acc[r['preferred']]['accuracy']:.4f})",
                     noise=", ".join(map(str, noise)),
                     raw=f"{acc[0]['accuracy']:.4f}")
        for rule in r["rules"]:
            cells[rule["criterion"]] = (f"{rule['depth']} ({rule['accuracy']:.4f}, "
                                        f"{'agrees' if rule['agrees'] else 'disagrees'})")
        summary.append(cells)
    lines.append(format_table(summary, [
        ("data", "data", None), ("raw", "raw input", None),
        ("readout", "read-out prefers depth", None), ("noise", "depths within noise", None)]
        + [(c, f"`{c}` rule" + (" (default)" if c == "information" else ""), None)
           for c in CRITERIA]))
    lines.append("")
    for name, r in results.items():
        f = r["forced"]
        lines += [f"## {name}: {r.get('protocol', name)}", "",
                  f"Forced stack: widths {f['widths']}, alpha "
                  f"{[float(f'{a:.3g}') for a in f['alphas']]}; fit "
                  f"{fmt_seconds(f['fit_wall'])} wall, {fmt_seconds(f['fit_cpu'])} CPU.", ""]
        lines.append(format_table(
            [dict(row, acc=_acc_cell(row)) for row in r["depths"]], [
                ("depth", "depth", None), ("width", "width", None),
                ("acc", "read-out accuracy", None), ("C", "C", lambda c: f"{c:g}"),
                ("decodable", "decodable", _pct), ("decodable_own", "of own input", _pct),
                ("entropy", "entropy (bits)", lambda h: f"{h:.0f}"),
                ("entropy_ratio", "/ layer below", _pct),
                ("redundancy", "redundancy", lambda v: f"{v:.3f}")]))
        lines.append("")
        lines.append(format_table(
            [dict(rule, scores=", ".join(f"{s:+.3f}" for s in rule["scores"]) or "-",
                  acc=f"{rule['accuracy']:.4f}",
                  how="a fitted learner" if rule.get("fitted", True) else "replayed",
                  verdict="agrees" if rule["agrees"] else
                  f"disagrees (-{rule['gap']:.4f} ± {rule['gap_se']:.4f})")
             for rule in r["rules"]], [
                ("criterion", "depth_criterion", None), ("depth", "depth kept", None),
                ("stop_reason", "stop_reason_", None),
                ("scores", "score of layers 2.. (vs depth_tol 0.01)", None),
                ("acc", "read-out at that depth", None), ("verdict", "vs read-out", None),
                ("how", "decided by", None), ("replayed_depth", "replayed", None),
                ("same_layers", "same layers",
                 lambda v: "-" if v is None else ("yes" if v else "**no**")),
                ("fit_wall", "fit wall", fmt_seconds), ("fit_cpu", "fit CPU", fmt_seconds)]))
        lines.append("")
        default = next((rule for rule in r["rules"]
                        if rule["criterion"] == "information" and rule.get("fitted", True)),
                       None)
        if default is not None:
            lines += ["Summary of the default learner (`summary()`, what the CLI prints):", "",
                      "```", *default["summary"].splitlines(), "```", ""]
        else:
            lines += ["Summary of the forced stack (`summary()`; the default learner was not "
                      "fitted, its decision is replayed above):", "",
                      "```", *f["summary"].splitlines(), "```", ""]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="subsamples: digits 600 rows, Fashion-MNIST 500 / 1500 / 1000, "
                        "planted 700 samples")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--criteria", nargs="*", default=list(CRITERIA), choices=CRITERIA,
                   help="depth rules fitted as learners of their own (the others are "
                        "replayed from the forced stack's scores; none: all replayed)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default=None, help="Fashion-MNIST directory")
    p.add_argument("--fashion-sizes", type=int, nargs=3, default=None,
                   metavar=("STRUCT", "TRAIN", "TEST"),
                   help="images to learn the structure on / train the read-out on / test "
                        "on (default 1500 5000 2000; --quick 500 1500 1000)")
    p.add_argument("--planted-samples", type=int, default=None,
                   help="samples of the planted hierarchy (default 1000; --quick 700)")
    p.add_argument("--noise", type=float, default=0.1, help="planted hierarchy noise")
    p.add_argument("--clutter", type=int, default=2,
                   help="single clutter parts per planted sample")
    p.add_argument("--json", default=None, help="write every figure to this file")
    p.add_argument("--report-from", nargs="+", default=None, metavar="JSON",
                   help="print the report of earlier runs' --json files (data sets merged, "
                        "in order) instead of running")
    args = p.parse_args(argv)
    if args.fashion_sizes is None:
        args.fashion_sizes = (500, 1500, 1000) if args.quick else (1500, 5000, 2000)
    if args.planted_samples is None:
        args.planted_samples = 700 if args.quick else 1000
    refuse_existing(p, args.json)
    return args


def report_from(paths):
    """The report of earlier runs (their ``--json`` files), one section per data set."""
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    results = {name: r for run in runs for name, r in run["results"].items()}
    args = argparse.Namespace(**runs[0]["args"])
    meta = dict(runs[0]["meta"])
    if len(runs) > 1:
        meta["date"] = "; ".join(run["meta"]["date"] for run in runs)
        for key in ("load", "load_end", "total_wall", "total_cpu"):
            meta[key] = "; ".join(str(run["meta"].get(key, "-")) for run in runs)
    return report(results, args, meta)


def main(argv=None):
    args = parse_args(argv)
    if args.report_from:
        print(report_from(args.report_from))
        return
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    meta = dict(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=f"{platform.machine()}, {os.cpu_count()} cores, "
                        f"Python {platform.python_version()}",
                load=", ".join(f"{v:.1f}" for v in os.getloadavg()))
    start, cpu_start = time.perf_counter(), time.process_time()
    datasets = load(args.datasets, args)
    if args.quick and "digits" in datasets:
        d = datasets["digits"]
        d["X_fit"] = d["X_train"] = d["X_train"][:600]
        d["y_train"] = d["y_train"][:600]
    results = {}
    with pinned_threads(args.threads):
        for name, data in datasets.items():
            results[name] = run(name, data, args)
    meta["load_end"] = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    meta["total_wall"] = fmt_seconds(time.perf_counter() - start)
    meta["total_cpu"] = fmt_seconds(time.process_time() - cpu_start)
    if args.json:  # the figures first: a report that fails must not lose the run
        dump_json_new(args.json, dict(meta=meta, args=vars(args), results=results),
                      default=float)
    print(report(results, args, meta))


if __name__ == "__main__":
    main()
