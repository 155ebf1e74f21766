"""Calibration of PlantClassifier's probabilities and its decision rule, on dev data.

For each seed: fit the default PlantClassifier on the training split (Reuters, which has no
dev split: on 90% of it, the other 10% drawn with seed 0 being the dev split) and, on the dev
split, measure

- the expected calibration error (all pairs, and the pairs given at least 0.01) and the
  reliability curve of ``predict_proba``, against the sigmoid of the network's logits (what
  ``predict_proba`` returned before calibration);
- micro- and macro-F1 of three decision rules: ``predict`` (per-label cuts, calibrated
  probability >= 0.5), the raw sigmoid cut at 0.5, and a label-independent calibration of the
  logits (isotonic, fitted on the model's own validation carve) cut at 0.5;
- P@1 and P@5 ranking by ``decision_function`` and by ``predict_proba``.

Only the public API is used. The test split is never read. One JSON file per dataset, and a
reliability plot with ``--plot`` (needs matplotlib).

    python benchmarks/calibration.py --dataset codiesp --seeds 0 1 --plot docs/img/calibration_codiesp.png
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def dev_split(split):
    """(fit texts, fit labels, dev texts, dev labels, description)."""
    if split.dev_texts is not None:
        return split.train_texts, split.Y_train, split.dev_texts, split.Y_dev, "dev split"
    return split.comparator_split()


def rule_scores(Y, pred):
    from plantlearn.metrics import macro_f1, micro_f1

    return {"micro_f1": micro_f1(Y, pred), "macro_f1": macro_f1(Y, pred, labels="present")}


#: --quick: a tiny network, for smoke tests only (numbers mean nothing).
QUICK = dict(max_iter=1, embed_dim=16, hidden_size=16, max_length=64, max_chunks=2,
             ltr__max_iter=2, ltr__n_factors=8)


def evaluate_seed(split, seed, threads, params=None):
    import torch
    from scipy.special import expit
    from sklearn.isotonic import IsotonicRegression

    from plantlearn import PlantClassifier
    from plantlearn.metrics import expected_calibration_error, precision_at_k, reliability_curve

    torch.set_num_threads(threads)
    fit_texts, Y_fit, dev_texts, Y_dev, where = dev_split(split)
    t0 = time.perf_counter()
    clf = PlantClassifier(random_state=seed, classes=split.label_names)
    clf.set_params(**(params or {})).fit(fit_texts, Y_fit)
    fit_seconds = time.perf_counter() - t0
    logits = clf.decision_function(dev_texts)
    proba = clf.predict_proba(dev_texts)
    pred = clf.predict(dev_texts)
    raw = expit(logits.astype(np.float64))
    # A label-independent calibration of the logits, fitted where the model's own rule was:
    # its validation carve (never the dev split).
    carve = [fit_texts[i] for i in clf.validation_indices_]
    carve_logits = clf.decision_function(carve).ravel()
    carve_truth = Y_fit[clf.validation_indices_].toarray().ravel()
    iso = IsotonicRegression(out_of_bounds="clip").fit(carve_logits, carve_truth)
    global_iso = iso.predict(logits.ravel()).reshape(logits.shape)
    out = {
        "seed": seed, "validation": where, "n_fit": len(fit_texts), "n_dev": len(dev_texts),
        "fit_seconds": fit_seconds, "evidence_scale": clf.evidence_scale_,
        "ece": {"calibrated": expected_calibration_error(Y_dev, proba),
                "raw_sigmoid": expected_calibration_error(Y_dev, raw),
                "calibrated_01": expected_calibration_error(Y_dev, proba, min_probability=0.01),
                "raw_sigmoid_01": expected_calibration_error(Y_dev, raw, min_probability=0.01)},
        "reliability": {"calibrated": reliability_curve(Y_dev, proba, n_bins=10),
                        "raw_sigmoid": reliability_curve(Y_dev, raw, n_bins=10)},
        "rules": {"predict (per-label cuts, calibrated >= 0.5)": rule_scores(Y_dev, pred),
                  "raw sigmoid >= 0.5": rule_scores(Y_dev, sp.csr_matrix(raw >= 0.5)),
                  "label-independent calibration >= 0.5": rule_scores(
                      Y_dev, sp.csr_matrix(global_iso >= 0.5))},
        "ranking": {"decision_function": {k: precision_at_k(Y_dev, logits, k=k) for k in (1, 5)},
                    "predict_proba": {k: precision_at_k(Y_dev, proba, k=k) for k in (1, 5)}},
    }
    return C.jsonable(out)


def plot(record, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
    for key, colour, label in (("raw_sigmoid", "#c44", "sigmoid of the logits"),
                               ("calibrated", "#26c", "predict_proba (calibrated)")):
        pts = [(b["mean_probability"], b["observed_frequency"], b["count"])
               for run in record["runs"] for b in run["reliability"][key]]
        x, y, n = (np.array(v) for v in zip(*pts))
        ax.scatter(x, y, s=8 + 40 * np.sqrt(n / n.max()), color=colour, alpha=0.7, label=label)
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed frequency")
    n = len(record["runs"])
    ax.set_title(f"{record['dataset']}, dev ({n} seed{'s' if n > 1 else ''})", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-home", default=str(C.default_data_home()))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/"
                                               "calibration_<dataset>.json)")
    p.add_argument("--plot", default=None, help="PNG reliability plot")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 300 training documents, a tiny network")
    args = p.parse_args(argv)
    split = C.Split(args.dataset, args.data_home, max_train=300 if args.quick else None)
    out = Path(args.out or C.BENCH_DIR / "results" / f"calibration_{args.dataset}.json")
    record = {**C.provenance(sys.argv), "dataset": split.name, "runs": []}
    for seed in args.seeds:
        run = evaluate_seed(split, seed, args.threads, QUICK if args.quick else None)
        record["runs"].append(run)
        rules = "  ".join(f"{k}: {100 * v['micro_f1']:.1f}/{100 * v['macro_f1']:.1f}"
                          for k, v in run["rules"].items())
        print(f"seed {seed}: ECE {100 * run['ece']['calibrated']:.3f}% (raw "
              f"{100 * run['ece']['raw_sigmoid']:.3f}%); micro/macro-F1 {rules}; P@1 by logits "
              f"{100 * run['ranking']['decision_function']['1']:.1f}, by proba "
              f"{100 * run['ranking']['predict_proba']['1']:.1f}", flush=True)
        out.write_text(__import__("json").dumps(record, indent=1))
    if args.plot:
        plot(record, args.plot)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
