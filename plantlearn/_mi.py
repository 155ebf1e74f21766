"""Sparse mutual-information gain between word occurrence and label assignment.

Numeric kernels only (numpy and scipy; no torch, no sklearn estimators).

For a word t and a label l the two binary events are T = "t occurs in the
document" and L = "l is assigned to it". Their 2x2 contingency table over the
N training documents follows from three counts: the co-occurrence count
n11 = #docs with both, the word's document frequency df_t and the label's df_l.
All co-occurrence counts at once are the sparse product Y^T B of the label
matrix and the binary document-word matrix, so the cost is O(nnz(Y^T B)) and
never O(V x L x N).

Only pairs with n11 > 0 can be positively associated (p(t,l) > p(t) p(l)), and
only those are kept: a word whose *absence* predicts a label has a high MI too,
but it is not evidence an attention head can point at.
"""

import numpy as np
import scipy.sparse as sp

__all__ = [
    "NORMALIZATIONS",
    "binary_document_term_matrix",
    "mutual_information",
    "log_scale_grades",
    "smoothed_idf",
]

NORMALIZATIONS = ("joint_entropy", "sqrt", "none")

# Target number of co-occurrence entries materialised per label chunk; bounds the
# kernel's peak memory (about 60 bytes per entry for the temporaries).
_CHUNK_ENTRIES = 20_000_000


def binary_document_term_matrix(encoded, vocab_size, *, skip_ids=(0, 1)):
    """Binary CSR matrix (documents x vocabulary): 1 where the id occurs.

    Parameters
    ----------
    encoded : list of int arrays
        Token ids of each document.
    vocab_size : int
    skip_ids : tuple of int
        Ids left out of the statistics (padding and the unknown-word id carry
        no readable evidence).
    """
    indptr = np.zeros(len(encoded) + 1, dtype=np.int64)
    parts = []
    for i, ids in enumerate(encoded):
        u = np.unique(np.asarray(ids, dtype=np.int64))
        if skip_ids:
            u = u[~np.isin(u, skip_ids)]
        parts.append(u)
        indptr[i + 1] = indptr[i] + u.size
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    idx_dtype = np.int32 if vocab_size < 2**31 and indices.size < 2**31 else np.int64
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix(
        (data, indices.astype(idx_dtype), indptr.astype(idx_dtype) if indptr[-1] < 2**31 else indptr),
        shape=(len(encoded), vocab_size),
    )


def _xlogx_ratio(p, q):
    """p * log(p / q), with 0 log 0 = 0."""
    out = np.zeros_like(p)
    pos = p > 0
    out[pos] = p[pos] * np.log(p[pos] / q[pos])
    return out


def _entropy(p):
    """Binary entropy in nats, 0 at p in {0, 1}."""
    out = np.zeros_like(p)
    inner = (p > 0) & (p < 1)
    q = p[inner]
    out[inner] = -(q * np.log(q) + (1 - q) * np.log1p(-q))
    return out


def _pair_scores(n11, df_t, df_l, n_docs, normalize):
    """Normalised MI of each (word, label) pair from its contingency counts."""
    N = float(n_docs)
    p11 = n11 / N
    p10 = (df_t - n11) / N
    p01 = (df_l - n11) / N
    p00 = (N - df_t - df_l + n11) / N
    pt = df_t / N
    pl = df_l / N
    mi = (
        _xlogx_ratio(p11, pt * pl)
        + _xlogx_ratio(p10, pt * (1 - pl))
        + _xlogx_ratio(p01, (1 - pt) * pl)
        + _xlogx_ratio(p00, (1 - pt) * (1 - pl))
    )
    if normalize == "none":
        return mi
    h_t = _entropy(pt)
    h_l = _entropy(pl)
    if normalize == "joint_entropy":
        denom = h_t + h_l - mi
    elif normalize == "sqrt":
        denom = np.sqrt(h_t * h_l)
    else:  # pragma: no cover - validated by the estimator
        raise ValueError(f"unknown normalisation {normalize!r}")
    out = np.zeros_like(mi)
    ok = denom > 0
    out[ok] = mi[ok] / denom[ok]
    return out


def _label_chunks(label_df, mean_doc_terms, budget):
    """Split label indices into consecutive chunks with bounded product size."""
    cost = label_df.astype(np.float64) * max(mean_doc_terms, 1.0)
    chunks, start, acc = [], 0, 0.0
    for j, c in enumerate(cost):
        if acc + c > budget and j > start:
            chunks.append((start, j))
            start, acc = j, 0.0
        acc += c
    chunks.append((start, len(cost)))
    return chunks


def mutual_information(B, Y, *, top_k=None, normalize="joint_entropy", chunk_entries=None,
                       callback=None):
    """Positively associated, normalised MI of every (label, word) pair.

    Parameters
    ----------
    B : sparse matrix (n_docs, vocab_size)
        Binary document-word occurrence matrix.
    Y : sparse matrix (n_docs, n_labels)
        Binary label indicator matrix.
    top_k : int or None
        Keep only the ``top_k`` best words of each label (None keeps all).
    normalize : {"joint_entropy", "sqrt", "none"}
        ``I / H(T, L)`` (the paper's choice, in [0, 1]), ``I / sqrt(H_T H_L)``,
        or raw MI in nats.
    chunk_entries : int, optional
        Memory budget: number of co-occurrence entries computed per label chunk.
    callback : callable, optional
        Called as ``callback(done_labels, n_labels)`` after each chunk.

    Returns
    -------
    scores : csr_matrix (n_labels, vocab_size), float64
        Normalised MI of the kept pairs (strictly positive).
    token_df : ndarray (vocab_size,)
        Document frequency of each word.
    label_df : ndarray (n_labels,)
        Document frequency of each label.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    B = sp.csr_matrix(B)
    Y = sp.csr_matrix(Y)
    if B.shape[0] != Y.shape[0]:
        raise ValueError(f"B has {B.shape[0]} rows but Y has {Y.shape[0]}")
    n_docs, vocab_size = B.shape
    n_labels = Y.shape[1]
    # Integer-valued float32 counts are exact up to 2**24 documents.
    B = B.astype(np.float32)
    B.data[:] = 1.0
    Yt = sp.csr_matrix(Y.T.astype(np.float32))
    Yt.data[:] = 1.0
    token_df = np.asarray(B.sum(axis=0)).ravel().astype(np.float64)
    label_df = np.asarray(Yt.sum(axis=1)).ravel().astype(np.float64)
    mean_terms = B.nnz / max(n_docs, 1)
    budget = chunk_entries or _CHUNK_ENTRIES

    rows_out, cols_out, vals_out = [], [], []
    for start, stop in _label_chunks(label_df, mean_terms, budget):
        counts = (Yt[start:stop] @ B).tocsr()  # (chunk labels, vocab) co-occurrences
        counts.sum_duplicates()
        row = np.repeat(np.arange(start, stop), np.diff(counts.indptr))
        col = counts.indices
        n11 = counts.data.astype(np.float64)
        df_t = token_df[col]
        df_l = label_df[row]
        # Positive association p(t,l) > p(t) p(l)  <=>  n11 * N > df_t * df_l.
        keep = n11 * n_docs > df_t * df_l
        row, col, n11, df_t, df_l = row[keep], col[keep], n11[keep], df_t[keep], df_l[keep]
        score = _pair_scores(n11, df_t, df_l, n_docs, normalize)
        pos = score > 0
        row, col, score = row[pos], col[pos], score[pos]
        if top_k is not None:
            row, col, score = _top_k_per_row(row, col, score, top_k)
        rows_out.append(row)
        cols_out.append(col)
        vals_out.append(score)
        if callback is not None:
            callback(stop, n_labels)
        del counts
    row = np.concatenate(rows_out) if rows_out else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols_out) if cols_out else np.zeros(0, dtype=np.int64)
    val = np.concatenate(vals_out) if vals_out else np.zeros(0)
    scores = sp.csr_matrix((val, (row, col)), shape=(n_labels, vocab_size), dtype=np.float64)
    scores.sort_indices()
    return scores, token_df, label_df


def _top_k_per_row(row, col, score, k):
    """Keep the k largest scores of each row (entries grouped by row, ascending).

    Ties at the cut are broken towards the lower column index, so the result
    does not depend on the order of the input entries.
    """
    if row.size == 0:
        return row, col, score
    bounds = np.flatnonzero(np.diff(row)) + 1
    starts = np.concatenate(([0], bounds))
    stops = np.concatenate((bounds, [row.size]))
    lengths = stops - starts
    if lengths.max() <= k:
        return row, col, score
    keep = np.ones(row.size, dtype=bool)
    for s, e in zip(starts[lengths > k], stops[lengths > k]):
        seg_score = score[s:e]
        seg_col = col[s:e]
        # Sort by (-score, col) and keep the first k.
        order = np.lexsort((seg_col, -seg_score))
        drop = order[k:]
        keep[s + drop] = False
    return row[keep], col[keep], score[keep]


def log_scale_grades(scores, n_grades=100):
    """Integer relevance grades from each label's word ranking, on a log scale.

    For a label with m kept words ranked r = 0..m-1 by score, the grade is
    ``1 + floor((n_grades - 1) * (1 - log(1 + r) / log(1 + m)))``: the best
    word gets ``n_grades``, grades fall quickly through the first ranks and
    the long tail shares grade 1 (the paper's log-scale grading).

    Returns a CSR matrix with the sparsity of ``scores`` and int32 grades.
    """
    scores = sp.csr_matrix(scores)
    scores.sort_indices()
    grades = np.zeros(scores.nnz, dtype=np.int32)
    indptr = scores.indptr
    for i in range(scores.shape[0]):
        s, e = indptr[i], indptr[i + 1]
        m = e - s
        if m == 0:
            continue
        seg = scores.data[s:e]
        order = np.lexsort((scores.indices[s:e], -seg))
        ranks = np.empty(m, dtype=np.float64)
        ranks[order] = np.arange(m)
        g = 1 + np.floor((n_grades - 1) * (1 - np.log1p(ranks) / np.log1p(m)))
        grades[s:e] = np.clip(g, 1, n_grades).astype(np.int32)
    return sp.csr_matrix((grades, scores.indices.copy(), indptr.copy()), shape=scores.shape)


def smoothed_idf(token_df, n_documents):
    """Inverse document frequency ``ln((1 + N) / (1 + df)) + 1``, as sklearn's TfidfTransformer.

    The +1 terms keep words seen in every document (and ids never seen) finite
    and positive.
    """
    token_df = np.asarray(token_df, dtype=np.float64)
    return np.log((1.0 + n_documents) / (1.0 + token_df)) + 1.0
