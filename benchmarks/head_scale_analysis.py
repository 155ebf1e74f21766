"""How to choose the evidence head's weight: the grid's validation curve, rule by rule.

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


def curve(Y, attention, head, grid):
    """nDCG@5 and P@1..5 of ``attention + w * head`` for every weight ``w`` of ``grid``."""
    from plantlearn.metrics import ndcg_at_k, precision_at_k

    out = {"ndcg@5": [], "p@1": [], "p@3": [], "p@5": []}
    for w in grid:
        scores = attention + w * head
        out["ndcg@5"].append(float(ndcg_at_k(Y, scores, k=5)))
        for k in (1, 3, 5):
            out[f"p@{k}"].append(float(precision_at_k(Y, scores, k=k)))
    return out


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


def analyse(split, fraction, seed, grid):
    from sklearn.utils import check_random_state

    from plantlearn import PlantClassifier

    texts, Y, held_texts, Y_held, where = fit_and_validation(split, fraction, seed)
    clf = PlantClassifier(random_state=seed, device="cpu").fit(texts, Y)
    # The validation carve of this fit, exactly as fit() drew it.
    inner = int(check_random_state(seed).randint(0, 2**31 - 1))
    _, val_idx = clf._validation_split(len(texts), inner)
    n_labels = len(clf.classes_)
    carve = curve(Y[val_idx], *attention_and_head(clf, clf._encode([texts[i] for i in val_idx])),
                  grid)
    held = curve(sp.csr_matrix(Y_held)[:, :n_labels],
                 *attention_and_head(clf, clf._encode(held_texts)), grid)
    return {"seed": seed, "n_train_docs": len(texts), "n_carve_docs": int(val_idx.size),
            "n_held_out_docs": len(held_texts), "held_out": where,
            "fitted_scale": float(clf.evidence_scale_), "carve": carve, "held_out_curve": held}


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
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--data-home", default=None)
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("PLANTBENCH_THREADS", "1")))
    from plantlearn._train import FITTED_EVIDENCE_SCALES

    grid = tuple(FITTED_EVIDENCE_SCALES) + EXTRA_SCALES

    split = C.Split(args.dataset, args.data_home or C.default_data_home())
    out = {"dataset": args.dataset, "fraction": args.fraction, "grid": list(grid),
           "rules": {k: v.__doc__ for k, v in RULES.items()},
           "provenance": C.provenance(sys.argv), "runs": []}
    for seed in args.seeds:
        run = analyse(split, args.fraction, seed, grid)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
