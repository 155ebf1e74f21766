"""The evidence head's weight and the decision cut on small validation carves, rule by rule.

An analysis for issue 5, not a benchmark of the library's behaviour. ``fit`` gives the fitted
evidence head one weight, the value of a grid (``FITTED_EVIDENCE_SCALES``, 0 to 24) with the
best nDCG@5 on the fit's own validation carve. On small training sets that carve holds a few
hundred documents or fewer, and the chosen weight jumps between neighbours of a flat optimum
(Reuters at 25%, seed 0: 6 instead of 12, about 1 P@1 lost on test). This script fits the
default ``PlantClassifier`` once per seed, keeps the attention path's logits and the head's
margins apart, and records for every weight of the grid

- the carve's nDCG@5 and P@1 (what ``fit`` can see), and
- the same metrics on held-out documents: the comparators' validation data (the dev split, or a
  10% carve of the training split for Reuters; :meth:`_common.Split.comparator_split`), which
  the fit never sees. The test split is never read.

It then compares rules that pick a weight from the carve's curve (see ``RULES``) by the held-out
metrics they lead to.

The second question is the decision cut of ``threshold="auto"``: per-label offsets (training
log-odds plus the head's weight times its SVM's cross-validated margin threshold) and one global
cut on top, tuned for micro-F1 on the carve. On the smallest subsets the carve holds 3-13
documents. For the fitted model the script records held-out micro-F1, macro-F1 and own-subset
rare macro-F1 (labels with 1-10 documents in the training subset) for the carve's cut, for no
cut (0: the offsets alone), for the cut that gives the carve's documents as many labels on
average as the training documents have (reads the carve's scores, not its labels) and for a
grid of cuts, with the held-out optimum as an oracle, and for mixes of the two carve cuts
(``MIX``). (``fit`` itself takes the mix ``n / 200`` of the way from the cardinality cut to the
micro-F1 cut, ``n`` the carve's positives; b44cf6d to 2026-11-27 it switched from one to the
other at 100. The script's ``carve_cut`` is always the micro-F1 cut, so every rule is compared
whatever the library does.)

    python benchmarks/head_scale_analysis.py --dataset reuters --fraction 0.25 --seeds 0 1 2 \
        --out benchmarks/results/head-scale_reuters_025_DATE.json
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from head_pairs_analysis import fit_and_validation  # noqa: E402
from head_weight_analysis import attention_and_head  # noqa: E402


def ranking_metrics(Y, scores):
    """nDCG@5 and P@1, P@3, P@5 of one score matrix."""
    from plantlearn.metrics import ndcg_at_k, precision_at_k

    return {"ndcg@5": float(ndcg_at_k(Y, scores, k=5)),
            **{f"p@{k}": float(precision_at_k(Y, scores, k=k)) for k in (1, 3, 5)}}


def curve(Y, attention, head, grid):
    """:func:`ranking_metrics` of ``attention + w * head`` for every weight ``w`` of ``grid``,
    as one list per metric."""
    points = [ranking_metrics(Y, attention + w * head) for w in grid]
    return {key: [p[key] for p in points] for key in points[0]}


def argmax_rule(scores):
    """``fit``'s rule: the best score (ties: the smaller weight)."""
    return int(np.argmax(scores))


def smoothed_rule(scores):
    """The best mean of each grid point and its two neighbours (one at the ends)."""
    s = np.asarray(scores, dtype=float)
    padded = np.concatenate([[s[0]], s, [s[-1]]])
    return int(np.argmax((padded[:-2] + padded[1:-1] + padded[2:]) / 3))


RULES = {"argmax": argmax_rule, "smoothed3": smoothed_rule}

#: Weights beyond the library's grid, to see where the held-out curve turns; 1e4 is the head
#: alone with the attention as a tie-breaker.
EXTRA_SCALES = (32.0, 48.0, 64.0, 128.0, 1e4)


#: Global cuts (on logits minus the per-label offsets) scored on the held-out documents.
CUTS = tuple(np.round(np.arange(-4.0, 4.01, 0.5), 2))

#: Mixing weights ``lam`` of the two carve cuts scored on the held-out documents:
#: ``cardinality_cut + lam * (micro_cut - cardinality_cut)`` (0: the cardinality cut, 1: the
#: micro-F1 cut), so that a rule that moves from one to the other with the carve's positive
#: count can be scored offline from the JSON.
MIX = tuple(np.round(np.arange(0.0, 1.01, 0.1), 2))

#: Rules for the mix weight ``lam`` from the carve's positive count ``n``, scored offline by
#: ``--mix-table`` (``lam`` rounded to the ``MIX`` grid).
MIX_RULES = {
    "micro-F1 cut": lambda n: 1.0,
    "cardinality cut": lambda n: 0.0,
    "switch at 100 (b44cf6d)": lambda n: 0.0 if n < 100 else 1.0,
    "mix n/200 (c006458)": lambda n: min(1.0, n / 200),
    "mix (n-50)/100": lambda n: min(1.0, max(0.0, (n - 50) / 100)),
    "mix n/(n+100)": lambda n: n / (n + 100),
}


def mix_table(paths):
    """Markdown rows: held-out micro-F1 / macro-F1 / rare macro-F1 (mean +- sd over seeds)
    of each rule of ``MIX_RULES``, one row per JSON file written by this script."""
    lines = ["| set, training docs, model (carve docs; positives per seed) | "
             + " | ".join(MIX_RULES) + " | seeds |",
             "|---" * (len(MIX_RULES) + 2) + "|"]
    for path in paths:
        d = json.loads(Path(path).read_text())
        runs = d["runs"]
        positives = [r["decision"]["n_carve_positives"] for r in runs]
        cells = []
        for rule in MIX_RULES.values():
            rows = []
            for r in runs:
                lam = round(rule(r["decision"]["n_carve_positives"]) * 10) / 10
                m = min(r["decision"]["mix"], key=lambda x: abs(x["lam"] - lam))
                rows.append([m["micro_f1"], m["macro_f1"], m["rare_f1"]])
            v = 100 * np.asarray(rows)
            sd = v.std(axis=0, ddof=1) if len(v) > 1 else np.zeros(3)
            cells.append(" / ".join(f"{a:.1f} ± {b:.1f}" for a, b in zip(v.mean(axis=0), sd)))
        lines.append(f"| {d['dataset']} {runs[0]['n_train_docs']}, {d['model']} "
                     f"({runs[0]['n_carve_docs']}; {' / '.join(map(str, positives))}) | "
                     + " | ".join(cells) + f" | {len(runs)} |")
    return "\n".join(lines)


def decision_cuts(clf, Y_sub, carve_parts, Y_carve, held_parts, Y_held):
    """Held-out F1s of ``threshold="auto"`` with the carve's cut, no cut and a grid of cuts."""
    from plantlearn._thresholds import best_global_threshold, cardinality_threshold
    from plantlearn.metrics import micro_f1

    w = float(clf.evidence_scale_)
    offsets = clf._threshold_offsets
    carve_logits = carve_parts[0] + w * carve_parts[1] - offsets
    held_logits = held_parts[0] + w * held_parts[1] - offsets
    counts = np.asarray(Y_sub.sum(axis=0)).ravel()
    in_held = np.asarray(Y_held.sum(axis=0)).ravel() > 0
    trained = np.flatnonzero((counts >= 1) & in_held)

    def scores(cut):
        pred = sp.csr_matrix(held_logits >= cut)
        rare_f1, n_rare = C._rare_f1(Y_held, pred, counts, in_held)  # 1-10 docs in the subset
        return {"cut": float(cut), "micro_f1": float(micro_f1(Y_held, pred)),
                "macro_f1": C._f1_on(Y_held, pred, trained), "rare_f1": rare_f1,
                "n_rare_labels": n_rare}

    carve_cut = best_global_threshold(Y_carve, carve_logits) if Y_carve.nnz else 0.0
    # The library's rule for small carves (its bound aside): the carve's documents get, on
    # average, as many labels as the training documents have.
    cardinality_cut = cardinality_threshold(carve_logits, clf._training_cardinality)
    grid = [scores(c) for c in CUTS]
    mix = [{"lam": float(lam), **scores(cardinality_cut + lam * (carve_cut - cardinality_cut))}
           for lam in MIX]
    return {"n_rare_labels": grid[0]["n_rare_labels"], "n_carve_positives": int(Y_carve.nnz),
            "carve_cut": scores(carve_cut), "mix": mix,
            "no_cut": scores(0.0),
            "cardinality_cut": scores(cardinality_cut),
            "grid": grid, "oracle_micro": max(grid, key=lambda r: r["micro_f1"])}


def analyse(split, fraction, seed, grid, plant=True):
    from sklearn.utils import check_random_state

    from plantlearn import PlantClassifier

    texts, Y, held_texts, Y_held, where = fit_and_validation(split, fraction, seed)
    clf = PlantClassifier(plant=plant, random_state=seed, device="cpu").fit(texts, Y)
    # The validation carve of this fit, exactly as fit() drew it.
    inner = int(check_random_state(seed).randint(0, 2**31 - 1))
    _, val_idx = clf._validation_split(len(texts), inner)
    n_labels = len(clf.classes_)
    Y_held = sp.csr_matrix(Y_held)[:, :n_labels]
    carve_parts = attention_and_head(clf, clf._encode([texts[i] for i in val_idx]))
    held_parts = attention_and_head(clf, clf._encode(held_texts))
    return {"seed": seed, "model": "plant" if plant else "control", "n_train_docs": len(texts),
            "n_carve_docs": int(val_idx.size), "n_held_out_docs": len(held_texts),
            "held_out": where, "fitted_scale": float(clf.evidence_scale_),
            "carve": curve(Y[val_idx], *carve_parts, grid),
            "held_out_curve": curve(Y_held, *held_parts, grid),
            "decision": decision_cuts(clf, Y, carve_parts, Y[val_idx], held_parts, Y_held)}


def linear_svc_reference(split, fraction, seed):
    """Held-out ranking metrics of tf-idf + LinearSVC (the harness's comparator) fitted on the
    same training documents: the bar the blend is measured against."""
    from comparators.linear_svc import fit_predict

    texts, Y, held_texts, Y_held, _ = fit_and_validation(split, fraction, seed)
    # The held-out documents stand in for test; the comparator tunes its cut on them, which
    # does not touch the ranking metrics reported here.
    scores = fit_predict(texts, Y, held_texts, Y_held, held_texts, seed=seed)["test_score"]
    Y_held = sp.csr_matrix(Y_held)[:, :scores.shape[1]]
    return ranking_metrics(Y_held, scores)


def rule_summary(runs, grid, n_library):
    """Held-out metrics of each rule's pick per seed, on the library's grid (its first
    ``n_library`` weights) and on the extended grid (``+ext``)."""
    rows = []
    for r in runs:
        row = {"seed": r["seed"]}
        for (name, rule), (suffix, n) in [(rr, gg) for gg in (("", n_library), ("+ext", len(grid)))
                                          for rr in RULES.items()]:
            i = rule(r["carve"]["ndcg@5"][:n])
            row[name + suffix] = {"scale": grid[i], **{m: r["held_out_curve"][m][i]
                                              for m in ("p@1", "p@5", "ndcg@5")}}
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_subset_arguments(ap, dataset_required=False)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", choices=("plant", "control"), default="plant")
    ap.add_argument("--linear-svc-only", action="store_true",
                    help="only the LinearSVC reference on the same documents (seconds)")
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    ap.add_argument("--mix-table", nargs="+", metavar="JSON",
                    help="print the held-out F1s of MIX_RULES from earlier runs and exit")
    args = ap.parse_args(argv)
    if args.mix_table:
        print(mix_table(args.mix_table))
        return 0
    if not args.dataset:
        ap.error("--dataset is required (except with --mix-table)")
    import torch

    torch.set_num_threads(int(os.environ.get("PLANTBENCH_THREADS", "1")))
    from plantlearn._train import FITTED_EVIDENCE_SCALES

    grid = tuple(FITTED_EVIDENCE_SCALES) + EXTRA_SCALES

    split = C.subset_split(args)
    if args.linear_svc_only:
        refs = {seed: linear_svc_reference(split, args.fraction, seed) for seed in args.seeds}
        for seed, ref in refs.items():
            print(f"seed {seed}: LinearSVC held-out " + " ".join(
                f"{k} {100 * v:.2f}" for k, v in ref.items()), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(
                {"dataset": args.dataset, "fraction": args.fraction, "linear_svc": refs,
                 "provenance": C.provenance(sys.argv)}, indent=1))
        return 0
    out = {"dataset": args.dataset, "fraction": args.fraction, "model": args.model,
           "grid": list(grid),
           "rules": {k: v.__doc__ for k, v in RULES.items()},
           "provenance": C.provenance(sys.argv), "runs": []}
    for seed in args.seeds:
        run = analyse(split, args.fraction, seed, grid, plant=args.model == "plant")
        out["runs"].append(run)
        out["rule_summary"] = rule_summary(out["runs"], grid, len(FITTED_EVIDENCE_SCALES))
        if args.out:
            Path(args.out).write_text(json.dumps(C._jsonable(out), indent=1))
        print(f"seed {seed}: {run['n_train_docs']} training docs, carve {run['n_carve_docs']}, "
              f"held out {run['n_held_out_docs']} ({run['held_out']}); fitted scale "
              f"{run['fitted_scale']:g} (argmax of the carve's curve: "
              f"{out['rule_summary'][-1]['argmax']['scale']:g})", flush=True)
        for name, key in (("carve nDCG@5", ("carve", "ndcg@5")),
                          ("held-out nDCG@5", ("held_out_curve", "ndcg@5")),
                          ("held-out P@1", ("held_out_curve", "p@1"))):
            vals = run[key[0]][key[1]]
            print(f"  {name:<16}" + " ".join(f"{w:g}:{100 * v:.2f}" for w, v in zip(grid, vals)))
        for name in out["rule_summary"][-1]:
            if name == "seed":
                continue
            pick = out["rule_summary"][-1][name]
            print(f"  rule {name:<14} scale {pick['scale']:g}: held-out P@1 {100 * pick['p@1']:.2f} "
                  f"P@5 {100 * pick['p@5']:.2f} nDCG@5 {100 * pick['ndcg@5']:.2f}", flush=True)
        dec = run["decision"]
        for name in ("carve_cut", "no_cut", "cardinality_cut", "oracle_micro"):
            r = dec[name]
            print(f"  cut {name:<12} {r['cut']:+.2f}: held-out micro-F1 {100 * r['micro_f1']:.2f} "
                  f"macro-F1 {100 * r['macro_f1']:.2f} rare ({dec['n_rare_labels']} labels) "
                  f"{100 * r['rare_f1']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
