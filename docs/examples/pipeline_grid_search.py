"""PLANT's three stages as a scikit-learn Pipeline, tuned with GridSearchCV.

Each stage is an estimator: MIInitializer (mutual information), LTRPretrainer
(learning to rank) and PlantClassifier (planted attention). In a Pipeline the
stage-1 statistics are computed on each training fold only, so cross-validation
never leaks the held-out labels into the planted attention.

Run it with ``python docs/examples/pipeline_grid_search.py`` (a few minutes on
a laptop CPU: 4 candidates x 2 folds); the tests run a tiny version
(``PLANTLEARN_EXAMPLES_SMALL=1``).
"""

import os

from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier
from plantlearn.datasets import make_multilabel_text
from plantlearn.metrics import precision_at_k, precision_at_k_scorer

SMALL = os.environ.get("PLANTLEARN_EXAMPLES_SMALL") == "1"

X, Y = make_multilabel_text(n_samples=240 if SMALL else 1200, n_labels=8 if SMALL else 20,
                            length=(20, 50) if SMALL else (30, 90), random_state=0)
X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.25, random_state=0)

pipe = make_pipeline(
    MIInitializer(),
    LTRPretrainer(n_factors=8 if SMALL else 32, max_iter=2 if SMALL else 20, random_state=0),
    PlantClassifier(embed_dim=16 if SMALL else 48, hidden_size=16 if SMALL else 48,
                    max_iter=1 if SMALL else 5, random_state=0),
)
# Step names are the lowercased class names; nested parameters use "__".
grid = {"miinitializer__top_k": [20, 100]}
if not SMALL:
    grid["plantclassifier__inattention_k"] = [None, 10]
search = GridSearchCV(pipe, grid, scoring=precision_at_k_scorer(k=1), cv=2, n_jobs=1)
search.fit(X_train, Y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated P@1 {search.best_score_:.3f}")
proba = search.predict_proba(X_test)
print(f"test P@1 {precision_at_k(Y_test, proba, k=1):.3f}")
