"""A fit's life cycle: progress output, checkpoints that survive SIGKILL, and refits that
leave the previous model intact when they fail."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier
from plantlearn.callbacks import Callback
from plantlearn.datasets import make_multilabel_text


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = dict(max_iter=3, embed_dim=16, hidden_size=16, max_length=32, batch_size=16,
            random_state=0, mi=MIInitializer(top_k=20), ltr=LTRPretrainer(n_factors=8, max_iter=3))


@pytest.fixture(scope="module")
def data():
    return make_multilabel_text(n_samples=160, n_labels=5, vocab_size=80, length=(10, 30),
                                random_state=0)


# ------------------------------------------------------------------ progress


def test_verbose_fit_reports_every_stage(data, capsys):
    X, Y = data
    PlantClassifier(**{**TINY, "ltr": None, "mi": None}, verbose=1).fit(X, Y)
    out = capsys.readouterr().out
    for expected in ("[MIInitializer]", "[LTRPretrainer] epoch 1/", "evidence head:",
                     "[PlantClassifier] epoch 1 loss", "[PlantClassifier] done in"):
        assert expected in out, expected
    PlantClassifier(**{**TINY, "max_iter": 1}, verbose=2).fit(X, Y)
    assert "batch" in capsys.readouterr().out  # within-epoch progress at verbose=2


def test_history_records_every_epoch_and_user_callbacks_run(data):
    X, Y = data
    seen = []

    class Recorder(Callback):
        def on_epoch_end(self, trainer, logs):
            seen.append((logs["epoch"], round(logs["train_loss"], 6)))

    clf = PlantClassifier(**TINY, callbacks=[Recorder()]).fit(X, Y)
    assert [h["epoch"] for h in clf.history_] == [1, 2, 3] == [e for e, _ in seen]
    assert clf.loss_curve_ == [h["train_loss"] for h in clf.history_]
    assert all("valid_ndcg@5" in h and h["seconds"] > 0 for h in clf.history_)
    # The user's callback object is copied per fit: the estimator's parameter is unchanged.
    assert isinstance(clf.callbacks[0], Recorder)


def test_a_callback_can_stop_training(data):
    X, Y = data

    class StopAfterOne(Callback):
        def on_epoch_end(self, trainer, logs):
            trainer.stop_training = True

    clf = PlantClassifier(**TINY, callbacks=[StopAfterOne()]).fit(X, Y)
    assert clf.n_iter_ == 1


# ------------------------------------------------------------------ failed refits


class Interrupt(Callback):
    """Raises in the second epoch, as Ctrl-C (KeyboardInterrupt) or a crash would."""

    def __init__(self, exc):
        self.exc = exc

    def on_batch_end(self, trainer, batch, n_batches, loss):
        if trainer.epoch == 1:
            raise self.exc


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("out of memory")])
@pytest.mark.parametrize("warm", [False, True])
def test_a_failed_refit_leaves_the_previous_model_intact(data, exc, warm):
    X, Y = data
    clf = PlantClassifier(**TINY).fit(X, Y)
    before = {k: v for k, v in vars(clf).items() if k.endswith("_") and not k.startswith("_")}
    weights = {k: v.clone() for k, v in clf.net_.state_dict().items()}
    proba = clf.predict_proba(X[:20])
    clf.set_params(callbacks=[Interrupt(exc)], warm_start=warm, random_state=7)
    with pytest.raises(type(exc)):
        clf.fit(X[:120], Y[:120])
    after = {k: v for k, v in vars(clf).items() if k.endswith("_") and not k.startswith("_")}
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)  # not one attribute replaced
    assert all(torch.equal(weights[k], v) for k, v in clf.net_.state_dict().items())
    np.testing.assert_array_equal(clf.predict_proba(X[:20]), proba)


# ------------------------------------------------------------------ checkpoints

_FIT_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier
    from plantlearn.callbacks import Callback
    from plantlearn.datasets import make_multilabel_text

    class KillMidEpoch(Callback):
        def on_batch_end(self, trainer, batch, n_batches, loss):
            if os.environ.get("KILL") and trainer.epoch == 2 and batch == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: a real crash

    X, Y = make_multilabel_text(n_samples=300, n_labels=5, vocab_size=80, length=(10, 30),
                                random_state=0)
    clf = PlantClassifier(max_iter=4, embed_dim=16, hidden_size=16, max_length=32,
                          batch_size=16, dropout=0.3, random_state=0,
                          mi=MIInitializer(top_k=20), ltr=LTRPretrainer(n_factors=8, max_iter=3),
                          checkpoint_dir=sys.argv[1] if sys.argv[1] != "-" else None,
                          callbacks=[KillMidEpoch()], verbose=1)
    clf.fit(X, Y)
    clf.save(sys.argv[2])
""")


def _run(script, *args, kill=False):
    env = {**os.environ, "KILL": "1" if kill else "", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_fit_killed_mid_epoch_resumes_to_the_same_model(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(_FIT_SCRIPT)
    ckpt = tmp_path / "ckpt"
    killed = _run(script, ckpt, tmp_path / "never", kill=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert "epoch 2 loss" in killed.stdout and "epoch 3 loss" not in killed.stdout
    assert sorted(os.listdir(ckpt)) == ["fingerprint.json", "prepared", "training.pt"]
    state = torch.load(ckpt / "training.pt", weights_only=True)
    assert state["epoch"] == 2 and not state["finished"]

    resumed = _run(script, ckpt, tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch 2 of 4" in resumed.stdout
    # Stage 1 and the head come from the checkpoint: they are not fitted again.
    assert "[LTRPretrainer]" not in resumed.stdout
    straight = _run(script, "-", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-2000:]

    a = PlantClassifier.load(tmp_path / "resumed")
    b = PlantClassifier.load(tmp_path / "straight")
    for key, value in b.net_.state_dict().items():
        assert torch.equal(a.net_.state_dict()[key], value), key
    X, _ = make_multilabel_text(n_samples=300, n_labels=5, vocab_size=80, length=(10, 30),
                                random_state=0)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
    # A finished checkpoint: the same fit again trains nothing and gives the same model.
    again = _run(script, ckpt, tmp_path / "again")
    assert again.returncode == 0 and "epoch 1 loss" not in again.stdout
    np.testing.assert_array_equal(PlantClassifier.load(tmp_path / "again").predict_proba(X),
                                  b.predict_proba(X))


def test_a_checkpoint_belongs_to_one_fit(data, tmp_path):
    X, Y = data
    PlantClassifier(**{**TINY, "max_iter": 1}, checkpoint_dir=tmp_path / "c").fit(X, Y)
    with pytest.raises(ValueError, match="another fit"):
        PlantClassifier(**{**TINY, "max_iter": 2}, checkpoint_dir=tmp_path / "c").fit(X, Y)
    with pytest.raises(ValueError, match="another fit"):
        PlantClassifier(**{**TINY, "max_iter": 1}, checkpoint_dir=tmp_path / "c").fit(X[1:], Y[1:])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no plantlearn checkpoint"):
        PlantClassifier(**TINY, checkpoint_dir=tmp_path / "other").fit(X, Y)
    assert os.listdir(tmp_path / "other") == ["notes.txt"]
    (tmp_path / "c" / "training.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="training checkpoint .* could not be read"):
        PlantClassifier(**{**TINY, "max_iter": 1}, checkpoint_dir=tmp_path / "c").fit(X, Y)


def test_a_callback_can_stop_training_mid_epoch(data):
    X, Y = data
    seen = []

    class Budget(Callback):
        def on_batch_end(self, trainer, batch, n_batches, loss):
            seen.append(batch)
            if batch == 2:
                trainer.stop_training = True

    clf = PlantClassifier(**TINY, callbacks=[Budget()]).fit(X, Y)
    assert seen == [0, 1, 2] and clf.n_iter_ == 1
    assert clf.predict_proba(X[:2]).shape == (2, 5)
