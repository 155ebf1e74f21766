"""Behaviour of PLANT's stage 1: MIInitializer (MI ranking) and LTRPretrainer (learning to rank).

Every corpus here is tiny and synthetic (``make_multilabel_text``), and every training run a few
epochs, so the module runs in seconds on two CPU cores. Results are deterministic for a fixed
``random_state`` on CPU, so the quality checks below are exact reruns, not flaky draws.
"""

import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from plantlearn import LTRPretrainer, MIInitializer, PlantInput
from plantlearn.datasets import make_multilabel_text

N_LABELS = 5


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These models are tiny: threads only add OpenMP spinning, which costs 100x on a busy box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def evidence_corpus():
    """Short documents whose labels are each signalled by a few hidden evidence words."""
    return make_multilabel_text(
        n_samples=200, n_labels=N_LABELS, vocab_size=100, length=(20, 40),
        return_evidence=True, random_state=0,
    )


@pytest.fixture(scope="module")
def fitted_mi(evidence_corpus):
    X, Y, _ = evidence_corpus
    return MIInitializer(top_k=20).fit(X, Y)


# ------------------------------------------------------------------------------ MIInitializer


def test_mi_top_word_of_every_label_is_evidence(evidence_corpus, fitted_mi):
    _, _, evidence = evidence_corpus
    for label in range(N_LABELS):
        (word, score), = fitted_mi.top_tokens(label, n=1)
        assert word in evidence[label], (label, word, evidence[label])
        assert score > 0


def test_mi_keeps_at_most_top_k_positive_words_per_label(fitted_mi):
    mi = fitted_mi.mi_
    assert mi.shape == (N_LABELS, len(fitted_mi.vocabulary_))
    assert np.diff(mi.indptr).max() <= 20
    assert np.all(mi.data > 0)
    # joint-entropy normalisation keeps scores in (0, 1].
    assert np.all(mi.data <= 1.0 + 1e-12)
    # padding and [UNK] carry no evidence and are never ranked.
    assert not np.isin(mi.indices, [0, 1]).any()


def test_mi_grades_share_sparsity_and_best_word_gets_top_grade(fitted_mi):
    mi, grades = fitted_mi.mi_, fitted_mi.grades_
    np.testing.assert_array_equal(grades.indptr, mi.indptr)
    np.testing.assert_array_equal(grades.indices, mi.indices)
    for label in range(N_LABELS):
        s, e = mi.indptr[label], mi.indptr[label + 1]
        best = mi.indices[s:e][np.argmax(mi.data[s:e])]
        assert grades[label, best] == fitted_mi.n_grades
        assert grades.data[s:e].min() >= 1


def test_mi_vocabulary_maps_words_to_mi_columns(fitted_mi):
    vocab = fitted_mi.vocabulary_
    assert sorted(vocab.values()) == list(range(fitted_mi.mi_.shape[1]))
    assert vocab["[PAD]"] == 0 and vocab["[UNK]"] == 1
    for label in range(N_LABELS):
        for word, score in fitted_mi.top_tokens(label, n=5):
            assert fitted_mi.mi_[label, vocab[word]] == pytest.approx(score, abs=0)


def test_mi_top_tokens_are_sorted_and_truncated(fitted_mi):
    for label in range(N_LABELS):
        pairs = fitted_mi.top_tokens(label, n=7)
        assert len(pairs) == min(7, fitted_mi.mi_[label].nnz)
        scores = [s for _, s in pairs]
        assert scores == sorted(scores, reverse=True)
        # The best 7 of the whole row, not some 7.
        row = np.sort(fitted_mi.mi_[label].data)[::-1][: len(pairs)]
        np.testing.assert_allclose(scores, row)


def test_mi_top_tokens_by_index_and_by_name():
    X, Y = make_multilabel_text(n_samples=120, n_labels=4, vocab_size=60, length=(15, 30),
                                random_state=1)
    names = np.array(["bird", "cat", "dog", "eel"])
    label_lists = [[names[j] for j in Y[i].indices] for i in range(Y.shape[0])]
    mi_names = MIInitializer(top_k=10).fit(X, label_lists)
    mi_index = MIInitializer(top_k=10).fit(X, Y)
    np.testing.assert_array_equal(mi_names.classes_, names)
    for j, name in enumerate(names):
        assert mi_names.top_tokens(name, n=5) == mi_names.top_tokens(j, n=5)
        # Label lists and the indicator matrix describe the same data.
        assert mi_names.top_tokens(name, n=5) == mi_index.top_tokens(j, n=5)
    with pytest.raises(ValueError, match="unknown label 'fox'"):
        mi_names.top_tokens("fox")
    with pytest.raises(ValueError, match="out of range"):
        mi_names.top_tokens(4)


def test_mi_label_without_documents_is_reported_and_empty():
    X, Y = make_multilabel_text(n_samples=80, n_labels=3, vocab_size=60, length=(15, 30),
                                random_state=2)
    Y = sp.hstack([Y, sp.csr_matrix((Y.shape[0], 1), dtype=Y.dtype)]).tocsr()
    mi = MIInitializer(top_k=10).fit(X, Y)
    np.testing.assert_array_equal(mi.empty_labels_, [3])
    assert mi.label_document_frequency_[3] == 0
    assert mi.mi_[3].nnz == 0 and mi.grades_[3].nnz == 0
    assert mi.top_tokens(3) == []
    assert all(mi.top_tokens(j) for j in range(3))


def test_mi_keeps_exactly_the_positively_associated_pairs_with_their_scores():
    """Brute force over documents: the 2x2 table of every (label, word) pair."""
    X, Y = make_multilabel_text(n_samples=50, n_labels=3, vocab_size=30, length=(5, 15),
                                random_state=5)
    mi = MIInitializer(top_k=10_000).fit(X, Y)
    B = np.zeros((len(X), len(mi.vocabulary_)), dtype=bool)
    for i, ids in enumerate(mi.tokenizer_.encode(X)):
        B[i, ids] = True
    B[:, :2] = False  # padding and [UNK]
    Yd = Y.toarray().astype(bool)
    N = len(X)
    expected = np.zeros((3, B.shape[1]))
    for label in range(3):
        for t in range(B.shape[1]):
            n11 = np.sum(B[:, t] & Yd[:, label])
            df_t, df_l = B[:, t].sum(), Yd[:, label].sum()
            if n11 * N <= df_t * df_l:
                continue  # not positively associated: dropped
            p = np.array([[n11, df_t - n11], [df_l - n11, N - df_t - df_l + n11]]) / N
            marg = np.outer([df_t / N, 1 - df_t / N], [df_l / N, 1 - df_l / N])
            nz = p > 0
            info = np.sum(p[nz] * np.log(p[nz] / marg[nz]))
            joint = -np.sum(p[nz] * np.log(p[nz]))
            expected[label, t] = info / joint
    np.testing.assert_allclose(mi.mi_.toarray(), expected, rtol=1e-9, atol=1e-12)
    assert mi.mi_.nnz == np.count_nonzero(expected) > 0


def test_mi_document_frequencies_count_documents(fitted_mi, evidence_corpus):
    X, Y, _ = evidence_corpus
    np.testing.assert_array_equal(fitted_mi.label_document_frequency_,
                                  np.asarray(Y.sum(axis=0)).ravel())
    vocab = fitted_mi.vocabulary_
    word = fitted_mi.top_tokens(0, n=1)[0][0]
    n_docs = sum(word in doc.split() for doc in X)
    assert fitted_mi.token_document_frequency_[vocab[word]] == n_docs
    assert fitted_mi.n_documents_ == len(X)


def test_mi_transform_wraps_texts_with_the_fitted_step(fitted_mi, evidence_corpus):
    X = evidence_corpus[0]
    out = fitted_mi.transform(X[:7])
    assert isinstance(out, PlantInput)
    assert out.mi is fitted_mi and out.ltr is None
    assert list(out) == X[:7]
    # Predicting on nothing is allowed (an empty test fold), fitting on nothing is not.
    assert len(fitted_mi.transform([])) == 0


def test_mi_empty_documents_warn_and_all_empty_corpus_raises(evidence_corpus):
    X, Y, _ = evidence_corpus
    X = list(X)
    X[0] = ""
    X[1] = "  ,;  "
    with pytest.warns(UserWarning, match="2 of 200 training documents are empty"):
        MIInitializer(top_k=5).fit(X, Y)
    with pytest.raises(ValueError, match="empty|no word"):
        MIInitializer().fit(["", " ", "..."], [[1], [1], [0]])


def test_mi_fit_on_plant_input_uses_its_texts(fitted_mi, evidence_corpus):
    X, Y, _ = evidence_corpus
    refit = MIInitializer(top_k=20).fit(fitted_mi.transform(X), Y)
    assert refit is not fitted_mi
    assert (refit.mi_ != fitted_mi.mi_).nnz == 0


# ------------------------------------------------------------------------------ LTRPretrainer


@pytest.fixture(scope="module")
def ranking_corpus():
    """Many labels over a small vocabulary, so that labels share words and ranks generalise."""
    X, Y = make_multilabel_text(n_samples=200, n_labels=20, vocab_size=60, length=(20, 40),
                                random_state=0)
    return X, Y, MIInitializer(top_k=30).fit(X, Y)


@pytest.fixture(scope="module")
def trained_ltr(ranking_corpus):
    X, Y, mi = ranking_corpus
    ltr = LTRPretrainer(n_factors=8, max_iter=8, batch_size=4, learning_rate=0.05,
                        validation_fraction=0.2, random_state=0)
    return ltr.fit(mi.transform(X), Y)


def test_ltr_improves_held_out_ndcg_over_untrained_model(trained_ltr):
    ltr = trained_ltr
    assert ltr.best_validation_score_ > ltr.untrained_validation_score_ + 0.05
    assert ltr.holdout_ndcg(10) > ltr.holdout_ndcg(10, untrained=True) + 0.05


def test_ltr_reports_consistent_history(trained_ltr):
    ltr = trained_ltr
    assert ltr.n_iter_ == len(ltr.loss_curve_) == len(ltr.validation_scores_)
    assert 1 <= ltr.n_iter_ <= 8
    assert ltr.best_validation_score_ == pytest.approx(max(ltr.validation_scores_))
    # The kept factors are the best epoch's: rescoring them reproduces the best score, and the
    # untrained model rebuilt from the seed reproduces the untrained score.
    assert ltr.holdout_ndcg(ltr.ndcg_k) == pytest.approx(ltr.best_validation_score_, abs=1e-6)
    assert ltr.holdout_ndcg(ltr.ndcg_k, untrained=True) == pytest.approx(
        ltr.untrained_validation_score_, abs=1e-6)


def test_ltr_factor_shapes_and_scores(trained_ltr, ranking_corpus):
    ltr, mi = trained_ltr, ranking_corpus[2]
    V, L = len(mi.vocabulary_), 20
    assert ltr.token_factors_.shape == (V, 8) and ltr.label_factors_.shape == (L, 8)
    assert ltr.token_bias_.shape == (V,) and ltr.label_bias_.shape == (L,)
    s = ltr.scores(3)
    expected = ltr.token_factors_ @ ltr.label_factors_[3] + ltr.token_bias_ + ltr.label_bias_[3]
    np.testing.assert_allclose(s, expected, rtol=1e-6)
    top = ltr.top_tokens(3, n=5)
    assert len(top) == 5
    assert all(word not in ("[PAD]", "[UNK]") for word, _ in top)
    assert [w for w, _ in top] == [mi.tokenizer_.id_to_token(int(i))
                                   for i in np.argsort(-s[2:], kind="stable")[:5] + 2]


def test_ltr_reuses_upstream_mi_and_passes_itself_on(trained_ltr, ranking_corpus):
    X, _, mi = ranking_corpus
    assert trained_ltr.mi_ is mi
    out = trained_ltr.transform(X[:4])
    assert isinstance(out, PlantInput)
    assert out.ltr is trained_ltr and out.mi is mi
    assert list(out) == X[:4]


def test_ltr_on_raw_text_fits_a_clone_of_its_mi_parameter():
    X, Y = make_multilabel_text(n_samples=80, n_labels=4, vocab_size=50, length=(10, 25),
                                random_state=3)
    mi_param = MIInitializer(top_k=3)
    ltr = LTRPretrainer(n_factors=4, max_iter=1, mi=mi_param, random_state=0).fit(X, Y)
    assert ltr.mi_ is not mi_param
    assert not hasattr(mi_param, "mi_"), "the parameter object itself must stay unfitted"
    assert np.diff(ltr.mi_.grades_.indptr).max() <= 3
    assert ltr.token_factors_.shape[0] == len(ltr.mi_.vocabulary_)


def test_ltr_nested_mi_parameter_is_tunable():
    ltr = LTRPretrainer(mi=MIInitializer())
    ltr.set_params(mi__top_k=7)
    assert ltr.get_params()["mi__top_k"] == 7


def test_ltr_n_positives_must_be_smaller_than_list_size(ranking_corpus):
    X, Y, mi = ranking_corpus
    for n_pos, size in [(8, 8), (9, 8)]:
        with pytest.raises(ValueError, match="n_positives=.* must be smaller than list_size"):
            LTRPretrainer(n_positives=n_pos, list_size=size).fit(mi.transform(X), Y)


def test_ltr_label_count_must_match_upstream_mi(ranking_corpus):
    X, Y, mi = ranking_corpus
    with pytest.raises(ValueError, match="Y has 19 labels but the upstream MIInitializer"):
        LTRPretrainer(max_iter=1).fit(mi.transform(X), Y[:, :19])


def test_ltr_without_validation_keeps_last_epoch():
    X, Y = make_multilabel_text(n_samples=80, n_labels=4, vocab_size=50, length=(10, 25),
                                random_state=4)
    mi = MIInitializer(top_k=10).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN-mean warnings without a validation split
        ltr = LTRPretrainer(n_factors=4, max_iter=2, validation_fraction=0.0,
                            random_state=0).fit(mi.transform(X), Y)
    assert ltr.n_iter_ == 2
    assert np.isnan(ltr.best_validation_score_)
    assert np.all(np.isfinite(ltr.token_factors_))


def test_fitted_stages_hash_the_same_after_a_joblib_round_trip(fitted_mi, trained_ltr, tmp_path):
    """Pipeline(memory=...) finds a cached step by the joblib hash of its input, which for the
    step after MIInitializer (or LTRPretrainer) is the fitted step itself: computed in memory on
    the first fit, loaded back from the cache (joblib.dump/load) on the next.

    (Empty arrays are the trap: numpy gives fresh ones strides (0,), views of others (8,), and
    the hash includes strides. A plain pickle round trip restores (8,), so it is not compared.)
    """
    for est in (fitted_mi, trained_ltr):
        joblib.dump(est, tmp_path / "est.joblib")
        assert joblib.hash(joblib.load(tmp_path / "est.joblib")) == joblib.hash(est)
    assert fitted_mi.empty_labels_.size == 0  # the case that broke the cache
