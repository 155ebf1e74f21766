"""The evidence head: a sparse linear term per label over that label's evidence words.

Everything about the head lives here, in the order a fit uses it:

1. which (label, word) pairs it weighs (:func:`select_pairs`: stage 1's MI words, and the
   most frequent co-occurring words of labels with many training documents);
2. its features, the tf-idf values of a document's words, computed by the torch module
   itself (:class:`EvidenceHead`, :func:`head_features`) so that the fit and prediction
   see exactly the same numbers;
3. its weights: one squared-hinge linear SVM per label over that label's own words
   (:func:`fit_restricted_svms`, scikit-learn's liblinear), fitted before the network trains
   and frozen after; and the SVMs' cross-validated F1-optimal margins
   (:func:`cross_validated_thresholds`), which the decision rule uses as per-label offsets;
4. its weight in the output, chosen on validation data after the network has trained
   (:func:`best_evidence_scale`).

:func:`fit_evidence_head` runs steps 1-3 for ``PlantClassifier.fit``. The restriction to a
label's own words is what makes the head both cheap (labels x 1,000 weights at most, never
labels x vocabulary) and regularised: on small, long-tailed training sets an SVM over each
label's top-MI words ranks better than one over the whole vocabulary.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

from ._batches import collate, doc_lengths, length_batches
from ._thresholds import scut_fbr_thresholds
from ._mi import smoothed_idf
from .metrics import ndcg_at_k

__all__ = [
    "EvidenceHead", "PAIR_SELECTIONS", "EVIDENCE_SCALES", "select_pairs", "cooccurrence_pairs",
    "frequent_word_budget", "selected_and_frequent_pairs", "token_presence", "head_features",
    "fit_label_svms", "fit_restricted_svms", "cross_validated_thresholds",
    "best_evidence_scale",
    "fit_evidence_head",
]

#: Bias given to a label that the training documents never (or always) carry.
CONSTANT_LABEL_BIAS = 1.0

#: Most words per label in a head over co-occurring words. Rare labels stay far below it (a
#: label seen in a few documents co-occurs with a few hundred words); it bounds the head
#: of frequent labels, which co-occur with most of the vocabulary (on the shared datasets
#: the median label co-occurs with 250-2,900 words, the most frequent with up to 10,900).
COOCCURRENCE_WORDS_PER_LABEL = 1000



# ----------------------------------------------------------------------------
# The torch module
# ----------------------------------------------------------------------------


def _l2_rows(value, row, n_rows):
    """``value`` divided by the L2 norm of its row's values (rows given per entry)."""
    sq_norm = torch.zeros(n_rows, device=value.device).index_add_(0, row, value * value)
    return value / sq_norm.clamp_min(1e-12).sqrt()[row]


class EvidenceHead(nn.Module):
    """A sparse linear term per label over its evidence words.

    Every (label, word) pair given gets one weight (stage 1's MI words and, for labels
    with many training documents, their most frequent co-occurring words; see
    :func:`select_pairs`); a label's
    logit gains the weighted sum of its selected words' tf-idf values in the
    document: ``(1 + log tf) * idf``, L2-normalised over all the document's
    known words, as in the tf-idf linear models (binary presence makes a much
    weaker linear model: long documents fire every cue at full strength). The
    term starts at zero, so it leaves the planted model's start unchanged; it
    gives each label a direct, linear path to its evidence words next to the
    attention path, which the attention's single context vector per label
    cannot express for labels with several independent cues. Its size is the
    number of pairs (at most labels x 1,000 words: top_k MI words, plus frequent
    co-occurring words for labels with many documents), never labels x vocabulary.

    Its weights and per-label ``bias`` come from a convex fit before the network
    trains (one linear SVM per label over its own words, :func:`fit_restricted_svms`),
    and stay frozen while the network trains. ``scale`` weighs the head's term in the
    final logits; it is chosen on validation data after training
    (:func:`best_evidence_scale`; 0 switches the head off where it does not generalise).
    """

    def __init__(self, n_labels, *, raw_tf=False):
        super().__init__()
        self.n_labels = n_labels
        # With raw_tf every word has two features: its sublinear tf-idf (word id t) and
        # its raw-count tf-idf (id t + vocabulary size), each vector L2-normalised and
        # both scaled by 1/sqrt(2); a label's pairs then name either or both.
        self.raw_tf = raw_tf
        self.weight = nn.Parameter(torch.zeros(0))
        # Pairs sorted by word: the pairs of word t are pair_label[token_ptr[t]:token_ptr[t+1]].
        self.register_buffer("pair_label", torch.zeros(0, dtype=torch.long))
        self.register_buffer("token_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("idf", torch.zeros(0))
        self.register_buffer("bias", torch.zeros(n_labels))
        self.register_buffer("scale", torch.ones(()))

    @property
    def n_pairs(self):
        return self.weight.numel()

    def pair_tokens(self):
        """The word id of every pair, in the head's order (the inverse of ``token_ptr``)."""
        ptr = self.token_ptr.cpu()
        return torch.repeat_interleave(torch.arange(ptr.numel() - 1), torch.diff(ptr)).numpy()

    def set_pairs(self, pair_label, token_ptr, idf, weight=None, bias=None):
        """Install the pairs (labels grouped by word), the words' idf, and weights (default 0)."""
        dev = self.weight.device
        self.pair_label = torch.as_tensor(pair_label, dtype=torch.long).to(dev)
        self.token_ptr = torch.as_tensor(token_ptr, dtype=torch.long).to(dev)
        self.idf = torch.as_tensor(idf, dtype=torch.float32).to(dev)
        if weight is None:
            weight = torch.zeros(self.pair_label.numel())
        self.weight = nn.Parameter(torch.as_tensor(weight, dtype=torch.float32).to(dev).clone())
        if bias is not None:
            self.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def install_pairs(self, labels, features, n_features, idf):
        """Give the head its (label, feature) pairs and the words' idf, with zero weights.

        Pairs are stored grouped by feature (``token_ptr``), so that a document's features
        find their labels by slicing instead of a search.
        """
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        features = torch.as_tensor(np.asarray(features), dtype=torch.long)
        n_labels = labels.max().item() + 1 if labels.numel() else 1
        order = torch.argsort(features * n_labels + labels)
        counts = torch.bincount(features, minlength=n_features)
        ptr = torch.zeros(n_features + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(counts, 0)
        self.set_pairs(labels[order], ptr, idf)

    def feature_pairs(self, labels, words, n_vocab):
        """(label, feature) pairs for (label, word) pairs, and the number of features.

        Without ``raw_tf`` a feature is the word itself; with it each pair names both of
        its word's features (sublinear ``t`` and raw-count ``t + n_vocab``).
        """
        labels, words = np.asarray(labels), np.asarray(words)
        if not self.raw_tf:
            return labels, words, n_vocab
        return (np.concatenate([labels, labels]), np.concatenate([words, words + n_vocab]),
                2 * n_vocab)

    @property
    def n_features(self):
        """Columns of the head's feature space: the vocabulary, twice with ``raw_tf``."""
        return self.idf.numel() * (2 if self.raw_tf else 1)

    def features(self, tokens):
        """Distinct (document, feature) occurrences and their normalised tf-idf values.

        A feature is a word id; with ``raw_tf`` also the word id plus the vocabulary size
        for the word's raw-count tf-idf.
        """
        n = tokens.shape[0]
        flat = tokens.reshape(n, -1)
        n_vocab = self.idf.numel()
        known = flat > 1  # padding and unknown words carry no evidence
        doc = torch.arange(n, device=tokens.device)[:, None].expand_as(flat)
        keys, tf = torch.unique(doc[known] * n_vocab + flat[known], return_counts=True)
        d, t = keys // n_vocab, keys % n_vocab
        tf = tf.float()
        value = _l2_rows((1.0 + torch.log(tf)) * self.idf[t], d, n)
        if not self.raw_tf:
            return d, t, value
        raw = _l2_rows(tf * self.idf[t], d, n)
        half = 0.5 ** 0.5
        return torch.cat([d, d]), torch.cat([t, t + n_vocab]), torch.cat([value, raw]) * half

    def forward(self, tokens):
        """Logit contributions (n, L) of documents given as token ids (n, ...)."""
        n = tokens.shape[0]
        out = torch.zeros(n, self.n_labels, device=tokens.device, dtype=torch.float32)
        if self.n_pairs == 0:
            return out
        out += self.bias
        d, t, value = self.features(tokens)
        start, stop = self.token_ptr[t], self.token_ptr[t + 1]
        counts = stop - start
        total = int(counts.sum())
        if total == 0:
            return out
        # Expand every (document, word) into the word's pairs without a Python loop.
        rep_doc = torch.repeat_interleave(d, counts)
        rep_value = torch.repeat_interleave(value, counts)
        offsets = torch.arange(total, device=tokens.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        pair = torch.repeat_interleave(start, counts) + offsets
        out.index_put_((rep_doc, self.pair_label[pair]), self.weight[pair] * rep_value,
                       accumulate=True)
        return out


# ----------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------


def token_presence(docs, n_vocab):
    """Binary CSR (n_docs, n_vocab) of the known words each encoded document holds.

    The words the evidence head can see in it: padding and unknown ids (0, 1) are left out,
    as in the head's own features.
    """
    rows, cols = [], []
    for i, chunks in enumerate(docs):
        if len(chunks):
            ids = np.unique(np.concatenate(chunks))
            ids = ids[ids > 1]
            rows.append(np.full(ids.size, i, dtype=np.int64))
            cols.append(ids.astype(np.int64))
    if not rows:
        return sp.csr_matrix((len(docs), n_vocab))
    cols = np.concatenate(cols)
    return sp.csr_matrix((np.ones(cols.size), (np.concatenate(rows), cols)),
                         shape=(len(docs), n_vocab))


def head_features(head, docs, *, batch_size, max_length):
    """The head's tf-idf features of encoded documents as a CSR matrix (n_docs, n_features):
    one column per word, two with ``raw_tf`` (see ``EvidenceHead.features``).

    Computed on the CPU by the head's own ``features``, so that a linear model fitted on them
    scores exactly what the head computes at prediction time.
    """
    n_features = head.n_features
    rows, cols, vals = [], [], []
    with torch.no_grad():
        for idx in length_batches(doc_lengths(docs), batch_size):
            d, t, v = head.features(collate([docs[i] for i in idx], max_length).to(head.idf.device))
            rows.append(idx[d.cpu().numpy()])
            cols.append(t.cpu().numpy())
            vals.append(v.cpu().numpy().astype(np.float64))
    if not rows:
        return sp.csr_matrix((len(docs), n_features))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(docs), n_features))


# ----------------------------------------------------------------------------
# Which words each label weighs
# ----------------------------------------------------------------------------

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

#: The word sets a head can weigh (``PlantClassifier(evidence_pairs=...)``).
PAIR_SELECTIONS = ("mi+cooccurrence", "mi", "cooccurrence")


def select_pairs(selection, mi, presence, Y):
    """The (label, word) pairs of a head by name (see ``PAIR_SELECTIONS``).

    Parameters
    ----------
    selection : {"mi+cooccurrence", "mi", "cooccurrence"}
        "mi": the words stage 1 kept for each label (``mi.mi_``). "cooccurrence": every word
        seen in a training document of the label (:func:`cooccurrence_pairs`), nothing from
        stage 1. "mi+cooccurrence": the MI words and, for a label with more training
        documents than ``mi.top_k``, its most frequent co-occurring words
        (:func:`selected_and_frequent_pairs`).
    mi : fitted MIInitializer
    presence : sparse matrix (n_docs, n_words)
        Word presence in the training documents (:func:`token_presence`).
    Y : sparse matrix (n_docs, n_labels)
        Their labels.

    Returns
    -------
    labels, words : int64 ndarrays
    """
    if selection == "mi":
        pairs = sp.coo_matrix(mi.mi_)
        return pairs.row.astype(np.int64), pairs.col.astype(np.int64)
    if selection == "mi+cooccurrence":
        return selected_and_frequent_pairs(mi.mi_, presence, Y, n_selected=mi.top_k)
    if selection == "cooccurrence":
        return cooccurrence_pairs(presence, Y)
    raise ValueError(f"unknown pair selection {selection!r}; use one of {PAIR_SELECTIONS}.")


# ----------------------------------------------------------------------------
# The SVMs
# ----------------------------------------------------------------------------


def _label_svm(Xl, y, *, C, max_iter, random_state):
    """One label's squared-hinge SVM on its own columns: (weights, bias, converged).

    A label with no positive (or no negative) document gets ``-CONSTANT_LABEL_BIAS``
    (``+``) and zero weights; one without columns the sign of its prior odds.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    n_pos, n_docs = int(y.sum()), y.size
    weights = np.zeros(Xl.shape[1])
    if n_pos == 0 or n_pos == n_docs:
        return weights, (CONSTANT_LABEL_BIAS if n_pos else -CONSTANT_LABEL_BIAS), True
    if Xl.shape[1] == 0:
        # No words to look at: the label's prior odds decide (a sign only).
        return weights, (CONSTANT_LABEL_BIAS if 2 * n_pos > n_docs else -CONSTANT_LABEL_BIAS), True
    svm = LinearSVC(C=C, max_iter=max_iter, dual="auto", random_state=random_state)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svm.fit(Xl, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return svm.coef_.ravel(), float(svm.intercept_[0]), converged


def _fit_label_block(X, Y, support, labels, folds, *, C, max_iter, random_state, fbr):
    """The SVMs (and, with ``folds``, the cross-validated margin thresholds) of a block of
    labels; a joblib task. Each label sees its own columns only, and is fitted once on all
    documents and once per fold: no other refit."""
    out = []
    n_docs = X.shape[0]
    for label in labels:
        y = np.zeros(n_docs, dtype=np.int8)
        y[Y.indices[Y.indptr[label]:Y.indptr[label + 1]]] = 1
        Xl = X[:, support.indices[support.indptr[label]:support.indptr[label + 1]]]
        w, b, ok = _label_svm(Xl, y, C=C, max_iter=max_iter, random_state=random_state)
        threshold = None
        if folds is not None:
            n_pos = int(y.sum())
            threshold = 0.0  # the SVM's own boundary for labels never or always seen
            if 0 < n_pos < n_docs:
                out_of_fold = np.empty(n_docs)
                for held in folds:
                    fit = np.ones(n_docs, dtype=bool)
                    fit[held] = False
                    wf, bf, _ = _label_svm(Xl[fit], y[fit], C=C, max_iter=max_iter,
                                           random_state=random_state)
                    out_of_fold[held] = Xl[held] @ wf + bf
                threshold = float(scut_fbr_thresholds(
                    y[:, None], out_of_fold[:, None], fbr=fbr)[0])
        out.append((w, b, ok, threshold))
    return out


def fit_label_svms(X, Y, support, *, C=1.0, max_iter=1000, random_state=0,
                   margin_thresholds=False, n_folds=3, fbr=0.1, n_jobs=None, callback=None):
    """One squared-hinge linear SVM per label on the columns ``support`` keeps for it, and
    optionally each label's cross-validated F1-optimal margin threshold.

    The per-label work runs through joblib: ``n_jobs`` processes on this machine, or any
    joblib backend the caller activates (``with joblib.parallel_backend("dask"):`` spreads
    it over a dask cluster). Results do not depend on ``n_jobs`` or the backend.

    The thresholds: the margins of an SVM fitted on a handful of positives are too strict
    (new positive documents fall below zero). As in LibMultiLabel's ``thresholding``
    technique, each label's threshold is chosen on out-of-fold margins (``n_folds`` folds,
    the same for every label, drawn with ``random_state``; SCutFBR rule with ``fbr``, see
    :func:`plantlearn._thresholds.scut_fbr_thresholds`), pooled over the folds. A fold
    whose training part has no positive of the label scores its held-out documents
    ``-CONSTANT_LABEL_BIAS``, like the head itself would.

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
        Seed of liblinear's coordinate order and of the folds (an int, so that numpy's
        global random state is neither read nor advanced).
    margin_thresholds : bool, default=False
        Also return the cross-validated margin thresholds.
    n_folds, fbr : int, float
        Folds and SCutFBR guard of the thresholds.
    n_jobs : int or None, default=None
        joblib workers (None: one, in this process; -1: every core).
    callback : callable, optional
        Called as ``callback(done_labels, n_labels)`` as blocks of labels finish.

    Returns
    -------
    weights : csr_matrix (n_labels, n_features), float64
        The SVMs' weights on exactly the pattern of ``support`` (sorted indices).
    bias : ndarray (n_labels,)
    thresholds : ndarray (n_labels,) or None
        With ``margin_thresholds``; 0 for labels with no positive or no negative document.
    """
    from joblib import Parallel, delayed, effective_n_jobs
    from sklearn.exceptions import ConvergenceWarning

    X = sp.csc_matrix(X, dtype=np.float64)
    Y = sp.csc_matrix(Y)
    support = sp.csr_matrix(support)
    support.sort_indices()
    n_docs, n_labels = Y.shape
    if X.shape[0] != n_docs or support.shape != (n_labels, X.shape[1]):
        raise ValueError(
            f"shapes do not match: X {X.shape}, Y {Y.shape}, support {support.shape}."
        )
    folds = None
    if margin_thresholds and n_docs >= n_folds:
        order = np.random.default_rng(random_state).permutation(n_docs)
        folds = [np.sort(f) for f in np.array_split(order, n_folds)]
    workers = effective_n_jobs(n_jobs)
    size = int(np.clip(n_labels // max(1, 4 * workers), 1, 256))
    blocks = [np.arange(s, min(s + size, n_labels)) for s in range(0, n_labels, size)]
    kwargs = dict(C=C, max_iter=max_iter, random_state=random_state, fbr=fbr)
    if workers == 1:
        results = (_fit_label_block(X, Y, support, block, folds, **kwargs) for block in blocks)
    else:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_fit_label_block)(X, Y, support, block, folds, **kwargs) for block in blocks)
    values = np.zeros(support.nnz, dtype=np.float64)
    bias = np.zeros(n_labels, dtype=np.float64)
    thresholds = np.zeros(n_labels) if margin_thresholds else None
    not_converged, done = 0, 0
    for block, fitted in zip(blocks, results):
        for label, (w, b, ok, threshold) in zip(block, fitted):
            values[support.indptr[label]:support.indptr[label + 1]] = w
            bias[label] = b
            not_converged += not ok
            if thresholds is not None and threshold is not None:
                thresholds[label] = threshold
        done += block.size
        if callback is not None:
            callback(done, n_labels)
    if not_converged:
        # One summary instead of a warning per label.
        warnings.warn(
            f"the evidence head's linear SVM did not converge for {not_converged} of "
            f"{n_labels} labels within max_iter={max_iter}; their weights are approximate.",
            ConvergenceWarning, stacklevel=2,
        )
    weights = sp.csr_matrix((values, support.indices.copy(), support.indptr.copy()),
                            shape=support.shape)
    return weights, bias, thresholds


def fit_restricted_svms(X, Y, support, *, C=1.0, max_iter=1000, random_state=0,
                        callback=None, n_jobs=None):
    """The SVMs of :func:`fit_label_svms` alone: ``(weights, bias)``."""
    weights, bias, _ = fit_label_svms(X, Y, support, C=C, max_iter=max_iter,
                                      random_state=random_state, n_jobs=n_jobs,
                                      callback=callback)
    return weights, bias


def cross_validated_thresholds(X, Y, support, *, n_folds=3, fbr=0.1, C=1.0, max_iter=1000,
                               random_state=0, n_jobs=None):
    """The cross-validated margin thresholds of :func:`fit_label_svms` alone."""
    with warnings.catch_warnings():
        # The full head's fit reports convergence; the folds would only repeat it.
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_label_svms(X, Y, support, C=C, max_iter=max_iter, random_state=random_state,
                              margin_thresholds=True, n_folds=n_folds, fbr=fbr,
                              n_jobs=n_jobs)[2]


# ----------------------------------------------------------------------------
# The head's weight in the output
# ----------------------------------------------------------------------------

#: Weights of the head's term tried on validation data. The SVMs' margins (about +-1) are on
#: a smaller scale than the attention's log-odds, so the grid reaches well above 1.
EVIDENCE_SCALES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)


def best_evidence_scale(part_batches, Y, *, k=5, scales=EVIDENCE_SCALES):
    """The weight of the head's term with the best nDCG@k on labelled documents.

    Parameters
    ----------
    part_batches : iterable of (indices, (attention, evidence))
        Row indices into ``Y`` and, for those documents, the attention path's logits and the
        head's unweighted term (tensors of shape (batch, n_labels)), as
        ``_train.iterate_logits(..., return_parts=True)`` yields them. Consumed once, batch
        by batch, so that no (documents x labels) matrix is ever held.
    Y : sparse matrix (n_docs, n_labels)
        True labels of those documents.
    k : int, default=5
    scales : sequence of float
        The weights tried; ties (to within float rounding) go to the smaller one.

    Returns
    -------
    scale : float
    score : float
        Its nDCG@k (mean over documents with at least one label; NaN if there are none).
    """
    Y = sp.csr_matrix(Y)
    totals = np.zeros(len(scales))
    n_scored = 0
    for idx, (attention, evidence) in part_batches:
        rows = Y[np.asarray(idx)]
        scored = int(np.count_nonzero(np.diff(rows.indptr)))
        if not scored:
            continue
        n_scored += scored
        attention, evidence = np.asarray(attention), np.asarray(evidence)
        for s, scale in enumerate(scales):
            totals[s] += ndcg_at_k(rows, attention + np.float32(scale) * evidence, k=k) * scored
    if n_scored == 0:
        return float(scales[0]), float("nan")
    scores = totals / n_scored
    best = int(np.flatnonzero(scores >= scores.max() - 1e-12)[0])
    return float(scales[best]), float(scores[best])


# ----------------------------------------------------------------------------
# The fit step
# ----------------------------------------------------------------------------


def fit_evidence_head(head, train_docs, Y_train, mi, *, selection, C, batch_size, max_length,
                      random_state, margin_thresholds, n_jobs=None, verbose=0):
    """Give ``head`` its pairs and fit its weights as frozen per-label SVMs.

    Parameters
    ----------
    head : EvidenceHead
        Installed in place: pairs, idf, weights and per-label bias.
    train_docs : list of encoded documents
        The training part of the validation carve (what stage 1 saw).
    Y_train : sparse matrix (n_docs, n_labels)
    mi : fitted MIInitializer
        Its MI words and its word document frequencies (the idf).
    selection : str
        The word set, see :func:`select_pairs`.
    C : float
        The SVMs' inverse regularisation strength.
    batch_size, max_length : int
        Batching of the feature computation.
    random_state : int
        liblinear's coordinate order, and the cross-validation folds.
    margin_thresholds : bool
        Also compute the SVMs' cross-validated margin thresholds.
    n_jobs : int or None
        joblib workers of the per-label fits (see :func:`fit_label_svms`).
    verbose : int

    Returns
    -------
    ndarray of shape (n_labels,) or None
        The margin thresholds (``margin_thresholds=True`` and a head with pairs), else None.
    """
    n_vocab = mi.tokenizer_.vocab_size
    Y_train = sp.csr_matrix(Y_train)
    presence = token_presence(train_docs, n_vocab)
    labels, words = select_pairs(selection, mi, presence, Y_train)
    idf = smoothed_idf(mi.token_document_frequency_, mi.n_documents_)
    labels, features, n_features = head.feature_pairs(labels, words, n_vocab)
    head.install_pairs(labels, features, n_features, idf)
    if head.n_pairs == 0:
        return None
    X = head_features(head, train_docs, batch_size=batch_size, max_length=max_length)
    pair_label = head.pair_label.cpu().numpy()
    # support's values hold each pair's position in the head (1-based): the fitted weights
    # share its pattern, so they map back to the head's order without a search.
    support = sp.csr_matrix(
        (np.arange(1, pair_label.size + 1, dtype=np.float64), (pair_label, head.pair_tokens())),
        shape=(Y_train.shape[1], X.shape[1]))

    reported = [0]

    def report(done, total):
        # About every tenth of the labels, and at the end.
        if done == total or done - reported[0] >= max(100, total // 10):
            reported[0] = done
            what = " and cross-validated" if margin_thresholds else ""
            print(f"[PlantClassifier] evidence head: {done}/{total} labels fitted{what}",
                  flush=True)

    weights, bias, thresholds = fit_label_svms(
        X, Y_train, support, C=C, random_state=random_state,
        margin_thresholds=margin_thresholds, n_jobs=n_jobs,
        callback=report if verbose else None)
    head_weight = np.zeros(pair_label.size, dtype=np.float32)
    head_weight[support.data.astype(np.int64) - 1] = weights.data
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(head_weight))
        head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return thresholds
