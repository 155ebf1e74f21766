"""tf-idf + one-vs-rest LinearSVC (scikit-learn), the standard linear baseline.

- Features: :mod:`comparators.tfidf` (``TfidfVectorizer`` defaults), fitted on the fitting
  documents.
- Model: ``OneVsRestClassifier(LinearSVC(C=1.0))`` (squared hinge, L2, intercept), one
  job; the scores are its ``decision_function``.
- Prediction: one global threshold on the decision function, tuned for micro-F1 on the
  validation documents with ``plantlearn._thresholds.best_global_threshold``, applied to test.
"""

import time
import warnings

import numpy as np

from _common import fill_untrainable, trainable_labels, tune_global_threshold
from comparators.tfidf import tfidf_features


def fit_predict(fit_texts, Y_fit, val_texts, Y_val, test_texts, *, seed=0, C=1.0,
                tfidf_params=None, **_):
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    L = Y_fit.shape[1]
    t0 = time.perf_counter()
    X_fit, X_val, vec = tfidf_features(fit_texts, val_texts, params=tfidf_params)
    cols = trainable_labels(Y_fit)
    model = OneVsRestClassifier(LinearSVC(C=C, random_state=seed), n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear convergence chatter
        model.fit(X_fit, Y_fit[:, cols].toarray())
    val_score = fill_untrainable(model.decision_function(X_val).reshape(len(val_texts), -1),
                                 cols, L)
    threshold = tune_global_threshold(Y_val, val_score)
    fit_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    X_test = vec.transform(test_texts)
    test_score = fill_untrainable(
        model.decision_function(X_test).reshape(len(test_texts), -1), cols, L
    )
    test_pred = test_score >= threshold
    predict_s = time.perf_counter() - t0
    return {
        "test_score": test_score.astype(np.float32),
        "test_pred": test_pred,
        "fit_seconds": fit_s,
        "predict_seconds": predict_s,
        "info": {
            "threshold": threshold,
            "n_features": int(X_fit.shape[1]),
            "n_trained_labels": int(cols.size),
            "n_fit_docs": len(fit_texts),
            "n_val_docs": len(val_texts),
            "C": C,
        },
    }
