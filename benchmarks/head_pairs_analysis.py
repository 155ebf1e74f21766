"""Which (label, word) pairs should the evidence head weigh? The head alone, on validation data.

An analysis for issue 5, not a benchmark of the library's behaviour. PLANT's default evidence
head is a linear SVM per label over a set of words. This script fits only that head (no
network: seconds per variant) for several word sets on the same features and scores it on
validation data, never on test: the dataset's dev split, or, without one, a 10% carve of the
training split (seed 0). The features are the head's own (sublinear tf-idf, L2-normalised;
the library's tokenizer and chunking), the thresholds its cross-validated margin thresholds,
as ``PlantClassifier`` fits them.

Word sets ("variants"):

- ``mi``: stage 1's MI words (``MIInitializer``, 100 per label at most, positively associated);
- ``cooccurrence``: the label's words in the most of its training documents, 1,000 at most
  (the control's head);
- ``mi+cooccurrence:R``: the MI words and, for a label with more than 100 training documents,
  its most frequent co-occurring words, R per document beyond the first 100 (1,000 words in
  all); ``R=1`` is the library's ``evidence_pairs="mi+cooccurrence"``;
- ``mi_positive:R``: MI words only (positive association), R per training document (100 at
  least, 1,000 at most): more words without the common ones that count against a label;
- ``all``: every co-occurring word (no cap);
- ``dense``: every word of the training vocabulary for every label (a full linear SVM per label
  on the head's features; not an option of the library, a reference).

    python benchmarks/head_pairs_analysis.py --dataset goemotions
    python benchmarks/head_pairs_analysis.py --dataset reuters --fraction 0.25 --seed 0
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

DEFAULT_VARIANTS = ("mi,cooccurrence,mi+cooccurrence:1,mi+cooccurrence:2,mi+cooccurrence:4,"
                    "mi_positive:10,all")
METRICS = ("p@1", "p@5", "micro_f1", "macro_f1", "rare_macro_f1")


def fit_and_validation(split, fraction, seed):
    """Training texts/labels (a nested subset when ``fraction`` < 1) and the validation set:
    the comparators' validation data (:meth:`_common.Split.comparator_split`)."""
    train, Y_train, val, Y_val, where = split.comparator_split()
    if fraction < 1:
        sub = C.nested_subsets(len(train), [fraction], seed)[fraction]
        train, Y_train = [train[i] for i in sub], Y_train[sub]
    return train, sp.csr_matrix(Y_train), val, sp.csr_matrix(Y_val), where


def head_features(mi, texts_by_split, max_length=256, max_chunks=8, raw_tf=False):
    """The evidence head's features of each list of texts (PlantClassifier's defaults; with
    ``raw_tf`` those of ``evidence_tf="sublinear+raw"``)."""
    from plantlearn._mi import smoothed_idf
    from plantlearn._nn import EvidenceHead
    from plantlearn._train import evidence_features

    n_vocab = mi.tokenizer_.vocab_size
    head = EvidenceHead(mi.mi_.shape[0], raw_tf=raw_tf)
    _, _, n_features = head.feature_pairs([], [], n_vocab)  # the head owns its layout
    head.set_pairs(np.zeros(0), np.zeros(n_features + 1, dtype=np.int64),
                   smoothed_idf(mi.token_document_frequency_, mi.n_documents_))
    return [evidence_features(head, mi.tokenizer_.encode_chunks(t, max_length=max_length,
                                                                max_chunks=max_chunks),
                              batch_size=256, max_length=max_length)
            for t in texts_by_split]


def word_set(name, mi, X_train, Y_train):
    """(labels, words) of one variant."""
    from plantlearn._linear import cooccurrence_pairs, selected_and_frequent_pairs
    from plantlearn._mi import mutual_information

    kind, _, rate = name.partition(":")
    if kind == "mi":
        pairs = mi.mi_.tocoo()
        return pairs.row, pairs.col
    if kind == "cooccurrence":
        return cooccurrence_pairs(X_train, Y_train)
    if kind == "all":
        return cooccurrence_pairs(X_train, Y_train, max_per_label=X_train.shape[1])
    if kind == "dense":
        seen = np.flatnonzero(np.diff(sp.csc_matrix(X_train).indptr) > 0)
        return np.repeat(np.arange(Y_train.shape[1]), seen.size), np.tile(seen, Y_train.shape[1])
    if kind == "mi+cooccurrence":
        return selected_and_frequent_pairs(mi.mi_, X_train, Y_train, n_selected=mi.top_k,
                                           per_document=float(rate))
    if kind == "mi_positive":
        presence = X_train.copy()
        presence.data[:] = 1.0
        scores = mutual_information(presence, Y_train, top_k=1000)[0].tocsr()
        counts = np.diff(sp.csc_matrix(Y_train).indptr)
        keep = np.clip(np.ceil(float(rate) * counts), mi.top_k, 1000).astype(np.int64)
        labels, words = [], []
        for label in range(scores.shape[0]):
            lo, hi = scores.indptr[label], scores.indptr[label + 1]
            best = np.argsort(-scores.data[lo:hi], kind="stable")[:keep[label]]
            labels.append(np.full(best.size, label))
            words.append(scores.indices[lo:hi][best])
        return np.concatenate(labels), np.concatenate(words)
    raise ValueError(f"unknown variant {name!r}")


def score_head(labels, words, X_train, Y_train, X_val, Y_val):
    from plantlearn._linear import cross_validated_thresholds, fit_restricted_svms

    support = sp.csr_matrix((np.ones(len(labels)), (labels, words)),
                            shape=(Y_train.shape[1], X_train.shape[1]))
    weights, bias = fit_restricted_svms(X_train, Y_train, support, random_state=0)
    thresholds = cross_validated_thresholds(X_train, Y_train, support, random_state=0)
    margins = (X_val @ weights.T).toarray() + bias
    result = C.evaluate(Y_val, margins, (margins > thresholds).astype(np.int8), Y_train)
    out = {k: result[k] for k in METRICS}
    out["n_pairs"] = int(support.nnz)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_subset_arguments(ap)
    ap.add_argument("--seed", type=int, default=0, help="seed of the nested subset")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS)
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args(argv)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from plantlearn import MIInitializer

    split = C.subset_split(args)
    train, Y_train, val, Y_val, where = fit_and_validation(split, args.fraction, args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # empty documents after tokenization
        mi = MIInitializer().fit(train, Y_train)
    X_train, X_val = head_features(mi, [train, val])
    print(f"{split.name} fraction {args.fraction} seed {args.seed}: train {len(train)}, "
          f"validation {len(val)} ({where}), {Y_train.shape[1]} labels", flush=True)
    out = {"dataset": split.name, "fraction": args.fraction, "seed": args.seed,
           "n_train": len(train), "validation": where,
           "provenance": C.provenance(sys.argv), "variants": {}}
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        labels, words = word_set(name, mi, X_train, Y_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = score_head(labels, words, X_train, Y_train, X_val, Y_val)
        res["seconds"] = time.perf_counter() - t0
        out["variants"][name] = res
        shown = " ".join(f"{k} {'-' if res[k] is None else f'{100 * res[k]:.2f}'}"
                         for k in METRICS)
        print(f"  {name:<20} {res['n_pairs']:>7} pairs  {shown}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(C._jsonable(out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
