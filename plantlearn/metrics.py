"""Evaluation metrics for extreme multi-label classification.

All functions follow scikit-learn's argument order ``(y_true, y_score, *, k=5)`` and return a
Python ``float`` (``frequency_bucket_report`` returns a list of dicts).

Conventions
-----------
Inputs
    ``y_true`` is a 0/1 (or boolean) indicator matrix of shape ``(n_samples, n_labels)``, dense
    or scipy sparse. A sparse ``y_true`` is never densified: the ranking metrics only look at the
    top ``k`` columns of each row and look those up in the CSR row, so memory stays
    ``O(nnz + n_samples * k)`` beyond the score matrix itself.

    ``y_true`` (and ``y_pred``, ``y_train``) may also be *label lists*, one list, tuple or set
    of label names per document as ``PlantClassifier.fit`` takes them, e.g.
    ``[["earn"], ["grain", "wheat"]]``. They need the keyword ``classes``, the label names in
    the column order of the scores (``clf.classes_``), and are mapped onto those columns; a
    label not in ``classes`` raises a ValueError naming it, and label lists without
    ``classes`` raise a TypeError. Equal-length rows of 0/1 numbers are read as an indicator
    matrix written as nested lists, as ``fit`` reads them.

    ``y_score`` is a real-valued matrix of the same shape (dense, e.g. ``predict_proba`` output).
    A scipy sparse ``y_score`` (e.g. a top-k prediction matrix) is also accepted: its *stored*
    entries are ranked and entries that are not stored are never predicted, so a row with fewer
    than ``k`` stored scores simply has fewer than ``k`` predictions (the missing slots count as
    misses; precision still divides by ``k``). NaN scores are rejected.

Ranking
    Each row is ranked by decreasing score; ties are broken by the lower column index (the order
    of a stable sort of ``-score``), so results are deterministic. When ``k`` exceeds the number
    of labels, all labels are ranked and precision still divides by ``k``.

Averaging
    Ranking metrics (P@k, R@k, nDCG@k, PSP@k) are averaged over the rows that have at least one
    positive label; rows without positives are excluded, as in most XMC papers and the project's
    baselines. If no row has a positive the metric is undefined: a
    :class:`~sklearn.exceptions.UndefinedMetricWarning` is raised and ``0.0`` returned.

Definitions (for one row with positive set ``P`` and top-``k`` list ``r_1 .. r_k``)
    - ``precision_at_k``: ``|P ∩ top-k| / k``.
    - ``recall_at_k``: ``|P ∩ top-k| / |P|``.
    - ``ndcg_at_k``: binary gains, ``DCG = sum_j [r_j in P] / log2(j + 1)`` for ranks
      ``j = 1..k``, divided by the ideal DCG of ``min(k, |P|)`` hits in the first ranks.
    - ``psprecision_at_k``: ``sum_j [r_j in P] / p_{r_j} / k`` with label propensities ``p``
      (Jain et al., 2016). With ``normalize=True`` the dataset mean is divided by the dataset mean
      of the best achievable value (each row ranking its positives by decreasing ``1 / p``),
      the convention of pyxclib's ``psprecision``; the result then lies in ``[0, 1]``.
    - ``micro_f1`` / ``macro_f1``: F1 of binary predictions via :func:`sklearn.metrics.f1_score`
      with ``zero_division=0``.

References
----------
Jain, Prabhu and Varma, "Extreme Multi-label Loss Functions for Recommendation, Tagging, Ranking
& Other Missing Label Applications", KDD 2016.
"""

import numbers
import warnings
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import f1_score

from ._validation import _is_label_lists

__all__ = [
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "psprecision_at_k",
    "jain_propensity",
    "micro_f1",
    "macro_f1",
    "frequency_bucket_report",
    "expected_calibration_error",
    "reliability_curve",
    "format_report",
    "precision_at_k_scorer",
    "ndcg_at_k_scorer",
    "psprecision_at_k_scorer",
    "micro_f1_scorer",
    "macro_f1_scorer",
]

# Rows of a dense score matrix processed at once by the top-k selection; bounds the temporary
# boolean masks to about this many elements regardless of the number of labels.
_TOPK_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _check_indicator(y, name):
    """Return ``y`` as a canonical CSR 0/1 matrix (sorted indices, no duplicates, no zeros)."""
    if sp.issparse(y):
        if y.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_labels); got shape {y.shape}.")
        Y = sp.csr_matrix(y, copy=True)
        # Duplicated entries would count a label twice; summing them exposes the problem below.
        Y.sum_duplicates()
        Y.eliminate_zeros()
        data = Y.data
    else:
        if isinstance(y, (str, bytes)):
            raise TypeError(f"{name} must be an indicator matrix, got a {type(y).__name__}.")
        if y is None:
            raise TypeError(
                f"{name} is None; expected a 0/1 indicator matrix (n_samples, n_labels) or a "
                "list of label lists with classes=..."
            )
        try:
            arr = np.asarray(y)
        except (ValueError, TypeError) as exc:  # ragged nested sequences and the like
            raise ValueError(
                f"{name} must be a 0/1 indicator matrix (n_samples, n_labels) or a list of label "
                f"lists (one list, tuple or set of label names per document); could not read it "
                f"as either ({type(exc).__name__}: {exc})."
            ) from None
        if arr.ndim != 2:
            hint = ""
            if arr.ndim == 1 and (arr.dtype == object or arr.dtype.kind in "USV"):
                hint = (
                    " For one label per document pass [[label] for label in y]; label lists must"
                    " be a list (not a numpy array) of lists, tuples or sets."
                )
            raise ValueError(
                f"{name} must be 2-D (n_samples, n_labels); got shape {arr.shape}.{hint}"
            )
        if arr.dtype == object:
            raise TypeError(f"{name} must be a numeric 0/1 indicator matrix, got dtype object.")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(
                f"{name} must be a numeric 0/1 indicator matrix, got dtype {arr.dtype}; label "
                "names belong in label lists (one list of names per document) with classes=..."
            )
        Y = sp.csr_matrix(arr, dtype=arr.dtype if arr.dtype != bool else np.int8)
        Y.eliminate_zeros()
        data = Y.data
    if data.size and not np.all(data == 1):
        bad = data[data != 1][0]
        raise ValueError(
            f"{name} must be a 0/1 indicator matrix; found the value {bad!r} "
            "(duplicate sparse entries are summed before this check)."
        )
    Y.data = np.ones(Y.nnz, dtype=np.int8)
    Y.sort_indices()
    return Y


#: Appended to score errors: the usual mistake is passing predicted labels instead of scores.
_SCORE_HINT = (
    " Ranking metrics need real-valued scores such as clf.decision_function(X) or "
    "clf.predict_proba(X), not predicted labels."
)


def _check_scores(y_score, shape, name="y_score"):
    """Validate ``y_score`` against ``shape``; return a float ndarray or a canonical CSR matrix."""
    if sp.issparse(y_score):
        if y_score.ndim != 2:
            raise ValueError(
                f"{name} must be 2-D (n_samples, n_labels); got shape {y_score.shape}."
            )
        S = sp.csr_matrix(y_score, copy=True)
        S.sum_duplicates()
        if not (np.issubdtype(S.dtype, np.number) or S.dtype == bool) or np.issubdtype(
            S.dtype, np.complexfloating
        ):
            raise TypeError(f"{name} must hold real numbers, got dtype {S.dtype}.")
        if not np.issubdtype(S.dtype, np.floating):
            S = S.astype(np.float64)
        values = S.data
    else:
        if isinstance(y_score, (str, bytes)):
            raise TypeError(
                f"{name} must be a 2-D array of scores, got a {type(y_score).__name__}."
            )
        if y_score is None:
            raise TypeError(f"{name} is None; expected a 2-D array of scores.{_SCORE_HINT}")
        try:
            S = np.asarray(y_score)
        except (ValueError, TypeError) as exc:  # ragged nested sequences and the like
            raise ValueError(
                f"{name} must be a 2-D array of scores (n_samples, n_labels); could not convert "
                f"it ({type(exc).__name__}: {exc}).{_SCORE_HINT}"
            ) from None
        if S.dtype == object or not (np.issubdtype(S.dtype, np.number) or S.dtype == bool):
            raise TypeError(f"{name} must be a numeric array, got dtype {S.dtype}.{_SCORE_HINT}")
        if np.issubdtype(S.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold real numbers, got dtype {S.dtype}.")
        if not np.issubdtype(S.dtype, np.floating):
            S = S.astype(np.float64)
        values = S
    if S.ndim != 2:
        hint = ""
        if S.ndim == 1:
            hint = (
                " A 1-D score vector usually comes from a single-output estimator, or from"
                " scikit-learn keeping one column because the estimator's classes_ looked like"
                " a binary problem."
            )
        raise ValueError(f"{name} must be 2-D (n_samples, n_labels); got shape {S.shape}.{hint}")
    if S.shape != tuple(shape):
        raise ValueError(f"y_true and {name} have different shapes: {tuple(shape)} != {S.shape}.")
    if np.isnan(values).any():
        raise ValueError(f"{name} contains NaN.")
    return S


def _check_k(k):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be a positive integer, got {k!r}.")
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}.")
    return int(k)


#: How many unknown labels an error message names.
_N_SHOWN = 5


def _check_classes(classes, name="classes"):
    """Return ``(names, index)``: the label names as a list and a ``{name: column}`` dict."""
    if isinstance(classes, (str, bytes)) or sp.issparse(classes):
        raise TypeError(
            f"{name} must be a 1-D sequence of label names in column order (e.g. clf.classes_), "
            f"got a {type(classes).__name__}."
        )
    if isinstance(classes, np.ndarray):
        if classes.ndim != 1:
            raise ValueError(f"{name} must be 1-D (n_labels,); got shape {classes.shape}.")
        names = classes.tolist()
    else:
        try:
            names = list(classes)
        except TypeError:
            raise TypeError(
                f"{name} must be a 1-D sequence of label names in column order (e.g. "
                f"clf.classes_), got {type(classes).__name__}."
            ) from None
    if not names:
        raise ValueError(f"{name} is empty: it must name every score column.")
    index = {}
    for j, label in enumerate(names):
        try:
            first = index.setdefault(label, j)
        except TypeError:
            raise TypeError(
                f"{name}[{j}] is {label!r}, which is unhashable; label names must be hashable "
                "(str, int, ...)."
            ) from None
        if first != j:
            raise ValueError(f"{name} names the label {label!r} twice (columns {first} and {j}).")
    return names, index


def _label_lists_to_csr(rows, name, index, extra=None):
    """Map label lists onto the columns of ``index`` (a ``{label: column}`` dict).

    With ``extra=None`` a label missing from ``index`` raises a ValueError naming the first
    few. Otherwise ``extra`` is a dict that collects the missing labels, each getting a new
    column after ``len(index)`` (scorers use this for labels a fold's model never saw); the
    returned matrix then has ``len(index) + len(extra)`` columns.
    """
    indptr, indices = [0], []
    unknown = {}  # insertion-ordered: the first labels met are the ones named
    for i, row in enumerate(rows):
        cols = set()
        for label in row:
            try:
                j = index.get(label)
            except TypeError:
                raise TypeError(
                    f"{name}[{i}] holds {label!r}, which is unhashable; labels must be hashable "
                    "names (str, int, ...)."
                ) from None
            if j is None:
                if extra is None:
                    unknown.setdefault(label)
                    continue
                j = extra.setdefault(label, len(index) + len(extra))
            cols.add(j)
        indices.extend(sorted(cols))
        indptr.append(len(indices))
    if unknown:
        shown = ", ".join(repr(label) for label in list(unknown)[:_N_SHOWN])
        more = f" (and {len(unknown) - _N_SHOWN} more)" if len(unknown) > _N_SHOWN else ""
        raise ValueError(
            f"{name} contains {len(unknown)} label(s) that are not in classes: {shown}{more}. "
            "classes must name every label, in the column order of the scores (e.g. "
            "clf.classes_)."
        )
    n_cols = len(index) + (len(extra) if extra is not None else 0)
    Y = sp.csr_matrix(
        (np.ones(len(indices), dtype=np.int8), np.asarray(indices, dtype=np.int64),
         np.asarray(indptr, dtype=np.int64)),
        shape=(len(indptr) - 1, n_cols),
    )
    return Y


def _to_indicator(y, name, classes=None):
    """The one conversion of a metric's label argument to a canonical CSR 0/1 matrix.

    ``y`` is a 0/1 indicator matrix (dense, nested lists or scipy sparse) or a list of label
    lists. Label lists are told apart from nested-list indicators as ``fit`` does
    (``_validation._is_label_lists``: equal-length rows of 0/1 numbers are an indicator) and
    need ``classes``, the label names of the score columns. With an indicator, ``classes`` is
    optional and only checked against the number of columns.
    """
    names = index = None
    if classes is not None:
        names, index = _check_classes(classes)
    if isinstance(y, Iterator):  # _is_label_lists would consume a generator
        y = list(y)
    if _is_label_lists(y):
        if classes is None:
            raise TypeError(
                f"{name} looks like label lists (one collection of label names per document): "
                "pass classes=clf.classes_ (the label names in the column order of the scores) "
                "so they can be mapped onto columns, or pass a 0/1 indicator matrix."
            )
        return _label_lists_to_csr(y, name, index)
    Y = _check_indicator(y, name)
    if names is not None and Y.shape[1] != len(names):
        raise ValueError(
            f"{name} has {Y.shape[1]} label columns but classes names {len(names)} labels."
        )
    return Y


# --------------------------------------------------------------------------------------------
# Top-k kernel
# --------------------------------------------------------------------------------------------


def _topk_dense(S, k):
    """Top-``k`` column indices per row of a dense ``S``, best first, ties to the lower index.

    Returns an int64 array of shape ``(n_samples, min(k, n_labels))``.
    """
    n, L = S.shape
    k = min(k, L)
    out = np.empty((n, k), dtype=np.int64)
    if n == 0 or k == 0:
        return out
    step = max(1, _TOPK_CHUNK_ELEMENTS // max(L, 1))
    for start in range(0, n, step):
        block = S[start : start + step]
        m = block.shape[0]
        if k == L:
            idx = np.argsort(-block, axis=1, kind="stable")
            out[start : start + m] = idx
            continue
        # The k-th largest value of each row. argpartition alone cannot honour the
        # lower-index tie-break at the boundary, so select with masks: everything strictly
        # above the boundary value, then the leftmost boundary ties until k are taken.
        kth = -np.partition(-block, k - 1, axis=1)[:, k - 1]
        above = block > kth[:, None]
        tied = block == kth[:, None]
        need = k - above.sum(axis=1)
        take = above | (tied & (np.cumsum(tied, axis=1) <= need[:, None]))
        rows, cols = np.nonzero(take)  # row-major: each row's k columns in increasing order
        cols = cols.reshape(m, k)
        vals = np.take_along_axis(block, cols, axis=1)
        # Stable sort on increasing column order keeps lower indices first among equal scores.
        order = np.argsort(-vals, axis=1, kind="stable")
        out[start : start + m] = np.take_along_axis(cols, order, axis=1)
    return out


def _topk_sparse(S, k):
    """Top-``k`` stored column indices per row of a CSR ``S``; ``-1`` pads short rows."""
    n, L = S.shape
    k = min(k, L)
    out = np.full((n, k), -1, dtype=np.int64)
    if S.nnz == 0 or k == 0:
        return out
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(S.indptr))
    cols = S.indices.astype(np.int64)
    # Sort by row, then decreasing score, then increasing column (lexsort: last key is primary).
    order = np.lexsort((cols, -S.data, rows))
    rows, cols = rows[order], cols[order]
    rank = np.arange(rows.size, dtype=np.int64) - S.indptr[rows]
    keep = rank < k
    out[rows[keep], rank[keep]] = cols[keep]
    return out


def _topk(S, k):
    return _topk_sparse(S, k) if sp.issparse(S) else _topk_dense(S, k)


def _hits(Y, top):
    """Boolean array like ``top``: whether each predicted column is positive in CSR ``Y``.

    Uses one global sorted key ``row * n_labels + col`` per stored positive (CSR with sorted
    indices is already in that order), so the lookup is a single searchsorted.
    """
    n, L = Y.shape
    if top.size == 0 or Y.nnz == 0:
        return np.zeros(top.shape, dtype=bool)
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(Y.indptr))
    keys = rows * L + Y.indices.astype(np.int64)
    query = np.arange(n, dtype=np.int64)[:, None] * L + top
    pos = np.searchsorted(keys, query)
    pos_clipped = np.minimum(pos, keys.size - 1)
    # Padding (-1) must never match: row*L - 1 is the previous row's last column.
    return (keys[pos_clipped] == query) & (pos < keys.size) & (top >= 0)


def _prepare(y_true, y_score, k, classes):
    k = _check_k(k)
    Y = _to_indicator(y_true, "y_true", classes)
    S = _check_scores(y_score, Y.shape)
    top = _topk(S, k)
    hits = _hits(Y, top)
    n_pos = np.diff(Y.indptr)
    return Y, S, k, top, hits, n_pos


def _mean_over_positive_rows(values, n_pos, metric):
    valid = n_pos > 0
    if not valid.any():
        warnings.warn(
            f"{metric} is undefined: no row of y_true has a positive label; returning 0.0.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return 0.0
    return float(np.mean(values[valid]))


# --------------------------------------------------------------------------------------------
# Ranking metrics
# --------------------------------------------------------------------------------------------


def precision_at_k(y_true, y_score, *, k=5, classes=None):
    """Precision at k: the fraction of the top ``k`` ranked labels that are relevant.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels) or list of label lists
        0/1 indicator matrix of the true labels, or one collection of label names per document
        (then ``classes`` is required).
    y_score : {ndarray, sparse matrix} of shape (n_samples, n_labels)
        Scores; higher means more likely. Ties are broken by the lower column index.
    k : int, default=5
        Number of top-ranked labels considered.
    classes : array-like of shape (n_labels,), default=None
        Label names in the column order of ``y_score``, e.g. ``clf.classes_``; needed when
        ``y_true`` is given as label lists (it is mapped onto these columns; a label not in
        ``classes`` raises a ValueError). With an indicator ``y_true`` it is optional and only
        checked against the number of columns.

    Returns
    -------
    float
        Mean of ``hits / k`` over the rows with at least one positive label.

    Raises
    ------
    TypeError
        If ``y_true`` is label lists and ``classes`` is not given, or an argument is not
        array-like (a str, None, ...).
    ValueError
        If a label is not in ``classes``, the shapes disagree, ``y_true`` is not 0/1 or
        ``y_score`` holds NaN.

    See Also
    --------
    recall_at_k, ndcg_at_k, psprecision_at_k

    Examples
    --------
    >>> import numpy as np
    >>> from plantlearn.metrics import precision_at_k
    >>> y_true = np.array([[1, 0, 1], [0, 1, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.1]])
    >>> precision_at_k(y_true, y_score, k=1)
    1.0
    >>> precision_at_k(y_true, y_score, k=2)
    0.5

    Label lists, as PlantClassifier takes them, need the label names of the score columns:

    >>> precision_at_k([["a", "c"], ["b"]], y_score, k=1, classes=["a", "b", "c"])
    1.0
    """
    Y, S, k, top, hits, n_pos = _prepare(y_true, y_score, k, classes)
    return _mean_over_positive_rows(hits.sum(axis=1) / k, n_pos, "precision_at_k")


def recall_at_k(y_true, y_score, *, k=5, classes=None):
    """Recall at k: the fraction of a row's relevant labels found in its top ``k``.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels) or list of label lists
        0/1 indicator matrix of the true labels, or one collection of label names per document
        (then ``classes`` is required).
    y_score : {ndarray, sparse matrix} of shape (n_samples, n_labels)
        Scores; higher means more likely. Ties are broken by the lower column index.
    k : int, default=5
        Number of top-ranked labels considered.
    classes : array-like of shape (n_labels,), default=None
        Label names in the column order of ``y_score``, e.g. ``clf.classes_``; needed when
        ``y_true`` is given as label lists (it is mapped onto these columns; a label not in
        ``classes`` raises a ValueError). With an indicator ``y_true`` it is optional and only
        checked against the number of columns.

    Returns
    -------
    float
        Mean of ``hits / n_positives`` over the rows with at least one positive label.

    See Also
    --------
    precision_at_k : the errors raised on bad input.
    """
    Y, S, k, top, hits, n_pos = _prepare(y_true, y_score, k, classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_row = hits.sum(axis=1) / n_pos
    return _mean_over_positive_rows(per_row, n_pos, "recall_at_k")


def ndcg_at_k(y_true, y_score, *, k=5, classes=None):
    """Normalised discounted cumulative gain at k with binary gains.

    ``DCG@k = sum_{j=1..k} rel_j / log2(j + 1)`` and the ideal DCG places ``min(k, n_pos)``
    relevant labels first.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels) or list of label lists
        0/1 indicator matrix of the true labels, or one collection of label names per document
        (then ``classes`` is required).
    y_score : {ndarray, sparse matrix} of shape (n_samples, n_labels)
        Scores; higher means more likely. Ties are broken by the lower column index.
    k : int, default=5
        Rank cut-off.
    classes : array-like of shape (n_labels,), default=None
        Label names in the column order of ``y_score``, e.g. ``clf.classes_``; needed when
        ``y_true`` is given as label lists (it is mapped onto these columns; a label not in
        ``classes`` raises a ValueError). With an indicator ``y_true`` it is optional and only
        checked against the number of columns.

    Returns
    -------
    float
        Mean nDCG@k over the rows with at least one positive label.

    Notes
    -----
    :func:`sklearn.metrics.ndcg_score` differs: it averages over tied scores instead of breaking
    ties, and it rejects sparse targets. On tie-free scores where every row has a positive the
    two agree.
    """
    Y, S, k, top, hits, n_pos = _prepare(y_true, y_score, k, classes)
    width = top.shape[1]
    discount = 1.0 / np.log2(np.arange(width, dtype=np.float64) + 2.0)
    dcg = hits @ discount if width else np.zeros(Y.shape[0])
    # ideal[m] = DCG of m hits in the first m ranks.
    ideal = np.concatenate(([0.0], np.cumsum(discount)))
    idcg = ideal[np.minimum(n_pos, width)]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_row = dcg / idcg
    return _mean_over_positive_rows(per_row, n_pos, "ndcg_at_k")


def _propensity_array(propensities):
    """``propensities`` as a float64 array (any shape), or a TypeError/ValueError."""
    if propensities is None:
        raise TypeError("psprecision_at_k needs propensities=..., e.g. jain_propensity(Y_train).")
    if isinstance(propensities, (str, bytes)) or sp.issparse(propensities):
        raise TypeError(
            f"propensities must be a 1-D array of numbers, got a {type(propensities).__name__}."
        )
    try:
        return np.asarray(propensities, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"propensities must be a 1-D array of numbers; could not convert it "
            f"({type(exc).__name__}: {exc})."
        ) from None


def _check_propensities(propensities, n_labels):
    p = _propensity_array(propensities)
    if p.ndim != 1 or p.shape[0] != n_labels:
        raise ValueError(
            f"propensities must have shape ({n_labels},) to match y_true's {n_labels} labels; "
            f"got shape {p.shape}."
        )
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("propensities must be finite and strictly positive.")
    return p


def psprecision_at_k(y_true, y_score, *, k=5, propensities, normalize=True, classes=None):
    """Propensity-scored precision at k (Jain et al., 2016).

    Each hit on label ``l`` is weighted by ``1 / propensities[l]``, so rare (low-propensity)
    labels count more: ``PSP@k = sum_{j<=k} rel_j / p_{r_j} / k``.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels) or list of label lists
        0/1 indicator matrix of the true labels, or one collection of label names per document
        (then ``classes`` is required).
    y_score : {ndarray, sparse matrix} of shape (n_samples, n_labels)
        Scores; higher means more likely. Ties are broken by the lower column index.
    k : int, default=5
        Number of top-ranked labels considered.
    propensities : array-like of shape (n_labels,)
        Strictly positive label propensities, usually ``jain_propensity(Y_train)``.
    normalize : bool, default=True
        If True, divide the dataset's mean PSP@k by the mean PSP@k of the best possible ranking
        (each row ranks its positives by decreasing ``1 / p``): a ratio of means, as in pyxclib,
        which lies in ``[0, 1]``. If False, return the raw mean, which is not bounded by 1.
    classes : array-like of shape (n_labels,), default=None
        Label names in the column order of ``y_score``, e.g. ``clf.classes_``
        (``propensities`` follow the same order); needed when ``y_true`` is given as label
        lists (it is mapped onto these columns; a label not in ``classes`` raises a
        ValueError). With an indicator ``y_true`` it is optional and only checked against the
        number of columns.

    Returns
    -------
    float
        (Normalised) PSP@k over the rows with at least one positive label.

    See Also
    --------
    jain_propensity, precision_at_k

    References
    ----------
    Jain, Prabhu and Varma, "Extreme Multi-label Loss Functions for Recommendation, Tagging,
    Ranking & Other Missing Label Applications", KDD 2016.
    """
    Y, S, k, top, hits, n_pos = _prepare(y_true, y_score, k, classes)
    p = _check_propensities(propensities, Y.shape[1])
    inv = 1.0 / p
    gain = np.where(hits, inv[np.maximum(top, 0)], 0.0)
    per_row = gain.sum(axis=1) / k
    if not normalize:
        return _mean_over_positive_rows(per_row, n_pos, "psprecision_at_k")
    valid = n_pos > 0
    if not valid.any():
        return _mean_over_positive_rows(per_row, n_pos, "psprecision_at_k")
    # Best ranking: each row's positives by decreasing inverse propensity, top min(k, n_pos).
    rows = np.repeat(np.arange(Y.shape[0], dtype=np.int64), n_pos)
    w = inv[Y.indices]
    order = np.lexsort((-w, rows))
    rank = np.arange(rows.size, dtype=np.int64) - Y.indptr[rows[order]]
    keep = rank < k
    best = np.bincount(rows[order][keep], weights=w[order][keep], minlength=Y.shape[0]) / k
    return float(per_row[valid].sum() / best[valid].sum())


def jain_propensity(Y, *, A=0.55, B=1.5, classes=None):
    """Label propensities of Jain et al. (2016) from a training label matrix.

    ``p_l = 1 / (1 + C * exp(-A * log(N_l + B)))`` with ``C = (log N - 1) * (B + 1) ** A``,
    where ``N`` is the number of documents and ``N_l`` the number of documents with label ``l``
    (natural logarithms).

    Parameters
    ----------
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels) or list of label lists
        0/1 indicator matrix of the training labels, or one collection of label names per
        document (then ``classes`` is required).
    A : float, default=0.55
        Dataset-dependent constant (0.55 for most datasets in the XMC repository; 0.6 for
        Amazon, 0.5 for Wikipedia-LSHTC).
    B : float, default=1.5
        Dataset-dependent constant (1.5 for most datasets; 2.6 for Amazon, 0.4 for Wikipedia).
    classes : array-like of shape (n_labels,), default=None
        Label names, in the order the propensities are returned; needed when ``Y`` is given
        as label lists (a label not in ``classes`` raises a ValueError).

    Returns
    -------
    ndarray of shape (n_labels,)
        Propensities in ``(0, 1)``, in the column order of ``Y`` (or of ``classes``); frequent
        labels get values close to 1.

    Raises
    ------
    ValueError
        If ``Y`` has fewer than 3 rows: ``C`` would not be positive (``log N <= 1``).
    """
    Yc = _to_indicator(Y, "Y", classes)
    N = Yc.shape[0]
    if N < 3:
        raise ValueError(
            f"jain_propensity needs at least 3 documents (log N must exceed 1); got {N}."
        )
    counts = np.asarray(Yc.sum(axis=0), dtype=np.float64).ravel()
    C = (np.log(N) - 1.0) * (B + 1.0) ** A
    return 1.0 / (1.0 + C * np.exp(-A * np.log(counts + B)))


# --------------------------------------------------------------------------------------------
# Set-based metrics
# --------------------------------------------------------------------------------------------


def _check_pred_pair(y_true, y_pred, classes=None):
    Y = _to_indicator(y_true, "y_true", classes)
    P = _to_indicator(y_pred, "y_pred", classes)
    if Y.shape != P.shape:
        raise ValueError(f"y_true and y_pred have different shapes: {Y.shape} != {P.shape}.")
    return Y, P


def micro_f1(y_true, y_pred, *, classes=None):
    """Micro-averaged F1 of binary multi-label predictions.

    Parameters
    ----------
    y_true, y_pred : {array-like, sparse matrix} of shape (n_samples, n_labels) or label lists
        0/1 indicator matrices, or one collection of label names per document (as
        ``PlantClassifier.predict`` returns for a model fitted on label lists; then ``classes``
        is required).
    classes : array-like of shape (n_labels,), default=None
        Label names in column order, e.g. ``clf.classes_``; label lists are mapped onto these
        columns (a label not in ``classes`` raises a ValueError). With indicators it is
        optional and only checked against the number of columns.

    Returns
    -------
    float
        ``2 TP / (2 TP + FP + FN)`` over all (document, label) pairs; 0.0 when there are no
        positives in either matrix.
    """
    Y, P = _check_pred_pair(y_true, y_pred, classes)
    return float(f1_score(Y, P, average="micro", zero_division=0))


def _resolve_labels(labels, Y):
    L = Y.shape[1]
    if isinstance(labels, str):
        if labels == "all":
            return np.arange(L)
        if labels == "present":
            return np.flatnonzero(np.diff(sp.csc_matrix(Y).indptr) > 0)
        raise ValueError(
            f"labels must be 'all', 'present' or an array of column indices; got {labels!r}."
        )
    idx = np.asarray(labels)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError("labels must be a 1-D array of integer column indices.")
    if idx.size and (idx.min() < 0 or idx.max() >= L):
        raise ValueError(f"labels contains column indices outside [0, {L}).")
    return idx.astype(np.int64)


def macro_f1(y_true, y_pred, *, labels="all", classes=None):
    """Macro-averaged F1: the unweighted mean of per-label F1 scores.

    Parameters
    ----------
    y_true, y_pred : {array-like, sparse matrix} of shape (n_samples, n_labels) or label lists
        0/1 indicator matrices, or one collection of label names per document (then
        ``classes`` is required).
    labels : {"all", "present"} or array-like of int, default="all"
        Which labels (columns) the mean runs over. ``"all"``: every column; a label with neither
        true nor predicted positives scores 0 (``zero_division=0``), which penalises label
        spaces with many labels absent from the evaluation data. ``"present"``: the labels with
        at least one positive in ``y_true``. An array: those column indices (e.g. training
        labels that also occur in test, as in the project's baselines). Indices are columns,
        i.e. positions in ``classes``, also for label lists.
    classes : array-like of shape (n_labels,), default=None
        Label names in column order, e.g. ``clf.classes_``; see :func:`micro_f1`. With label
        lists, ``labels="all"`` runs over every name in ``classes``.

    Returns
    -------
    float
        Macro F1; 0.0 with a warning when the selection is empty.
    """
    Y, P = _check_pred_pair(y_true, y_pred, classes)
    idx = _resolve_labels(labels, Y)
    if idx.size == 0:
        warnings.warn(
            "macro_f1 is undefined: no label selected; returning 0.0.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return 0.0
    return float(f1_score(Y, P, average="macro", labels=idx, zero_division=0))


# --------------------------------------------------------------------------------------------
# Label-frequency buckets
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def _calibration_pairs(y_true, y_proba, classes):
    Y = _to_indicator(y_true, "y_true", classes)
    P = _check_scores(y_proba, Y.shape, name="y_proba")
    if sp.issparse(P):
        raise TypeError("y_proba must be a dense array of probabilities (predict_proba).")
    if P.size and (P.min() < 0 or P.max() > 1):
        raise ValueError("y_proba must hold probabilities in [0, 1].")
    return Y, P


def reliability_curve(y_true, y_proba, *, n_bins=15, classes=None):
    """Observed frequency against predicted probability, over all (document, label) pairs.

    Parameters
    ----------
    y_true : indicator matrix or list of label lists
        True labels (label lists need ``classes``).
    y_proba : ndarray of shape (n_samples, n_labels)
        Predicted probabilities (``predict_proba``).
    n_bins : int, default=15
        Equal-width probability bins on [0, 1].
    classes : array-like, optional
        Label names in column order, needed for label lists.

    Returns
    -------
    list of dict
        One per non-empty bin: ``lower``, ``upper``, ``count`` (pairs), ``mean_probability``
        and ``observed_frequency`` (share of those pairs that are true labels).
    """
    n_bins = _check_k(n_bins)
    Y, P = _calibration_pairs(y_true, y_proba, classes)
    p = P.ravel().astype(np.float64)
    truth = np.zeros(P.shape, dtype=bool)
    rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
    truth[rows, Y.indices] = True
    truth = truth.ravel()
    which = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    sums = np.bincount(which, weights=p, minlength=n_bins)
    hits = np.bincount(which, weights=truth, minlength=n_bins)
    out = []
    for b in np.flatnonzero(counts):
        out.append({"lower": b / n_bins, "upper": (b + 1) / n_bins, "count": int(counts[b]),
                    "mean_probability": float(sums[b] / counts[b]),
                    "observed_frequency": float(hits[b] / counts[b])})
    return out


def expected_calibration_error(y_true, y_proba, *, n_bins=15, min_probability=0.0,
                               classes=None):
    """Expected calibration error over (document, label) pairs.

    ``sum_b (n_b / n) |observed_b - mean_probability_b|`` over equal-width probability bins
    (:func:`reliability_curve`). In multi-label data most pairs are confident negatives, which
    pull the figure toward 0; ``min_probability`` restricts it to the pairs a model gives at
    least that probability (e.g. 0.01), where calibration matters for decisions.

    Parameters
    ----------
    y_true : indicator matrix or list of label lists
        True labels (label lists need ``classes``).
    y_proba : ndarray of shape (n_samples, n_labels)
    n_bins : int, default=15
    min_probability : float, default=0.0
    classes : array-like, optional

    Returns
    -------
    float
        In [0, 1]; 0 for perfectly calibrated probabilities (NaN if no pair qualifies).
    """
    Y, P = _calibration_pairs(y_true, y_proba, classes)
    if not 0 <= min_probability < 1:
        raise ValueError(f"min_probability must lie in [0, 1), got {min_probability!r}.")
    if min_probability > 0:
        keep = P >= min_probability
        truth = np.zeros(P.shape, dtype=bool)
        rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
        truth[rows, Y.indices] = True
        Y = sp.csr_matrix(truth[keep][None, :].astype(np.int8))
        P = P[keep][None, :]
    bins = reliability_curve(Y, P, n_bins=n_bins)
    total = sum(b["count"] for b in bins)
    if total == 0:
        return float("nan")
    return float(sum(b["count"] * abs(b["observed_frequency"] - b["mean_probability"])
                     for b in bins) / total)


def _bucket_names(bins):
    edges = [int(b) for b in bins]
    names = []
    prev = None
    for e in edges:
        if prev is None:
            names.append("unseen" if e == 0 else f"0-{e}")
        else:
            lo = prev + 1
            names.append(str(e) if lo == e else f"{lo}-{e}")
        prev = e
    names.append(f">{edges[-1]}")
    return edges, names


def frequency_bucket_report(
    y_true, y_score, y_train, *, y_pred=None, bins=(0, 5, 50), k=5, classes=None
):
    """Break ranking (and optionally F1) quality down by the labels' training frequency.

    Labels are put into buckets by how many training documents carry them: with the default
    ``bins=(0, 5, 50)`` the buckets are ``"unseen"`` (0 documents), ``"1-5"``, ``"6-50"`` and
    ``">50"``. Edges are inclusive upper bounds.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels) or list of label lists
        0/1 indicator matrix of the evaluation labels, or one collection of label names per
        document (then ``classes`` is required).
    y_score : {ndarray, sparse matrix} of shape (n_samples, n_labels)
        Scores for the evaluation documents.
    y_train : {array-like, sparse matrix} of shape (n_train, n_labels) or list of label lists
        0/1 indicator matrix of the training labels, in the same label space, or label lists.
    y_pred : {array-like, sparse matrix} or label lists, default=None
        Binary predictions of shape (n_samples, n_labels); when given, each row also reports
        ``macro_f1``.
    bins : sequence of int, default=(0, 5, 50)
        Strictly increasing, non-negative bucket upper bounds; a last bucket takes everything
        above the last edge. A first edge of 0 names the first bucket ``"unseen"``.
    k : int, default=5
        Cut-off for the recall column.
    classes : array-like of shape (n_labels,), default=None
        Label names in the column order of ``y_score``, e.g. ``clf.classes_``; every argument
        given as label lists is mapped onto these columns (a label not in ``classes`` raises
        a ValueError).

    Returns
    -------
    list of dict
        One dict per bucket, in bin order, with keys

        - ``bucket``: name, e.g. ``"1-5"``;
        - ``n_labels``: labels in the bucket;
        - ``n_labels_in_test``: those with at least one positive in ``y_true``;
        - ``n_test_positives``: positive (document, label) pairs of the bucket in ``y_true``;
        - ``recall_at_k``: the fraction of those pairs whose label is in the document's top
          ``k`` (NaN when the bucket has no positives);
        - ``macro_f1`` (only with ``y_pred``): macro F1 over the bucket's labels present in
          ``y_true`` (NaN when there are none).

    See Also
    --------
    format_report
    """
    k = _check_k(k)
    Y = _to_indicator(y_true, "y_true", classes)
    S = _check_scores(y_score, Y.shape)
    T = _to_indicator(y_train, "y_train", classes)
    if T.shape[1] != Y.shape[1]:
        raise ValueError(
            f"y_train has {T.shape[1]} labels but y_true has {Y.shape[1]}; both must use the "
            "same label space."
        )
    P = None
    if y_pred is not None:
        Y, P = _check_pred_pair(Y, y_pred, classes)
    if bins is None or isinstance(bins, (str, bytes)) or not hasattr(bins, "__len__"):
        raise TypeError(f"bins must be a 1-D sequence of integers; got {bins!r}.")
    if len(bins) == 0:
        raise ValueError("bins must contain at least one edge.")
    try:
        edges = np.asarray(bins)
    except (ValueError, TypeError):
        edges = np.asarray(bins, dtype=object)
    if edges.ndim != 1 or not np.issubdtype(edges.dtype, np.integer):
        raise ValueError(f"bins must be a 1-D sequence of integers; got {bins!r}.")
    if edges[0] < 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be non-negative and strictly increasing; got {bins!r}.")
    edges, names = _bucket_names(edges)

    L = Y.shape[1]
    train_freq = np.bincount(T.indices, minlength=L)
    # np.digitize with right=True maps freq <= edges[0] to 0, (edges[i-1], edges[i]] to i.
    bucket_of = np.digitize(train_freq, edges, right=True)

    top = _topk(S, k)
    hits = _hits(Y, top)
    test_pos = np.bincount(Y.indices, minlength=L)
    found = np.bincount(top[hits], minlength=L)

    rows = []
    for b, name in enumerate(names):
        members = np.flatnonzero(bucket_of == b)
        n_positives = int(test_pos[members].sum())
        present = members[test_pos[members] > 0]
        row = {
            "bucket": name,
            "n_labels": int(members.size),
            "n_labels_in_test": int(present.size),
            "n_test_positives": n_positives,
            "recall_at_k": float(found[members].sum() / n_positives) if n_positives else np.nan,
        }
        if P is not None:
            row["macro_f1"] = (
                float(f1_score(Y, P, average="macro", labels=present, zero_division=0))
                if present.size
                else np.nan
            )
        rows.append(row)
    return rows


def format_report(rows, *, digits=4):
    """Format rows of dicts (e.g. from :func:`frequency_bucket_report`) as a plain-text table.

    Parameters
    ----------
    rows : list of dict
        Table rows; columns are the keys in order of first appearance.
    digits : int, default=4
        Decimals shown for floats. NaN and missing cells are shown as ``-``.

    Returns
    -------
    str
        A table with a header line, a rule and one line per row, columns right-aligned.
    """
    rows = list(rows)
    columns = []
    for row in rows:
        if not isinstance(row, dict):
            raise TypeError(f"format_report expects a list of dicts; got a {type(row).__name__}.")
        for key in row:
            if key not in columns:
                columns.append(key)

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, (float, np.floating)):
            return "-" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    table = [[str(c) for c in columns]]
    table += [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Scorers
# --------------------------------------------------------------------------------------------

#: What the ranking scorers ask the estimator for, in order of preference.
_RANKING_RESPONSE = ("decision_function", "predict_proba")


def _ranking_scores(estimator, X):
    """``(method name, (n_samples, n_labels) scores)`` from the estimator's best response."""
    for method in _RANKING_RESPONSE:
        func = getattr(estimator, method, None)
        if func is None:
            continue
        scores = func(X)
        if isinstance(scores, list):
            # One (n_samples, n_classes) probability array per label, as RandomForestClassifier
            # or MultiOutputClassifier return: keep each one's last (positive) column, as
            # scikit-learn's own scorers do.
            try:
                scores = np.column_stack([np.asarray(col)[:, -1] for col in scores])
            except (ValueError, TypeError, IndexError) as exc:
                raise ValueError(
                    f"{type(estimator).__name__}.{method} returned a list that is not one 2-D "
                    f"array per label ({type(exc).__name__}: {exc})."
                ) from None
        return method, scores
    raise TypeError(
        f"{type(estimator).__name__} has neither decision_function nor predict_proba; the "
        "ranking scorers need per-label scores."
    )


def _scorer_label_space(estimator, *ys):
    """Put a scorer's label arguments (``y_true`` and possibly ``y_pred``) in one label space.

    Indicator inputs are returned unchanged (the metric validates them) with ``names=None``.
    If any of them is label lists, all of them are mapped onto the columns of the fitted
    ``estimator.classes_``; labels the estimator was never fitted on (a cross-validation fold's
    training part can miss a rare label) get extra columns after those, which the estimator
    cannot predict. Returns ``(converted, names, n_known)``: the CSR matrices, the names of all
    their columns and the number of them that are the estimator's own.
    """
    ys = [list(y) if isinstance(y, Iterator) else y for y in ys]
    is_lists = [_is_label_lists(y) for y in ys]
    if not any(is_lists):
        return ys, None, None
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise TypeError(
            f"The scorer got label lists as y, but {type(estimator).__name__} has no classes_ "
            "naming its score columns; score it with a 0/1 indicator matrix instead."
        )
    names, index = _check_classes(classes, name=f"{type(estimator).__name__}.classes_")
    extra = {}
    converted = []
    for y, lists, name in zip(ys, is_lists, ("y_true", "y_pred"), strict=False):
        if lists:
            converted.append(_label_lists_to_csr(y, name, index, extra=extra))
        else:
            converted.append(_to_indicator(y, name, names))
    n_total = len(names) + len(extra)
    converted = [
        sp.csr_matrix((Y.data, Y.indices, Y.indptr), shape=(Y.shape[0], n_total))
        for Y in converted
    ]
    return converted, names + list(extra), len(names)


def _never_predicted(S, n_total):
    """Scores ``S`` widened to ``n_total`` columns whose extra columns are never predicted.

    The result is sparse with every existing score stored (zeros included): the ranking metrics
    rank stored entries only, so the extra columns can never enter a top-k list, even when
    ``k`` exceeds the number of scored labels.
    """
    if sp.issparse(S):
        return sp.csr_matrix((S.data, S.indices, S.indptr), shape=(S.shape[0], n_total))
    n, m = S.shape
    indptr = np.arange(0, n * m + 1, max(m, 1), dtype=np.int64) if m else np.zeros(n + 1, int)
    indices = np.tile(np.arange(m, dtype=np.int64), n)
    return sp.csr_matrix((S.ravel(), indices, indptr), shape=(n, n_total))


class _RankingScorer:
    """``scorer(estimator, X, y_true) -> float`` for a ranking metric (see the factories)."""

    def __init__(self, factory, metric, k, propensities=None, classes=None, **params):
        self._factory = factory
        self._metric = metric
        self.k = k
        self.propensities = propensities
        self.classes = classes
        self.params = params

    def _propensities(self, names):
        """The propensities of the columns ``names`` (None: the columns of an indicator)."""
        if names is None or self.classes is None:
            if names is not None:
                raise TypeError(
                    f"{self._factory} got label lists as y, so it needs the label names of its "
                    "propensities: create it with classes=..., e.g. "
                    "psprecision_at_k_scorer(jain_propensity(Y, classes=labels), "
                    "classes=labels)."
                )
            return self.propensities
        by_name = dict(zip(self.classes, self.propensities, strict=True))
        missing = [label for label in names if label not in by_name]
        if missing:
            shown = ", ".join(repr(label) for label in missing[:_N_SHOWN])
            raise ValueError(
                f"{self._factory} has no propensity for {len(missing)} label(s): {shown}; its "
                "classes must name every label of the data."
            )
        return np.array([by_name[label] for label in names], dtype=np.float64)

    def __call__(self, estimator, X, y_true):
        method, scores = _ranking_scores(estimator, X)
        (Y,), names, n_known = _scorer_label_space(estimator, y_true)
        if names is not None:
            scores = _check_scores(scores, (Y.shape[0], n_known), name=f"{method} output")
            if Y.shape[1] > n_known:
                scores = _never_predicted(scores, Y.shape[1])
        params = dict(self.params)
        if self.propensities is not None:
            params["propensities"] = self._propensities(names)
        return self._metric(Y, scores, k=self.k, **params)

    def __repr__(self):
        args = [f"k={self.k}"] + [f"{key}={value!r}" for key, value in self.params.items()]
        if self.propensities is not None:
            args.insert(0, f"<{self.propensities.size} propensities>")
            if self.classes is not None:
                args.append(f"<{len(self.classes)} classes>")
        return f"{self._factory}({', '.join(args)})"


class _PredictionScorer:
    """``scorer(estimator, X, y_true) -> float`` for an F1 metric on ``estimator.predict``."""

    def __init__(self, factory, metric, **params):
        self._factory = factory
        self._metric = metric
        self.params = params

    def __call__(self, estimator, X, y_true):
        y_pred = estimator.predict(X)
        (Y, P), _, _ = _scorer_label_space(estimator, y_true, y_pred)
        return self._metric(Y, P, **self.params)

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self._factory}({args})"


def precision_at_k_scorer(k=5):
    """A scorer computing :func:`precision_at_k` on the estimator's scores.

    For ``scoring=`` in :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` and
    :func:`plantlearn.model_selection.cross_validate`, also with label-list targets.

    Parameters
    ----------
    k : int, default=5
        Rank cut-off.

    Returns
    -------
    callable
        ``scorer(estimator, X, y_true) -> float`` (higher is better).

    Notes
    -----
    The scorer asks the estimator for ``decision_function`` where it has one, else
    ``predict_proba``: rankings need no probabilities, and float32 probabilities saturate at 1
    for large logits (PlantClassifier with its linear evidence head), which would tie the top
    labels. The scores are used as returned (a list of per-label probability arrays is
    stacked to their positive columns), whatever ``classes_`` looks like.

    ``y_true`` may be in any target format ``PlantClassifier.fit`` takes. Label lists are mapped
    onto the columns of the fitted ``estimator.classes_`` (so they need an estimator with
    ``classes_``). A label the estimator was never fitted on (a cross-validation fold's
    training part can lack a rare label) still counts as a positive of its document, one the
    estimator cannot rank: it is always a miss, and its document is not dropped from the mean.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV, KFold
    >>> from plantlearn import PlantClassifier
    >>> from plantlearn.metrics import precision_at_k_scorer
    >>> search = GridSearchCV(PlantClassifier(), {"max_iter": [5, 10]},
    ...                       scoring=precision_at_k_scorer(k=1), cv=KFold(3))
    """
    return _RankingScorer("precision_at_k_scorer", precision_at_k, _check_k(k))


def ndcg_at_k_scorer(k=5):
    """A scorer computing :func:`ndcg_at_k` on the estimator's scores.

    Parameters
    ----------
    k : int, default=5
        Rank cut-off.

    Returns
    -------
    callable
        ``scorer(estimator, X, y_true) -> float`` (higher is better).

    See Also
    --------
    precision_at_k_scorer : which scores are used, and label-list targets.
    """
    return _RankingScorer("ndcg_at_k_scorer", ndcg_at_k, _check_k(k))


def psprecision_at_k_scorer(propensities, *, k=5, normalize=True, classes=None):
    """A scorer computing :func:`psprecision_at_k` on the estimator's scores.

    Parameters
    ----------
    propensities : array-like of shape (n_labels,)
        Fixed label propensities, computed once from the full training labels (as XMC
        benchmarks do) rather than per fold, so that every fold is scored with the same weights.
    k : int, default=5
        Rank cut-off.
    normalize : bool, default=True
        See :func:`psprecision_at_k`.
    classes : array-like of shape (n_labels,), default=None
        The label names of ``propensities``, in order. Needed to score label-list targets: a
        model fitted on label lists has the labels of its training data as ``classes_``, which
        differ between cross-validation folds, so the propensities are looked up by name.
        With indicator targets the propensities follow the columns and ``classes`` is unused.

    Returns
    -------
    callable
        ``scorer(estimator, X, y_true) -> float`` (higher is better).

    See Also
    --------
    precision_at_k_scorer : which scores are used, and label-list targets.

    Examples
    --------
    >>> from plantlearn.metrics import jain_propensity, psprecision_at_k_scorer
    >>> labels = ["earn", "grain", "wheat"]
    >>> Y = [["earn"], ["grain", "wheat"], ["earn"], ["grain"]]
    >>> p = jain_propensity(Y, classes=labels)
    >>> scorer = psprecision_at_k_scorer(p, k=1, classes=labels)
    """
    k = _check_k(k)
    p = _propensity_array(propensities)
    if p.ndim != 1:
        raise ValueError(f"propensities must be 1-D (n_labels,); got shape {p.shape}.")
    _check_propensities(p, p.shape[0])
    names = None
    if classes is not None:
        names, _ = _check_classes(classes)
        if len(names) != p.size:
            raise ValueError(
                f"classes names {len(names)} labels but there are {p.size} propensities."
            )
    return _RankingScorer(
        "psprecision_at_k_scorer", psprecision_at_k, k, propensities=p, classes=names,
        normalize=normalize,
    )


def micro_f1_scorer():
    """A scorer computing :func:`micro_f1` on ``estimator.predict``.

    Works with every target format: ``PlantClassifier.predict`` returns the format ``fit``
    received, and label lists on either side are mapped onto the fitted
    ``estimator.classes_`` (labels the estimator was never fitted on count as missed).

    Returns
    -------
    callable
        ``scorer(estimator, X, y_true) -> float`` (higher is better).

    See Also
    --------
    macro_f1_scorer
    """
    return _PredictionScorer("micro_f1_scorer", micro_f1)


def macro_f1_scorer(*, labels="all"):
    """A scorer computing :func:`macro_f1` on ``estimator.predict``.

    Parameters
    ----------
    labels : {"all", "present"}, default="all"
        Which labels the mean runs over, see :func:`macro_f1`. With label lists, ``"all"``
        means the estimator's ``classes_`` plus any label of ``y_true`` it was never fitted on;
        ``"present"`` (the labels with a positive in ``y_true``) means the same with every
        target format.

    Returns
    -------
    callable
        ``scorer(estimator, X, y_true) -> float`` (higher is better).

    See Also
    --------
    micro_f1_scorer : the target formats.
    """
    if not (isinstance(labels, str) and labels in ("all", "present")):
        raise ValueError(f"labels must be 'all' or 'present'; got {labels!r}.")
    return _PredictionScorer("macro_f1_scorer", macro_f1, labels=labels)
