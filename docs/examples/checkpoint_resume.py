"""Checkpoints: a long fit that is killed continues where it stopped.

With ``checkpoint_dir`` the fit saves stage 1 and the evidence head once, then the whole
training state after every epoch (atomically). Run the same fit again with the same data and
parameters and it resumes from the last saved epoch, ending with the same model as an
uninterrupted fit; a directory of another fit is refused. A callback here stops the first run
after one epoch, standing in for a crash or a Ctrl-C.

Run it with ``python docs/examples/checkpoint_resume.py``; the tests run a tiny version
(``PLANTLEARN_EXAMPLES_SMALL=1``).
"""

import os
import tempfile

import numpy as np

from plantlearn import PlantClassifier
from plantlearn.callbacks import Callback
from plantlearn.datasets import make_multilabel_text

SMALL = os.environ.get("PLANTLEARN_EXAMPLES_SMALL") == "1"
X, Y = make_multilabel_text(n_samples=200 if SMALL else 2000, n_labels=6 if SMALL else 20,
                            length=(15, 40), random_state=0)
params = dict(max_iter=3 if SMALL else 10, embed_dim=16 if SMALL else 64,
              hidden_size=16 if SMALL else 64, random_state=0)


class CrashAfterFirstEpoch(Callback):
    """Stands in for the power cut: raises as the second epoch starts (the first one is
    checkpointed by then)."""

    def on_epoch_begin(self, trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt


with tempfile.TemporaryDirectory() as folder:
    checkpoints = os.path.join(folder, "checkpoints")
    try:
        PlantClassifier(**params, checkpoint_dir=checkpoints,
                        callbacks=[CrashAfterFirstEpoch()]).fit(X, Y)
    except KeyboardInterrupt:
        print("the first fit stopped after epoch 1; its checkpoint:", sorted(os.listdir(checkpoints)))
    resumed = PlantClassifier(**params, checkpoint_dir=checkpoints, verbose=1).fit(X, Y)
    uninterrupted = PlantClassifier(**params).fit(X, Y)
    same = np.array_equal(resumed.predict_proba(X), uninterrupted.predict_proba(X))
    print(f"resumed fit: {resumed.n_iter_} epochs; the same model as without the crash: {same}")
    assert same
