"""Why the defaults miss on small tables: width and code penalty against unsupervised measures.

Issue 12 asks ``DeepStructureLearner()`` to read within 1 point of the standardised raw
features on breast_cancer and wine (``bench_features.py``, RESULTS.md section 12: 0.944
and 0.983 against 0.977 and 0.994). This script looks for an "auto" rule that would get
there: it refits the learner with other widths and code penalties on the *same protocol*
as ``bench_features.py`` (imported: the data sets, the folds, the read-out --
``StandardScaler`` + ``LogisticRegression`` with ``C`` by inner 3-fold CV on the training
part), over several ``random_state`` values (the folds stay fixed), and reports, beside
the accuracy, the unsupervised quantities an "auto" rule could target, measured on every
fold (no labels):

- ``units/row`` (train / held-out): mean number of active units per row on the training
  rows and on the fold's held-out rows (a dictionary that memorises its training rows
  codes them with fewer units than new rows);
- ``rows/unit``: active training rows per unit (``n_train * activity``), the rows each
  atom is estimated from;
- ``EV`` (train / held-out): fraction of the preprocessed input's variance the codes
  reconstruct through the learned dictionary (``_information.explained_variance``);
- ``decodable``: fraction of it a ridge read-out of the outputs recovers on held-out
  rows (``_information.decoding_information`` on the training rows, as in
  ``bench_features.py``).

And one more read-out (labels, for the diagnosis only): ``accuracy on A D``, the same
read-out trained on the layer's reconstruction ``codes @ components_`` instead of the
codes -- a *linear function of the codes* with the dictionary's weights, so it says
whether the class information is still in the codes of the held-out rows when the
read-out does not have to estimate one weight per unit from the training rows.

Settings (``SETTINGS``): the defaults; the "auto" width divided by 2 and by 4 (all else
"auto"); the default width with a denser code (relative code penalty 0.03); narrow and
dense layers (64 units at relative penalty 0.05, 32 units at 0.02); the defaults with the
objective's codes (``transform_algorithm="lasso"``, the default until 2026-12-02: the same
dictionary, the rows coded by the lasso instead of the feed-forward ``prox(x D^T)``). With ``--digits`` the
same is done on digits (one 70/30 split) for widths 512 (the default), 256 and 128, to
check that a rule helping the tables does not hurt the images.

Run::

    nice -n 10 python benchmarks/bench_table_widths.py --digits --json out.json   # ~4 min
    python benchmarks/bench_table_widths.py --seeds 0 --settings default width/4  # ~20 s

Markdown report on stdout, progress on stderr, every per-fold figure in ``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import dump_json_new, pinned_threads, refuse_existing  # noqa: E402
from bench_features import fit_readout_small, load_datasets  # noqa: E402


def _divided_width(divisor):
    def settings(X):
        from sklearn_structlearn.penalties import auto_n_components

        return {"n_components": max(auto_n_components(X.shape[1], X.shape[0]) // divisor, 1)}
    return settings


def _fixed(**kwargs):
    return lambda X: dict(kwargs)


# name -> (data sets it runs on, parameters of DeepStructureLearner given the training rows)
SETTINGS = {
    "default": (("breast_cancer", "wine", "digits"), _fixed()),
    "width/2": (("breast_cancer", "wine", "digits"), _divided_width(2)),
    "width/4": (("breast_cancer", "wine", "digits"), _divided_width(4)),
    "relative alpha 0.03": (
        ("breast_cancer", "wine"),
        _fixed(penalty_scale="relative", alpha=0.03, connectivity_alpha=0.04)),
    "64 units, relative alpha 0.05": (
        ("breast_cancer", "wine"),
        _fixed(n_components=64, penalty_scale="relative", alpha=0.05, connectivity_alpha=0.04)),
    "32 units, relative alpha 0.02": (
        ("breast_cancer", "wine"),
        _fixed(n_components=32, penalty_scale="relative", alpha=0.02, connectivity_alpha=0.04)),
    "lasso transform": (("breast_cancer", "wine", "digits"), _fixed(transform_algorithm="lasso")),
}


def _log(message):
    print(message, file=sys.stderr, flush=True)


def run_fold(info, tr, te, params, seed, threads):
    """Accuracy and the unsupervised measures of one fit on one fold."""
    from sklearn_structlearn import DeepStructureLearner
    from sklearn_structlearn._information import decoding_information, explained_variance

    X_tr, X_te = info["X"][tr], info["X"][te]
    if info["standardize"]:
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    kwargs = params(X_tr)
    c0 = time.process_time()
    learner = DeepStructureLearner(random_state=seed, n_jobs=threads, **kwargs).fit(X_tr)
    fit_cpu = time.process_time() - c0
    Z_tr, Z_te = learner.transform(X_tr), learner.transform(X_te)
    clf, C = fit_readout_small(Z_tr, info["y"][tr])
    layer = learner.layers_[0]
    P_tr, P_te = learner._preprocess(X_tr), learner._preprocess(X_te)
    codes_tr, codes_te = layer.encode(P_tr), layer.encode(P_te)
    K = layer.n_components_
    D = layer.components_
    recon, _ = fit_readout_small(codes_tr @ D, info["y"][tr])
    return dict(
        accuracy=float(clf.score(Z_te, info["y"][te])), C=C, units=int(K),
        accuracy_reconstruction=float(recon.score(codes_te @ D, info["y"][te])),
        alpha=float(layer.alpha_), fit_cpu=fit_cpu,
        units_per_row_train=float(np.mean(codes_tr != 0) * K),
        units_per_row_test=float(np.mean(codes_te != 0) * K),
        rows_per_unit=float(np.mean(codes_tr != 0) * len(tr)),
        ev_train=float(explained_variance(P_tr, codes_tr, layer.components_)),
        ev_test=float(explained_variance(P_te, codes_te, layer.components_)),
        decodable=float(decoding_information(P_tr, Z_tr)[0]))


def run_raw(info):
    accs = []
    for tr, te in info["folds"]:
        X_tr, X_te = info["X"][tr], info["X"][te]
        if info["standardize"]:
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        clf, _ = fit_readout_small(X_tr, info["y"][tr])
        accs.append(float(clf.score(X_te, info["y"][te])))
    return float(np.mean(accs))


MEASURES = ("accuracy_reconstruction", "units", "alpha", "units_per_row_train",
            "units_per_row_test", "rows_per_unit", "ev_train", "ev_test", "decodable",
            "fit_cpu")


def report(results, raw, meta):
    lines = [f"Date {meta['date']}; {meta['machine']}; threads {meta['threads']}; load "
             f"average at start {meta['load']}, at the end {meta['load_end']}; commit "
             f"{meta['commit']}.", ""]
    for name, rows in results.items():
        lines += [f"### {name} (raw features: {raw[name]:.4f})", "",
                  "| setting | accuracy per seed | mean | accuracy on A D | units | alpha | "
                  "units/row train / held-out | rows/unit | EV train / held-out | decodable |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for setting, per_seed in rows.items():
            accs = [np.mean([f["accuracy"] for f in folds]) for folds in per_seed.values()]
            folds = [f for fs in per_seed.values() for f in fs]
            m = {k: float(np.mean([f[k] for f in folds])) for k in MEASURES}
            lines.append(
                f"| {setting} | {', '.join(f'{a:.4f}' for a in accs)} | {np.mean(accs):.4f} | "
                f"{m['accuracy_reconstruction']:.4f} | {m['units']:.0f} | {m['alpha']:.3f} | "
                f"{m['units_per_row_train']:.1f} / "
                f"{m['units_per_row_test']:.1f} | {m['rows_per_unit']:.0f} | "
                f"{m['ev_train']:.3f} / {m['ev_test']:.3f} | {m['decodable']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--digits", action="store_true", help="also digits (seed 0 only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    commit = os.popen(f"git -C {os.path.dirname(os.path.abspath(__file__))} rev-parse "
                      "--short HEAD 2>/dev/null").read().strip() or "-"
    meta = dict(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=f"{os.cpu_count()} cores", threads=args.threads, commit=commit,
                load=", ".join(f"{v:.1f}" for v in os.getloadavg()))

    class _DataArgs:
        data = None

    names = ["breast_cancer", "wine"] + (["digits"] if args.digits else [])
    datasets = load_datasets(names, _DataArgs())
    results, raw = {}, {}
    with pinned_threads(args.threads):
        for name, info in datasets.items():
            raw[name] = run_raw(info)
            results[name] = {}
            seeds = [args.seeds[0]] if name == "digits" else args.seeds
            for setting in args.settings:
                where, params = SETTINGS[setting]
                if name not in where:
                    continue
                results[name][setting] = {}
                for seed in seeds:
                    folds = [run_fold(info, tr, te, params, seed, args.threads)
                             for tr, te in info["folds"]]
                    results[name][setting][seed] = folds
                    _log(f"[{name}] {setting} seed {seed}: accuracy "
                         f"{np.mean([f['accuracy'] for f in folds]):.4f}")
    meta["load_end"] = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(report(results, raw, meta))
    if args.json:
        dump_json_new(args.json, dict(meta=meta, raw=raw, results={
            n: {s: {str(k): v for k, v in r.items()} for s, r in rows.items()}
            for n, rows in results.items()}), default=float)


if __name__ == "__main__":
    main()
