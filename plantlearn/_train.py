"""The network's training loop and its inference passes (torch; no sklearn estimators).

:func:`train_network` is the whole loop: epochs of length-sorted batches, one binary
cross-entropy step per batch on the attention path (the evidence head is fitted before and
stays frozen), one validation pass per epoch (nDCG@5), and callback hooks
(``plantlearn.callbacks``) for everything else: progress, early stopping with best-weight
restore, gradual unfreezing, checkpoints. :class:`Trainer` holds the state those callbacks
read and change, and saves and restores it as a whole for checkpoints.

Inference (:func:`iterate_logits` and the functions built on it) runs batch by batch and
never holds more than one batch's (documents x labels) scores, unless the caller asks for
the dense matrix (:func:`predict_logits`).
"""

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ._batches import collate, doc_lengths, length_batches
from ._distributed import Distributed
from .callbacks import rng_state_from_json, rng_state_to_json
from .metrics import ndcg_at_k

__all__ = ["TrainConfig", "Trainer", "train_network", "iterate_logits", "predict_logits",
           "ranking_ndcg"]


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one network fit (``PlantClassifier``'s parameters of the same names)."""

    max_iter: int
    batch_size: int
    max_length: int
    learning_rate: float
    weight_decay: float
    mixed_precision: bool = True


def autocast(device, enabled):
    """bfloat16 autocast on CUDA only: CPU autocast is slower than float32 here. The attention
    softmax itself always runs in float32 (see ``LabelAttention.logits``)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=enabled and device.type == "cuda")


def _schedule(total_steps, warmup_steps):
    """Linear warm-up, then linear decay to 10% of the peak rate."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.1, 1.0 - 0.9 * progress)
    return factor


def trainable_parameters(net):
    """Every parameter of the network except the evidence head's weights: the head is
    fitted before training and frozen, and left out of the optimiser altogether so that
    weight decay cannot shrink it either."""
    head = getattr(net, "evidence", None)
    frozen = {id(head.weight)} if head is not None else set()
    return [p for p in net.parameters() if id(p) not in frozen]


def parameter_groups(net, learning_rate):
    """The optimiser's parameter groups: a pretrained encoder's weights at their own (much
    smaller) learning rate, everything else trainable at ``learning_rate``."""
    params = trainable_parameters(net)
    encoder_lr = getattr(getattr(net, "encoder", None), "learning_rate", None)
    if encoder_lr is None:
        return [{"params": params}]
    encoder = {id(p) for p in net.encoder.parameters()}
    return [{"params": [p for p in params if id(p) not in encoder]},
            {"params": [p for p in params if id(p) in encoder], "lr": encoder_lr}]


def _rng_devices(device):
    return [device.index or 0] if device.type == "cuda" else []


class Trainer:
    """The state of one network fit, as the callbacks see it.

    Parameters
    ----------
    net : PlantNet
        Trained in place, on ``device``.
    train_docs, Y_train : encoded documents and their CSR labels
    val_docs, Y_val : the validation split, or None
    config : TrainConfig
    device : torch.device
    seed : int
        Seeds the batch order (a numpy Generator) and dropout (torch's generator, forked
        so the caller's global random state is left as it was).
    callbacks : list of Callback
    distributed : Distributed, optional
        The data-parallel context (``_distributed``): each rank trains on its share of every
        global batch and the gradients are summed across ranks.
    """

    def __init__(self, net, train_docs, Y_train, val_docs, Y_val, *, config, device, seed,
                 callbacks=(), distributed=None):
        self.net = net
        self.train_docs = train_docs
        self.Y_train = sp.csr_matrix(Y_train)
        has_val = val_docs is not None and len(val_docs) > 0 and Y_val is not None
        self.val_docs = val_docs if has_val and Y_val.nnz > 0 else None
        self.Y_val = sp.csr_matrix(Y_val) if self.val_docs is not None else None
        self.n_validation_docs = len(self.val_docs) if self.val_docs is not None else 0
        self.config = config
        self.max_iter = config.max_iter
        self.device = device
        self.seed = seed
        self.callbacks = list(callbacks)
        self.distributed = distributed if distributed is not None else Distributed()
        self.rng = np.random.default_rng(seed)
        self.lengths = doc_lengths(train_docs)
        steps_per_epoch = math.ceil(len(train_docs) / config.batch_size)
        total = steps_per_epoch * config.max_iter
        self.optimizer = torch.optim.AdamW(
            parameter_groups(net, config.learning_rate), lr=config.learning_rate,
            weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(total, min(steps_per_epoch, max(1, total // 20))))
        self.epoch = 0
        self.history = []
        self.stop_training = False
        self.finished = False
        self.best_epoch = None

    # ------------------------------------------------------------------ the loop

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self):
        """Run the epochs (or what is left of them after a restored checkpoint)."""
        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            torch.manual_seed(self.seed)
            self._call("on_train_begin")  # a checkpoint restores everything here
            while not self.finished and not self.stop_training and self.epoch < self.max_iter:
                t0 = time.perf_counter()
                self._call("on_epoch_begin")
                logs = {"epoch": self.epoch + 1, "train_loss": self._train_epoch()}
                if self.val_docs is not None:
                    logs["valid_ndcg@5"] = self.validation_ndcg()
                logs["seconds"] = time.perf_counter() - t0
                self.epoch += 1
                self.history.append(logs)
                self._call("on_epoch_end", logs)
            self.finished = True
            self._call("on_train_end")
        return self

    def _train_epoch(self):
        net, cfg = self.net, self.config
        net.train()
        batches = length_batches(self.lengths, cfg.batch_size, self.rng)
        dist = self.distributed
        total_loss, n_seen = 0.0, 0
        for b, idx in enumerate(batches):
            self.optimizer.zero_grad(set_to_none=True)
            value = self._batch_loss(idx, dist.shard(idx), len(idx))
            if dist.active:
                dist.all_reduce_gradients(net.parameters())
                value = dist.all_reduce_sum(value, self.device)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            self.optimizer.step()
            self.scheduler.step()
            total_loss += value * len(idx)
            n_seen += len(idx)
            self._call("on_batch_end", b, len(batches), value)
            if self.stop_training:  # a callback ends the fit mid-epoch (a time budget)
                break
        return total_loss / max(n_seen, 1)

    def _batch_loss(self, idx, local, n_batch):
        """Backpropagate this process's share ``local`` of the batch ``idx``; its loss.

        In one process the loss is the batch's mean binary cross-entropy. Across processes
        each share contributes its summed loss divided by the whole batch's size, so that the
        gradients summed across ranks are those of the batch's mean.
        """
        if len(local) == 0:
            return 0.0
        cfg = self.config
        tokens = collate([self.train_docs[i] for i in local], cfg.max_length).to(self.device)
        target = torch.from_numpy(self.Y_train[local].toarray().astype(np.float32)).to(self.device)
        with autocast(self.device, cfg.mixed_precision):
            # The attention path alone: the frozen head adds a constant to the logits that
            # the network should not learn to lean on.
            logits, _ = self.net(tokens, return_parts=True, with_evidence=False, targets=target)
            if self.distributed.active:
                loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum")
                loss = loss / (n_batch * target.shape[1])
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        loss.backward()
        return float(loss.detach())

    def validation_ndcg(self):
        """nDCG@5 of the attention path on the validation split (the head's weight is
        chosen once, after training: a frozen head cannot change from epoch to epoch)."""
        batches = iterate_logits(self.net, self.val_docs, batch_size=self.config.batch_size * 2,
                                 max_length=self.config.max_length, device=self.device,
                                 with_evidence=False)
        return ranking_ndcg(batches, self.Y_val, k=5)

    # ----------------------------------------------------------- checkpoints

    def state_dict(self, finished=False):
        """Everything a resumed fit needs to continue exactly (see ``callbacks.Checkpoint``)."""
        state = {
            "epoch": self.epoch,
            "finished": bool(finished),
            "stop_training": bool(self.stop_training),
            "history": [dict(h) for h in self.history],
            "net": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "numpy_rng": rng_state_to_json(self.rng),
            "torch_rng": torch.get_rng_state(),
            "callbacks": {},
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        for i, cb in enumerate(self.callbacks):
            if hasattr(cb, "state_dict"):
                state["callbacks"][f"{i}:{type(cb).__name__}"] = cb.state_dict()
        return state

    def load_state_dict(self, state):
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rng_state_from_json(self.rng, state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.epoch = int(state["epoch"])
        self.finished = bool(state["finished"])
        self.stop_training = bool(state["stop_training"])
        self.history = [dict(h) for h in state["history"]]
        for i, cb in enumerate(self.callbacks):
            key = f"{i}:{type(cb).__name__}"
            if hasattr(cb, "load_state_dict") and key in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][key])


def train_network(net, train_docs, Y_train, val_docs, Y_val, *, config, device, seed,
                  callbacks=(), distributed=None):
    """Fit ``net`` with binary cross-entropy; return the :class:`Trainer` (history inside).

    Results are reproducible for a given seed on the CPU, and the caller's global random
    state is left as it was (see :class:`Trainer`).
    """
    return Trainer(net, train_docs, Y_train, val_docs, Y_val, config=config, device=device,
                   seed=seed, callbacks=callbacks, distributed=distributed).fit()


# ----------------------------------------------------------------------------
# Inference
# ----------------------------------------------------------------------------


#: Elements of one (documents x labels x chunk positions) attention tensor at inference.
#: Batches shrink below ``batch_size`` when labels are many, so that a 9,000-label model
#: predicts in bounded memory (about 0.5 GB of such tensors at once) instead of gigabytes.
INFERENCE_ATTENTION_ELEMENTS = 2**25


def inference_batch_size(batch_size, n_labels, max_length):
    """Documents per inference batch: ``batch_size``, or fewer for many labels."""
    return int(max(1, min(batch_size, INFERENCE_ATTENTION_ELEMENTS // max(1, n_labels
                                                                           * max_length))))


def iterate_logits(net, docs, *, batch_size, max_length, device, return_parts=False,
                   with_evidence=True):
    """Yield ``(indices, logits)`` batch by batch (float32 tensors on the CPU), in length order.

    Always in float32, also where training runs under bfloat16 autocast: on CodiEsp-D, bf16
    inference moved a GPU-fitted model's probabilities by up to 0.31 from the same model's
    on the CPU (float32 on both: 0.01), so predictions, validation scores and the decision
    rule tuned on them would depend on the device.

    With ``return_parts`` the second item is the pair (attention-path logits, evidence-head
    term) of ``PlantNet.forward(..., return_parts=True)``; with ``with_evidence=False`` the
    logits are the attention path's alone. Batches hold at most ``batch_size`` documents, fewer
    for many attended labels (:func:`inference_batch_size`; a shortlist's candidates, when the
    network has one).
    """
    net.eval()
    n_labels = net.attention.queries.shape[0]
    # With a shortlist the attention tensors hold the candidates only, not every label.
    shortlist = getattr(net, "shortlist_size", 0)
    attended = shortlist if 0 < shortlist < n_labels else n_labels
    batch_size = inference_batch_size(batch_size, attended, max_length)
    with torch.no_grad():
        for idx in length_batches(doc_lengths(docs), batch_size):
            tokens = collate([docs[i] for i in idx], max_length).to(device)
            out = net(tokens, return_parts=return_parts or not with_evidence,
                      with_evidence=with_evidence)
            if return_parts:
                yield idx, tuple(part.float().cpu() for part in out)
            elif not with_evidence:
                yield idx, out[0].float().cpu()
            else:
                yield idx, out.float().cpu()


def predict_logits(net, docs, *, batch_size, max_length, device):
    """Logits (n_docs, n_labels) as a dense float32 array, in input order."""
    n_labels = net.attention.queries.shape[0]
    out = np.zeros((len(docs), n_labels), dtype=np.float32)
    for idx, logits in iterate_logits(net, docs, batch_size=batch_size, max_length=max_length,
                                      device=device):
        out[idx] = logits.numpy()
    return out


def ranking_ndcg(score_batches, Y, *, k=5):
    """nDCG@k over documents scored batch by batch: ``(indices, scores)`` pairs, as
    :func:`iterate_logits` yields them. Equal to ``metrics.ndcg_at_k`` on the whole matrix
    (the mean over documents with at least one label) without ever holding it."""
    Y = sp.csr_matrix(Y)
    total, n_scored = 0.0, 0
    for idx, scores in score_batches:
        rows = Y[np.asarray(idx)]
        scored = int(np.count_nonzero(np.diff(rows.indptr)))
        if scored:
            total += ndcg_at_k(rows, np.asarray(scores), k=k) * scored
            n_scored += scored
    return total / n_scored if n_scored else float("nan")
