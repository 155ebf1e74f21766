"""Learning-to-rank training data and loop (numpy sampling, torch training).

Every label contributes lists of words: a share of its graded (MI-ranked)
words mixed with words sampled uniformly from the vocabulary. A sampled word
that happens to be graded for the label keeps its grade; one that is held out
for validation is masked out, so held-out pairs are never trained on, not even
as negatives.
"""

import copy
import time

import numpy as np
import scipy.sparse as sp
import torch

from ._losses import gains_from_grades, lambdarank_loss, ndcg_at_k
from ._nn import FactorRanker

__all__ = ["RankingData", "split_graded_pairs", "train_factor_ranker"]

_FIRST_WORD_ID = 2  # ids 0 and 1 are padding and the unknown word


def split_graded_pairs(grades, validation_fraction, rng):
    """Hold out a fraction of each label's graded words for validation.

    Labels with fewer than two graded words keep them all for training.
    Returns (train, held_out) CSR matrices with the sparsity split between them.
    """
    grades = sp.csr_matrix(grades)
    held = np.zeros(grades.nnz, dtype=bool)
    if validation_fraction > 0:
        counts = np.diff(grades.indptr)
        for j in np.flatnonzero(counts >= 2):
            s, e = grades.indptr[j], grades.indptr[j + 1]
            m = e - s
            n_held = min(m - 1, max(1, int(round(validation_fraction * m))))
            held[s + rng.choice(m, size=n_held, replace=False)] = True
    rows = np.repeat(np.arange(grades.shape[0]), np.diff(grades.indptr))

    def part(sel):
        return sp.csr_matrix(
            (grades.data[sel], (rows[sel], grades.indices[sel])), shape=grades.shape
        )

    return part(~held), part(held)


class RankingData:
    """Samples the training lists of one epoch and holds the fixed validation lists."""

    def __init__(self, train_grades, held_grades, vocab_size, *, list_size, n_positives, rng):
        self.vocab_size = vocab_size
        self.list_size = list_size
        self.n_positives = n_positives
        self.train = sp.csr_matrix(train_grades)
        self.held = sp.csr_matrix(held_grades)
        V = np.int64(vocab_size)
        rows_tr = np.repeat(np.arange(self.train.shape[0]), np.diff(self.train.indptr))
        rows_he = np.repeat(np.arange(self.held.shape[0]), np.diff(self.held.indptr))
        # Sorted pair keys l * V + t for grade look-ups of sampled words.
        key_tr = rows_tr * V + self.train.indices
        order = np.argsort(key_tr)
        self._train_keys = key_tr[order]
        self._train_vals = self.train.data[order].astype(np.int32)
        self._held_keys = np.sort(rows_he * V + self.held.indices)
        self.validation = self._validation_lists(rng)

    def _lookup(self, labels, tokens):
        """Grade of sampled (label, word) pairs; -1 marks held-out pairs."""
        keys = labels.astype(np.int64) * np.int64(self.vocab_size) + tokens
        out = np.zeros(keys.shape, dtype=np.int32)
        if self._train_keys.size:
            pos = np.searchsorted(self._train_keys, keys).clip(max=self._train_keys.size - 1)
            hit = self._train_keys[pos] == keys
            out[hit] = self._train_vals[pos[hit]]
        if self._held_keys.size:
            pos = np.searchsorted(self._held_keys, keys).clip(max=self._held_keys.size - 1)
            out[self._held_keys[pos] == keys] = -1
        return out

    def _random_words(self, shape, rng):
        return rng.integers(_FIRST_WORD_ID, self.vocab_size, size=shape, dtype=np.int64)

    def epoch(self, rng, min_lists=4096):
        """Lists of one epoch: every training pair appears as a positive once per pass.

        Small label sets give few lists per pass, so an epoch repeats passes
        (each with fresh shuffles and negatives) until it holds at least
        ``min_lists`` lists; epochs then carry enough optimisation steps for
        early stopping to judge.

        Returns labels (B,), tokens (B, list_size), grades (B, list_size) and a
        validity mask, in random list order.
        """
        parts = [self._one_pass(rng)]
        while sum(p[0].size for p in parts) < min_lists:
            parts.append(self._one_pass(rng))
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))

    def _one_pass(self, rng):
        g = self.train
        counts = np.diff(g.indptr)
        rows = np.repeat(np.arange(g.shape[0]), counts)
        if rows.size == 0:
            raise ValueError("no graded (label, word) pair to train on")
        # Shuffle each label's words: sort by (label, random key).
        order = np.lexsort((rng.random(rows.size), rows))
        tokens = g.indices[order].astype(np.int64)
        grades = g.data[order].astype(np.int32)
        pos_in_row = np.arange(rows.size) - g.indptr[rows]
        lists_per_row = -(-counts // self.n_positives)
        first_list = np.concatenate(([0], np.cumsum(lists_per_row)[:-1]))
        list_id = first_list[rows] + pos_in_row // self.n_positives
        slot = pos_in_row % self.n_positives
        n_lists = int(lists_per_row.sum())
        list_label = np.repeat(np.arange(g.shape[0]), lists_per_row)

        L_tok = self._random_words((n_lists, self.list_size), rng)
        L_grade = self._lookup(np.repeat(list_label[:, None], self.list_size, 1), L_tok)
        L_tok[list_id, slot] = tokens
        L_grade[list_id, slot] = grades
        mask = L_grade >= 0
        L_grade = np.maximum(L_grade, 0)
        # The same word twice in a list would be a pair with itself; drop repeats.
        srt = np.sort(L_tok, axis=1)
        if (srt[:, 1:] == srt[:, :-1]).any():
            mask &= _first_occurrence(L_tok)
        perm = rng.permutation(n_lists)
        return list_label[perm], L_tok[perm], L_grade[perm], mask[perm]

    def _validation_lists(self, rng):
        """Each label's held-out words ranked against fixed random ungraded words."""
        h = self.held
        counts = np.diff(h.indptr)
        labels = np.flatnonzero(counts > 0)
        if labels.size == 0:
            return None
        width = int(counts.max()) + self.list_size
        tok = np.zeros((labels.size, width), dtype=np.int64)
        grd = np.zeros((labels.size, width), dtype=np.int32)
        mask = np.zeros((labels.size, width), dtype=bool)
        for i, j in enumerate(labels):
            s, e = h.indptr[j], h.indptr[j + 1]
            m = e - s
            tok[i, :m] = h.indices[s:e]
            grd[i, :m] = h.data[s:e]
            mask[i, :m] = True
            neg = self._random_words(self.list_size, rng)
            # Negatives must be ungraded for this label (neither trained nor held out).
            ok = self._lookup(np.full(neg.shape, j), neg) == 0
            ok &= ~np.isin(neg, h.indices[s:e])
            ok &= _first_occurrence(neg[None])[0]
            tok[i, m:m + self.list_size] = neg
            mask[i, m:m + self.list_size] = ok
        return labels, tok, grd, mask


def _first_occurrence(tokens):
    """Boolean mask of the first occurrence of each value in every row."""
    order = np.argsort(tokens, axis=1, kind="stable")
    srt = np.take_along_axis(tokens, order, axis=1)
    repeat = np.zeros(srt.shape, dtype=bool)
    repeat[:, 1:] = srt[:, 1:] == srt[:, :-1]
    out = np.empty(tokens.shape, dtype=bool)
    np.put_along_axis(out, order, ~repeat, axis=1)
    return out


def evaluate_ranker(model, validation, *, k, gain, device):
    """Mean NDCG@k of the model on the fixed validation lists."""
    if validation is None:
        return float("nan")
    labels, tok, grd, mask = validation
    model.eval()
    scores = []
    with torch.no_grad():
        for s in range(0, labels.size, 4096):
            sl = slice(s, s + 4096)
            lab = torch.as_tensor(labels[sl], device=device)
            t = torch.as_tensor(tok[sl], device=device)
            m = torch.as_tensor(mask[sl], device=device)
            g = gains_from_grades(torch.as_tensor(grd[sl], device=device), gain)
            sc = model(lab, t)
            scores.append(ndcg_at_k(sc, g, m, k).cpu())
    vals = torch.cat(scores)
    return float(torch.nanmean(vals))


def train_factor_ranker(data, n_tokens, n_labels, *, n_factors, sigma, ndcg_k, gain,
                        max_iter, learning_rate, weight_decay, batch_size, early_stopping,
                        n_iter_no_change, tol, device, seed, verbose=0):
    """Fit a FactorRanker with LambdaRank; keep the weights of the best validation epoch.

    Returns the trained model (on CPU) and a history dict.
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = FactorRanker(n_tokens, n_labels, n_factors, generator=gen).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    history = {"loss": [], "validation": []}
    untrained = evaluate_ranker(model, data.validation, k=ndcg_k, gain=gain, device=device)
    history["untrained_validation"] = untrained
    best, best_state, stall = -np.inf, None, 0
    use_val = data.validation is not None
    for epoch in range(max_iter):
        t0 = time.perf_counter()
        model.train()
        labels, tok, grd, mask = data.epoch(rng)
        total, n_batches = 0.0, 0
        for s in range(0, labels.size, batch_size):
            sl = slice(s, s + batch_size)
            lab = torch.as_tensor(labels[sl], device=device)
            t = torch.as_tensor(tok[sl], device=device)
            m = torch.as_tensor(mask[sl], device=device)
            g = gains_from_grades(torch.as_tensor(grd[sl], device=device), gain)
            loss = lambdarank_loss(model(lab, t), g, m, sigma=sigma, k=ndcg_k)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            n_batches += 1
        history["loss"].append(total / max(n_batches, 1))
        score = evaluate_ranker(model, data.validation, k=ndcg_k, gain=gain, device=device)
        history["validation"].append(score)
        if verbose:
            print(
                f"[LTRPretrainer] epoch {epoch + 1}/{max_iter} loss {history['loss'][-1]:.4f} "
                f"val NDCG@{ndcg_k} {score:.4f} ({time.perf_counter() - t0:.1f}s)",
                flush=True,
            )
        improved = use_val and score > best + tol
        if improved or not use_val:
            best = score if use_val else best
            best_state = copy.deepcopy(model.state_dict())
        if improved:
            stall = 0
            history["best_epoch"] = epoch + 1
        else:
            stall += 1
            if early_stopping and use_val and stall >= n_iter_no_change:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    history["n_iter"] = len(history["loss"])
    history["best_validation"] = float(best) if use_val else float("nan")
    return model.cpu(), history
