"""The sparse MI kernel against a brute-force computation (no torch, no tokenizer)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import mutual_info_score

from plantlearn._mi import log_scale_grades, mutual_information


def _random_corpus(seed, n_docs=60, vocab=25, n_labels=7):
    rng = np.random.default_rng(seed)
    B = (rng.random((n_docs, vocab)) < rng.uniform(0.05, 0.6, size=vocab)).astype(np.float32)
    Y = (rng.random((n_docs, n_labels)) < rng.uniform(0.05, 0.5, size=n_labels)).astype(np.float32)
    # Make some words informative about some labels.
    B[:, 0] = np.maximum(B[:, 0], Y[:, 0])
    B[:, 1] = Y[:, 1] * (rng.random(n_docs) < 0.8)
    Y[:, -1] = 0  # a label without documents
    B[:, -1] = 1  # a word in every document
    return B, Y


def _brute_force(B, Y, normalize):
    n_docs, V = B.shape
    out = np.zeros((Y.shape[1], V))
    for l in range(Y.shape[1]):
        for t in range(V):
            b, y = B[:, t], Y[:, l]
            positive = (b * y).mean() > b.mean() * y.mean()
            if not positive:
                continue
            mi = mutual_info_score(b, y)
            h_t = mutual_info_score(b, b)  # entropy of a variable = I(X; X)
            h_l = mutual_info_score(y, y)
            if normalize == "none":
                out[l, t] = mi
            elif normalize == "joint_entropy":
                out[l, t] = mi / (h_t + h_l - mi) if h_t + h_l - mi > 0 else 0.0
            else:
                out[l, t] = mi / np.sqrt(h_t * h_l) if h_t * h_l > 0 else 0.0
    return out


@pytest.mark.parametrize("normalize", ["joint_entropy", "sqrt", "none"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mi_equals_brute_force(normalize, seed):
    B, Y = _random_corpus(seed)
    scores, token_df, label_df = mutual_information(
        sp.csr_matrix(B), sp.csr_matrix(Y), normalize=normalize, chunk_entries=50
    )
    expected = _brute_force(B, Y, normalize)
    np.testing.assert_allclose(scores.toarray(), expected, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(token_df, B.sum(axis=0))
    np.testing.assert_array_equal(label_df, Y.sum(axis=0))
    # Only positive associations are stored, and the empty label has none.
    assert (scores.data > 0).all()
    assert scores[Y.shape[1] - 1].nnz == 0


def test_top_k_keeps_best_words_per_label():
    B, Y = _random_corpus(3)
    full, _, _ = mutual_information(sp.csr_matrix(B), sp.csr_matrix(Y))
    top, _, _ = mutual_information(sp.csr_matrix(B), sp.csr_matrix(Y), top_k=3)
    full, top = full.toarray(), top.toarray()
    for l in range(Y.shape[1]):
        kept = np.flatnonzero(top[l])
        assert kept.size == min(3, np.count_nonzero(full[l]))
        if kept.size:
            # Every kept word scores at least as high as every dropped one.
            dropped = np.setdiff1d(np.flatnonzero(full[l]), kept)
            if dropped.size:
                assert full[l, kept].min() >= full[l, dropped].max()
            np.testing.assert_allclose(top[l, kept], full[l, kept])


def test_chunking_does_not_change_the_result():
    B, Y = _random_corpus(4)
    a, _, _ = mutual_information(sp.csr_matrix(B), sp.csr_matrix(Y), top_k=5, chunk_entries=1)
    b, _, _ = mutual_information(sp.csr_matrix(B), sp.csr_matrix(Y), top_k=5)
    np.testing.assert_array_equal(a.toarray(), b.toarray())


def test_log_scale_grades():
    scores = sp.csr_matrix(np.array([[0.9, 0.5, 0.0, 0.1, 0.3], [0, 0, 0, 0, 0], [0, 0.2, 0, 0, 0]]))
    g = log_scale_grades(scores, n_grades=10).toarray()
    assert g[0, 0] == 10  # best word, top grade
    # Grades follow the score order and stay within [1, n_grades].
    order = np.argsort(-scores.toarray()[0])[:4]
    assert list(g[0, order]) == sorted(g[0, order], reverse=True)
    assert g[0][scores.toarray()[0] > 0].min() >= 1
    assert g[1].sum() == 0
    assert g[2, 1] == 10
