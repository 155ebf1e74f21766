"""Training and inference loops for PlantNet (torch; no sklearn estimators).

Documents arrive as lists of token-id chunks (see ``TextTokenizer.encode_chunks``);
batches group documents of similar length so that little time goes into padding.
"""

import math
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .metrics import ndcg_at_k

__all__ = ["collate", "length_batches", "train_network", "predict_logits", "predict_parts",
           "iterate_logits", "best_evidence_scale", "evidence_features", "token_presence"]


def collate(docs, max_length):
    """Pad a batch of chunked documents into a LongTensor (n, C, T).

    An empty document (no chunks) becomes one chunk of padding, so it still
    gets a prediction (the label priors).
    """
    C = max(1, max((len(d) for d in docs), default=1))
    T = max(1, max((len(c) for d in docs for c in d), default=1))
    T = min(T, max_length)
    out = np.zeros((len(docs), C, T), dtype=np.int64)
    for i, d in enumerate(docs):
        for j, c in enumerate(d):
            out[i, j, : len(c)] = c
    return torch.from_numpy(out)


def doc_lengths(docs):
    return np.array([sum(len(c) for c in d) for d in docs], dtype=np.int64)


def length_batches(lengths, batch_size, rng=None):
    """Index batches of similar-length documents.

    With ``rng`` the documents are shuffled, then sorted by length inside
    windows of 50 batches, and the batches shuffled again: nearly padding-free
    batches that still differ from epoch to epoch. Without it, a plain sort.
    """
    n = lengths.size
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    order = rng.permutation(n)
    window = batch_size * 50
    batches = []
    for s in range(0, n, window):
        w = order[s:s + window]
        w = w[np.argsort(lengths[w], kind="stable")]
        batches.extend(w[b:b + batch_size] for b in range(0, w.size, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _targets(Y, idx, device):
    return torch.from_numpy(Y[idx].toarray().astype(np.float32)).to(device)


def _autocast(device, enabled):
    # bfloat16 on CUDA only: CPU autocast is slower than float32 here. The
    # attention softmax itself always runs in float32 (see LabelAttention.logits).
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=enabled and device.type == "cuda")


def iterate_logits(net, docs, *, batch_size, max_length, device, mixed_precision=True,
                   return_parts=False):
    """Yield (indices, logits tensor on CPU) batch by batch, in length order.

    With ``return_parts`` the second item is the pair (attention-path logits,
    evidence-head term) of ``PlantNet.forward(..., return_parts=True)``.
    """
    net.eval()
    lengths = doc_lengths(docs)
    with torch.no_grad():
        for idx in length_batches(lengths, batch_size):
            tokens = collate([docs[i] for i in idx], max_length).to(device)
            with _autocast(device, mixed_precision):
                out = net(tokens, return_parts=return_parts)
            if return_parts:
                yield idx, tuple(part.float().cpu() for part in out)
            else:
                yield idx, out.float().cpu()


def predict_logits(net, docs, *, batch_size, max_length, device, mixed_precision=True):
    """Logits (n, L) as a float32 numpy array, in input order."""
    n_labels = net.attention.queries.shape[0]
    out = np.zeros((len(docs), n_labels), dtype=np.float32)
    for idx, logits in iterate_logits(net, docs, batch_size=batch_size, max_length=max_length,
                                      device=device, mixed_precision=mixed_precision):
        out[idx] = logits.numpy()
    return out


def predict_parts(net, docs, *, batch_size, max_length, device, mixed_precision=True):
    """Attention-path logits and evidence-head terms (n, L) each, in input order."""
    n_labels = net.attention.queries.shape[0]
    attention = np.zeros((len(docs), n_labels), dtype=np.float32)
    evidence = np.zeros((len(docs), n_labels), dtype=np.float32)
    for idx, (a, e) in iterate_logits(net, docs, batch_size=batch_size, max_length=max_length,
                                      device=device, mixed_precision=mixed_precision,
                                      return_parts=True):
        attention[idx] = a.numpy()
        evidence[idx] = e.numpy()
    return attention, evidence


def token_presence(docs, n_vocab):
    """Binary CSR (n_docs, n_vocab) of the known words each encoded document holds.

    The words the evidence head can see in it: padding and unknown ids (0, 1) are left out,
    as in the head's own features.
    """
    rows, cols = [], []
    for i, chunks in enumerate(docs):
        if len(chunks):
            ids = np.unique(np.concatenate(chunks))
            ids = ids[ids > 1]
            rows.append(np.full(ids.size, i, dtype=np.int64))
            cols.append(ids.astype(np.int64))
    if not rows:
        return sp.csr_matrix((len(docs), n_vocab))
    cols = np.concatenate(cols)
    return sp.csr_matrix((np.ones(cols.size), (np.concatenate(rows), cols)),
                         shape=(len(docs), n_vocab))


def evidence_features(head, docs, *, batch_size, max_length):
    """The evidence head's tf-idf features of documents as a CSR matrix (n_docs, n_features):
    one column per word, two with ``raw_tf`` (see ``EvidenceHead.features``).

    Computed on the CPU with the head's own ``features``, so that a linear model fitted
    on them scores exactly what the head computes at prediction time.
    """
    n_features = head.n_features
    rows, cols, vals = [], [], []
    with torch.no_grad():
        for idx in length_batches(doc_lengths(docs), batch_size):
            d, t, v = head.features(collate([docs[i] for i in idx], max_length).to(head.idf.device))
            rows.append(idx[d.cpu().numpy()])
            cols.append(t.cpu().numpy())
            vals.append(v.cpu().numpy().astype(np.float64))
    if not rows:
        return sp.csr_matrix((len(docs), n_features))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(docs), n_features))


#: Weights of a trained evidence head's term tried on validation data after each epoch.
EVIDENCE_SCALES = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The same for a head fitted as linear SVMs: their margins (about +-1) are on a smaller
#: scale than the attention's log-odds, so the grid reaches further.
FITTED_EVIDENCE_SCALES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)


def best_evidence_scale(Y_val, attention, evidence, k=5, scales=EVIDENCE_SCALES):
    """The scale of the head's term with the best validation nDCG@k (ties: the smaller)."""
    scores = [ndcg_at_k(Y_val, attention + a * evidence, k=k) for a in scales]
    best = int(np.argmax(scores))
    return scales[best], scores[best]


#: How the evidence head learns during network training (see ``_loss``).
EVIDENCE_TRAINING = ("residual", "joint", "frozen")


def _loss(net, tokens, target, head_training):
    """BCE of the training logits, by how the evidence head learns.

    ``"joint"``: the head shares one loss with the attention, which then learns only
    what the head misses. ``"residual"``: the attention's own BCE plus the head's BCE
    on top of the (detached) attention logits. ``"frozen"`` (a head fitted before
    training, or none): the attention's own BCE only. Training always sees the head
    at full weight: the validation-chosen ``scale`` applies to predictions only, so
    a scale of 0 after one epoch cannot silence the head's training for the rest of
    the fit.
    """
    if head_training == "frozen":
        attention, _ = net(tokens, return_parts=True, with_evidence=False)
        return F.binary_cross_entropy_with_logits(attention.float(), target)
    attention, evidence = net(tokens, return_parts=True)
    attention = attention.float()
    if head_training == "joint":
        return F.binary_cross_entropy_with_logits(attention + evidence, target)
    return (F.binary_cross_entropy_with_logits(attention, target)
            + F.binary_cross_entropy_with_logits(attention.detach() + evidence, target))


#: Fewest validation documents early stopping trusts. Below it (small training sets, where
#: the carved split holds a handful of documents) the validation nDCG is too noisy to stop
#: on or to pick an epoch by: training runs all epochs and keeps the last.
MIN_EARLY_STOPPING_DOCS = 50


def _schedule(total_steps, warmup_steps):
    """Linear warm-up, then linear decay to 10% of the peak rate."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.1, 1.0 - 0.9 * progress)
    return factor


def train_network(net, train_docs, Y_train, val_docs, Y_val, *, max_iter, batch_size,
                  max_length, learning_rate, weight_decay, freeze_encoder_epochs,
                  early_stopping, n_iter_no_change, tol, device, seed, mixed_precision,
                  evidence_learning_rate=None, evidence_training="residual", verbose=0,
                  history=None):
    """Fit ``net`` with binary cross-entropy; restore the best validation epoch.

    Dropout draws from torch's global generator; the loop runs inside
    ``torch.random.fork_rng`` seeded from ``seed``, so results are reproducible
    and the caller's global random state is left as it was.

    Returns the history dict (loss per epoch, validation nDCG@5 per epoch, the
    best epoch, the number of epochs run).
    """
    if evidence_training not in EVIDENCE_TRAINING:
        raise ValueError(f"evidence_training must be one of {EVIDENCE_TRAINING}, "
                         f"got {evidence_training!r}.")
    history = history if history is not None else {"loss": [], "validation": []}
    rng = np.random.default_rng(seed)
    Y_train = sp.csr_matrix(Y_train)
    lengths = doc_lengths(train_docs)
    steps_per_epoch = math.ceil(len(train_docs) / batch_size)
    total = steps_per_epoch * max_iter
    opt = torch.optim.AdamW(_param_groups(net, learning_rate, weight_decay, evidence_learning_rate,
                                          train_head=evidence_training != "frozen"))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _schedule(total, min(steps_per_epoch, max(1, total // 20)))
    )
    use_val = val_docs is not None and len(val_docs) > 0 and Y_val is not None and Y_val.nnz > 0
    stop_early = early_stopping and use_val and len(val_docs) >= MIN_EARLY_STOPPING_DOCS
    history["early_stopping"] = stop_early
    head = getattr(net, "evidence", None)
    has_head = head is not None and head.n_pairs > 0
    head_training = evidence_training if has_head else "frozen"
    scales = FITTED_EVIDENCE_SCALES if head_training == "frozen" else EVIDENCE_SCALES
    if has_head:
        history.setdefault("evidence_scale", [])
        if head_training == "frozen":
            head.scale.fill_(0.0)  # validation scores below: the attention path alone

    def choose_scale():
        """Set the head's weight with the best validation nDCG@5; return (weight, score)."""
        parts = predict_parts(net, val_docs, batch_size=batch_size * 2, max_length=max_length,
                              device=device, mixed_precision=mixed_precision)
        scale, score = best_evidence_scale(Y_val, *parts, scales=scales)
        head.scale.fill_(scale)
        history["evidence_scale"].append(scale)
        return scale, score

    best, best_state, best_epoch, stall = -np.inf, None, 0, 0
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        for epoch in range(max_iter):
            t0 = time.perf_counter()
            frozen = epoch < freeze_encoder_epochs
            # Gradual unfreezing: planted attention and head adapt first.
            for p in net.encoder_parameters():
                p.requires_grad_(not frozen)
            net.train()
            total_loss, n_seen = 0.0, 0
            for idx in length_batches(lengths, batch_size, rng):
                tokens = collate([train_docs[i] for i in idx], max_length).to(device)
                target = _targets(Y_train, idx, device)
                with _autocast(device, mixed_precision):
                    loss = _loss(net, tokens, target, head_training)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                sched.step()
                total_loss += float(loss.detach()) * len(idx)
                n_seen += len(idx)
            history["loss"].append(total_loss / max(n_seen, 1))
            msg = f"epoch {len(history['loss'])} loss {history['loss'][-1]:.5f}"
            if use_val and has_head and head_training != "frozen":
                scale, score = choose_scale()
                history["validation"].append(score)
                msg += f" val nDCG@5 {score:.4f} (evidence scale {scale:g})"
            elif use_val:
                # A frozen head cannot change: the epochs are judged by the attention
                # path alone (exactly as without a head), the head's scale once at the end.
                val_logits = predict_logits(net, val_docs, batch_size=batch_size * 2,
                                            max_length=max_length, device=device,
                                            mixed_precision=mixed_precision)
                score = ndcg_at_k(Y_val, val_logits, k=5)
                history["validation"].append(score)
                msg += f" val nDCG@5 {score:.4f}"
            if use_val:
                if score > best + tol:
                    best, best_epoch, stall = score, epoch + 1, 0
                    best_state = cpu_state(net)
                else:
                    stall += 1
            if verbose:
                print(f"[PlantClassifier] {msg} ({time.perf_counter() - t0:.1f}s)", flush=True)
            if stop_early and stall >= n_iter_no_change:
                break
    for p in net.encoder_parameters():
        p.requires_grad_(True)
    if stop_early and best_state is not None:
        net.load_state_dict(best_state)
        history["best_epoch"] = best_epoch
        history["best_validation"] = best
    if has_head and head_training == "frozen" and not use_val:
        head.scale.fill_(1.0)  # nothing to choose it on
    if use_val and has_head and head_training == "frozen":
        scale, score = choose_scale()
        history["validation_with_evidence"] = score
        if verbose:
            print(f"[PlantClassifier] evidence scale {scale:g}: val nDCG@5 {score:.4f}", flush=True)
    history["n_iter"] = len(history["loss"])
    return history


def _param_groups(net, learning_rate, weight_decay, evidence_learning_rate, train_head=True):
    """AdamW groups: the network, and the evidence head at its own rate without decay.

    With ``train_head=False`` (a head fitted before training) the head's weights are
    left out of the optimiser altogether, so that weight decay cannot shrink them either.
    """
    head = getattr(net, "evidence", None)
    head_params = [head.weight] if head is not None and head.n_pairs else []
    head_ids = {id(p) for p in head_params}
    rest = [p for p in net.parameters() if id(p) not in head_ids]
    if not train_head:
        return [{"params": rest, "lr": learning_rate, "weight_decay": weight_decay}]
    if evidence_learning_rate is None or not head_params:
        return [{"params": list(net.parameters()), "lr": learning_rate, "weight_decay": weight_decay}]
    return [
        {"params": rest, "lr": learning_rate, "weight_decay": weight_decay},
        {"params": head_params, "lr": evidence_learning_rate, "weight_decay": 0.0},
    ]


def cpu_state(net):
    """An independent CPU copy of a module's state dict (for restoring the best epoch)."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
