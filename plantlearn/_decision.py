"""Calibrated probabilities and the decision rule of ``PlantClassifier`` (numpy, sklearn's
isotonic regression).

A fit ends with a :class:`DecisionRule`, fitted on the validation split:

1. **Per-label cuts** on the network's logits (``threshold="auto"``): each label's logit is
   offset by its training log-odds and by the evidence head's cross-validated SVM margin
   (SCutFBR, as LibMultiLabel's ``thresholding`` does for rare labels; see
   :func:`label_offsets`), and one cut on the offset logits is tuned for micro-F1
   (shrunk toward the cut that gives the documents their training label count when the
   split holds few positives). A label's *decision margin* is its logit minus its cut.
2. **Calibration** of the margins: an isotonic regression of the validation labels on the
   validation margins, pinned so that a probability is at least 0.5 exactly where the
   margin is non-negative. ``predict`` is then exactly ``predict_proba >= 0.5``, label by
   label, while the probabilities are the observed frequencies of the validation pairs
   with similar margins. The pin moves only the pairs between the F1-tuned cut and the point
   where the observed frequency crosses 0.5 (the F1-optimal cut lies below a calibrated
   0.5 when F1 is below 1): they read 0.5 where fewer than half of such pairs are positive.
   Measured on the shared datasets' dev splits in docs/benchmarks.md ("Calibration").

Isotonic steps would tie many pairs, so a negligible term proportional to the margin (at
most 1e-7) keeps each label's probability strictly increasing in its logit.

Probabilities and rankings answer different questions. Offsetting a label's logit by its
training log-odds makes its scores comparable across documents (is this label present in
this document?), which is what the cuts and the calibration need, but less comparable across
labels (which labels come first in this document?): on the dev splits, ranking a document's
labels by probability instead of by logit cost up to 5.7 P@1 on one set and gained 2.1 on
another. So rankings (``decision_function``, ``predict_topk``, explanations) stay the
network's logits, and each label's probability and decision are those of its margin.

Models saved before the calibration existed (format 3 and older) load with a legacy rule:
the sigmoid of the logits and their per-label thresholds.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.isotonic import IsotonicRegression

from ._thresholds import FULL_TRUST_CUT_POSITIVES, best_global_threshold, shrunk_global_threshold

__all__ = ["DecisionRule", "ValidationPairs", "fit_decision_rule",
           "fit_decision_rule_from_pairs", "label_offsets", "training_log_odds"]

#: Probabilities of the calibration are kept in [P_MIN, 1 - P_MIN] (finite log-odds).
P_MIN = 1e-6
#: Slope of the tie-breaking term: probabilities move by at most 1e-7 over margins of +-100.
_TIE_SLOPE = 1e-9
_TIE_RANGE = 100.0
#: Validation pairs the calibration fits on at most; beyond, negatives are subsampled.
MAX_CALIBRATION_PAIRS = 4_000_000


def training_log_odds(Y_train):
    """Each label's log-odds of occurring in the training documents (0 for labels never or
    always seen: they keep the plain cut)."""
    Y_train = sp.csr_matrix(Y_train)
    n_docs = Y_train.shape[0]
    counts = np.bincount(Y_train.indices, minlength=Y_train.shape[1]).astype(np.float64)
    seen = (counts > 0) & (counts < n_docs)
    p = np.where(seen, counts, 1.0) / max(n_docs, 1)
    return np.where(seen, np.log(p) - np.log1p(-np.where(seen, p, 0.0)), 0.0)


def label_offsets(Y_train, evidence_thresholds, evidence_scale):
    """Per-label logit offsets of ``threshold="auto"``: the label's training log-odds plus
    the head's weight times its SVM's cross-validated margin threshold."""
    offsets = training_log_odds(Y_train)
    if evidence_thresholds is not None:
        offsets = offsets + float(evidence_scale) * np.asarray(evidence_thresholds, np.float64)
    return offsets


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


class DecisionRule:
    """Calibrated probabilities from logits, and the decisions ``predict`` makes from them.

    Parameters
    ----------
    cuts : ndarray of shape (n_labels,)
        Per-label cuts on the logits; a label's decision margin is ``logit - cut``.
    knots, values : ndarray or None
        The calibration: probability ``values`` at margin ``knots`` (increasing), linearly
        interpolated and constant beyond the ends. None: the legacy rule (the sigmoid of the
        logits, no pin).
    threshold : float or ndarray
        ``predict`` is ``probability >= threshold``.
    offsets : ndarray of shape (n_labels,)
        The label offsets the cuts were tuned from (kept to refit on other data).
    training_cardinality : float or None
        Mean labels per training document (the small-split rule of the cut).

    Attributes
    ----------
    threshold_ : float or ndarray
    cuts_, knots_, values_, offsets_ : ndarray
    """

    def __init__(self, cuts, knots, values, threshold=0.5, *, offsets=None,
                 training_cardinality=None):
        self.cuts_ = np.asarray(cuts, dtype=np.float64)
        self.knots_ = None if knots is None else np.asarray(knots, dtype=np.float64)
        self.values_ = None if values is None else np.asarray(values, dtype=np.float64)
        self.threshold_ = (float(threshold) if np.ndim(threshold) == 0
                           else np.asarray(threshold, dtype=np.float64))
        self.offsets_ = (np.zeros_like(self.cuts_) if offsets is None
                         else np.asarray(offsets, dtype=np.float64))
        self.training_cardinality = training_cardinality

    @property
    def calibrated(self):
        return self.knots_ is not None

    def margins(self, logits, columns=None):
        """Decision margins ``logit - cut`` (float64); ``columns`` selects the labels of each
        entry when ``logits`` holds a subset of the columns (e.g. each row's top k)."""
        cuts = self.cuts_ if columns is None else self.cuts_[columns]
        return np.asarray(logits, dtype=np.float64) - cuts

    def probabilities(self, logits, columns=None):
        """Calibrated probabilities of the given logits."""
        m = self.margins(logits, columns)
        if not self.calibrated:
            return _sigmoid(np.asarray(logits, dtype=np.float64))
        p = np.interp(m, self.knots_, self.values_)
        p = p + _TIE_SLOPE * np.clip(m, -_TIE_RANGE, _TIE_RANGE)
        # The pin: at least 0.5 exactly where the margin is non-negative.
        return np.where(m >= 0, np.maximum(p, 0.5), np.minimum(p, np.nextafter(0.5, 0.0)))

    def decide(self, logits):
        """The 0/1 decisions ``probability >= threshold_`` as a CSR matrix."""
        if not self.calibrated:
            # Legacy thresholds are the sigmoid of the cuts: compare in logit space, where
            # float32 probabilities do not saturate.
            return sp.csr_matrix(self.margins(logits) >= 0)
        if np.ndim(self.threshold_) == 0 and self.threshold_ == 0.5:
            return sp.csr_matrix(self.margins(logits) >= 0)  # the pin, without rounding
        return sp.csr_matrix(self.probabilities(logits) >= self.threshold_)

    def refit(self, logits, Y):
        """The same rule fitted again on other labelled logits (same offsets and threshold)."""
        return fit_decision_rule(logits, Y, threshold=self.threshold_ if self.calibrated else
                                 0.5, offsets=self.offsets_,
                                 training_cardinality=self.training_cardinality)

    # ------------------------------------------------------------ persistence

    def to_arrays(self):
        """The rule as a dict of arrays and scalars (``numpy.savez`` and JSON friendly)."""
        out = {"cuts": self.cuts_, "offsets": self.offsets_,
               "threshold": np.asarray(self.threshold_, dtype=np.float64),
               "training_cardinality": np.float64(np.nan if self.training_cardinality is None
                                                  else self.training_cardinality)}
        if self.calibrated:
            out["knots"], out["values"] = self.knots_, self.values_
        return out

    @classmethod
    def from_arrays(cls, arrays):
        thr = np.asarray(arrays["threshold"], dtype=np.float64)
        card = float(arrays["training_cardinality"])
        return cls(arrays["cuts"], arrays.get("knots"), arrays.get("values"),
                   float(thr) if thr.ndim == 0 else thr, offsets=arrays["offsets"],
                   training_cardinality=None if np.isnan(card) else card)

    @classmethod
    def legacy(cls, thresholds, n_labels):
        """The rule of a model saved before calibration: sigmoid probabilities, and the
        saved probability thresholds (scalar or per label) as cuts."""
        t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n_labels,))
        with np.errstate(divide="ignore"):
            cuts = np.log(t) - np.log1p(-t)
        return cls(cuts, None, None, np.asarray(thresholds, dtype=np.float64))

    def __repr__(self):
        kind = "calibrated" if self.calibrated else "legacy sigmoid"
        return f"DecisionRule({kind}, {self.cuts_.size} labels, threshold={self.threshold_!r})"


def _calibration_sample(margins, Y, rng):
    """Margins, labels and weights of the validation pairs the calibration fits on: all of
    them, or every positive and a uniform sample of negatives (weighted) beyond
    ``MAX_CALIBRATION_PAIRS``."""
    Y = sp.csr_matrix(Y)
    y = np.zeros(margins.shape, dtype=bool)
    rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
    y[rows, Y.indices] = True
    m, y = margins.ravel(), y.ravel()
    if m.size <= MAX_CALIBRATION_PAIRS:
        return m, y.astype(np.float64), np.ones(m.size)
    pos = np.flatnonzero(y)
    neg = np.flatnonzero(~y)
    n_keep = max(MAX_CALIBRATION_PAIRS - pos.size, 1)
    keep = rng.choice(neg, size=min(n_keep, neg.size), replace=False)
    weights = np.concatenate([np.ones(pos.size), np.full(keep.size, neg.size / keep.size)])
    idx = np.concatenate([pos, keep])
    return m[idx], y[idx].astype(np.float64), weights


class ValidationPairs:
    """The validation scores a decision rule is fitted on, without a (documents x labels)
    matrix: every document's best candidates by offset logit and its true labels (what any
    sane cut could predict, and every positive), and a uniform sample of the other pairs
    with weights (the many confident negatives, for the calibration).

    Built batch by batch with :meth:`add`; used when the dense matrix would be too large
    (see ``PlantClassifier``).

    Parameters
    ----------
    offsets : ndarray of shape (n_labels,)
    per_document : int
        Candidates kept per document.
    sample_rate : float
        Share of the other pairs kept for the calibration.
    random_state : int
    """

    def __init__(self, offsets, *, per_document, sample_rate, random_state=0):
        self.offsets = np.asarray(offsets, dtype=np.float64)
        self.per_document = int(per_document)
        self.sample_rate = float(sample_rate)
        self.rng = np.random.default_rng(random_state)
        self.candidates = []  # (rows, cols, logits, truth)
        self.sampled = []  # (logits, offsets' cols, truth)
        self.n_docs = 0

    def add(self, rows, logits, Y_rows):
        """Add a batch: its row indices, logits (batch, n_labels) and labels (CSR)."""
        logits = np.asarray(logits, dtype=np.float64)
        Y_rows = sp.csr_matrix(Y_rows)
        b, n_labels = logits.shape
        truth = np.zeros(logits.shape, dtype=bool)
        truth[np.repeat(np.arange(b), np.diff(Y_rows.indptr)), Y_rows.indices] = True
        k = min(self.per_document, n_labels)
        top = np.argpartition(-(logits - self.offsets), k - 1, axis=1)[:, :k]
        keep = truth.copy()
        keep[np.arange(b)[:, None], top] = True
        r, c = np.nonzero(keep)
        self.candidates.append((np.asarray(rows)[r], c, logits[r, c], truth[r, c]))
        rest = ~keep & (self.rng.random(logits.shape) < self.sample_rate)
        r, c = np.nonzero(rest)
        self.sampled.append((c, logits[r, c], truth[r, c]))
        self.n_docs += b

    def arrays(self):
        rows, cols, values, truth = (np.concatenate(parts) for parts in zip(*self.candidates))
        s_cols, s_values, s_truth = (np.concatenate(parts) for parts in zip(*self.sampled))
        return rows, cols, values, truth, s_cols, s_values, s_truth


def fit_decision_rule_from_pairs(pairs, n_docs, n_labels, *, threshold="auto",
                                 training_cardinality=None):
    """:func:`fit_decision_rule` on :class:`ValidationPairs` instead of a dense matrix.

    The cut is searched among the candidates (pairs outside them are never predicted: their
    positives count as misses, as they would be at any cut above them); the calibration fits
    on the candidates and the weighted sample of the other pairs.
    """
    rows, cols, values, truth, s_cols, s_values, s_truth = pairs.arrays()
    offsets = pairs.offsets
    prob_cut = 0.5 if isinstance(threshold, str) else float(threshold)
    Y = sp.csr_matrix((np.ones(int(truth.sum())), (rows[truth], cols[truth])),
                      shape=(n_docs, n_labels))
    if Y.nnz == 0:
        return fit_decision_rule(None, None, threshold=threshold, offsets=offsets,
                                 training_cardinality=training_cardinality)
    shifted = sp.csr_matrix((values - offsets[cols], (rows, cols)), shape=(n_docs, n_labels))
    if training_cardinality:
        cut = shrunk_global_threshold(Y, shifted, training_cardinality,
                                      full_trust_positives=FULL_TRUST_CUT_POSITIVES)
    else:
        cut = best_global_threshold(Y, shifted)
    cuts = offsets + cut
    m = np.concatenate([values - cuts[cols], s_values - cuts[s_cols]])
    y = np.concatenate([truth, s_truth]).astype(np.float64)
    w = np.concatenate([np.ones(values.size), np.full(s_values.size, 1.0 / pairs.sample_rate)])
    iso = IsotonicRegression(y_min=P_MIN, y_max=1 - P_MIN, out_of_bounds="clip")
    iso.fit(m, y, sample_weight=w)
    return DecisionRule(cuts, iso.X_thresholds_, iso.y_thresholds_, prob_cut, offsets=offsets,
                        training_cardinality=training_cardinality)


def fit_decision_rule(logits, Y, *, threshold="auto", offsets, training_cardinality=None,
                      random_state=0):
    """Fit the cuts and the calibration on labelled validation logits.

    Parameters
    ----------
    logits : ndarray of shape (n_docs, n_labels) or None
        The network's logits of the validation documents; None (no validation split, or
        one without labels) gives the uncalibrated fallback with a warning.
    Y : sparse matrix of shape (n_docs, n_labels)
    threshold : "auto" or float
        The probability cut of ``predict`` ("auto": 0.5).
    offsets : ndarray of shape (n_labels,)
        :func:`label_offsets`.
    training_cardinality : float or None
        Mean labels per training document: with fewer than
        ``FULL_TRUST_CUT_POSITIVES`` validation positives the micro-F1 cut is shrunk toward
        the cut that gives the validation documents this many labels.
    random_state : int
        Subsampling of negatives on very large validation splits.

    Returns
    -------
    DecisionRule
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    prob_cut = 0.5 if isinstance(threshold, str) else float(threshold)
    if logits is None or Y is None or sp.csr_matrix(Y).nnz == 0:
        warnings.warn(
            "the decision rule needs a validation split with labels (validation_fraction > 0 "
            "and enough documents); predict_proba is the network's uncalibrated sigmoid and "
            "predict cuts it at 0.5.", UserWarning, stacklevel=3)
        return DecisionRule(np.zeros_like(offsets), None, None, 0.5, offsets=offsets,
                            training_cardinality=training_cardinality)
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - offsets
    if training_cardinality:
        # A micro-F1 cut tuned on a few dozen positives follows one document's labels; the
        # validation documents' scores (not their labels) with the training documents' mean
        # label count give a steadier cut, and the mix moves to the tuned cut as the
        # positives grow.
        cut = shrunk_global_threshold(Y, shifted, training_cardinality,
                                      full_trust_positives=FULL_TRUST_CUT_POSITIVES)
    else:
        cut = best_global_threshold(Y, shifted)
    cuts = offsets + cut
    rng = np.random.default_rng(random_state)
    m, y, w = _calibration_sample(logits - cuts, Y, rng)
    iso = IsotonicRegression(y_min=P_MIN, y_max=1 - P_MIN, out_of_bounds="clip")
    iso.fit(m, y, sample_weight=w)
    return DecisionRule(cuts, iso.X_thresholds_, iso.y_thresholds_, prob_cut, offsets=offsets,
                        training_cardinality=training_cardinality)
