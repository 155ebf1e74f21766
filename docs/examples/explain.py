"""Explanations: which words did each label's attention read?

The synthetic corpus hides a few evidence words per label in every document,
so we know what a good explanation looks like: this example fits PLANT, prints
for a few test documents the words each top label attended to next to the
label's true evidence words, and writes the HTML report
(``explain.html`` in the current folder, or the path given as argument).

Run it with ``python docs/examples/explain.py [OUT.html]``; the tests run a
tiny version (``PLANTLEARN_EXAMPLES_SMALL=1``).
"""

import os
import sys

from plantlearn import PlantClassifier
from plantlearn.datasets import make_multilabel_text

SMALL = os.environ.get("PLANTLEARN_EXAMPLES_SMALL") == "1"
out = sys.argv[1] if len(sys.argv) > 1 else "explain.html"

X, Y, evidence = make_multilabel_text(
    n_samples=300 if SMALL else 1500, n_labels=8 if SMALL else 30,
    length=(20, 50) if SMALL else (30, 100), return_evidence=True, random_state=0,
)
n_train = int(0.8 * len(X))
# Label lists in, label lists out: name the labels by their first evidence word.
names = [f"L{j}-{words[0]}" for j, words in enumerate(evidence)]
labels = [[names[j] for j in Y[i].indices] for i in range(len(X))]

clf = PlantClassifier(embed_dim=16 if SMALL else 64, hidden_size=16 if SMALL else 64,
                      max_iter=1 if SMALL else 8, random_state=0)
clf.fit(X[:n_train], labels[:n_train])

test = X[n_train:n_train + 3]
for doc, explanation in enumerate(clf.explain(test, top_labels=2, top_tokens=4)):
    print(f"document {doc} (true labels: {', '.join(labels[n_train + doc])})")
    for entry in explanation:
        j = names.index(entry["label"])
        words = ", ".join(f"{t['token']} {t['weight']:.2f}" for t in entry["tokens"])
        print(f"  {entry['label']:<16} p={entry['probability']:.2f}  attends to: {words}")
        print(f"  {'':<16}         true evidence: {', '.join(evidence[j])}")

clf.explain_html(X[n_train:n_train + 10], path=out, ids=list(range(n_train, n_train + 10)),
                 labels=labels[n_train:n_train + 10])
print(f"wrote {out}")
