"""Quickstart: fit PLANT on a synthetic corpus, predict, evaluate, save and load.

Run it with ``python docs/examples/quickstart.py`` (about a minute on a laptop
CPU). The tests run a tiny version: ``PLANTLEARN_EXAMPLES_SMALL=1``.
"""

import os
import tempfile

from sklearn.model_selection import train_test_split

from plantlearn import PlantClassifier
from plantlearn.datasets import make_multilabel_text
from plantlearn.metrics import macro_f1, ndcg_at_k, precision_at_k

SMALL = os.environ.get("PLANTLEARN_EXAMPLES_SMALL") == "1"

# A corpus of 30 labels with a long tail: documents are lists of str, labels a
# sparse 0/1 matrix (a list of label lists works too, and predictions then
# come back as label lists).
X, Y = make_multilabel_text(n_samples=300 if SMALL else 1500, n_labels=10 if SMALL else 30,
                            length=(20, 60) if SMALL else (30, 100), random_state=0)
X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.3, random_state=0)

# fit() runs all three PLANT stages: mutual information, learning to rank,
# then the planted attention network (10% of the training data is held out
# for early stopping and for tuning the decision threshold).
clf = PlantClassifier(
    embed_dim=16 if SMALL else 64,
    hidden_size=16 if SMALL else 64,
    max_iter=1 if SMALL else 8,
    random_state=0,
    verbose=1,
)
clf.fit(X_train, Y_train)

proba = clf.predict_proba(X_test)      # dense (n_documents, n_labels)
Y_pred = clf.predict(X_test)           # CSR, thresholded at clf.threshold_
print(f"P@1 {precision_at_k(Y_test, proba, k=1):.3f}  "
      f"P@5 {precision_at_k(Y_test, proba, k=5):.3f}  "
      f"nDCG@5 {ndcg_at_k(Y_test, proba, k=5):.3f}  "
      f"macro-F1 {macro_f1(Y_test, Y_pred, labels='present'):.3f}")

# The top-k path never builds the full probability matrix (for many labels).
indices, probabilities = clf.predict_topk(X_test[:3], k=3)
for doc, (idx, p) in enumerate(zip(indices, probabilities)):
    print(f"document {doc}: labels {clf.classes_[idx].tolist()} with {[round(float(q), 3) for q in p]}")

# A saved model is a directory of JSON and a plain weights file.
with tempfile.TemporaryDirectory() as tmp:
    clf.save(os.path.join(tmp, "model"))
    again = PlantClassifier.load(os.path.join(tmp, "model"))
    assert (again.predict(X_test[:5]) != clf.predict(X_test[:5])).nnz == 0
    print("saved and reloaded: same predictions")
