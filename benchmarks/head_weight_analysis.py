"""Why the default model's planting does not show on rare labels: two offline checks.

An analysis for issue 5's rare-label target, not a benchmark of the library's behaviour. With
the default linear evidence head, PLANT and the control reach about the same rare-label
macro-F1 on small training sets. This script fits both models on a learning-curve subset, keeps
the attention path's logits and the head's margins apart on the fit's own validation carve and
on the test split, and asks two questions:

1. **Weight.** The carve gives the head one weight for all labels, chosen by nDCG@5, which the
   frequent labels decide. Would another weight for the rare labels (1-10 documents in the
   subset) alone separate the models? Each weight of the grid is applied to the rare band, the
   other labels keep the fitted weight, and ``threshold="auto"`` is redone (per-label offsets:
   training log-odds plus the weight times the SVM's cross-validated margin threshold; one
   global cut on the validation carve). The best weight is picked on test: an oracle, so if
   even PLANT's oracle does not beat the control's, a per-band weight cannot close the gap.
2. **Pairs.** The head's SVMs use only the word-label pairs that stage 1's mutual information
   kept (``MIInitializer``, 100 words per label at most), for the control too. Refitting the
   head offline on every word that co-occurs with the label in the training part (no stage-1
   selection), weight chosen on the carve as ``fit`` does, shows how much of the control's
   rare-label strength comes from stage 1 through the head.

    python benchmarks/head_weight_analysis.py --dataset reuters --fraction 0.05 --seeds 0 1 2
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

RARE_MAX = 10


def attention_and_head(clf, docs):
    """The attention path's logits and the fitted head's unscaled margins (CPU)."""
    import torch

    from plantlearn._train import predict_parts

    return predict_parts(clf.net_, docs, batch_size=clf.batch_size * 2,
                         max_length=clf.max_length, device=torch.device("cpu"),
                         mixed_precision=clf.mixed_precision)


def cooccurrence_head(clf, docs_tr, Y_tr, others, seed):
    """Head SVMs over every word seen with each label in ``docs_tr``: margins of ``others``
    and cross-validated margin thresholds, the way ``fit`` builds the MI-pair head."""
    from plantlearn._linear import (
        cooccurrence_pairs, cross_validated_thresholds, fit_restricted_svms,
    )
    from plantlearn._train import evidence_features

    head = clf.net_.evidence
    feats = lambda docs: evidence_features(head, docs, batch_size=clf.batch_size * 4,  # noqa: E731
                                           max_length=clf.max_length)
    X_tr = feats(docs_tr)
    # The library's selection without its per-label cap: every co-occurring word.
    labels, words = cooccurrence_pairs(X_tr, Y_tr, max_per_label=X_tr.shape[1])
    support = sp.csr_matrix((np.ones(labels.size), (labels, words)),
                            shape=(Y_tr.shape[1], X_tr.shape[1]))
    weights, bias = fit_restricted_svms(X_tr, Y_tr, support, C=clf.evidence_C, random_state=seed)
    margins = [np.asarray((feats(d) @ weights.T).todense()) + bias for d in others]
    thresholds = cross_validated_thresholds(X_tr, Y_tr, support, C=clf.evidence_C,
                                            random_state=seed)
    return margins, thresholds, int(support.nnz)


def analyse(split, idx, plant, seed, grid):
    from sklearn.utils import check_random_state

    from plantlearn import PlantClassifier
    from plantlearn._classifier import training_log_odds
    from plantlearn._thresholds import best_global_threshold
    from plantlearn._train import best_evidence_scale
    from plantlearn.metrics import precision_at_k

    texts = [split.train_texts[i] for i in idx]
    Y = sp.csr_matrix(split.Y_train[idx])
    # Both models with the head over stage 1's MI words, as in the recorded runs (since 68c8b39
    # plant=False alone gives the control a head over co-occurring words).
    clf = PlantClassifier(plant=plant, evidence_pairs="mi", random_state=seed,
                          device="cpu").fit(texts, Y)
    # The validation carve of this fit, exactly as fit() drew it.
    inner = int(check_random_state(seed).randint(0, 2**31 - 1))
    tr_idx, val_idx = clf._validation_split(len(texts), inner)
    Y_tr, Y_val = Y[tr_idx], Y[val_idx]
    docs_tr = clf._encode([texts[i] for i in tr_idx])
    docs_val = clf._encode([texts[i] for i in val_idx])
    docs_test = clf._encode(split.test_texts)
    a_val, e_val = attention_and_head(clf, docs_val)
    a_test, e_test = attention_and_head(clf, docs_test)
    n_labels = Y.shape[1]
    Y_test = sp.csr_matrix(split.Y_test)[:, :n_labels]

    prior = training_log_odds(Y_tr)
    subset_counts = np.asarray(Y.sum(axis=0)).ravel()
    in_test = np.asarray(Y_test.sum(axis=0)).ravel() > 0
    is_rare = (subset_counts >= 1) & (subset_counts <= RARE_MAX)
    rare = np.flatnonzero(is_rare & in_test)
    trained = np.flatnonzero((subset_counts >= 1) & in_test)

    def decide(e_v, e_t, margin_thr, w):
        offsets = prior + w * margin_thr
        cut = best_global_threshold(Y_val, a_val + w * e_v - offsets) if Y_val.nnz else 0.0
        return sp.csr_matrix((a_test + w * e_t - offsets) >= cut)

    def summary(e_v, e_t, margin_thr, w):
        pred = decide(e_v, e_t, margin_thr, w)
        return {"weight": float(w),
                "p@5": float(precision_at_k(Y_test, a_test + w * e_t, k=5)),
                "macro_f1": C._f1_on(Y_test, pred, trained),
                "rare_f1": C._f1_on(Y_test, pred, rare)}

    fitted = float(clf.evidence_scale_)
    mi_thr = clf._head_margin_thresholds
    res = {"n_rare_labels": int(rare.size), "n_mi_pairs": int(clf.net_.evidence.n_pairs),
           "mi_head": summary(e_val, e_test, mi_thr, fitted),
           "attention_only": summary(e_val, e_test, mi_thr, 0.0)}
    # 1. Another weight for the rare band alone (other labels keep the fitted weight).
    res["rare_f1_by_rare_weight"] = {
        f"{w:g}": C._f1_on(Y_test, decide(e_val, e_test, mi_thr,
                                               np.where(is_rare, w, fitted)), rare)
        for w in grid
    }
    # 2. The head refitted on co-occurring words, its weight chosen on the carve like fit().
    (c_val, c_test), c_thr, n_pairs = cooccurrence_head(clf, docs_tr, Y_tr,
                                                       [docs_val, docs_test], inner)
    w_c, _ = best_evidence_scale(Y_val, a_val, c_val, scales=grid)
    res["cooccurrence_head"] = summary(c_val, c_test, c_thr, w_c)
    res["n_cooccurrence_pairs"] = n_pairs
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_subset_arguments(ap, fraction_required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("PLANTBENCH_THREADS", "1")))
    from plantlearn._train import FITTED_EVIDENCE_SCALES

    split = C.subset_split(args)
    out = {"dataset": args.dataset, "fraction": args.fraction, "provenance": C.provenance(sys.argv),
           "runs": []}
    for seed in args.seeds:
        idx = C.nested_subsets(len(split.train_texts), [args.fraction], seed)[args.fraction]
        for plant in (True, False):
            res = analyse(split, idx, plant, seed, FITTED_EVIDENCE_SCALES)
            res.update(seed=seed, model="plant" if plant else "control", n_train_docs=len(idx))
            out["runs"].append(res)
            if args.out:
                Path(args.out).write_text(json.dumps(C._jsonable(out), indent=1))
            fmt = lambda r: (f"w {r['weight']:g} P@5 {100 * r['p@5']:.1f} "  # noqa: E731
                             f"maF1 {100 * r['macro_f1']:.1f} rare {100 * r['rare_f1']:.1f}")
            best = max(res["rare_f1_by_rare_weight"].items(), key=lambda kv: kv[1])
            print(f"seed {seed} {res['model']:<8} ({res['n_rare_labels']} rare labels)\n"
                  f"  MI-pair head ({res['n_mi_pairs']} pairs): {fmt(res['mi_head'])}\n"
                  f"  attention only: {fmt(res['attention_only'])}\n"
                  f"  co-occurrence head ({res['n_cooccurrence_pairs']} pairs): "
                  f"{fmt(res['cooccurrence_head'])}\n"
                  f"  rare F1 by rare-band weight (oracle best {best[0]}: {100 * best[1]:.1f}): "
                  + " ".join(f"{k}:{100 * v:.1f}" for k, v in res["rare_f1_by_rare_weight"].items()),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
