"""Does the linear comparator's feature recipe explain its lead in P@1? Held-out data only.

An analysis for issue 5, not a benchmark of the library's behaviour. PLANT's evidence head is a
linear SVM per label on sublinear tf-idf over the library's tokenizer (words of one character
and more, seen at least twice in the training documents); the harness's tf-idf + LinearSVC uses
``TfidfVectorizer``'s defaults (raw term counts, words of two characters and more, every word).
This script fits the comparator's one-vs-rest LinearSVC on the same training documents with
each difference switched on alone and all together, and scores ranking on the comparators'
validation data (the dev split, or a 10% carve of the training split;
:meth:`_common.Split.comparator_split`). The test split is never read.

    python benchmarks/tfidf_features_analysis.py --dataset reuters --fraction 1.0 --seeds 0 \
        --out benchmarks/results/tfidf-features_reuters_100_DATE.json
"""

import argparse
import json
import sys
from pathlib import Path

import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from head_pairs_analysis import fit_and_validation  # noqa: E402
from head_scale_analysis import ranking_metrics  # noqa: E402

#: TfidfVectorizer settings: the comparator's defaults, then each of the head's differences.
VARIANTS = {
    "default": {},
    "sublinear_tf": {"sublinear_tf": True},
    # Two documents, where the tokenizer counts two occurrences: near, not equal.
    "min_df=2": {"min_df": 2},
    "one-character words": {"token_pattern": r"(?u)\b\w+\b"},
    "all three (the head's recipe)": {"sublinear_tf": True, "min_df": 2,
                                      "token_pattern": r"(?u)\b\w+\b"},
}


def score_variant(params, texts, Y, held_texts, Y_held, seed):
    """The comparator (:func:`comparators.linear_svc.fit_predict`) with ``params`` for its
    ``TfidfVectorizer``; ranking metrics on the held-out documents."""
    from comparators.linear_svc import fit_predict

    # The held-out documents stand in for test; the comparator tunes its cut on them, which
    # does not touch the ranking metrics reported here.
    result = fit_predict(texts, Y, held_texts, Y_held, held_texts, seed=seed,
                         tfidf_params=params)
    scores = result["test_score"]
    Y_held = sp.csr_matrix(Y_held)[:, :scores.shape[1]]
    return {"n_features": result["info"]["n_features"], **ranking_metrics(Y_held, scores)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_subset_arguments(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args(argv)
    split = C.subset_split(args)
    out = {"dataset": args.dataset, "fraction": args.fraction, "variants": VARIANTS,
           "provenance": C.provenance(sys.argv), "runs": []}
    for seed in args.seeds:
        texts, Y, held_texts, Y_held, where = fit_and_validation(split, args.fraction, seed)
        run = {"seed": seed, "n_train_docs": len(texts), "n_held_out_docs": len(held_texts),
               "held_out": where, "scores": {}}
        for name, params in VARIANTS.items():
            run["scores"][name] = score_variant(params, texts, Y, held_texts, Y_held, seed)
            s = run["scores"][name]
            print(f"seed {seed} ({len(texts)} docs, held out {len(held_texts)}) {name:<30} "
                  f"{s['n_features']:>7} features  P@1 {100 * s['p@1']:.2f}  "
                  f"P@5 {100 * s['p@5']:.2f}  nDCG@5 {100 * s['ndcg@5']:.2f}", flush=True)
        out["runs"].append(run)
        if args.out:
            Path(args.out).write_text(json.dumps(C._jsonable(out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
