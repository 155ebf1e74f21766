"""F1-optimal decision thresholds for multi-label scores (numpy only).

Prediction rule everywhere: a label is predicted when ``score >= threshold``.

Both searches sort the scores once and sweep the sorted list with cumulative sums: after the
first ``j`` entries (highest scores first) the predicted count is ``j`` and the true positives are
the cumulative count of positives, so the F1 of every candidate threshold,
``F1 = 2 TP / (n_predicted + n_positive)``, comes out of one vectorised pass. Only positions
where the score changes are valid cut points (equal scores are predicted together). The returned
threshold is the midpoint between the last predicted score and the next lower distinct score, so
it is robust to small score perturbations; when there is no lower score it is the last predicted
score itself. Ties in F1 go to the higher threshold (fewer predictions).

``y_true`` may be dense or scipy sparse; ``y_score`` dense or scipy sparse. With a sparse
``y_score`` only the stored scores are candidates and entries that are not stored are never
predicted (their positives count as false negatives).
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["best_global_threshold", "best_per_label_thresholds", "scut_fbr_thresholds",
           "cardinality_threshold", "shrunk_global_threshold", "FULL_TRUST_CUT_POSITIVES"]

#: Positive (document, label) pairs from which a micro-F1-tuned global cut is trusted alone.
#: The F1 of a cut counts positives only (true positives against predictions plus
#: positives); with a few dozen of them, as in a 10% validation carve of a few dozen training
#: documents, one document's labels move the cut (an offline analysis of 2026-11-27, in git history: CodiEsp
#: with 50 training documents: the 5-document carve's cut gave held-out micro-F1 from 10.7 to
#: 20.2 by seed). Below it :func:`shrunk_global_threshold` moves the cut toward the
#: cardinality cut, in proportion to the positives missing.
FULL_TRUST_CUT_POSITIVES = 200


def _as_csr_indicator(y_true):
    if sp.issparse(y_true):
        Y = sp.csr_matrix(y_true, copy=True)
        Y.sum_duplicates()
    else:
        arr = np.asarray(y_true)
        if arr.ndim != 2:
            raise ValueError(f"y_true must be 2-D (n_samples, n_labels); got shape {arr.shape}.")
        Y = sp.csr_matrix(arr)
    Y.eliminate_zeros()
    if Y.nnz and not np.all(Y.data == 1):
        raise ValueError("y_true must be a 0/1 indicator matrix.")
    Y.sort_indices()
    return Y


def _sorted_entries(y_true, y_score, *, per_label):
    """Candidate entries sorted by (column, decreasing score).

    Returns ``(cols, scores, is_pos, n_pos)``. With ``per_label=False`` every entry is put in
    one column 0 and ``n_pos`` holds the total positive count.
    """
    Y = _as_csr_indicator(y_true)
    n, L = Y.shape
    if sp.issparse(y_score):
        S = sp.csr_matrix(y_score, copy=True)
        S.sum_duplicates()
    else:
        S = np.asarray(y_score)
        if S.ndim != 2:
            raise ValueError(f"y_score must be 2-D (n_samples, n_labels); got shape {S.shape}.")
        if not np.issubdtype(S.dtype, np.floating):
            S = S.astype(np.float64)
    if S.shape != Y.shape:
        raise ValueError(f"y_true and y_score have different shapes: {Y.shape} != {S.shape}.")
    if np.isnan(S.data if sp.issparse(S) else S).any():
        raise ValueError("y_score contains NaN.")
    n_pos = np.bincount(Y.indices, minlength=L).astype(np.int64)
    pos_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(Y.indptr))
    pos_keys = pos_rows * L + Y.indices  # sorted, since Y is canonical CSR

    if sp.issparse(S):
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(S.indptr))
        cols = S.indices.astype(np.int64)
        scores = S.data
        query = rows * L + cols
        if pos_keys.size:
            at = np.minimum(np.searchsorted(pos_keys, query), pos_keys.size - 1)
            is_pos = pos_keys[at] == query
        else:
            is_pos = np.zeros(query.size, dtype=bool)
        if per_label:
            order = np.lexsort((-scores, cols))
            return cols[order], scores[order], is_pos[order], n_pos
        order = np.argsort(-scores)
        return (
            np.zeros(order.size, np.int64),
            scores[order],
            is_pos[order],
            n_pos.sum(keepdims=True),
        )

    if not per_label:
        flat_pos = np.zeros(n * L, dtype=bool)
        flat_pos[pos_keys] = True
        scores = S.ravel()
        # Equal scores are grouped by the sweep, so the sort need not be stable.
        order = np.argsort(-scores)
        return (
            np.zeros(order.size, np.int64),
            scores[order],
            flat_pos[order],
            n_pos.sum(keepdims=True),
        )

    # Dense, per label: sorting each column (axis 0) is much cheaper than a global lexsort.
    dense_pos = np.zeros((n, L), dtype=bool)
    dense_pos[pos_rows, Y.indices] = True
    order = np.argsort(-S, axis=0)
    scores = np.take_along_axis(S, order, axis=0).T.ravel()
    is_pos = np.take_along_axis(dense_pos, order, axis=0).T.ravel()
    cols = np.repeat(np.arange(L, dtype=np.int64), n)
    return cols, scores, is_pos, n_pos


def _sweep(cols, scores, is_pos, n_pos):
    """Best F1 cut per column, for entries already sorted by (column, decreasing score).

    Returns (threshold, best_f1) arrays of length ``len(n_pos)``; columns without entries get
    threshold NaN and F1 0.
    """
    n_cols = n_pos.size
    thresholds = np.full(n_cols, np.nan)
    best_f1 = np.zeros(n_cols)
    m = scores.size
    if m == 0:
        return thresholds, best_f1
    start = np.searchsorted(cols, np.arange(n_cols))
    seg_start = start[cols]
    cum_pos = np.cumsum(is_pos, dtype=np.int64)
    # Valid cuts: after the last entry of a run of equal scores within a column.
    same_next = np.zeros(m, dtype=bool)
    same_next[:-1] = (cols[1:] == cols[:-1]) & (scores[1:] == scores[:-1])
    cut = np.flatnonzero(~same_next)
    c = cols[cut]
    s0 = seg_start[cut]
    # True positives and predicted count when cutting right after entry `cut` of its column.
    tp = cum_pos[cut] - np.where(s0 > 0, cum_pos[np.maximum(s0 - 1, 0)], 0)
    n_pred = cut - s0 + 1
    f1 = 2.0 * tp / (n_pred + n_pos[c])
    # Per column: the highest F1, ties to the earliest cut (the highest threshold). Cuts are in
    # column order, so segment maxima come from reduceat and the first maximum from a mask.
    present = np.flatnonzero(np.diff(np.append(start, m)) > 0)
    seg = np.searchsorted(c, present)
    col_max = np.maximum.reduceat(f1, seg)
    at_max = np.flatnonzero(f1 == np.repeat(col_max, np.diff(np.append(seg, c.size))))
    first = np.ones(at_max.size, dtype=bool)
    first[1:] = c[at_max][1:] != c[at_max][:-1]
    chosen = at_max[first]
    best_col = c[chosen]
    i = cut[chosen]
    v = scores[i].astype(np.float64)
    nxt_i = np.minimum(i + 1, m - 1)
    has_next = (i + 1 < m) & (cols[nxt_i] == cols[i])
    nxt = scores[nxt_i].astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        mid = v / 2.0 + nxt / 2.0  # halves first: no overflow near the float limits
    # The midpoint must separate the two scores; fall back to the predicted score when it does
    # not (infinite scores, or adjacent floats where the midpoint rounds onto one of them).
    ok = has_next & (mid > nxt) & (mid <= v)
    thresholds[best_col] = np.where(ok, mid, v)
    best_f1[best_col] = f1[chosen]
    return thresholds, best_f1


def best_global_threshold(y_true, y_score):
    """The single threshold that maximises micro-F1 over all (document, label) pairs.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 indicator matrix.
    y_score : {ndarray, sparse matrix} of shape (n_samples, n_labels)
        Scores; a label is predicted when ``score >= threshold``.

    Returns
    -------
    float
        The micro-F1-optimal threshold (midpoint between consecutive distinct scores).

    Raises
    ------
    ValueError
        If ``y_true`` has no positive entry (every threshold then has F1 0) or no score is
        given, or on shape mismatch.
    """
    cols, scores, is_pos, n_pos = _sorted_entries(y_true, y_score, per_label=False)
    if n_pos[0] == 0:
        raise ValueError("y_true has no positive entry; a micro-F1 threshold is undefined.")
    if scores.size == 0:
        raise ValueError("y_score has no (stored) score to threshold.")
    thr, _ = _sweep(cols, scores, is_pos, n_pos)
    return float(thr[0])


def cardinality_threshold(y_score, labels_per_document):
    """The cut at which the documents get, on average, ``labels_per_document`` labels.

    It reads the scores only, never labels: the ``k = round(labels_per_document * n_samples)``
    highest scores of the whole matrix (at least one) are predicted. Like the F1 searches it
    returns the midpoint between the last predicted score and the next lower distinct score
    (equal scores are predicted together, so ties can add a few predictions), or the lowest
    score when every entry is predicted.

    Parameters
    ----------
    y_score : ndarray or sparse matrix of shape (n_samples, n_labels)
        Scores; a label is predicted when ``score >= threshold``. Sparse: only the stored
        scores are candidates.
    labels_per_document : float
        The wanted mean number of predicted labels per document, typically the training
        documents' mean label count.

    Returns
    -------
    float
    """
    if sp.issparse(y_score):
        # Only the stored scores (each document's candidates) can be predicted.
        S = sp.csr_matrix(y_score)
        n_rows, values = S.shape[0], np.asarray(S.data, dtype=np.float64)
    else:
        S = np.asarray(y_score, dtype=np.float64)
        n_rows, values = (S.shape[0] if S.ndim == 2 else 0), S.ravel()
    if S.ndim != 2 or values.size == 0:
        raise ValueError(f"y_score must be a non-empty 2-D array; got shape {S.shape}.")
    if not np.isfinite(labels_per_document) or labels_per_document < 0:
        raise ValueError(f"labels_per_document must be a finite number >= 0; "
                         f"got {labels_per_document!r}.")
    ranked = np.sort(values)[::-1]
    S = np.empty((n_rows, 1))  # only its row count is read below
    k = min(max(int(round(labels_per_document * S.shape[0])), 1), ranked.size)
    last = ranked[k - 1]
    lower = ranked[k:][ranked[k:] < last]
    mid = (last + lower[0]) / 2 if lower.size else last
    return float(mid if np.isfinite(mid) else last)


def shrunk_global_threshold(y_true, y_score, labels_per_document, *,
                            full_trust_positives=FULL_TRUST_CUT_POSITIVES):
    """The micro-F1 cut, shrunk toward the cardinality cut when few positives tuned it.

    With ``n`` positive entries in ``y_true`` the cut is
    ``card + lam * (micro - card)``, ``lam = min(1, n / full_trust_positives)``: ``micro``
    is :func:`best_global_threshold` and ``card`` is :func:`cardinality_threshold` with
    ``labels_per_document``. From ``full_trust_positives`` positives on it is the micro-F1
    cut; without positives it is the cardinality cut, which reads the scores only. The mix
    is continuous in ``n``, so one more or one fewer validation document cannot switch the
    rule.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 indicator matrix (may have no positive).
    y_score : ndarray of shape (n_samples, n_labels)
        Scores; a label is predicted when ``score >= threshold``.
    labels_per_document : float
        The mean label count of the training documents.
    full_trust_positives : int, default=FULL_TRUST_CUT_POSITIVES
        Positives from which the micro-F1 cut is taken alone (> 0).

    Returns
    -------
    float
    """
    if not full_trust_positives > 0:
        raise ValueError(f"full_trust_positives must be > 0; got {full_trust_positives!r}.")
    Y = _as_csr_indicator(y_true)  # validated once; the micro-F1 search takes it as is
    lam = min(1.0, Y.nnz / full_trust_positives)
    micro = best_global_threshold(Y, y_score) if lam > 0 else 0.0
    if lam == 1.0:
        return micro
    card = cardinality_threshold(y_score, labels_per_document)
    return float(card + lam * (micro - card))


def best_per_label_thresholds(y_true, y_score, *, fallback):
    """One F1-maximising threshold per label.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 indicator matrix.
    y_score : {ndarray, sparse matrix} of shape (n_samples, n_labels)
        Scores; label ``l`` is predicted when ``score[:, l] >= thresholds[l]``.
    fallback : float or array-like of shape (n_labels,)
        Threshold for labels whose F1 cannot be tuned: no positive in ``y_true`` (or, with a
        sparse ``y_score``, no stored score of a positive). Typically the global threshold.

    Returns
    -------
    ndarray of shape (n_labels,)
        Per-label thresholds.
    """
    cols, scores, is_pos, n_pos = _sorted_entries(y_true, y_score, per_label=True)
    L = n_pos.size
    fb = np.asarray(fallback, dtype=np.float64)
    if fb.ndim == 0:
        fb = np.full(L, float(fb))
    if fb.shape != (L,):
        raise ValueError(f"fallback must be a scalar or have shape ({L},); got shape {fb.shape}.")
    thr, f1 = _sweep(cols, scores, is_pos, n_pos)
    return np.where((n_pos > 0) & (f1 > 0), thr, fb).astype(np.float64)


def scut_fbr_thresholds(y_true, y_score, *, fbr=0.1, fallback=0.0):
    """Per-label F1-optimal thresholds with the "fbr" guard of SCutFBR.

    SCutFBR (Yang, SIGIR 2001; revisited by Lin et al., 2023, for infrequent labels):
    each label's threshold maximises its F1 on held-out scores; when even that best F1
    is below ``fbr`` the held-out scores say little about the label, and the threshold
    goes to the label's highest held-out score instead, so that only documents scoring
    at least as high as anything seen are predicted.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        0/1 indicator matrix.
    y_score : ndarray of shape (n_samples, n_labels)
        Held-out (e.g. cross-validated) scores.
    fbr : float, default=0.1
        F1 below which a label gets its highest score as threshold.
    fallback : float, default=0.0
        Threshold of labels without a positive in ``y_true``.

    Returns
    -------
    ndarray of shape (n_labels,)
    """
    S = np.asarray(y_score, dtype=np.float64)
    cols, scores, is_pos, n_pos = _sorted_entries(y_true, S, per_label=True)
    thr, f1 = _sweep(cols, scores, is_pos, n_pos)
    has_pos = n_pos > 0
    tuned = np.where(f1 >= fbr, thr, S.max(axis=0) if S.shape[0] else fallback)
    return np.where(has_pos & np.isfinite(tuned), tuned, float(fallback)).astype(np.float64)
