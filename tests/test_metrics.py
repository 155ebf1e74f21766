"""Tests of plantlearn.metrics and the threshold kernel against brute-force references."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import f1_score, ndcg_score
from sklearn.model_selection import GridSearchCV, KFold

from plantlearn import metrics as M
from plantlearn._thresholds import (
    best_global_threshold, best_per_label_thresholds, cardinality_threshold,
    shrunk_global_threshold,
)

# --------------------------------------------------------------------------------------------
# Brute-force references: plain Python over dense arrays, written from the definitions.
# --------------------------------------------------------------------------------------------


def ref_ranking(scores, stored=None):
    """Columns by decreasing score, ties to the lower index; only `stored` columns if given."""
    cols = range(len(scores)) if stored is None else stored
    return sorted(cols, key=lambda j: (-scores[j], j))


def ref_metric(y_true, y_score, k, kind, propensities=None, stored=None):
    y_true = np.asarray(y_true)
    values, best_values = [], []
    for i in range(y_true.shape[0]):
        positives = set(np.flatnonzero(y_true[i]).tolist())
        if not positives:
            continue
        top = ref_ranking(y_score[i], None if stored is None else stored[i])[:k]
        hits = [j in positives for j in top]
        if kind == "p":
            values.append(sum(hits) / k)
        elif kind == "r":
            values.append(sum(hits) / len(positives))
        elif kind == "ndcg":
            dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(positives))))
            values.append(dcg / idcg)
        elif kind in ("psp", "psp_raw"):
            values.append(sum(1 / propensities[j] for j, h in zip(top, hits, strict=True) if h) / k)
            best = sorted((1 / propensities[j] for j in positives), reverse=True)[:k]
            best_values.append(sum(best) / k)
    if not values:
        return 0.0
    if kind == "psp":
        return sum(values) / sum(best_values)
    return sum(values) / len(values)


def random_problem(seed, n=40, L=9, ties=True, empty_rows=True):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, L)) < 0.25).astype(np.int64)
    if empty_rows:
        y_true[::7] = 0  # rows without positives must be excluded
    else:
        y_true[np.arange(n), rng.integers(0, L, size=n)] = 1
    if ties:
        y_score = rng.integers(0, 4, size=(n, L)).astype(np.float64)  # many ties
        y_score[0, :] = 1.0  # a fully tied row
    else:
        y_score = rng.random((n, L))
    return y_true, y_score


METRICS = {
    "p": lambda yt, ys, k, p: M.precision_at_k(yt, ys, k=k),
    "r": lambda yt, ys, k, p: M.recall_at_k(yt, ys, k=k),
    "ndcg": lambda yt, ys, k, p: M.ndcg_at_k(yt, ys, k=k),
    "psp": lambda yt, ys, k, p: M.psprecision_at_k(yt, ys, k=k, propensities=p),
    "psp_raw": lambda yt, ys, k, p: M.psprecision_at_k(
        yt, ys, k=k, propensities=p, normalize=False
    ),
}


@pytest.mark.parametrize("kind", sorted(METRICS))
@pytest.mark.parametrize("k", [1, 3, 5, 9, 12])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_match_bruteforce(kind, k, seed):
    y_true, y_score = random_problem(seed)
    prop = M.jain_propensity(y_true)
    expected = ref_metric(y_true, y_score, k, kind, prop)
    dense = METRICS[kind](y_true, y_score, k, prop)
    for fmt in ("csr", "csc", "coo"):
        sparse = METRICS[kind](sp.csr_matrix(y_true).asformat(fmt), y_score, k, prop)
        assert sparse == pytest.approx(dense, abs=1e-12)
    assert isinstance(dense, float)
    assert dense == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kind", sorted(METRICS))
def test_sparse_scores_rank_only_stored_entries(kind):
    rng = np.random.default_rng(5)
    y_true, y_score = random_problem(3)
    keep = rng.random(y_score.shape) < 0.4  # some rows keep fewer than k entries
    stored = [np.flatnonzero(row).tolist() for row in keep]
    # Stored scores must survive the sparse format: shift away from zero.
    S = sp.csr_matrix(np.where(keep, y_score + 1.0, 0.0))
    prop = M.jain_propensity(y_true)
    for k in (1, 3, 5):
        expected = ref_metric(y_true, y_score + 1.0, k, kind, prop, stored=stored)
        assert METRICS[kind](y_true, S, k, prop) == pytest.approx(expected, abs=1e-12)


def test_ties_go_to_lower_column():
    y_score = np.array([[0.5, 0.9, 0.9, 0.9]])
    assert M.precision_at_k(np.array([[0, 1, 0, 0]]), y_score, k=1) == 1.0
    assert M.precision_at_k(np.array([[0, 0, 0, 1]]), y_score, k=2) == 0.0
    assert M.precision_at_k(np.array([[0, 0, 1, 0]]), y_score, k=2) == 0.5


def test_dense_topk_chunking_matches(monkeypatch):
    y_true, y_score = random_problem(4, n=50, L=13)
    expected = M.ndcg_at_k(y_true, y_score, k=4)
    monkeypatch.setattr(M, "_TOPK_CHUNK_ELEMENTS", 20)  # forces one row per chunk
    assert M.ndcg_at_k(y_true, y_score, k=4) == pytest.approx(expected, abs=1e-12)


def test_infinite_scores_are_ranked():
    y_true = np.array([[0, 1, 0], [1, 0, 0]])
    y_score = np.array([[-np.inf, np.inf, 0.0], [-np.inf, -np.inf, -np.inf]])
    assert M.precision_at_k(y_true, y_score, k=1) == 1.0


@pytest.mark.parametrize("k", [1, 3, 5])
def test_ndcg_agrees_with_sklearn_on_tie_free_rows(k):
    y_true, y_score = random_problem(7, ties=False, empty_rows=False)
    assert M.ndcg_at_k(y_true, y_score, k=k) == pytest.approx(
        ndcg_score(y_true, y_score, k=k), abs=1e-12
    )


def test_recall_at_all_labels_is_one_and_precision_divides_by_k():
    y_true, y_score = random_problem(8)
    L = y_true.shape[1]
    assert M.recall_at_k(y_true, y_score, k=L) == pytest.approx(1.0)
    assert M.recall_at_k(y_true, y_score, k=L + 5) == pytest.approx(1.0)
    rows = y_true.sum(axis=1) > 0
    expected = np.mean(y_true[rows].sum(axis=1) / (L + 5))
    assert M.precision_at_k(y_true, y_score, k=L + 5) == pytest.approx(expected)


def test_perfect_ranking_scores_one():
    y_true, _ = random_problem(9)
    scores = y_true + 0.01 * np.random.default_rng(0).random(y_true.shape)
    prop = M.jain_propensity(y_true)
    assert M.ndcg_at_k(y_true, scores, k=3) == pytest.approx(1.0)
    assert M.recall_at_k(y_true, scores, k=y_true.shape[1]) == pytest.approx(1.0)
    # Normalised PSP is 1 for the ranking by decreasing inverse propensity among positives.
    best = y_true * (1.0 + 1.0 / prop)
    assert M.psprecision_at_k(y_true, best, k=3, propensities=prop) == pytest.approx(1.0)


def test_psp_with_unit_propensities_is_precision():
    y_true, y_score = random_problem(10)
    ones = np.ones(y_true.shape[1])
    assert M.psprecision_at_k(
        y_true, y_score, k=3, propensities=ones, normalize=False
    ) == pytest.approx(M.precision_at_k(y_true, y_score, k=3))


def test_jain_propensity_formula():
    rng = np.random.default_rng(11)
    Y = (rng.random((200, 15)) < rng.random(15) * 0.3).astype(int)
    Y[:, 3] = 0  # an unseen label still gets a finite propensity
    N, counts = Y.shape[0], Y.sum(axis=0)
    A, B = 0.6, 2.6
    C = (math.log(N) - 1) * (B + 1) ** A
    expected = [1 / (1 + C * math.exp(-A * math.log(c + B))) for c in counts]
    got = M.jain_propensity(sp.csr_matrix(Y), A=A, B=B)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(M.jain_propensity(Y), M.jain_propensity(sp.csc_matrix(Y)))
    assert np.all((got > 0) & (got < 1))
    # More frequent labels have higher propensity.
    order = np.argsort(counts)
    assert np.all(np.diff(got[order]) >= 0)
    with pytest.raises(ValueError, match="at least 3 documents"):
        M.jain_propensity(Y[:2])


def test_no_positive_rows_warns_and_returns_zero():
    y_true = np.zeros((3, 4), dtype=int)
    y_score = np.random.default_rng(0).random((3, 4))
    for func in (M.precision_at_k, M.recall_at_k, M.ndcg_at_k):
        with pytest.warns(UndefinedMetricWarning, match="no row of y_true"):
            assert func(y_true, y_score, k=2) == 0.0
    with pytest.warns(UndefinedMetricWarning):
        assert M.psprecision_at_k(y_true, y_score, k=2, propensities=np.ones(4)) == 0.0


def test_input_validation():
    y_true, y_score = random_problem(12)
    with pytest.raises(ValueError, match=r"different shapes: \(40, 9\) != \(40, 8\)"):
        M.precision_at_k(y_true, y_score[:, :8])
    with pytest.raises(ValueError, match=r"different shapes"):
        M.ndcg_at_k(sp.csr_matrix(y_true), y_score[:5])
    with pytest.raises(ValueError, match="2-D.*classes_"):
        M.precision_at_k(y_true, y_score[:, 0])
    with pytest.raises(ValueError, match="2-D"):
        M.precision_at_k(y_true[:, 0], y_score)
    with pytest.raises(ValueError, match="0/1 indicator"):
        M.precision_at_k(y_true * 2, y_score)
    with pytest.raises(ValueError, match="0/1 indicator"):
        M.precision_at_k(y_true * 0.5, y_score)
    with pytest.raises(ValueError, match="NaN"):
        M.precision_at_k(y_true, np.where(y_score > 2, np.nan, y_score))
    with pytest.raises(ValueError, match="positive integer"):
        M.precision_at_k(y_true, y_score, k=0)
    with pytest.raises(TypeError, match="positive integer"):
        M.precision_at_k(y_true, y_score, k=2.5)
    with pytest.raises(ValueError, match=r"propensities must have shape \(9,\)"):
        M.psprecision_at_k(y_true, y_score, propensities=np.ones(8))
    with pytest.raises(ValueError, match="strictly positive"):
        M.psprecision_at_k(y_true, y_score, propensities=np.zeros(9))
    with pytest.raises(ValueError, match=r"y_pred have different shapes"):
        M.micro_f1(y_true, y_true[:, :3])
    # Bool and sparse bool inputs are fine.
    assert M.precision_at_k(y_true.astype(bool), y_score) == M.precision_at_k(y_true, y_score)
    assert M.precision_at_k(sp.csr_matrix(y_true.astype(bool)), y_score) == M.precision_at_k(
        y_true, y_score
    )


def test_sparse_duplicates_are_rejected():
    bad = sp.csr_matrix((np.ones(2), np.array([1, 1]), np.array([0, 2])), shape=(1, 3))
    with pytest.raises(ValueError, match="0/1 indicator"):
        M.precision_at_k(bad, np.ones((1, 3)))


def test_f1_match_sklearn():
    rng = np.random.default_rng(13)
    y_true = (rng.random((30, 8)) < 0.3).astype(int)
    y_true[:, 2] = 0  # a label absent from y_true
    y_pred = (rng.random((30, 8)) < 0.3).astype(int)
    assert M.micro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="micro"))
    assert M.micro_f1(sp.csr_matrix(y_true), sp.csr_matrix(y_pred)) == M.micro_f1(y_true, y_pred)
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    assert M.macro_f1(y_true, y_pred) == pytest.approx(per_label.mean())
    present = np.flatnonzero(y_true.sum(axis=0))
    assert 2 not in present
    assert M.macro_f1(y_true, y_pred, labels="present") == pytest.approx(per_label[present].mean())
    assert M.macro_f1(sp.csr_matrix(y_true), y_pred, labels=[0, 5]) == pytest.approx(
        per_label[[0, 5]].mean()
    )
    with pytest.warns(UndefinedMetricWarning):
        assert M.macro_f1(y_true * 0, y_pred, labels="present") == 0.0
    with pytest.raises(ValueError, match="'all', 'present'"):
        M.macro_f1(y_true, y_pred, labels="some")
    with pytest.raises(ValueError, match="outside"):
        M.macro_f1(y_true, y_pred, labels=[8])
    assert M.micro_f1(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


# --------------------------------------------------------------------------------------------
# Frequency buckets
# --------------------------------------------------------------------------------------------


def bucket_problem():
    rng = np.random.default_rng(14)
    L = 12
    train_freq = np.array([0, 0, 1, 5, 6, 50, 51, 3, 80, 20, 2, 0])
    n_train = 100
    y_train = np.zeros((n_train, L), dtype=int)
    for j, f in enumerate(train_freq):
        y_train[rng.choice(n_train, size=f, replace=False), j] = 1
    y_true = (rng.random((60, L)) < 0.2).astype(int)
    y_true[:, 11] = 0  # an unseen label that is also absent from test
    y_score = rng.random((60, L))
    y_pred = (y_score > 0.6).astype(int)
    return train_freq, y_train, y_true, y_score, y_pred


def test_frequency_bucket_report_counts_and_recall():
    train_freq, y_train, y_true, y_score, y_pred = bucket_problem()
    k = 3
    rows = M.frequency_bucket_report(y_true, y_score, sp.csr_matrix(y_train), y_pred=y_pred, k=k)
    assert [r["bucket"] for r in rows] == ["unseen", "1-5", "6-50", ">50"]
    groups = [
        np.flatnonzero(train_freq == 0),
        np.flatnonzero((train_freq >= 1) & (train_freq <= 5)),
        np.flatnonzero((train_freq >= 6) & (train_freq <= 50)),
        np.flatnonzero(train_freq > 50),
    ]
    top = [ref_ranking(row)[:k] for row in y_score]
    for row, members in zip(rows, groups, strict=True):
        assert row["n_labels"] == members.size
        pairs = [(i, j) for i in range(y_true.shape[0]) for j in members if y_true[i, j]]
        assert row["n_test_positives"] == len(pairs)
        found = sum(j in top[i] for i, j in pairs)
        assert row["recall_at_k"] == pytest.approx(found / len(pairs))
        present = [j for j in members if y_true[:, j].any()]
        assert row["n_labels_in_test"] == len(present)
        per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
        assert row["macro_f1"] == pytest.approx(per_label[present].mean())
    assert sum(r["n_labels"] for r in rows) == y_true.shape[1]
    # Sparse evaluation data give the same report.
    again = M.frequency_bucket_report(
        sp.csr_matrix(y_true), y_score, y_train, y_pred=sp.csr_matrix(y_pred), k=k
    )
    assert again == rows


def test_frequency_bucket_report_custom_bins_and_format():
    train_freq, y_train, y_true, y_score, _ = bucket_problem()
    rows = M.frequency_bucket_report(y_true, y_score, y_train, bins=(1, 2, 10))
    assert [r["bucket"] for r in rows] == ["0-1", "2", "3-10", ">10"]
    assert "macro_f1" not in rows[0]
    # A bucket with no test positives reports NaN recall; the table shows it as "-".
    y_true_empty = y_true.copy()
    y_true_empty[:, train_freq == 0] = 0
    rows = M.frequency_bucket_report(y_true_empty, y_score, y_train)
    assert rows[0]["n_test_positives"] == 0 and math.isnan(rows[0]["recall_at_k"])
    text = M.format_report(rows)
    lines = text.splitlines()
    assert lines[0].split() == [
        "bucket",
        "n_labels",
        "n_labels_in_test",
        "n_test_positives",
        "recall_at_k",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split()[0] == "unseen" and lines[2].split()[-1] == "-"
    assert len(lines) == 2 + len(rows)
    with pytest.raises(ValueError, match="strictly increasing"):
        M.frequency_bucket_report(y_true, y_score, y_train, bins=(5, 5))
    with pytest.raises(ValueError, match="same label space"):
        M.frequency_bucket_report(y_true, y_score, y_train[:, :5])


# --------------------------------------------------------------------------------------------
# Label lists (the third target format PlantClassifier takes) and bad input
# --------------------------------------------------------------------------------------------

NAMES = np.array(["art", "bio", "chem", "dance", "eco", "film", "geo", "hist", "ink"])


def to_label_lists(y, names=NAMES, container=list):
    """One collection of label names per row of a 0/1 matrix (empty rows give empty lists)."""
    return [container(str(names[j]) for j in np.flatnonzero(row)) for row in np.asarray(y)]


@pytest.mark.parametrize("kind", sorted(METRICS))
@pytest.mark.parametrize("k", [1, 3, 12])
def test_ranking_metrics_on_label_lists_equal_csr(kind, k):
    y_true, y_score = random_problem(21, empty_rows=True)
    prop = M.jain_propensity(y_true)
    lists = to_label_lists(y_true)
    assert lists[0] == [] and not y_true[0].any()  # empty rows become empty lists
    expected = METRICS[kind](sp.csr_matrix(y_true), y_score, k, prop)
    call = {
        "p": lambda yt, c: M.precision_at_k(yt, y_score, k=k, classes=c),
        "r": lambda yt, c: M.recall_at_k(yt, y_score, k=k, classes=c),
        "ndcg": lambda yt, c: M.ndcg_at_k(yt, y_score, k=k, classes=c),
        "psp": lambda yt, c: M.psprecision_at_k(yt, y_score, k=k, propensities=prop, classes=c),
        "psp_raw": lambda yt, c: M.psprecision_at_k(
            yt, y_score, k=k, propensities=prop, normalize=False, classes=c
        ),
    }[kind]
    assert call(lists, NAMES) == expected
    assert call(lists, list(NAMES)) == expected
    # Order inside a row, the container type and repeated names do not matter.
    shuffled = [tuple(reversed(row)) + tuple(row[:1]) for row in lists]
    assert call(shuffled, NAMES) == expected
    assert call(to_label_lists(y_true, container=set), NAMES) == expected
    # A generator of label lists is read once, like a list.
    assert call((row for row in lists), NAMES) == expected
    # The names are mapped through classes: reversed classes mean reversed columns.
    reversed_expected = METRICS[kind](y_true[:, ::-1], y_score, k, prop[::-1])
    if kind.startswith("psp"):
        reversed_call = M.psprecision_at_k(
            lists, y_score, k=k, propensities=prop[::-1], classes=NAMES[::-1],
            normalize=kind == "psp",
        )
    else:
        reversed_call = call(lists, NAMES[::-1])
    assert reversed_call == reversed_expected


def test_label_lists_of_ints_map_through_classes():
    # A model fitted on an indicator has classes_ = arange(n_labels): ragged lists of ints are
    # label lists (as fit reads them) and map onto the columns with those names.
    y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    y_score = np.array([[0.1, 0.9, 0.8, 0.0], [0.2, 0.7, 0.1, 0.3], [0.6, 0.5, 0.4, 0.3]])
    lists = [[0, 2], [1], [3]]
    expected = M.precision_at_k(y_true, y_score, k=2)
    assert expected == pytest.approx(1 / 3)
    assert M.precision_at_k(lists, y_score, k=2, classes=np.arange(4)) == expected
    # Other int names: column j holds the label classes[j].
    assert M.precision_at_k([[10, 30], [20], [40]], y_score, k=2, classes=[10, 20, 30, 40]) == (
        expected
    )
    assert M.precision_at_k(lists, y_score, k=2, classes=[3, 2, 1, 0]) == M.precision_at_k(
        y_true[:, ::-1], y_score, k=2
    )


def test_nested_list_indicator_is_not_label_lists():
    y_true, y_score = random_problem(22, empty_rows=False)
    nested = y_true.tolist()  # equal-length rows of 0/1: an indicator, as fit reads it
    assert M.precision_at_k(nested, y_score, k=2) == M.precision_at_k(y_true, y_score, k=2)
    # classes is optional with an indicator, and then only checked against the columns.
    assert M.precision_at_k(nested, y_score, k=2, classes=NAMES) == M.precision_at_k(
        y_true, y_score, k=2
    )
    with pytest.raises(ValueError, match="9 label columns but classes names 8"):
        M.precision_at_k(sp.csr_matrix(y_true), y_score, classes=NAMES[:8])


def test_f1_propensity_and_report_on_label_lists_equal_csr():
    train_freq, y_train, y_true, y_score, y_pred = bucket_problem()
    names = np.array([f"label{j:02d}" for j in range(y_true.shape[1])])
    lt, lp, ltrain = (to_label_lists(a, names) for a in (y_true, y_pred, y_train))
    assert M.micro_f1(lt, lp, classes=names) == M.micro_f1(y_true, y_pred)
    for labels in ("all", "present", [0, 5, 11]):
        assert M.macro_f1(lt, lp, classes=names, labels=labels) == M.macro_f1(
            y_true, y_pred, labels=labels
        )
    # One side as label lists, the other as an indicator.
    assert M.micro_f1(y_true, lp, classes=names) == M.micro_f1(y_true, y_pred)
    np.testing.assert_array_equal(
        M.jain_propensity(ltrain, classes=names), M.jain_propensity(y_train)
    )
    expected = M.frequency_bucket_report(y_true, y_score, y_train, y_pred=y_pred, k=3)
    got = M.frequency_bucket_report(lt, y_score, ltrain, y_pred=lp, k=3, classes=names)
    assert got == expected
    assert [r["n_labels"] for r in got] == [3, 4, 3, 2]


def _label_list_calls(lists, y_score, names):
    """Every public function taking y_true/y_pred/y_train, fed the label lists `lists`."""
    ones = np.ones(len(names))
    indicator = np.zeros((len(lists), len(names)), dtype=int)
    return {
        "precision_at_k": lambda **kw: M.precision_at_k(lists, y_score, **kw),
        "recall_at_k": lambda **kw: M.recall_at_k(lists, y_score, **kw),
        "ndcg_at_k": lambda **kw: M.ndcg_at_k(lists, y_score, **kw),
        "psprecision_at_k": lambda **kw: M.psprecision_at_k(
            lists, y_score, propensities=ones, **kw
        ),
        "jain_propensity": lambda **kw: M.jain_propensity(lists, **kw),
        "micro_f1 y_true": lambda **kw: M.micro_f1(lists, indicator, **kw),
        "micro_f1 y_pred": lambda **kw: M.micro_f1(indicator, lists, **kw),
        "macro_f1": lambda **kw: M.macro_f1(lists, lists, **kw),
        "bucket y_true": lambda **kw: M.frequency_bucket_report(lists, y_score, indicator, **kw),
        "bucket y_train": lambda **kw: M.frequency_bucket_report(
            indicator, y_score, lists, **kw
        ),
        "bucket y_pred": lambda **kw: M.frequency_bucket_report(
            indicator, y_score, indicator, y_pred=lists, **kw
        ),
    }


@pytest.mark.parametrize("call", sorted(_label_list_calls([], None, NAMES)))
def test_label_lists_need_classes_and_known_labels(call):
    lists = [["art", "bio"], ["chem"], [], ["ink", "art"]]
    y_score = np.random.default_rng(23).random((4, 9))
    calls = _label_list_calls(lists, y_score, NAMES)
    calls[call](classes=NAMES)  # fine with classes
    with pytest.raises(TypeError, match=r"label lists.*classes=clf\.classes_"):
        calls[call]()
    # Unknown labels are named, the first five of them, in the order met.
    bad = [["art", "zz1", "zz2"], ["zz3", "zz4"], ["zz5", "zz6", "zz7"], []]
    calls = _label_list_calls(bad, y_score, NAMES)
    with pytest.raises(ValueError) as info:
        calls[call](classes=NAMES)
    message = str(info.value)
    assert "7 label(s) that are not in classes: 'zz1', 'zz2', 'zz3', 'zz4', 'zz5'" in message
    assert "(and 2 more)" in message and "zz6" not in message


def _raises_from_plantlearn(exc_type, match, func, *args, **kwargs):
    """The error is raised by plantlearn's own checks, not by numpy or scipy underneath."""
    with pytest.raises(exc_type, match=match) as info:
        func(*args, **kwargs)
    assert "plantlearn" in str(info.traceback[-1].path), info.traceback[-1]
    return info


def test_garbage_inputs_give_named_errors():
    y_true, y_score = random_problem(24)
    lists = to_label_lists(y_true)
    P = M.precision_at_k
    # y_true
    _raises_from_plantlearn(TypeError, "y_true must be an indicator matrix, got a str", P,
                            "art bio", y_score)
    _raises_from_plantlearn(TypeError, "y_true is None", P, None, y_score)
    _raises_from_plantlearn(ValueError, r"y_true must be 2-D.*got shape \(2, 40, 9\)", P,
                            np.stack([y_true, y_true]), y_score)
    _raises_from_plantlearn(ValueError, "could not read it", P,
                            [np.array([0, 1]), np.array([1])], y_score[:2, :2])
    _raises_from_plantlearn(ValueError, r"\[\[label\] for label in y\]", P,
                            ["art", "bio"], y_score[:2])
    _raises_from_plantlearn(TypeError, "dtype <U3", P, np.array([["art", "bio"]]), y_score[:1, :2])
    # Ragged lists of numbers are label lists (as fit reads them): they need classes.
    _raises_from_plantlearn(TypeError, "classes=clf.classes_", P, [[0, 1], [1]], y_score[:2])
    # y_score
    _raises_from_plantlearn(TypeError, "y_score is None", P, y_true, None)
    _raises_from_plantlearn(TypeError, "got a str", P, y_true, "0.5")
    _raises_from_plantlearn(ValueError, r"y_score must be 2-D.*got shape \(40, 9, 1\)", P,
                            y_true, y_score[..., None])
    _raises_from_plantlearn(ValueError, "could not convert it.*not predicted labels", P,
                            y_true[:2], [[0.5, 0.2], [0.1]])
    _raises_from_plantlearn(ValueError, "could not convert it.*not predicted labels", P,
                            lists, lists, classes=NAMES)
    _raises_from_plantlearn(TypeError, "real numbers", P, y_true, y_score + 1j)
    _raises_from_plantlearn(ValueError, "NaN", P, lists, np.full(y_score.shape, np.nan),
                            classes=NAMES)
    _raises_from_plantlearn(ValueError, r"different shapes: \(40, 9\) != \(39, 9\)", P,
                            lists, y_score[:39], classes=NAMES)
    _raises_from_plantlearn(ValueError, r"different shapes: \(40, 9\) != \(40, 8\)", P,
                            lists, y_score[:, :8], classes=NAMES)
    # classes
    _raises_from_plantlearn(TypeError, "classes must be a 1-D sequence", P, lists, y_score,
                            classes="artbiochem")
    _raises_from_plantlearn(ValueError, r"classes must be 1-D.*\(1, 9\)", P, lists, y_score,
                            classes=NAMES[None, :])
    _raises_from_plantlearn(ValueError, "names the label 'art' twice", P, lists, y_score,
                            classes=["art", *NAMES[1:-1], "art"])
    _raises_from_plantlearn(ValueError, "classes is empty", P, lists, y_score, classes=[])
    _raises_from_plantlearn(TypeError, "unhashable", P, [[["art"]], ["bio"]], y_score[:2],
                            classes=NAMES)
    # the other arguments
    _raises_from_plantlearn(TypeError, "y_pred is None", M.micro_f1, y_true, None)
    _raises_from_plantlearn(ValueError, "propensities must be a 1-D array of numbers",
                            M.psprecision_at_k, y_true, y_score, propensities=["a"] * 9)
    _raises_from_plantlearn(TypeError, "bins must be a 1-D sequence", M.frequency_bucket_report,
                            y_true, y_score, y_true, bins=None)
    _raises_from_plantlearn(TypeError, "y_train is None", M.frequency_bucket_report,
                            y_true, y_score, None)


# --------------------------------------------------------------------------------------------
# Scorers
# --------------------------------------------------------------------------------------------


class FrequencyRanker(BaseEstimator):
    """Tiny multi-label model: label frequency plus `noise` times a per-feature signal."""

    def __init__(self, noise=0.0):
        self.noise = noise

    def fit(self, X, Y):
        self.freq_ = np.asarray(Y.mean(axis=0)).ravel()
        return self

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float)
        return self.freq_[None, :] + self.noise * X[:, : self.freq_.size]


class FrequencyClassifier(ClassifierMixin, FrequencyRanker):
    def fit(self, X, Y):
        super().fit(X, Y)
        self.classes_ = np.arange(Y.shape[1])
        return self


def test_scorers_match_metrics():
    rng = np.random.default_rng(15)
    Y = (rng.random((50, 6)) < 0.3).astype(int)
    X = Y + rng.random((50, 6))
    prop = M.jain_propensity(Y)
    for est in (FrequencyRanker(noise=1.0).fit(X, Y), FrequencyClassifier(noise=1.0).fit(X, Y)):
        scores = est.predict_proba(X)
        assert M.precision_at_k_scorer(k=2)(est, X, Y) == M.precision_at_k(Y, scores, k=2)
        assert M.ndcg_at_k_scorer(k=3)(est, X, Y) == M.ndcg_at_k(Y, scores, k=3)
        assert M.psprecision_at_k_scorer(prop, k=2)(est, X, Y) == M.psprecision_at_k(
            Y, scores, k=2, propensities=prop
        )
        assert M.precision_at_k_scorer(k=2)(est, X, sp.csr_matrix(Y)) == pytest.approx(
            M.precision_at_k(Y, scores, k=2)
        )


class SaturatingClassifier(FrequencyClassifier):
    """predict_proba saturates (ties at 1); decision_function keeps the order."""

    def decision_function(self, X):
        return 100.0 * super().predict_proba(X)

    def predict_proba(self, X):
        return np.minimum(super().predict_proba(X), 0.5)


def test_ranking_scorers_prefer_decision_function():
    rng = np.random.default_rng(17)
    Y = (rng.random((40, 5)) < 0.3).astype(int)
    X = Y + rng.random((40, 5))
    est = SaturatingClassifier(noise=1.0).fit(X, Y)
    by_logits = M.precision_at_k(Y, est.decision_function(X), k=1)
    assert by_logits > M.precision_at_k(Y, est.predict_proba(X), k=1)
    assert M.precision_at_k_scorer(k=1)(est, X, Y) == by_logits
    assert M.ndcg_at_k_scorer(k=3)(est, X, Y) == M.ndcg_at_k(Y, est.decision_function(X), k=3)


def test_scorer_in_grid_search():
    rng = np.random.default_rng(16)
    Y = (rng.random((60, 5)) < 0.3).astype(int)
    X = Y + 0.5 * rng.random((60, 5))
    search = GridSearchCV(
        FrequencyRanker(),
        {"noise": [0.0, 1.0]},
        scoring={"p@1": M.precision_at_k_scorer(k=1), "ndcg@3": M.ndcg_at_k_scorer(k=3)},
        refit="p@1",
        cv=KFold(3),
    )
    search.fit(X, Y)
    # The informative model wins on P@1.
    assert search.best_params_ == {"noise": 1.0}
    assert search.cv_results_["mean_test_p@1"][1] > search.cv_results_["mean_test_p@1"][0]


class LabelListRanker(ClassifierMixin, BaseEstimator):
    """Frequency ranker fitted on label lists: classes_ are the label names seen in training;
    predict returns label lists, as PlantClassifier does for label-list targets."""

    def __init__(self, noise=0.0):
        self.noise = noise

    def fit(self, X, Y):
        self.classes_ = np.array(sorted({label for row in Y for label in row}))
        column = {label: j for j, label in enumerate(self.classes_)}
        counts = np.zeros(self.classes_.size)
        for row in Y:
            counts[[column[label] for label in set(row)]] += 1
        self.freq_ = counts / len(Y)
        return self

    def decision_function(self, X):
        X = np.asarray(X, dtype=float)
        return self.freq_[None, :] + self.noise * X[:, : self.freq_.size]

    def predict(self, X):
        on = self.decision_function(X) >= 0.5
        return [[str(c) for c in self.classes_[row]] for row in on]


def label_list_problem(seed, n=60, names=NAMES[:5]):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, names.size)) < 0.3).astype(int)
    Y[np.arange(n), rng.integers(0, names.size, size=n)] = 1  # every label seen, sorted names
    X = Y + rng.random(Y.shape)
    return X, Y, to_label_lists(Y, names)


def test_scorers_on_label_lists_equal_indicator():
    X, Y, lists = label_list_problem(31)
    names = NAMES[:5]
    est = LabelListRanker(noise=1.0).fit(X, lists)
    np.testing.assert_array_equal(est.classes_, names)
    scores = est.decision_function(X)
    prop = M.jain_propensity(Y)
    pairs = [
        (M.precision_at_k_scorer(k=2), M.precision_at_k(Y, scores, k=2)),
        (M.ndcg_at_k_scorer(k=3), M.ndcg_at_k(Y, scores, k=3)),
        (M.psprecision_at_k_scorer(prop, k=2, classes=names),
         M.psprecision_at_k(Y, scores, k=2, propensities=prop)),
        (M.micro_f1_scorer(), M.micro_f1(Y, scores >= 0.5)),
        (M.macro_f1_scorer(), M.macro_f1(Y, scores >= 0.5)),
        (M.macro_f1_scorer(labels="present"), M.macro_f1(Y, scores >= 0.5, labels="present")),
    ]
    for scorer, expected in pairs:
        assert scorer(est, X, lists) == expected, scorer
        assert scorer(est, X, sp.csr_matrix(Y)) == pytest.approx(expected), scorer
    assert 0 < pairs[0][1] < 1 and 0 < pairs[3][1] < 1
    # The psp scorer finds each label's propensity by name, whatever the order given.
    order = [3, 0, 4, 1, 2]
    shuffled = M.psprecision_at_k_scorer(prop[order], k=2, classes=names[order])
    assert shuffled(est, X, lists) == pytest.approx(pairs[2][1])


def test_scorers_count_labels_the_estimator_never_saw_as_misses():
    est = LabelListRanker().fit(np.zeros((4, 2)), [["a"], ["a", "b"], ["b"], ["a"]])
    np.testing.assert_array_equal(est.classes_, ["a", "b"])  # scores: a 0.75, b 0.5
    X, y = np.zeros((3, 2)), [["a", "zz"], ["zz"], ["b"]]
    assert M.precision_at_k_scorer(k=1)(est, X, y) == pytest.approx(1 / 3)
    # k beyond the known labels: "zz" is never ranked, so the second row has no hit.
    assert M.precision_at_k_scorer(k=3)(est, X, y) == pytest.approx(2 / 9)
    assert M.ndcg_at_k_scorer(k=3)(est, X, y) == pytest.approx(
        (1 / (1 + 1 / math.log2(3)) + 0 + 1 / math.log2(3)) / 3
    )
    # Predictions are a, b everywhere: TP 2, FP 4, FN 2 (both "zz").
    assert M.micro_f1_scorer()(est, X, y) == pytest.approx(4 / 10)
    # Macro over a, b and zz: a and b each have TP 1, FP 2, FN 0; zz has TP 0, FN 2.
    f1 = [2 * 1 / (2 * 1 + 2 + 0), 2 * 1 / (2 * 1 + 2 + 0), 0.0]
    assert M.macro_f1_scorer()(est, X, y) == pytest.approx(np.mean(f1))
    # The metric itself is strict: classes must name every label.
    with pytest.raises(ValueError, match="'zz'"):
        M.precision_at_k(y, est.decision_function(X), k=1, classes=est.classes_)
    # The psp scorer needs a propensity for every label, the unseen one too.
    prop = np.array([0.5, 0.25, 0.125])
    psp = M.psprecision_at_k_scorer(prop, k=1, classes=["a", "b", "zz"], normalize=False)
    assert psp(est, X, y) == pytest.approx((1 / 0.5) / 3)
    with pytest.raises(ValueError, match=r"no propensity for 1 label\(s\): 'zz'"):
        M.psprecision_at_k_scorer(prop[:2], k=1, classes=["a", "b"])(est, X, y)
    with pytest.raises(TypeError, match="classes="):
        M.psprecision_at_k_scorer(prop, k=1)(est, X, y)


def test_scorer_errors():
    X, Y, lists = label_list_problem(32)
    with pytest.raises(TypeError, match="FrequencyRanker has no classes_"):
        M.precision_at_k_scorer(k=1)(FrequencyRanker().fit(X, Y), X, lists)
    with pytest.raises(TypeError, match="neither decision_function nor predict_proba"):
        M.precision_at_k_scorer(k=1)(BaseEstimator(), X, Y)
    with pytest.raises(ValueError, match="'all' or 'present'"):
        M.macro_f1_scorer(labels=[0, 1])
    with pytest.raises(ValueError, match="classes names 4 labels but there are 5"):
        M.psprecision_at_k_scorer(np.ones(5), classes=NAMES[:4])
    with pytest.raises(TypeError, match="positive integer"):
        M.ndcg_at_k_scorer(k=1.5)
    assert repr(M.precision_at_k_scorer(k=3)) == "precision_at_k_scorer(k=3)"
    assert repr(M.macro_f1_scorer()) == "macro_f1_scorer(labels='all')"


def test_scorers_use_every_column_of_two_label_estimators():
    # make_scorer kept one column of estimators whose classes_ look binary; these scorers don't.
    rng = np.random.default_rng(33)
    Y = (rng.random((40, 2)) < 0.5).astype(int)
    X = Y + rng.random((40, 2))
    est = FrequencyClassifier(noise=1.0).fit(X, Y)
    assert M.precision_at_k_scorer(k=1)(est, X, Y) == M.precision_at_k(
        Y, est.predict_proba(X), k=1
    )


def test_ranking_scorer_stacks_per_label_probability_lists():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(34)
    Y = (rng.random((50, 4)) < 0.4).astype(int)
    X = Y + 0.8 * rng.random((50, 4))
    knn = KNeighborsClassifier(n_neighbors=5).fit(X, Y)
    assert isinstance(knn.predict_proba(X), list)
    scores = np.column_stack([p[:, 1] for p in knn.predict_proba(X)])
    assert M.precision_at_k_scorer(k=2)(knn, X, Y) == M.precision_at_k(Y, scores, k=2)


def test_scorers_in_grid_search_on_label_lists():
    X, Y, lists = label_list_problem(35, n=90)
    search = GridSearchCV(
        LabelListRanker(),
        {"noise": [0.0, 1.0]},
        scoring={"p@1": M.precision_at_k_scorer(k=1), "f1": M.micro_f1_scorer()},
        refit="p@1",
        cv=KFold(3),
        error_score="raise",
    )
    search.fit(X, lists)
    assert search.best_params_ == {"noise": 1.0}
    p1 = search.cv_results_["mean_test_p@1"]
    assert p1[1] > p1[0]
    # The same folds on the indicator give the same numbers.
    expected = []
    for train, test in KFold(3).split(X):
        fold = LabelListRanker(noise=1.0).fit(X[train], [lists[i] for i in train])
        expected.append(M.precision_at_k(Y[test], fold.decision_function(X[test]), k=1))
    assert p1[1] == pytest.approx(np.mean(expected))


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


def f1_at(y_true, y_score, t):
    pred = y_score >= t
    tp = np.sum(pred & (y_true == 1))
    denom = pred.sum() + y_true.sum()
    return 2 * tp / denom if denom else 0.0


def ref_best_f1(y_true, y_score, candidates=None):
    """Best F1 over every distinct-score threshold, and the set predicted at the best one."""
    if candidates is None:
        candidates = y_score.ravel()
    best, best_t = -1.0, None
    for t in sorted(set(np.asarray(candidates).tolist()), reverse=True):
        f = f1_at(y_true, y_score, t)
        if f > best + 1e-15:  # strict: ties go to the higher threshold
            best, best_t = f, t
    return best, y_score >= best_t


def test_shrunk_threshold_moves_from_the_cardinality_cut_to_the_micro_f1_cut():
    rng = np.random.default_rng(5)
    y_score = rng.normal(size=(40, 5))
    y_true = (y_score + rng.normal(scale=1.5, size=y_score.shape) > 1.2).astype(int)
    n = int(y_true.sum())
    micro = best_global_threshold(y_true, y_score)
    card = cardinality_threshold(y_score, 0.5)
    assert micro != card
    # Enough positives: the micro-F1 cut alone; none: the cardinality cut (labels unread).
    assert shrunk_global_threshold(y_true, y_score, 0.5, full_trust_positives=n) == micro
    assert shrunk_global_threshold(np.zeros_like(y_true), y_score, 0.5) == card
    # In between, linear in the positive count: a quarter of the way at n / 4 ... n.
    quarter = shrunk_global_threshold(sp.csr_matrix(y_true), y_score, 0.5,
                                      full_trust_positives=4 * n)
    assert quarter == pytest.approx(card + 0.25 * (micro - card))
    # One positive more or fewer moves the cut by 1 / full_trust_positives of the gap only.
    one_more = shrunk_global_threshold(y_true, y_score, 0.5, full_trust_positives=4 * n - 4)
    assert abs(one_more - quarter) < abs(micro - card) / n
    with pytest.raises(ValueError, match="full_trust_positives"):
        shrunk_global_threshold(y_true, y_score, 0.5, full_trust_positives=0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [True, False])
def test_best_global_threshold_matches_bruteforce(seed, ties):
    y_true, y_score = random_problem(seed, n=25, L=6, ties=ties)
    t = best_global_threshold(y_true, y_score)
    best, best_pred = ref_best_f1(y_true, y_score)
    assert f1_at(y_true, y_score, t) == pytest.approx(best)
    np.testing.assert_array_equal(y_score >= t, best_pred)
    assert best_global_threshold(sp.csr_matrix(y_true), y_score) == t
    # A midpoint: strictly between two distinct scores unless it is the lowest score.
    assert t not in set(y_score.ravel().tolist()) or t == y_score.min()


def test_best_global_threshold_edge_cases():
    # Perfect separation: the threshold sits halfway between the classes.
    y_true = np.array([[1, 0], [0, 1]])
    y_score = np.array([[0.9, 0.2], [0.4, 0.8]])
    assert best_global_threshold(y_true, y_score) == pytest.approx(0.6)
    # Predicting everything is best: the threshold is the lowest score itself.
    assert best_global_threshold(np.ones((2, 2)), y_score) == pytest.approx(0.2)
    # Infinite scores do not produce an infinite or NaN midpoint.
    t = best_global_threshold(np.array([[1, 0, 1]]), np.array([[np.inf, -np.inf, 3.0]]))
    assert t == 3.0
    with pytest.raises(ValueError, match="no positive"):
        best_global_threshold(np.zeros((2, 2)), y_score)
    with pytest.raises(ValueError, match="different shapes"):
        best_global_threshold(y_true, y_score[:, :1])


def test_best_global_threshold_sparse_scores():
    rng = np.random.default_rng(17)
    y_true, y_score = random_problem(17, n=20, L=5, ties=False)
    keep = rng.random(y_score.shape) < 0.5
    S = sp.csr_matrix(np.where(keep, y_score + 1.0, 0.0))
    # Reference: unstored entries are never predicted (score -inf).
    dense = np.where(keep, y_score + 1.0, -np.inf)
    t = best_global_threshold(y_true, S)
    # Only stored scores are candidates; positives never stored stay false negatives.
    best, best_pred = ref_best_f1(y_true, dense, candidates=dense[keep])
    assert f1_at(y_true, dense, t) == pytest.approx(best)
    np.testing.assert_array_equal(dense >= t, best_pred)


@pytest.mark.parametrize("per_doc", [0.0, 0.3, 1.0, 2.5, 6.0, 100.0])
def test_cardinality_threshold_predicts_the_wanted_mean_label_count(per_doc):
    rng = np.random.default_rng(3)
    y_score = rng.normal(size=(8, 6))  # distinct scores
    t = cardinality_threshold(y_score, per_doc)
    k = min(max(round(per_doc * 8), 1), y_score.size)  # at least one, at most every entry
    assert int((y_score >= t).sum()) == k
    # A midpoint between two scores, or the lowest score when everything is predicted.
    assert t not in set(y_score.ravel().tolist()) or t == y_score.min()


def test_cardinality_threshold_ties_and_errors():
    # Equal scores are predicted together: asking for 2 of three tied top scores gives 3.
    y_score = np.array([[5.0, 5.0, 1.0], [5.0, 0.0, -1.0]])
    t = cardinality_threshold(y_score, 1.0)
    assert t == pytest.approx(3.0)
    assert int((y_score >= t).sum()) == 3
    # An infinite neighbour does not give an infinite cut.
    assert cardinality_threshold(np.array([[2.0, -np.inf]]), 1.0) == 2.0
    with pytest.raises(ValueError, match="non-empty 2-D"):
        cardinality_threshold(np.zeros((0, 3)), 1.0)
    with pytest.raises(ValueError, match="labels_per_document"):
        cardinality_threshold(y_score, float("nan"))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [True, False])
def test_best_per_label_thresholds_match_bruteforce(seed, ties):
    y_true, y_score = random_problem(seed, n=25, L=6, ties=ties)
    y_true[:, 4] = 0  # no positive: gets the fallback
    fallback = np.arange(6) + 100.0
    th = best_per_label_thresholds(y_true, y_score, fallback=fallback)
    assert th.shape == (6,)
    assert th[4] == 104.0
    for j in range(6):
        if j == 4:
            continue
        best, best_pred = ref_best_f1(y_true[:, j], y_score[:, j])
        assert f1_at(y_true[:, j], y_score[:, j], th[j]) == pytest.approx(best)
        np.testing.assert_array_equal(y_score[:, j] >= th[j], best_pred)
    np.testing.assert_array_equal(
        best_per_label_thresholds(sp.csr_matrix(y_true), y_score, fallback=fallback), th
    )
    # Sparse scores storing every entry (shifted away from 0) agree with the dense path.
    shifted = best_per_label_thresholds(y_true, sp.csr_matrix(y_score + 1.0), fallback=fallback)
    np.testing.assert_allclose(shifted, np.where(np.arange(6) == 4, 104.0, th + 1.0))


def test_best_per_label_thresholds_fallback_forms():
    y_true = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    y_score = np.array([[0.9, 0.1, 0.2], [0.3, 0.5, 0.7], [0.8, 0.2, 0.1]])
    th = best_per_label_thresholds(y_true, y_score, fallback=0.5)
    np.testing.assert_allclose(th, [0.55, 0.5, 0.45])
    with pytest.raises(ValueError, match=r"fallback must be a scalar or have shape \(3,\)"):
        best_per_label_thresholds(y_true, y_score, fallback=[0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no spurious numpy warnings
        best_per_label_thresholds(y_true, y_score, fallback=0.5)


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def test_expected_calibration_error_by_hand():
    from plantlearn.metrics import expected_calibration_error, reliability_curve

    y = np.array([[0, 1], [1, 1]])
    p = np.array([[0.2, 0.9], [0.2, 0.9]])
    bins = reliability_curve(y, p, n_bins=10)
    assert [(b["count"], b["mean_probability"], b["observed_frequency"]) for b in bins] == [
        (2, pytest.approx(0.2), 0.5), (2, pytest.approx(0.9), 1.0)]
    # (2 * |0.5 - 0.2| + 2 * |1.0 - 0.9|) / 4
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx(0.2)
    # Only the pairs given at least 0.5: the second bin.
    assert expected_calibration_error(y, p, n_bins=10, min_probability=0.5) == pytest.approx(0.1)
    # Label lists with their classes are the same matrix.
    lists = [["b"], ["a", "b"]]
    assert expected_calibration_error(lists, p, n_bins=10, classes=["a", "b"]) == \
        pytest.approx(0.2)


def test_expected_calibration_error_of_calibrated_and_overconfident_probabilities():
    from plantlearn.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    p = rng.random((2000, 20))
    y = (rng.random(p.shape) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    sharpened = np.clip((p - 0.5) * 3 + 0.5, 0, 1)  # overconfident
    assert expected_calibration_error(y, sharpened) > 0.1


def test_calibration_metrics_reject_what_is_not_a_probability():
    from plantlearn.metrics import expected_calibration_error

    y = np.array([[0, 1]])
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error(y, np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match="shapes"):
        expected_calibration_error(y, np.array([[0.5, 0.5, 0.5]]))
    with pytest.raises(ValueError, match="min_probability"):
        expected_calibration_error(y, np.array([[0.5, 0.5]]), min_probability=1.0)
