"""The evidence head's term frequency: sublinear alone, or sublinear and raw counts side by side.

An analysis for issue 5, not a benchmark of the library's behaviour. ``PlantClassifier``'s
evidence head is a linear SVM per label over tf-idf values of its words; ``evidence_tf``
chooses their term frequency: ``"sublinear"`` (``1 + log tf``, the default) or
``"sublinear+raw"`` (each word twice, by its sublinear and by its raw-count tf-idf). This
script fits only the head (no network), as ``fit`` does: stage 1 and the SVMs on 90% of the
training subset, the other 10% a carve like ``fit``'s validation split. It scores each recipe

- on the carve (nDCG@5: what a rule inside ``fit`` could choose by), and
- on held-out documents the fit never sees: the comparators' validation data (the dev split,
  or a 10% carve of the training split for Reuters; :meth:`_common.Split.comparator_split`).

The test split is never read.

    python benchmarks/head_tf_analysis.py --dataset reuters --fraction 0.25 --seeds 0 1 2 \
        --out benchmarks/results/head-tf_reuters_025_DATE.json
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from head_pairs_analysis import fit_and_validation, head_features  # noqa: E402

RECIPES = ("sublinear", "sublinear+raw")


def score_recipes(texts, Y, held_texts, Y_held, seed):
    """Carve and held-out metrics of the head with each recipe, fitted on 90% of ``texts``."""
    from plantlearn import MIInitializer
    from plantlearn._linear import fit_restricted_svms, selected_and_frequent_pairs
    from plantlearn._nn import EvidenceHead
    from plantlearn.metrics import ndcg_at_k, precision_at_k

    order = np.random.default_rng(seed).permutation(len(texts))
    n_carve = max(1, int(round(0.1 * len(texts))))
    carve, fit_rows = np.sort(order[:n_carve]), np.sort(order[n_carve:])
    fit_texts, carve_texts = [texts[i] for i in fit_rows], [texts[i] for i in carve]
    Y_fit, Y_carve = Y[fit_rows], Y[carve]
    Y_held = sp.csr_matrix(Y_held)[:, :Y.shape[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # empty documents after tokenization
        mi = MIInitializer().fit(fit_texts, Y_fit)
    n_vocab = mi.tokenizer_.vocab_size
    features = {recipe: head_features(mi, [fit_texts, carve_texts, held_texts],
                                      raw_tf=recipe == "sublinear+raw")
                for recipe in RECIPES}
    # The default head's (label, word) pairs, as fit() selects them with planting.
    presence = features["sublinear"][0].copy()
    presence.data[:] = 1.0
    labels, words = selected_and_frequent_pairs(mi.mi_, presence, Y_fit, n_selected=mi.top_k)
    out = {"n_fit_docs": int(fit_rows.size), "n_carve_docs": int(n_carve)}
    for recipe in RECIPES:
        head = EvidenceHead(Y.shape[1], raw_tf=recipe == "sublinear+raw")
        lab, wrd, _ = head.feature_pairs(labels, words, n_vocab)
        X_fit, X_carve, X_held = features[recipe]
        support = sp.csr_matrix((np.ones(lab.size), (lab, wrd)),
                                shape=(Y.shape[1], X_fit.shape[1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # liblinear convergence, reported by fit() itself
            weights, bias = fit_restricted_svms(X_fit, Y_fit, support, random_state=0)
        carve_scores = (X_carve @ weights.T).toarray() + bias
        held_scores = (X_held @ weights.T).toarray() + bias
        out[recipe] = {
            "carve_ndcg@5": float(ndcg_at_k(Y_carve, carve_scores, k=5)),
            "held_ndcg@5": float(ndcg_at_k(Y_held, held_scores, k=5)),
            **{f"held_p@{k}": float(precision_at_k(Y_held, held_scores, k=k)) for k in (1, 5)},
        }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    C.add_subset_arguments(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    split = C.subset_split(args)
    runs = []
    for seed in args.seeds:
        texts, Y, held_texts, Y_held, where = fit_and_validation(split, args.fraction, seed)
        run = {"seed": seed, "n_train_docs": len(texts), "held_out": where,
               **score_recipes(texts, Y, held_texts, Y_held, seed)}
        runs.append(run)
        a, b = run["sublinear"], run["sublinear+raw"]
        print(f"{split.name} {args.fraction} seed {seed} (carve {run['n_carve_docs']} docs): "
              f"carve nDCG@5 {100 * a['carve_ndcg@5']:.2f} / {100 * b['carve_ndcg@5']:.2f}; "
              + "; ".join(f"held-out {k[5:]} {100 * a[k]:.2f} / {100 * b[k]:.2f}"
                          for k in ("held_p@1", "held_p@5", "held_ndcg@5")), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(
                {"provenance": C.provenance(sys.argv), "dataset": split.name,
                 "fraction": args.fraction, "recipes": RECIPES, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
