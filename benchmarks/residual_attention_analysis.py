"""Attention trained on what the evidence head misses: an experiment for issue 5, on held-out data.

An analysis, not a benchmark of the library's behaviour. By default ``PlantClassifier`` trains
its attention path on its own and adds the frozen linear head's margins afterwards, at a weight
chosen on the validation carve. Where the head ranks well (Reuters) the attention then mostly
relearns what the head already knows, and planting can add little to the sum. The variant here
trains the attention on the head's residual instead: its logits are added to fixed offsets, the
head's out-of-fold margins on the training documents (SVMs fitted without the document's fold,
so the offsets are as good as the head is on new documents) at the slope that makes them
calibrated log-odds (``_linear.margin_log_odds_slope``); early stopping reads the sum on the
carve. The head's final weight is then chosen on the carve as usual.

For each seed the script fits PLANT and the control, each by default and with the residual
training, on a nested training subset, and scores them on the comparators' validation data
(the dev split, or a 10% carve of the training split for Reuters; the test split is never
read): P@1/5, nDCG@5, micro/macro-F1 and own-subset rare macro-F1.

    python benchmarks/residual_attention_analysis.py --dataset reuters --fraction 0.25 \
        --seeds 0 1 2 --out benchmarks/results/residual-attention_reuters_025_DATE.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from head_pairs_analysis import fit_and_validation  # noqa: E402

#: False: the library's default; "grid": residual training, the head's final weight chosen on
#: the carve from the usual grid; "fixed": residual training, final weight the offsets' slope.
#: "-cal": the attention's label biases start at the calibration's intercepts and
#: threshold="auto" reads its per-label offsets from them; "-minN": early stopping keeps no
#: state before epoch N.
VARIANTS = (False, "grid", "fixed", "grid-cal", "fixed-cal", "fixed-cal-min5")
METRICS = ("p@1", "p@5", "ndcg@5", "micro_f1", "macro_f1", "subset_rare_macro_f1")


def classifier(plant, residual, seed):
    """A default PlantClassifier, with the attention trained on the head's residual or not."""
    from plantlearn import PlantClassifier

    clf = PlantClassifier(plant=plant, random_state=seed, device="cpu")
    if not residual:
        return clf
    # Instance attributes: the experiment's switches, not parameters of the library.
    mode, *options = residual.split("-")
    clf._attention_on_head_residual = mode
    clf._residual_calibrated = "cal" in options
    clf._residual_min_epochs = next((int(o[3:]) for o in options if o.startswith("min")), 0)
    return clf


def fit_and_score(texts, Y, held_texts, Y_held, *, plant, residual, seed):
    t0 = time.perf_counter()
    clf = classifier(plant, residual, seed).fit(texts, Y)
    fit_s = time.perf_counter() - t0
    logits = clf.decision_function(held_texts)
    metrics = C.evaluate(Y_held, logits, clf._decide(logits), Y, y_subset_train=Y)
    metrics.pop("buckets", None)
    return {"model": "plant" if plant else "control", "residual": residual, "seed": seed,
            "fit_seconds": fit_s, "n_iter": clf.n_iter_,
            "evidence_scale": float(clf.evidence_scale_),
            "offset_slope": getattr(clf, "_head_offset_slope", None),
            "metrics": metrics}


def paired_table(runs):
    """Each variant minus the default per (model, seed), and PLANT minus the control per
    variant: mean +- std over seeds, and how many seeds are up."""
    def diff_line(label, a, b, key):
        d = np.array([x[key] - y[key] for x, y in zip(a, b)
                      if x[key] is not None and y[key] is not None]) * 100
        if d.size == 0:
            return f"{label} {key:22s} (no such labels)"
        std = d.std(ddof=1) if d.size > 1 else 0.0
        return f"{label} {key:22s} {d.mean():+6.2f} +- {std:.2f} ({int((d > 0).sum())}/{d.size} up)"

    index = {(r["model"], r["residual"], r["seed"]): r["metrics"] for r in runs}
    lines = []
    # Each (model, variant): mean +- std over seeds, and the epochs run.
    for model in ("plant", "control"):
        for variant in VARIANTS:
            group = [r for r in runs if r["model"] == model and r["residual"] == variant]
            if not group:
                continue
            cells = []
            for key in METRICS:
                v = np.array([r["metrics"][key] for r in group
                              if r["metrics"][key] is not None]) * 100
                cells.append("-" if v.size == 0 else
                             f"{v.mean():.2f} +- {v.std(ddof=1) if v.size > 1 else 0.0:.2f}")
            epochs = np.mean([r["n_iter"] for r in group])
            lines.append(f"{model:8s} {variant or 'default':15s} " + " | ".join(cells)
                         + f" | epochs {epochs:.1f} ({len(group)} seeds)")
    for model in ("plant", "control"):
        for variant in VARIANTS[1:]:
            seeds = sorted(s for (m, v, s) in index
                           if m == model and v == variant and (model, False, s) in index)
            for key in METRICS if seeds else ():
                lines.append(diff_line(f"{model:8s} {variant} - default",
                                       [index[(model, variant, s)] for s in seeds],
                                       [index[(model, False, s)] for s in seeds], key))
    for variant in VARIANTS:
        seeds = sorted(s for (m, v, s) in index
                       if m == "plant" and v == variant and ("control", variant, s) in index)
        for key in METRICS if seeds else ():
            lines.append(diff_line(f"PLANT - control ({variant or 'default'})",
                                   [index[("plant", variant, s)] for s in seeds],
                                   [index[("control", variant, s)] for s in seeds], key))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", help="required unless --table")
    ap.add_argument("--data-home", default=None)
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--models", default="plant,control")
    ap.add_argument("--variants", nargs="+", default=None,
                    help=f"residual variants besides the default (from {VARIANTS[1:]})")
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", nargs="+", default=None, help="print the table of JSON files")
    args = ap.parse_args(argv)
    if args.table:
        runs = [r for path in args.table for r in json.load(open(path))["runs"]]
        print(paired_table(runs))
        return
    if not args.dataset:
        ap.error("--dataset is required (unless --table)")
    split = C.Split(C.resolve_dataset(args.dataset), args.data_home or C.default_data_home())
    runs = []
    for seed in args.seeds:
        texts, Y, held_texts, Y_held, where = fit_and_validation(split, args.fraction, seed)
        for model in args.models.split(","):
            for residual in (False, *(args.variants or VARIANTS[1:])):
                run = fit_and_score(texts, Y, held_texts, Y_held, plant=model == "plant",
                                    residual=residual, seed=seed)
                run.update(n_train_docs=len(texts), held_out=where)
                runs.append(run)
                m = run["metrics"]
                print(f"seed {seed} {model} residual={residual}: "
                      + " ".join(f"{k} {m[k]:.4f}" for k in METRICS if m[k] is not None)
                      + f" scale {run['evidence_scale']:g} slope {run['offset_slope']}"
                      + f" ({run['fit_seconds']:.0f}s)", flush=True)
                if args.out:
                    Path(args.out).write_text(json.dumps(
                        {"provenance": C.provenance(sys.argv), "dataset": args.dataset,
                         "fraction": args.fraction, "runs": runs}, indent=1))
    print(paired_table(runs))


if __name__ == "__main__":
    main()
