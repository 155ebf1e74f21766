"""Callbacks of the network's training loop: progress, early stopping, checkpoints.

The loop in ``plantlearn._train`` runs epochs of batches and one validation pass per epoch; everything
else a fit does around it is a small object here, called at fixed points (in the manner of
skorch's and Lightning's callbacks):

- ``on_train_begin(trainer)``, inside the loop's seeded random-number context;
- ``on_epoch_begin(trainer)``;
- ``on_batch_end(trainer, batch, n_batches, loss)``;
- ``on_epoch_end(trainer, logs)``: ``logs`` is the epoch's record, already appended to
  ``trainer.history``;
- ``on_train_end(trainer)``.

A callback that keeps state across epochs exposes ``state_dict()`` / ``load_state_dict()``,
so that :class:`Checkpoint` can save it with the rest of the training state and a resumed fit
continues exactly where the killed one stopped. Callbacks run in list order; the default
list of ``PlantClassifier`` ends with the checkpoint, which so saves every other callback's
state for the epoch just finished.

User callbacks (``PlantClassifier(callbacks=[...])``) subclass :class:`Callback` and run
after the built-in ones (before the checkpoint).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["Callback", "EarlyStopping", "FreezeEncoder", "ProgressPrinter", "Checkpoint",
           "cpu_state"]


def cpu_state(module):
    """An independent CPU copy of a module's state dict."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


class Callback:
    """Base class: every hook does nothing. Override the ones you need.

    The ``trainer`` passed to each hook exposes ``net``, ``optimizer``, ``scheduler``,
    ``epoch`` (epochs completed), ``max_iter``, ``history`` (a list of one dict per epoch:
    ``epoch``, ``train_loss``, ``valid_ndcg@5`` when there is validation data, ``seconds``)
    and ``stop_training`` (set it to True to end the fit: after this epoch, or at once when set
    in ``on_batch_end``; the epoch so cut short is recorded and validated like any other).

    Examples
    --------
    >>> from plantlearn.callbacks import Callback
    >>> class LossLogger(Callback):
    ...     def on_epoch_end(self, trainer, logs):
    ...         print(logs["epoch"], round(logs["train_loss"], 3))
    """

    def on_train_begin(self, trainer):
        pass

    def on_epoch_begin(self, trainer):
        pass

    def on_batch_end(self, trainer, batch, n_batches, loss):
        pass

    def on_epoch_end(self, trainer, logs):
        pass

    def on_train_end(self, trainer):
        pass


class EarlyStopping(Callback):
    """Keep the weights of the best validation epoch; stop after ``patience`` epochs without
    an improvement of more than ``tol``.

    Early stopping acts only when the validation split holds at least
    ``min_validation_docs`` documents: on a smaller one the score is too noisy to stop on or
    to pick an epoch by (a 5% subset of a 500-document set left 2 validation documents and
    stopped training after 4 epochs), so every epoch runs and the last is kept.

    Parameters
    ----------
    patience : int
    tol : float
    monitor : str, default="valid_ndcg@5"
        The history key to maximise.
    min_validation_docs : int, default=50
    """

    def __init__(self, patience, tol, *, monitor="valid_ndcg@5", min_validation_docs=50):
        self.patience = patience
        self.tol = tol
        self.monitor = monitor
        self.min_validation_docs = min_validation_docs
        self._reset()

    def _reset(self):
        self.best_score = -np.inf
        self.best_epoch = 0
        self.stall = 0
        self.best_state = None

    def on_train_begin(self, trainer):
        self.active = trainer.n_validation_docs >= self.min_validation_docs
        if trainer.epoch == 0:
            self._reset()

    def on_epoch_end(self, trainer, logs):
        score = logs.get(self.monitor)
        if score is None:
            return
        if score > self.best_score + self.tol:
            self.best_score, self.best_epoch, self.stall = score, logs["epoch"], 0
            self.best_state = cpu_state(trainer.net)
            logs["best"] = True
        else:
            self.stall += 1
        if self.active and self.stall >= self.patience:
            trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.active and self.best_state is not None:
            trainer.net.load_state_dict(self.best_state)
            trainer.best_epoch = self.best_epoch

    def state_dict(self):
        return {"best_score": float(self.best_score), "best_epoch": int(self.best_epoch),
                "stall": int(self.stall), "best_state": self.best_state}

    def load_state_dict(self, state):
        self.best_score = state["best_score"]
        self.best_epoch = state["best_epoch"]
        self.stall = state["stall"]
        self.best_state = state["best_state"]


class FreezeEncoder(Callback):
    """Gradual unfreezing: the embeddings and encoder stay frozen for the first ``n_epochs``
    epochs, while the (planted) attention and the output layer adapt to them."""

    def __init__(self, n_epochs):
        self.n_epochs = n_epochs

    def on_epoch_begin(self, trainer):
        frozen = trainer.epoch < self.n_epochs
        for p in trainer.net.encoder_parameters():
            p.requires_grad_(not frozen)

    def on_train_end(self, trainer):
        for p in trainer.net.encoder_parameters():
            p.requires_grad_(True)


class ProgressPrinter(Callback):
    """One line per epoch (``verbose >= 1``); with ``verbose >= 2`` also a line every tenth of
    an epoch's batches (long epochs on large label sets take minutes)."""

    def __init__(self, verbose=1, prefix="[PlantClassifier]", file=None):
        self.verbose = verbose
        self.prefix = prefix
        self.file = file

    def _print(self, message):
        print(f"{self.prefix} {message}", file=self.file or sys.stdout, flush=True)

    def on_train_begin(self, trainer):
        self._epochs_run = 0
        if not trainer.distributed.is_main:
            self.verbose = 0  # one process reports

    def on_epoch_begin(self, trainer):
        # After every callback's on_train_begin: a checkpoint has restored the epoch by now.
        if self.verbose and trainer.epoch and not self._epochs_run:
            self._print(f"resuming after epoch {trainer.epoch} of {trainer.max_iter}")
        self._epochs_run += 1

    def on_train_end(self, trainer):
        if self.verbose and trainer.epoch and not self._epochs_run:
            self._print(f"training restored from its checkpoint ({trainer.epoch} epochs)")

    def on_batch_end(self, trainer, batch, n_batches, loss):
        if self.verbose >= 2 and (batch + 1) % max(1, n_batches // 10) == 0:
            self._print(f"epoch {trainer.epoch + 1}: batch {batch + 1}/{n_batches} "
                        f"loss {loss:.5f}")

    def on_epoch_end(self, trainer, logs):
        if not self.verbose:
            return
        msg = f"epoch {logs['epoch']} loss {logs['train_loss']:.5f}"
        if "valid_ndcg@5" in logs:
            msg += f" val nDCG@5 {logs['valid_ndcg@5']:.4f}"
            if logs.get("best"):
                msg += " (best)"
        self._print(f"{msg} ({logs['seconds']:.1f}s)")


def _atomic_torch_save(obj, path):
    """torch.save to a temporary file in the same folder, then rename: a reader (or a fit
    resumed after a crash) sees the previous complete file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Checkpoint(Callback):
    """Save the whole training state after every epoch; restore it when the fit starts again.

    The state is the network's weights, the optimiser and learning-rate schedule, the
    random-number generators (batch order and dropout), the epoch count, the history and the
    state of every other callback that has one. It is written atomically to ``path``, so a
    fit killed at any moment (even with SIGKILL, mid-epoch) leaves the last complete epoch
    on disk; started again with the same arguments, the fit continues from it and ends with
    the same model as an uninterrupted fit.

    ``PlantClassifier(checkpoint_dir=...)`` adds this callback (and checks that the
    directory belongs to the same fit); use it directly only with the training loop.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.
    """

    def __init__(self, path):
        self.path = Path(path)

    def on_train_begin(self, trainer):
        if not self.path.is_file():
            return
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            trainer.load_state_dict(state)
        except Exception as exc:
            raise ValueError(
                f"the training checkpoint {self.path} could not be read ({type(exc).__name__}: "
                f"{exc}); delete it to start the fit afresh."
            ) from None

    def _save(self, trainer, finished):
        if trainer.distributed.is_main:  # every rank holds the same state: one writes it
            _atomic_torch_save(trainer.state_dict(finished=finished), self.path)

    def on_epoch_end(self, trainer, logs):
        self._save(trainer, finished=False)

    def on_train_end(self, trainer):
        self._save(trainer, finished=True)


def rng_state_to_json(rng):
    """A numpy Generator's state as JSON text (its integers exceed 64 bits)."""
    return json.dumps(rng.bit_generator.state)


def rng_state_from_json(rng, text):
    rng.bit_generator.state = json.loads(text)
