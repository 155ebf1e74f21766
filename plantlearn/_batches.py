"""Batches of encoded documents: padding into tensors and length-sorted batch orders.

Documents arrive as lists of token-id chunks (``TextTokenizer.encode_chunks``). Batches group
documents of similar length, so that little time goes into padding; with a random generator
the grouping still changes from epoch to epoch. numpy and ``torch.from_numpy`` only: no model
code here, so the training loop, the evidence head and explanations share one batching.
"""

import numpy as np
import torch

__all__ = ["collate", "doc_lengths", "length_batches"]

#: Batches sorted together inside one shuffling window (see :func:`length_batches`).
_SORT_WINDOW_BATCHES = 50


def collate(docs, max_length):
    """Pad a batch of chunked documents into a LongTensor of shape (n, C, T).

    An empty document (no chunks) becomes one chunk of padding, so that it still gets a
    prediction (the label priors).
    """
    n_chunks = max(1, max((len(d) for d in docs), default=1))
    width = max(1, max((len(c) for d in docs for c in d), default=1))
    width = min(width, max_length)
    out = np.zeros((len(docs), n_chunks, width), dtype=np.int64)
    for i, d in enumerate(docs):
        for j, c in enumerate(d):
            out[i, j, : len(c)] = c
    return torch.from_numpy(out)


def doc_lengths(docs):
    """Number of tokens of every encoded document, over all its chunks."""
    return np.array([sum(len(c) for c in d) for d in docs], dtype=np.int64)


def length_batches(lengths, batch_size, rng=None):
    """Index batches of documents of similar length.

    With ``rng`` (a numpy Generator) the documents are shuffled, sorted by length inside
    windows of 50 batches, and the batches shuffled again: nearly padding-free batches that
    still differ from epoch to epoch. Without it, a plain sort by length (inference).
    """
    n = lengths.size
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    order = rng.permutation(n)
    window = batch_size * _SORT_WINDOW_BATCHES
    batches = []
    for s in range(0, n, window):
        w = order[s:s + window]
        w = w[np.argsort(lengths[w], kind="stable")]
        batches.extend(w[b:b + batch_size] for b in range(0, w.size, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
