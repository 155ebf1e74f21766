"""Benchmark: plantlearn's sparse MI against sklearn, and at MIMIC-III scale.

Part 1 (real data): the normalised-MI statistics of MIInitializer against what
a user would write today, ``sklearn.feature_selection.mutual_info_classif``
with discrete features, label by label, on the same binary document-word
matrix. sklearn scores every (word, label) pair one label at a time, so it is
run on the first ``--sklearn-labels`` labels and plantlearn on the same labels
(and, separately, on all labels). The values are checked to agree.

Part 2 (synthetic, MIMIC-III shape): 50,000 documents of about 1,500 distinct
words from a 57,000-word Zipf vocabulary, 9,000 labels, 16 labels per document.
The MI step runs in a child process so its peak resident memory can be read.
Tokenization is timed separately on text of the same shape (``--tokenize``).

Usage::

    python benchmarks/bench_mi.py --data-home ../shared/data
    python benchmarks/bench_mi.py --skip-real --docs 50000 --tokenize
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def real_data_comparison(data_home, dataset, n_sklearn_labels):
    from sklearn.feature_selection import mutual_info_classif

    from plantlearn._mi import binary_document_term_matrix, mutual_information
    from plantlearn._tokenize import TextTokenizer
    from plantlearn.datasets import load_dataset

    train = load_dataset(dataset, "train", data_home=data_home)
    tok = TextTokenizer().fit(train.data)
    B = binary_document_term_matrix(tok.encode(train.data), tok.vocab_size)
    Y = train.target.tocsc()
    labels = np.arange(min(n_sklearn_labels, Y.shape[1]))

    t0 = time.perf_counter()
    ours_sub, _, _ = mutual_information(B, Y[:, labels], normalize="none")
    t_ours_sub = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours_all, _, _ = mutual_information(B, Y, normalize="joint_entropy", top_k=100)
    t_ours_all = time.perf_counter() - t0

    t0 = time.perf_counter()
    theirs = np.vstack([
        mutual_info_classif(B, Y[:, j].toarray().ravel(), discrete_features=True)
        for j in labels
    ])
    t_theirs = time.perf_counter() - t0
    # sklearn keeps negative associations too; compare on the pairs we keep.
    ours = ours_sub.toarray()
    kept = ours > 0
    max_diff = float(np.abs(ours[kept] - theirs[kept]).max()) if kept.any() else 0.0
    return {
        "dataset": dataset,
        "n_docs": int(B.shape[0]),
        "vocab_size": int(B.shape[1]),
        "n_labels_compared": int(labels.size),
        "n_labels_total": int(Y.shape[1]),
        "sklearn_seconds": t_theirs,
        "plantlearn_seconds_same_labels": t_ours_sub,
        "speedup": t_theirs / t_ours_sub,
        "plantlearn_seconds_all_labels_top100": t_ours_all,
        "sklearn_seconds_all_labels_extrapolated": t_theirs * Y.shape[1] / labels.size,
        "max_abs_difference_on_kept_pairs": max_diff,
    }


def synthetic_matrices(n_docs, vocab, n_labels, words_per_doc, labels_per_doc, seed):
    """Binary document-word and document-label matrices of a Zipf corpus."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1)
    pw = 1.0 / ranks
    pw /= pw.sum()
    pl = 1.0 / np.arange(1, n_labels + 1) ** 0.8
    pl /= pl.sum()
    rows_b, rows_y = [], []
    block = 2000
    # Draw more than needed with replacement and keep the distinct ones.
    draw = int(words_per_doc * 4)
    for s in range(0, n_docs, block):
        m = min(block, n_docs - s)
        w = rng.choice(vocab, size=(m, draw), p=pw)
        for row in w:
            u = np.unique(row)
            if u.size > words_per_doc:
                u = np.sort(rng.choice(u, words_per_doc, replace=False))
            rows_b.append(u)
        lab = rng.choice(n_labels, size=(m, labels_per_doc * 2), p=pl)
        for row in lab:
            rows_y.append(np.unique(row)[:labels_per_doc])

    def csr(rows, n_cols):
        indptr = np.concatenate(([0], np.cumsum([r.size for r in rows])))
        idx = np.concatenate(rows).astype(np.int32)
        return sp.csr_matrix((np.ones(idx.size, np.float32), idx, indptr), shape=(len(rows), n_cols))

    return csr(rows_b, vocab), csr(rows_y, n_labels)


def _mi_child(path, top_k, queue):
    from plantlearn._mi import log_scale_grades, mutual_information

    data = np.load(path)
    B = sp.csr_matrix((data["b_data"], data["b_idx"], data["b_ptr"]), shape=tuple(data["b_shape"]))
    Y = sp.csr_matrix((data["y_data"], data["y_idx"], data["y_ptr"]), shape=tuple(data["y_shape"]))
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    scores, _, _ = mutual_information(B, Y, top_k=top_k)
    grades = log_scale_grades(scores)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({
        "mi_seconds": elapsed,
        "peak_rss_mb": peak,
        "rss_after_loading_inputs_mb": rss_inputs,
        "kept_pairs": int(scores.nnz),
        "max_grade": int(grades.data.max()) if grades.nnz else 0,
    })


def synthetic_scale(n_docs, vocab, n_labels, words_per_doc, labels_per_doc, top_k, tokenize,
                    seed=0):
    t0 = time.perf_counter()
    B, Y = synthetic_matrices(n_docs, vocab, n_labels, words_per_doc, labels_per_doc, seed)
    gen_s = time.perf_counter() - t0
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"plantlearn_bench_mi_{os.getpid()}.npz"
    np.savez(tmp, b_data=B.data, b_idx=B.indices, b_ptr=B.indptr, b_shape=B.shape,
             y_data=Y.data, y_idx=Y.indices, y_ptr=Y.indptr, y_shape=Y.shape)
    result = {
        "n_docs": n_docs, "vocab_size": vocab, "n_labels": n_labels,
        "mean_distinct_words_per_doc": B.nnz / n_docs, "mean_labels_per_doc": Y.nnz / n_docs,
        "generation_seconds": gen_s,
    }
    del B, Y
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_mi_child, args=(str(tmp), top_k, q))
    p.start()
    result.update(q.get())
    p.join()
    tmp.unlink(missing_ok=True)
    if tokenize:
        result.update(tokenization_timing(min(n_docs, tokenize), vocab, words_per_doc, seed))
    return result


def tokenization_timing(n_docs, vocab, words_per_doc, seed):
    """Fit + encode time of the word tokenizer on text of the benchmark's shape."""
    from plantlearn._tokenize import TextTokenizer

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}x" for i in range(vocab)])
    pw = 1.0 / np.arange(1, vocab + 1)
    pw /= pw.sum()
    # About 2,300 running words give ~1,500 distinct ones under this Zipf law.
    texts = [" ".join(words[rng.choice(vocab, size=int(words_per_doc * 1.6), p=pw)])
             for _ in range(n_docs)]
    t0 = time.perf_counter()
    tok = TextTokenizer().fit(texts)
    t1 = time.perf_counter()
    tok.encode(texts)
    t2 = time.perf_counter()
    return {"tokenize_docs": n_docs, "tokenizer_fit_seconds": t1 - t0,
            "tokenizer_encode_seconds": t2 - t1}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-home", default=os.environ.get("PLANTLEARN_DATA", "../shared/data"))
    ap.add_argument("--dataset", default="reuters21578_modapte")
    ap.add_argument("--sklearn-labels", type=int, default=10)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--vocab", type=int, default=57_000)
    ap.add_argument("--labels", type=int, default=9_000)
    ap.add_argument("--words-per-doc", type=int, default=1_500)
    ap.add_argument("--labels-per-doc", type=int, default=16)
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--tokenize", type=int, default=0, metavar="N_DOCS",
                    help="also time the tokenizer on N_DOCS synthetic texts")
    ap.add_argument("--output", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    results = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}
    if not args.skip_real:
        r = real_data_comparison(args.data_home, args.dataset, args.sklearn_labels)
        results["real"] = r
        print(f"[{r['dataset']}] {r['n_docs']} docs, {r['vocab_size']} words, "
              f"{r['n_labels_compared']} of {r['n_labels_total']} labels")
        print(f"  sklearn mutual_info_classif : {r['sklearn_seconds']:.2f}s")
        print(f"  plantlearn (same labels)    : {r['plantlearn_seconds_same_labels']:.3f}s")
        print(f"  ratio (sklearn / plantlearn): {r['speedup']:.0f}x")
        print(f"  plantlearn, all labels+top-k: {r['plantlearn_seconds_all_labels_top100']:.2f}s "
              f"(sklearn extrapolated: {r['sklearn_seconds_all_labels_extrapolated']:.0f}s)")
        print(f"  max |difference| on kept pairs: {r['max_abs_difference_on_kept_pairs']:.2e}")
    if not args.skip_synthetic:
        r = synthetic_scale(args.docs, args.vocab, args.labels, args.words_per_doc,
                            args.labels_per_doc, args.top_k, args.tokenize)
        results["synthetic"] = r
        print(f"[synthetic] {r['n_docs']} docs x {r['mean_distinct_words_per_doc']:.0f} distinct "
              f"words, vocab {r['vocab_size']}, {r['n_labels']} labels x "
              f"{r['mean_labels_per_doc']:.1f} per doc")
        print(f"  MI + grades: {r['mi_seconds']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(inputs alone {r['rss_after_loading_inputs_mb']:.0f} MB), {r['kept_pairs']} pairs kept")
        if "tokenizer_fit_seconds" in r:
            print(f"  tokenizer on {r['tokenize_docs']} docs: fit {r['tokenizer_fit_seconds']:.1f}s, "
                  f"encode {r['tokenizer_encode_seconds']:.1f}s")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
