"""Calibrated probabilities: what predict_proba means, and the decision predict makes.

``predict_proba`` is calibrated on the validation split that ``fit`` carves from the training
documents (never the test data); ``predict`` returns exactly the labels whose probability is at
least ``threshold_`` (0.5 by default). The reliability table compares the predicted
probabilities with how often the labels are really there, on held-out documents.

Run it with ``python docs/examples/calibration.py``; the tests run a tiny version
(``PLANTLEARN_EXAMPLES_SMALL=1``).
"""

import os

import numpy as np

from plantlearn import PlantClassifier
from plantlearn.datasets import make_multilabel_text
from plantlearn.metrics import expected_calibration_error, micro_f1, reliability_curve

SMALL = os.environ.get("PLANTLEARN_EXAMPLES_SMALL") == "1"

X, Y = make_multilabel_text(n_samples=400 if SMALL else 3000, n_labels=8 if SMALL else 30,
                            length=(15, 40), random_state=0)
n = int(0.75 * len(X))
X_train, Y_train, X_test, Y_test = X[:n], Y[:n], X[n:], Y[n:]

clf = PlantClassifier(max_iter=2 if SMALL else 8, embed_dim=16 if SMALL else 64,
                      hidden_size=16 if SMALL else 64, random_state=0).fit(X_train, Y_train)
proba = clf.predict_proba(X_test)
pred = clf.predict(X_test)
assert np.array_equal(pred.toarray().astype(bool), proba >= clf.threshold_)
print(f"threshold {clf.threshold_}, micro-F1 {micro_f1(Y_test, pred):.3f}")
print(f"expected calibration error {expected_calibration_error(Y_test, proba):.4f} "
      f"(pairs given at least 1%: "
      f"{expected_calibration_error(Y_test, proba, min_probability=0.01):.4f})")
print("predicted  observed  pairs")
for b in reliability_curve(Y_test, proba, n_bins=10):
    print(f"{b['mean_probability']:9.3f} {b['observed_frequency']:9.3f} {b['count']:6d}")

# A labelled set larger than the carve (a dev split, never the test set) can replace the
# calibration without retraining: clf.calibrate(X_dev, Y_dev).
