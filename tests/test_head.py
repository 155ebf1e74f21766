"""The evidence head (plantlearn._head): its pairs, features, SVMs and weight, and its use by
PlantClassifier."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.svm import LinearSVC

from plantlearn import MIInitializer, PlantClassifier
from plantlearn._batches import collate
from plantlearn._head import (
    CONSTANT_LABEL_BIAS, EVIDENCE_SCALES, best_evidence_scale, cooccurrence_pairs,
    fit_restricted_svms, frequent_word_budget, head_features, selected_and_frequent_pairs,
    token_presence,
)
from plantlearn.datasets import make_multilabel_text


def _problem(seed=0, n=80, n_features=15):
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(rng.random((n, n_features)) * (rng.random((n, n_features)) < 0.4))
    Y = np.zeros((n, 5), dtype=int)
    Y[:, 0] = X[:, 0].toarray().ravel() > 0.2
    Y[:, 1] = (X[:, 3] + X[:, 4]).toarray().ravel() > 0.5
    Y[:, 2] = rng.random(n) < 0.3
    # label 3: never in training; label 4: on every document
    Y[:, 4] = 1
    support = sp.csr_matrix(np.array([
        [1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0] * 15,
        [1] + [0] * 14,
        [0, 1] + [0] * 13,
    ], dtype=float)[:, :n_features])
    return X, sp.csr_matrix(Y), support


def test_each_label_is_liblinear_on_its_own_columns():
    X, Y, support = _problem()
    weights, bias = fit_restricted_svms(X, Y, support, C=0.7)
    assert weights.shape == support.shape
    for label in (0, 1):
        cols = support[label].indices
        ref = LinearSVC(C=0.7, dual="auto", random_state=0)
        ref.fit(X[:, cols], Y[:, label].toarray().ravel())
        np.testing.assert_allclose(weights[label].toarray().ravel()[cols], ref.coef_.ravel(),
                                   rtol=1e-6, atol=1e-8)
        assert bias[label] == pytest.approx(ref.intercept_[0])
        # Nothing outside the label's support.
        outside = np.setdiff1d(np.arange(X.shape[1]), cols)
        assert not np.any(weights[label].toarray().ravel()[outside])


def test_labels_without_words_or_without_both_classes_get_a_sign_only():
    X, Y, support = _problem()
    weights, bias = fit_restricted_svms(X, Y, support)
    assert weights[2].nnz == 0 and bias[2] == -CONSTANT_LABEL_BIAS  # 30% positive, no words
    assert not np.any(weights[3].data) and bias[3] == -CONSTANT_LABEL_BIAS  # never seen
    assert not np.any(weights[4].data) and bias[4] == CONSTANT_LABEL_BIAS  # always on
    # The pattern is the support's, explicit zeros included, so positions map back.
    np.testing.assert_array_equal(weights.indptr, support.indptr)
    np.testing.assert_array_equal(weights.indices, support.indices)


def test_mismatched_shapes_are_refused():
    X, Y, support = _problem()
    with pytest.raises(ValueError, match="shapes do not match"):
        fit_restricted_svms(X[:10], Y, support)
    with pytest.raises(ValueError, match="shapes do not match"):
        fit_restricted_svms(X, Y, support[:, :5])


def test_progress_callback_reaches_every_label():
    X, Y, support = _problem()
    calls = []
    fit_restricted_svms(X, Y, support, callback=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (5, 5)


@pytest.fixture(scope="module")
def linear_fit():
    X, Y = make_multilabel_text(n_samples=240, n_labels=6, vocab_size=60, length=(15, 40),
                                random_state=1)
    clf = PlantClassifier(max_iter=2, embed_dim=16, hidden_size=8,
                          batch_size=32, random_state=0).fit(X, Y)
    return clf, X, Y


def test_classifier_head_is_the_svms_of_the_training_carve(linear_fit):
    clf, X, Y = linear_fit
    head = clf.net_.evidence
    docs = _encode(clf, X)
    train = _carve_train(clf, len(docs))
    seed = int(np.random.RandomState(0).randint(0, 2**31 - 1))  # fit()'s seed for random_state=0
    features = head_features(head, [docs[i] for i in train], batch_size=16,
                             max_length=clf.max_length)
    tokens = head.pair_tokens()
    labels = head.pair_label.numpy()
    for label in range(Y.shape[1]):
        cols = np.sort(tokens[labels == label])
        ref = LinearSVC(dual="auto", random_state=seed)
        ref.fit(features[:, cols], Y[train][:, label].toarray().ravel())
        fitted = head.weight.detach().numpy()[labels == label][np.argsort(tokens[labels == label])]
        np.testing.assert_allclose(fitted, ref.coef_.ravel(), rtol=1e-4, atol=1e-5)
        assert float(head.bias[label]) == pytest.approx(ref.intercept_[0], rel=1e-4, abs=1e-5)
    # The head's term is the SVMs' decision function on the same features.
    W = np.zeros((Y.shape[1], head.token_ptr.numel() - 1))
    W[labels, tokens] = head.weight.detach().numpy()
    some = docs[:7]
    with torch.no_grad():
        term = head(collate(some, clf.max_length)).numpy()
    expected = head_features(head, some, batch_size=4, max_length=clf.max_length) @ W.T
    np.testing.assert_allclose(term, expected + head.bias.numpy(), rtol=1e-5, atol=1e-5)
    assert clf.evidence_scale_ in EVIDENCE_SCALES


def test_linear_head_stays_frozen_while_the_network_trains():
    X, Y = make_multilabel_text(n_samples=200, n_labels=5, vocab_size=50, length=(10, 30),
                                random_state=2)
    params = dict(embed_dim=8, hidden_size=8, batch_size=32, random_state=0)
    one = PlantClassifier(max_iter=1, **params).fit(X, Y)
    three = PlantClassifier(max_iter=3, **params).fit(X, Y)
    torch.testing.assert_close(one.net_.evidence.weight, three.net_.evidence.weight)
    torch.testing.assert_close(one.net_.evidence.bias, three.net_.evidence.bias)
    assert not torch.equal(one.net_.attention.queries, three.net_.attention.queries)


# ------------------------------------------------ the head's words


def test_cooccurrence_pairs_keep_each_labels_most_frequent_words():
    presence = sp.csr_matrix(np.array([
        [1, 1, 0, 0, 3],   # counts above 1 still mean "present"
        [1, 0, 1, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
    ]))
    Y = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]))
    labels, words = cooccurrence_pairs(presence, Y)
    # Label 0: word 1 and 2 twice, 0 twice, 4 once; label 1: words 1, 2, 3 once; label 2: none.
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert words.tolist() == [0, 1, 2, 4, 1, 2, 3]
    # The cap keeps the words in the most documents, ties to the smaller id.
    labels, words = cooccurrence_pairs(presence, Y, max_per_label=2)
    assert labels.tolist() == [0, 0, 1, 1]
    assert words.tolist() == [0, 1, 1, 2]
    # Counted a block of labels at a time, the same pairs.
    for block in (1, 2):
        got = cooccurrence_pairs(presence, Y, max_per_label=2, block_size=block)
        assert [g.tolist() for g in got] == [[0, 0, 1, 1], [0, 1, 1, 2]]
    # One bound per label: label 0 keeps 3 words, label 1 none.
    labels, words = cooccurrence_pairs(presence, Y, max_per_label=[3, 0, 5])
    assert labels.tolist() == [0, 0, 0]
    assert words.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="documents"):
        cooccurrence_pairs(presence[:3], Y)
    # Feature values (tf-idf) may be passed as presence; they are left untouched.
    features = sp.csr_matrix(presence, dtype=np.float64) * 0.5
    cooccurrence_pairs(features, Y)
    np.testing.assert_array_equal(features.toarray(), presence.toarray() * 0.5)


def test_frequent_word_budget_grows_with_the_labels_documents():
    budget = frequent_word_budget([0, 3, 100, 101, 350, 5000], 100, cap=1000)
    assert budget.tolist() == [0, 0, 0, 1, 250, 900]
    assert frequent_word_budget([7], 5, cap=6).tolist() == [1]
    assert frequent_word_budget([30, 60], 100, per_document=2.5).tolist() == [0, 50]


def test_selected_and_frequent_pairs_is_the_union_with_a_budget():
    presence = sp.csr_matrix(np.array([
        [1, 1, 0, 0, 1],
        [1, 0, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
    ]))
    Y = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 1], [0, 1]]))
    selected = sp.csr_matrix(np.array([[0, 0, 0, 0, 1], [0, 0, 0, 1, 0]]))
    # One selected word each: label 0 (3 documents) adds its 2 most frequent words (0 in 3
    # documents; 1 and 2 in two, the smaller id first), label 1 (2 documents) adds one.
    labels, words = selected_and_frequent_pairs(selected, presence, Y, n_selected=1)
    assert list(zip(labels.tolist(), words.tolist())) == [(0, 0), (0, 1), (0, 4), (1, 0),
                                                          (1, 3)]
    # An explicitly stored zero in Y is not a document of the label.
    Y_stored_zero = Y.tolil()
    Y_stored_zero[3, 0] = 1
    Y_stored_zero = Y_stored_zero.tocsr()
    Y_stored_zero.data[Y_stored_zero.indices == 0] = [1, 1, 1, 0]
    got = selected_and_frequent_pairs(selected, presence, Y_stored_zero, n_selected=1)
    assert [g.tolist() for g in got] == [labels.tolist(), words.tolist()]
    # No budget (labels with at most n_selected documents) leaves the selection.
    labels, words = selected_and_frequent_pairs(selected, presence, Y, n_selected=3)
    assert list(zip(labels.tolist(), words.tolist())) == [(0, 4), (1, 3)]
    # A selected word that is also frequent is one pair.
    selected = sp.csr_matrix(np.array([[1, 0, 0, 0, 1], [0, 0, 0, 1, 0]]))
    labels, words = selected_and_frequent_pairs(selected, presence, Y, n_selected=1)
    assert list(zip(labels.tolist(), words.tolist())) == [(0, 0), (0, 1), (0, 4), (1, 0),
                                                          (1, 3)]


def test_token_presence_ignores_padding_and_unknown_words():
    docs = [[np.array([2, 5, 5, 1], dtype=np.int32), np.array([0, 3], dtype=np.int32)], [],
            [np.array([1, 1], dtype=np.int32)]]
    P = token_presence(docs, n_vocab=7)
    assert P.shape == (3, 7)
    assert P.toarray().tolist() == [[0, 0, 1, 1, 0, 1, 0], [0] * 7, [0] * 7]


def _encode(clf, X):
    return clf.tokenizer_.encode_chunks(X, max_length=clf.max_length, max_chunks=clf.max_chunks)


def _carve_train(clf, n):
    """The training part of the fit's validation carve."""
    return np.setdiff1d(np.arange(n), clf.validation_indices_)


def _head_pairs(clf):
    head = clf.net_.evidence
    return set(zip(head.pair_label.numpy().tolist(), head.pair_tokens().tolist()))


def test_the_control_has_plants_head_and_cooccurrence_takes_nothing_from_stage_one():
    X, Y = make_multilabel_text(n_samples=120, n_labels=4, vocab_size=60, length=(8, 20),
                                random_state=3)
    params = dict(max_iter=1, embed_dim=8, hidden_size=8, random_state=0,
                  mi=MIInitializer(top_k=200))
    plant = PlantClassifier(**params).fit(X, Y)
    control = PlantClassifier(plant=False, **params).fit(X, Y)
    cooc = PlantClassifier(plant=False, evidence_pairs="cooccurrence", **params).fit(X, Y)
    mi_pairs = plant.mi_.mi_.tocoo()
    # top_k above every label's document count: the MI words alone.
    assert _head_pairs(plant) == set(zip(mi_pairs.row.tolist(), mi_pairs.col.tolist()))
    # The control differs in how attention starts, nothing else: the same head.
    assert _head_pairs(control) == _head_pairs(plant)
    torch.testing.assert_close(control.net_.evidence.weight, plant.net_.evidence.weight)
    assert not torch.equal(control.net_.attention.queries, plant.net_.attention.queries)
    # The co-occurrence head: every word of a label's documents in the training carve.
    docs = _encode(cooc, X)
    train = _carve_train(cooc, len(docs))
    Y_tr = sp.csr_matrix(Y)[train]
    expected = set()
    for i, row in enumerate(train):
        words = {int(w) for chunk in docs[row] for w in chunk if w > 1}
        expected |= {(int(label), w) for label in Y_tr[i].indices for w in words}
    assert _head_pairs(cooc) == expected
    assert len(expected) > len(_head_pairs(plant))
    assert cooc.predict_proba(X[:3]).shape == (3, 4)


def test_plant_head_adds_frequent_words_for_labels_with_many_documents():
    X, Y = make_multilabel_text(n_samples=120, n_labels=4, vocab_size=60, length=(8, 20),
                                random_state=3)
    top_k = 5
    params = dict(max_iter=1, embed_dim=8, hidden_size=8, random_state=0,
                  mi=MIInitializer(top_k=top_k))
    plant = PlantClassifier(**params).fit(X, Y)
    mi_only = PlantClassifier(evidence_pairs="mi", **params).fit(X, Y)
    mi_pairs = plant.mi_.mi_.tocoo()
    assert _head_pairs(mi_only) == set(zip(mi_pairs.row.tolist(), mi_pairs.col.tolist()))
    # Expected: each label's MI words, and its words in the most training-carve documents,
    # one per document beyond top_k (ties: the smaller id).
    docs = _encode(plant, X)
    train = _carve_train(plant, len(docs))
    Y_tr = sp.csr_matrix(Y)[train]
    expected = set(_head_pairs(mi_only))
    for label in range(Y.shape[1]):
        rows = train[Y_tr[:, label].nonzero()[0]]
        counts = {}
        for row in rows:
            for w in {int(w) for chunk in docs[row] for w in chunk if w > 1}:
                counts[w] = counts.get(w, 0) + 1
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        expected |= {(label, w) for w in ranked[:max(0, len(rows) - top_k)]}
    assert _head_pairs(plant) == expected
    assert len(expected) > len(_head_pairs(mi_only))
    # Labels with at most top_k documents keep the MI words alone.
    few = PlantClassifier(**{**params, "mi": MIInitializer(top_k=1000)}).fit(X, Y)
    few_mi = few.mi_.mi_.tocoo()
    assert _head_pairs(few) == set(zip(few_mi.row.tolist(), few_mi.col.tolist()))


# ------------------------------------------------ cross-validated margin thresholds (SCutFBR)


def test_scut_fbr_thresholds_tune_f1_and_guard_hopeless_labels():
    from plantlearn._thresholds import scut_fbr_thresholds

    Y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    S = np.array([[2.0, 0.9, 0.1], [1.5, 0.0, 0.2], [0.5, 1.0, 0.3], [-1.0, 0.8, 0.0],
                  [-2.0, 0.7, 0.4]])
    thr = scut_fbr_thresholds(Y, S, fbr=0.5, fallback=-7.0)
    # Label 0: F1 1 by cutting between 1.5 and 0.5 (the midpoint).
    assert thr[0] == pytest.approx(1.0)
    # Label 1: its positive scores lowest; the best F1 (2/6, predicting everything) is
    # below fbr, so the threshold is the label's highest held-out score.
    assert thr[1] == pytest.approx(1.0)
    # Label 2: no positive, the fallback.
    assert thr[2] == -7.0
    # With fbr 0 the F1-optimal cut stands, however poor: at the positive's score.
    assert scut_fbr_thresholds(Y, S, fbr=0.0)[1] == 0.0


def test_cross_validated_thresholds_are_out_of_fold_scut_fbr():
    from plantlearn._head import cross_validated_thresholds
    from plantlearn._thresholds import scut_fbr_thresholds

    X, Y, support = _problem(seed=1, n=90)
    got = cross_validated_thresholds(X, Y, support, n_folds=3, fbr=0.1, C=0.5,
                                     random_state=4)
    # Reference: the same folds, each held-out fold scored by SVMs fitted on the others.
    folds = np.array_split(np.random.default_rng(4).permutation(90), 3)
    oof = np.zeros(Y.shape)
    for k, held in enumerate(folds):
        fit = np.setdiff1d(np.arange(90), held)
        W, b = fit_restricted_svms(X[fit], Y[fit], support, C=0.5, random_state=4)
        oof[held] = (X[held] @ W.T).toarray() + b
    expected = scut_fbr_thresholds(Y, oof, fbr=0.1)
    np.testing.assert_allclose(got[:3], expected[:3])
    # Labels never or always seen keep the SVM's own boundary.
    assert got[3] == 0.0 and got[4] == 0.0
    # Two joblib workers give the same answer.
    np.testing.assert_allclose(
        cross_validated_thresholds(X, Y, support, C=0.5, random_state=4, n_jobs=2), got)


def test_per_label_work_gives_the_same_head_on_any_joblib_backend():
    from joblib import parallel_backend

    from plantlearn._head import fit_label_svms

    X, Y, support = _problem(seed=2, n=120)
    serial = fit_label_svms(X, Y, support, C=0.5, random_state=1, margin_thresholds=True)
    calls = []
    parallel = fit_label_svms(X, Y, support, C=0.5, random_state=1, margin_thresholds=True,
                              n_jobs=2, callback=lambda done, total: calls.append(done))
    with parallel_backend("threading", n_jobs=2):
        threaded = fit_label_svms(X, Y, support, C=0.5, random_state=1,
                                  margin_thresholds=True, n_jobs=-1)
    for other in (parallel, threaded):
        assert (other[0] != serial[0]).nnz == 0
        np.testing.assert_array_equal(other[1], serial[1])
        np.testing.assert_array_equal(other[2], serial[2])
    assert calls[-1] == Y.shape[1] and calls == sorted(calls)


def test_auto_cuts_are_one_cut_on_offset_logits(linear_fit):
    fitted, X, Y = linear_fit
    Y = sp.csr_matrix(Y)
    train = _carve_train(fitted, len(X))
    counts = np.asarray(Y[train].sum(axis=0)).ravel()
    assert np.all((counts > 0) & (counts < train.size))
    prior_odds = np.log(counts / (train.size - counts))
    no_head = PlantClassifier(evidence_head=False, max_iter=1, embed_dim=16, hidden_size=8,
                              batch_size=32, random_state=0).fit(X, Y)
    assert no_head.evidence_thresholds_ is None
    for clf, offsets in (
        (fitted, prior_odds + fitted.evidence_scale_ * fitted.evidence_thresholds_),
        (no_head, prior_odds),
    ):
        # Each label's cut minus its offset is one cut shared by every label.
        cut = clf.decision_rule_.cuts_ - offsets
        np.testing.assert_allclose(cut, cut[0], atol=1e-6)
        assert clf.threshold_ == 0.5
    # The head's thresholds are its SVMs' cross-validated ones, not a constant.
    assert np.ptp(fitted.evidence_thresholds_) > 0


def test_best_evidence_scale_follows_the_validation_data():
    rng = np.random.default_rng(0)
    Y = sp.csr_matrix((rng.random((60, 8)) < 0.2).astype(int))
    signal = Y.toarray() + 0.1 * rng.standard_normal((60, 8))
    noise = rng.standard_normal((60, 8))

    def batches(attention, evidence, size=7):
        for s in range(0, 60, size):
            idx = np.arange(s, min(s + size, 60))
            yield idx, (torch.as_tensor(attention[idx], dtype=torch.float32),
                        torch.as_tensor(evidence[idx], dtype=torch.float32))

    # A head that carries the signal gets a weight (ties: the smallest that ranks as well),
    # a noisy one none.
    scale, _ = best_evidence_scale(batches(noise * 0.01, signal), Y)
    assert scale == 0.5
    scale, _ = best_evidence_scale(batches(noise, signal), Y)
    assert scale >= 4.0
    scale, score = best_evidence_scale(batches(signal, noise), Y)
    assert scale == 0.0
    from plantlearn.metrics import ndcg_at_k

    # Streamed in batches, the score is nDCG@5 of the whole matrix.
    assert score == pytest.approx(ndcg_at_k(Y, signal.astype(np.float32), k=5))
