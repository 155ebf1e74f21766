"""The label-frequency floor: every document gets the same ranking, by training frequency.

Scores are the labels' training frequencies (ties are broken by the lower column, as in every
metric of plantlearn.metrics); the global threshold is tuned on the validation documents like
the other comparators'.
"""

import time

import numpy as np

from _common import tune_global_threshold


def fit_predict(fit_texts, Y_fit, val_texts, Y_val, test_texts, **_):
    t0 = time.perf_counter()
    freq = np.asarray(Y_fit.sum(axis=0), dtype=np.float64).ravel() / max(1, Y_fit.shape[0])
    val_score = np.broadcast_to(freq, (len(val_texts), freq.size))
    thr = tune_global_threshold(Y_val, val_score)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_score = np.tile(freq.astype(np.float32), (len(test_texts), 1))
    test_pred = test_score >= thr
    return {"test_score": test_score, "test_pred": test_pred, "fit_seconds": fit_s,
            "predict_seconds": time.perf_counter() - t0, "info": {"threshold": thr}}
