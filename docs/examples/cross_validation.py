"""Cross-validation and grid search on the targets users have: a sparse matrix (as
``load_dataset`` returns), label lists, or a dense matrix.

scikit-learn 1.9's own ``cross_val_score`` rejects a sparse ``y`` and, with label lists,
fails in its splitter; ``plantlearn.model_selection.cross_val_score`` takes all three (an
int ``cv`` is ``KFold``, as scikit-learn uses for multi-label targets). ``GridSearchCV``
accepts a sparse ``y`` as it is, and label lists with an explicit ``KFold``. Nested stage-1
parameters (``mi__top_k``) work on a default ``PlantClassifier()``.

Run it with ``python docs/examples/cross_validation.py`` (minutes on a laptop CPU); the tests
run a tiny version (``PLANTLEARN_EXAMPLES_SMALL=1``).
"""

import os

from sklearn.model_selection import GridSearchCV, KFold

from plantlearn import PlantClassifier
from plantlearn.datasets import make_multilabel_text
from plantlearn.metrics import macro_f1_scorer, precision_at_k_scorer
from plantlearn.model_selection import cross_val_score, cross_validate

SMALL = os.environ.get("PLANTLEARN_EXAMPLES_SMALL") == "1"

X, Y = make_multilabel_text(n_samples=150 if SMALL else 1000, n_labels=6 if SMALL else 20,
                            length=(15, 40), random_state=0)  # Y: CSR, like load_dataset
names = [f"label-{j}" for j in range(Y.shape[1])]
label_lists = [[names[j] for j in Y[i].indices] for i in range(Y.shape[0])]

clf = PlantClassifier(max_iter=1 if SMALL else 5, embed_dim=16 if SMALL else 64,
                      hidden_size=16 if SMALL else 64, random_state=0)

# 1. Cross-validation on the sparse target and on label lists: the same folds.
p_at_1 = precision_at_k_scorer(k=1)
print("P@1 by fold (CSR):        ", cross_val_score(clf, X, Y, scoring=p_at_1, cv=3).round(3))
print("P@1 by fold (label lists):", cross_val_score(clf, X, label_lists, scoring=p_at_1,
                                                   cv=3).round(3))
scores = cross_validate(clf, X, Y, scoring={"p@1": p_at_1, "macro_f1": macro_f1_scorer()}, cv=3)
print("macro-F1 by fold:         ", scores["test_macro_f1"].round(3))

# 2. Grid search over a nested stage-1 parameter of a default classifier.
grid = {"mi__top_k": [20, 100]} if SMALL else {"mi__top_k": [20, 100],
                                               "ltr__n_factors": [32, 64]}
search = GridSearchCV(clf, grid, scoring=p_at_1, cv=3).fit(X, Y)
print("best:", search.best_params_, f"cross-validated P@1 {search.best_score_:.3f}")

# 3. Label lists in GridSearchCV: give it the folds (its own splitter rejects label lists).
search = GridSearchCV(clf, {"mi__top_k": [20, 100]}, scoring=p_at_1, cv=KFold(3))
search.fit(X, label_lists)
print("best with label lists:", search.best_params_)
