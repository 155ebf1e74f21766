"""Convex fit of the evidence head: one-vs-rest linear SVMs over each label's own words.

Numeric kernel (numpy, scipy, scikit-learn's liblinear); no torch. The evidence
head of PlantNet is a sparse linear model: label ``l`` sees only the words stage 1
kept for it. Fitting those weights with a convex solver gives the tf-idf linear
model that the field's strongest baselines are, restricted to the planted pairs
(the restriction also regularises: on small, long-tailed training sets a linear
SVM over each label's top-MI words ranks better than one over the whole
vocabulary).
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from ._thresholds import scut_fbr_thresholds

__all__ = ["fit_restricted_svms", "cross_validated_thresholds", "cooccurrence_pairs",
           "frequent_word_budget", "selected_and_frequent_pairs"]

#: Bias given to a label that the training documents never (or always) carry.
CONSTANT_LABEL_BIAS = 1.0

#: Most words per label in a head over co-occurring words. Rare labels stay far below it (a
#: label seen in a few documents co-occurs with a few hundred words); it bounds the head
#: of frequent labels, which co-occur with most of the vocabulary (on the shared datasets
#: the median label co-occurs with 250-2,900 words, the most frequent with up to 10,900).
COOCCURRENCE_WORDS_PER_LABEL = 1000


def cooccurrence_pairs(presence, Y, *, max_per_label=COOCCURRENCE_WORDS_PER_LABEL,
                       block_size=1024):
    """Every (label, word) pair seen together in a training document: a head without stage 1.

    The selection that needs no statistic: a label may use any word of its training
    documents. A label with more than ``max_per_label`` such words keeps those in the most
    of its documents (ties: the smaller word id).

    Parameters
    ----------
    presence : sparse matrix (n_docs, n_words)
        Non-zero where the document holds the word.
    Y : sparse matrix (n_docs, n_labels)
        Binary label indicators.
    max_per_label : int or array-like of int, shape (n_labels,)
        The most words a label keeps: one bound for all labels, or one per label (0 keeps
        none).
    block_size : int, default=1024
        Labels counted at a time (memory bound: the label-word counts of one block; all
        labels at once would be labels x vocabulary on large label sets).

    Returns
    -------
    labels, words : int64 ndarrays
        The pairs, sorted by label, then by document count (descending), then word id.
    """
    presence = sp.csr_matrix(presence, dtype=np.float64, copy=True)  # the caller's stays as is
    presence.data[:] = 1.0
    Y = sp.csc_matrix(Y, dtype=np.float64)
    if presence.shape[0] != Y.shape[0]:
        raise ValueError(f"presence has {presence.shape[0]} documents, Y {Y.shape[0]}.")
    limit = np.broadcast_to(np.asarray(max_per_label, dtype=np.int64), (Y.shape[1],))
    out_labels, out_words = [], []
    for start in range(0, Y.shape[1], block_size):
        counts = (Y[:, start:start + block_size].T @ presence).tocsr()
        counts.eliminate_zeros()
        labels = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        order = np.lexsort((counts.indices, -counts.data, labels))
        rank = np.arange(order.size) - counts.indptr[labels[order]]
        keep = order[rank < limit[start + labels[order]]]
        out_labels.append(labels[keep] + start)
        out_words.append(counts.indices[keep])
    if not out_labels:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return (np.concatenate(out_labels).astype(np.int64),
            np.concatenate(out_words).astype(np.int64))


def frequent_word_budget(label_counts, n_selected, *, per_document=1.0,
                         cap=COOCCURRENCE_WORDS_PER_LABEL):
    """Co-occurring words a label may add to its ``n_selected`` selected ones: one per
    training document beyond them (``per_document``), ``cap`` words in all.

    The head's SVM for a label with many documents can also weigh the common words (and
    learn that some count against the label: a selection by positive association never
    offers those), while one with few documents would only fit noise on them. Tying the
    number of words to the number of positive documents keeps a label with at most
    ``n_selected`` documents on its selected words alone.

    Parameters
    ----------
    label_counts : array-like of int, shape (n_labels,)
        Training documents of each label.
    n_selected : int
        Words each label already has (stage 1's ``top_k``).
    per_document : float, default=1.0
        Words allowed per training document of the label.
    cap : int, default=COOCCURRENCE_WORDS_PER_LABEL

    Returns
    -------
    ndarray of int64, shape (n_labels,)
    """
    allowed = np.ceil(per_document * np.asarray(label_counts, dtype=np.float64)).astype(np.int64)
    return np.clip(np.minimum(allowed, cap) - int(n_selected), 0, None)


def selected_and_frequent_pairs(selected, presence, Y, *, n_selected, per_document=1.0,
                                cap=COOCCURRENCE_WORDS_PER_LABEL):
    """The (label, word) pairs of ``selected`` and each label's most frequent co-occurring
    words, as many as :func:`frequent_word_budget` allows.

    Parameters
    ----------
    selected : sparse matrix (n_labels, n_words)
        The selected pairs (stage 1's MI words): its non-zero pattern.
    presence, Y : as for :func:`cooccurrence_pairs`.
    n_selected, per_document, cap : as for :func:`frequent_word_budget`.

    Returns
    -------
    labels, words : int64 ndarrays
        The union, sorted by label, then word id (a word both selections hold is one pair).
    """
    selected = sp.coo_matrix(selected)
    n_labels, n_words = selected.shape
    keys = selected.row.astype(np.int64) * n_words + selected.col
    label_counts = np.asarray((sp.csc_matrix(Y) != 0).sum(axis=0)).ravel()
    budget = frequent_word_budget(label_counts, n_selected, per_document=per_document, cap=cap)
    if budget.any():
        labels, words = cooccurrence_pairs(presence, Y, max_per_label=budget)
        keys = np.concatenate([keys, labels * n_words + words])
    keys = np.unique(keys)
    return keys // n_words, keys % n_words


def fit_restricted_svms(X, Y, support, *, C=1.0, max_iter=1000, random_state=0,
                        callback=None):
    """One squared-hinge linear SVM per label, on the columns ``support`` keeps for it.

    Parameters
    ----------
    X : sparse matrix (n_docs, n_features)
        Document features (here: L2-normalised tf-idf).
    Y : sparse matrix (n_docs, n_labels)
        Binary label indicators.
    support : sparse matrix (n_labels, n_features)
        The features each label may use: the pattern of row ``l`` (values ignored).
    C : float, default=1.0
        Inverse regularisation strength (liblinear's; the intercept is regularised too).
    max_iter : int, default=1000
        liblinear's iteration cap per label.
    random_state : int, default=0
        Seed of liblinear's coordinate order (an int, so that numpy's global random
        state is neither read nor advanced).
    callback : callable, optional
        Called as ``callback(done_labels, n_labels)`` every 100 labels and at the end.

    Returns
    -------
    weights : csr_matrix (n_labels, n_features), float64
        The SVMs' weights on exactly the pattern of ``support`` (sorted indices).
    bias : ndarray (n_labels,)
        The SVMs' intercepts; a label with no positive (or no negative) training
        document gets ``-CONSTANT_LABEL_BIAS`` (``+``) and zero weights.
    """
    X = sp.csc_matrix(X, dtype=np.float64)
    Y = sp.csc_matrix(Y)
    support = sp.csr_matrix(support)
    support.sort_indices()
    n_docs, n_labels = Y.shape
    if X.shape[0] != n_docs or support.shape != (n_labels, X.shape[1]):
        raise ValueError(
            f"shapes do not match: X {X.shape}, Y {Y.shape}, support {support.shape}."
        )
    values = np.zeros(support.nnz, dtype=np.float64)
    bias = np.zeros(n_labels, dtype=np.float64)
    positives = np.diff(Y.indptr)
    not_converged = 0
    for label in range(n_labels):
        y = np.zeros(n_docs, dtype=np.int8)
        y[Y.indices[Y.indptr[label]:Y.indptr[label + 1]]] = 1
        lo, hi = support.indptr[label], support.indptr[label + 1]
        if positives[label] == 0 or positives[label] == n_docs:
            bias[label] = CONSTANT_LABEL_BIAS if positives[label] else -CONSTANT_LABEL_BIAS
        elif hi > lo:
            svm = LinearSVC(C=C, max_iter=max_iter, dual="auto", random_state=random_state)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                svm.fit(X[:, support.indices[lo:hi]], y)
            not_converged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
            values[lo:hi] = svm.coef_.ravel()
            bias[label] = float(svm.intercept_[0])
        else:
            # No words to look at: the label's prior odds decide (a sign only).
            bias[label] = CONSTANT_LABEL_BIAS if 2 * positives[label] > n_docs else -CONSTANT_LABEL_BIAS
        if callback is not None and ((label + 1) % 100 == 0 or label + 1 == n_labels):
            callback(label + 1, n_labels)
    if not_converged:
        # One summary instead of a warning per label.
        warnings.warn(
            f"the evidence head's linear SVM did not converge for {not_converged} of "
            f"{n_labels} labels within max_iter={max_iter}; their weights are approximate.",
            ConvergenceWarning, stacklevel=2,
        )
    weights = sp.csr_matrix((values, support.indices.copy(), support.indptr.copy()),
                            shape=support.shape)
    return weights, bias


def cross_validated_thresholds(X, Y, support, *, n_folds=3, fbr=0.1, C=1.0, max_iter=1000,
                               random_state=0, block_size=512):
    """Each label's F1-optimal decision threshold on its SVM's margin, by cross-validation.

    The margins of ``fit_restricted_svms`` are too strict for rare labels: an SVM
    fitted on a handful of positives puts new positive documents below zero. As in
    LibMultiLabel's ``thresholding`` technique, each label's threshold is chosen on
    out-of-fold margins (``n_folds`` folds, SCutFBR rule with ``fbr``: see
    :func:`plantlearn._thresholds.scut_fbr_thresholds`), here for the restricted SVMs and
    pooled over the folds (LibMultiLabel averages per-fold thresholds instead). A fold whose
    training part has no positive of the label scores its held-out documents
    ``-CONSTANT_LABEL_BIAS``, like the head itself would.

    Parameters
    ----------
    X, Y, support : as for :func:`fit_restricted_svms`.
    n_folds : int, default=3
    fbr : float, default=0.1
    C, max_iter, random_state : passed to :func:`fit_restricted_svms` (``random_state``
        also shuffles the folds).
    block_size : int, default=512
        Labels whose out-of-fold margins are held densely at a time (memory bound:
        ``n_docs * block_size`` floats).

    Returns
    -------
    ndarray of shape (n_labels,)
        Margin thresholds; 0 (the SVM's own boundary) for labels with no positive or no
        negative document.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    Y = sp.csr_matrix(Y)
    n_docs, n_labels = Y.shape
    if n_docs < n_folds:
        return np.zeros(n_labels)
    order = np.random.default_rng(random_state).permutation(n_docs)
    folds = [np.sort(f) for f in np.array_split(order, n_folds)]
    fitted = []  # per fold: (held-out rows of X, SVM weights, SVM biases)
    with warnings.catch_warnings():
        # The full head's fit reports convergence; the folds would only repeat it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k, held_out in enumerate(folds):
            fit_rows = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != k]))
            weights, bias = fit_restricted_svms(X[fit_rows], Y[fit_rows], support, C=C,
                                                max_iter=max_iter, random_state=random_state)
            fitted.append((X[held_out], weights, bias))
    # Out-of-fold margins, one block of labels at a time (never all labels densely).
    rows = np.concatenate(folds)
    Y_held = Y[rows].tocsc()
    positives = np.diff(Y_held.indptr)
    thresholds = np.zeros(n_labels)
    for start in range(0, n_labels, block_size):
        block = slice(start, min(start + block_size, n_labels))
        scores = np.vstack([(X_held @ weights[block].T).toarray() + bias[block]
                            for X_held, weights, bias in fitted])
        thresholds[block] = scut_fbr_thresholds(Y_held[:, block], scores, fbr=fbr)
    constant = (positives == 0) | (positives == n_docs)
    thresholds[constant] = 0.0
    return thresholds
