"""plantlearn.model_selection: cross-validation on CSR, dense and label-list targets.

PlantClassifier fits here are one epoch of an 8-unit model on 90 short synthetic documents
(about half a second each on one core); the argument checks use a numpy stand-in estimator.
"""

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, KFold

from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier, PlantInput
from plantlearn import metrics as M
from plantlearn.datasets import make_multilabel_text
from plantlearn.model_selection import cross_val_score, cross_validate

NAMES = np.array(["art", "bio", "chem", "dance"])  # sorted: classes_ keep the column order


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_text(n_samples=90, n_labels=4, vocab_size=50, length=(10, 30),
                                random_state=0)
    lists = [[str(NAMES[j]) for j in Y[i].indices] for i in range(Y.shape[0])]
    return X, Y, lists


def small_clf(**params):
    base = {
        "max_iter": 1, "embed_dim": 8, "hidden_size": 8, "max_length": 32, "random_state": 0,
        "mi": MIInitializer(top_k=10), "ltr": LTRPretrainer(n_factors=4, max_iter=1),
    }
    return PlantClassifier(**{**base, **params})


# ------------------------------------------------------------------ PlantClassifier


def test_cross_val_score_on_every_target_format(data):
    X, Y, lists = data
    scorer = M.precision_at_k_scorer(1)
    by_format = {
        name: cross_val_score(small_clf(), X, y, scoring=scorer, cv=3)
        for name, y in (("csr", Y), ("dense", Y.toarray()), ("lists", lists))
    }
    for scores in by_format.values():
        assert scores.shape == (3,) and scores.dtype == np.float64
    # Same folds, same seed, same label columns: the same models and the same scores.
    np.testing.assert_array_equal(by_format["csr"], by_format["dense"])
    np.testing.assert_array_equal(by_format["csr"], by_format["lists"])
    # The fold scores are P@1 of a clone fitted on KFold(3)'s training part.
    train, test = next(KFold(3).split(X))
    model = small_clf().fit([X[i] for i in train], Y[train])
    expected = M.precision_at_k(Y[test], model.decision_function([X[i] for i in test]), k=1)
    assert by_format["csr"][0] == expected
    assert 0.25 < expected <= 1.0


def test_cross_validate_structure_and_values_on_label_lists(data):
    X, _, lists = data
    clf = small_clf()
    result = cross_validate(
        clf, X, lists, cv=3, return_estimator=True, return_train_score=True,
        scoring={"p@1": M.precision_at_k_scorer(1), "f1": M.micro_f1_scorer()},
    )
    # scikit-learn's structure and key order.
    assert list(result) == [
        "fit_time", "score_time", "estimator", "test_p@1", "train_p@1", "test_f1", "train_f1",
    ]
    for key in ("fit_time", "score_time", "test_p@1", "train_p@1", "test_f1", "train_f1"):
        assert isinstance(result[key], np.ndarray) and result[key].shape == (3,), key
    assert np.all(result["fit_time"] > 0)
    assert not hasattr(clf, "classes_")  # the estimator itself is cloned, never fitted
    folds = list(KFold(3).split(X))
    for i, ((train, test), model) in enumerate(zip(folds, result["estimator"], strict=True)):
        assert model is not clf
        np.testing.assert_array_equal(model.classes_, NAMES)
        for part, idx in (("test", test), ("train", train)):
            docs, truth = [X[j] for j in idx], [lists[j] for j in idx]
            assert result[f"{part}_p@1"][i] == M.precision_at_k(
                truth, model.decision_function(docs), k=1, classes=model.classes_
            ), (part, i)
    # The F1 side compares predicted label lists with the true ones.
    model, test = result["estimator"][2], folds[2][1]
    pred = model.predict([X[i] for i in test])
    assert isinstance(pred, list)
    assert result["test_f1"][2] == M.micro_f1([lists[i] for i in test], pred,
                                              classes=model.classes_)


def test_default_score_is_the_estimators_score(data):
    X, Y, lists = data
    result = cross_validate(small_clf(), X, lists, cv=KFold(2), return_estimator=True)
    assert list(result) == ["fit_time", "score_time", "estimator", "test_score"]
    for (_, test), model, score in zip(KFold(2).split(X), result["estimator"],
                                       result["test_score"], strict=True):
        docs = [X[i] for i in test]
        assert score == model.score(docs, [lists[i] for i in test])
        # ... subset accuracy, the same on the indicator rows
        assert score == model.score(docs, Y[test])
    assert np.array_equal(cross_val_score(small_clf(), X, lists, cv=KFold(2)),
                          result["test_score"])


def test_grid_search_on_label_lists_with_the_scorers(data):
    X, _, lists = data
    search = GridSearchCV(
        small_clf(), {"hidden_size": [8, 12]}, scoring=M.precision_at_k_scorer(1), cv=KFold(2),
        error_score="raise",
    )
    search.fit(X, lists)
    results = search.cv_results_
    assert not np.isnan(results["mean_test_score"]).any()
    # scikit-learn's fold scores for hidden_size=8 are ours for the same folds.
    ours = cross_val_score(small_clf(), X, lists, scoring=M.precision_at_k_scorer(1),
                           cv=KFold(2))
    first = results["params"].index({"hidden_size": 8})
    np.testing.assert_array_equal(
        [results["split0_test_score"][first], results["split1_test_score"][first]], ours
    )
    best = search.best_estimator_
    np.testing.assert_array_equal(best.classes_, NAMES)
    assert search.score(X, lists) == M.precision_at_k(
        lists, best.decision_function(X), k=1, classes=best.classes_
    )


# ------------------------------------------------------------------ a numpy stand-in


class MeanRanker(ClassifierMixin, BaseEstimator):
    """Ranks labels by training frequency plus `noise` times the first columns of X; records
    the types it was fitted on."""

    def __init__(self, noise=1.0):
        self.noise = noise

    def fit(self, X, Y=None):
        self.X_type_ = type(X)
        self.Y_type_ = type(Y)
        Y = np.zeros((len(X), 3)) if Y is None else Y
        Y = Y.toarray() if sp.issparse(Y) else np.asarray(Y)
        self.freq_ = Y.mean(axis=0)
        self.classes_ = np.arange(Y.shape[1])
        return self

    def decision_function(self, X):
        X = np.asarray(X, dtype=float)
        return self.freq_[None, :] + self.noise * X[:, : self.freq_.size]

    def predict(self, X):
        return (self.decision_function(X) >= 0.75).astype(int)


@pytest.fixture(scope="module")
def numeric():
    rng = np.random.default_rng(0)
    Y = (rng.random((30, 3)) < 0.4).astype(int)
    X = Y + rng.random((30, 3))
    return X, Y


def test_numpy_X_iterable_folds_str_scoring_and_parallel(numeric):
    X, Y = numeric
    folds = [(np.arange(10, 30), np.arange(10)), (np.arange(20), np.arange(20, 30))]
    result = cross_validate(MeanRanker(), X, sp.csr_matrix(Y), cv=iter(folds),
                            scoring={"p@1": M.precision_at_k_scorer(1), "f1": "f1_micro"},
                            return_estimator=True)
    for (train, test), model, p1, f1 in zip(folds, result["estimator"], result["test_p@1"],
                                           result["test_f1"], strict=True):
        assert model.X_type_ is np.ndarray and model.Y_type_ is sp.csr_matrix
        np.testing.assert_array_equal(model.freq_, Y[train].mean(axis=0))
        assert p1 == M.precision_at_k(Y[test], model.decision_function(X[test]), k=1)
        assert f1 == pytest.approx(M.micro_f1(Y[test], model.predict(X[test])))
    # Boolean masks are folds too, and threads give the same scores.
    masks = [(np.arange(30) >= 10, np.arange(30) < 10), (np.arange(30) < 20, np.arange(30) >= 20)]
    with joblib.parallel_config(backend="threading"):
        parallel = cross_val_score(MeanRanker(), X, Y, scoring=M.precision_at_k_scorer(1),
                                   cv=masks, n_jobs=2)
    np.testing.assert_array_equal(parallel, result["test_p@1"])


def test_documents_are_split_into_lists(numeric):
    _, Y = numeric
    docs = [f"doc {i}" for i in range(30)]
    X = np.column_stack([Y, np.zeros(30)])  # what MeanRanker ranks on

    class TextRanker(MeanRanker):
        def fit(self, X_docs, Y=None):
            self.docs_ = X_docs
            return super().fit(np.zeros((len(X_docs), 1)), Y)

        def decision_function(self, X_docs):
            return super().decision_function(X[[int(d.split()[1]) for d in X_docs]])

    result = cross_validate(TextRanker(), docs, Y.tolist(), cv=3, return_estimator=True,
                            scoring=M.precision_at_k_scorer(1))
    first = result["estimator"][0]
    assert first.docs_ == docs[10:] and first.Y_type_ is list
    assert result["test_score"][0] == M.precision_at_k(Y[:10], X[:10, :3] + first.freq_, k=1)
    # A PlantInput reaches the folds as plain lists: its stage-1 statistics saw every fold.
    staged = PlantInput(docs, mi=MIInitializer())
    model = cross_validate(TextRanker(), staged, Y, cv=3, return_estimator=True,
                           scoring=M.precision_at_k_scorer(1))["estimator"][0]
    assert type(model.docs_) is list and model.docs_ == docs[10:]
    # y=None fits without labels.
    assert cross_validate(MeanRanker(), X, None, cv=2, scoring=lambda e, X, y: 1.0)[
        "test_score"
    ].tolist() == [1.0, 1.0]


def test_argument_errors(numeric, data):
    X, Y = numeric
    docs, _, lists = data
    with pytest.raises(ValueError, match="X has 30 documents but y describes 29"):
        cross_val_score(MeanRanker(), X, Y[:29])
    with pytest.raises(ValueError, match="X has 90 documents but y describes 89"):
        cross_val_score(small_clf(), docs, lists[:89])
    with pytest.raises(ValueError, match="cv=31 folds need at least 31 documents, but X has 30"):
        cross_val_score(MeanRanker(), X, Y, cv=31)
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_val_score(MeanRanker(), X, Y, cv=1)
    with pytest.raises(TypeError, match=r"single str; wrap it in a list"):
        cross_val_score(small_clf(), "one document", [["art"]])
    with pytest.raises(TypeError, match="X must be a sequence of documents"):
        cross_val_score(MeanRanker(), {"a": 1}, Y)
    with pytest.raises(TypeError, match="y must be a label indicator matrix"):
        cross_val_score(MeanRanker(), X, "labels")
    with pytest.raises(TypeError, match="cv must be an int"):
        cross_val_score(MeanRanker(), X, Y, cv="kfold")
    with pytest.raises(TypeError, match=r"cv must yield \(train, test\) pairs"):
        cross_val_score(MeanRanker(), X, Y, cv=[np.arange(5)])
    with pytest.raises(ValueError, match="test part of cv fold 0 has indices outside"):
        cross_val_score(MeanRanker(), X, Y, cv=[(np.arange(5), np.array([5, 30]))])
    with pytest.raises(ValueError, match="training part of cv fold 0 is empty"):
        cross_val_score(MeanRanker(), X, Y, cv=[([], np.arange(5))])
    with pytest.raises(ValueError, match="single scorer; use cross_validate"):
        cross_val_score(MeanRanker(), X, Y, scoring={"p@1": M.precision_at_k_scorer(1)})
    with pytest.raises(TypeError, match="has none; pass scoring="):
        cross_val_score(BaseEstimator(), X, Y)  # no score method
    with pytest.raises(TypeError, match=r"scoring\['p'\] must be a scorer name"):
        cross_validate(MeanRanker(), X, Y, scoring={"p": 3})
    with pytest.raises(ValueError, match="scoring must return a number"):
        cross_val_score(MeanRanker(), X, Y, scoring=lambda e, X, y: "high")
