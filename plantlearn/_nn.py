"""PyTorch modules: the L2R factor model and the planted label-wise attention network.

No sklearn here. The estimators in ``_ltr_pretrainer.py`` and
``_classifier.py`` build these modules; the loops in ``_ltr.py`` and
``_train.py`` train them.
"""

import math

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "FactorRanker",
    "GRUEncoder",
    "CNNEncoder",
    "TransformerEncoder",
    "LabelAttention",
    "PlantNet",
    "EvidenceHead",
    "build_encoder",
]

# Finite stand-in for -inf in attention logits: exp() of it is exactly 0 in
# float32, and unlike -inf it never produces inf - inf = NaN in the streaming
# softmax when a whole chunk is padding.
_MASKED = -1e9

# Id of the unknown word (ids 0 and 1 are padding and [UNK] in TextTokenizer).
# The encoder reads unknown words for context, but attention never points at
# them: the MI statistics and the L2R model skip them, so they carry no planted
# evidence, and a document of unknown words only scores like an empty one.
_UNK_ID = 1


class FactorRanker(nn.Module):
    """score(t, l) = u_t . v_l + b_t + b_l, the PLANT learning-to-rank model."""

    def __init__(self, n_tokens, n_labels, n_factors, *, generator=None, init_std=0.1):
        super().__init__()
        self.token_factors = nn.Parameter(
            torch.randn(n_tokens, n_factors, generator=generator) * init_std
        )
        self.label_factors = nn.Parameter(
            torch.randn(n_labels, n_factors, generator=generator) * init_std
        )
        self.token_bias = nn.Parameter(torch.zeros(n_tokens))
        self.label_bias = nn.Parameter(torch.zeros(n_labels))

    def forward(self, labels, tokens):
        """Scores of a batch of lists: labels (B,), tokens (B, n) -> (B, n)."""
        u = self.token_factors[tokens]
        v = self.label_factors[labels]
        return (
            torch.einsum("bnd,bd->bn", u, v)
            + self.token_bias[tokens]
            + self.label_bias[labels][:, None]
        )


# ----------------------------------------------------------------------------
# Encoders: (embeddings (n, T, E), mask (n, T)) -> states (n, T, D).
# Each exposes ``output_dim``. Any nn.Module with that contract plugs in.
# ----------------------------------------------------------------------------


class GRUEncoder(nn.Module):
    """Bidirectional GRU over the embedded tokens (the LAAT encoder).

    Padding sits at the end of every row, so the forward GRU's states at real
    tokens never see it. The backward direction runs a second GRU over each row
    reversed within its own length, which keeps its padding at the end too.
    This replaces packed sequences, whose backward pass on CPU allocates a
    full-size gradient per time step (quadratic in the length; about 2x slower
    here at 256 tokens).
    """

    def __init__(self, embed_dim, hidden_size):
        super().__init__()
        self.forward_rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.backward_rnn = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.output_dim = 2 * hidden_size

    def forward(self, x, mask):
        n, T, _ = x.shape
        lengths = mask.sum(dim=1)
        pos = torch.arange(T, device=x.device).expand(n, T)
        rev = lengths[:, None] - 1 - pos
        rev = torch.where(rev >= 0, rev, pos)  # padding positions map to themselves
        fwd, _ = self.forward_rnn(x)
        bwd, _ = self.backward_rnn(x.gather(1, rev[..., None].expand(-1, -1, x.shape[2])))
        bwd = bwd.gather(1, rev[..., None].expand(-1, -1, bwd.shape[2]))
        return torch.cat([fwd, bwd], dim=-1)


class CNNEncoder(nn.Module):
    """Same-length 1-D convolution with a tanh, as in CAML; fast on CPU."""

    def __init__(self, embed_dim, hidden_size, *, kernel_size=5, dropout=0.0):
        super().__init__()
        self.conv = nn.Conv1d(embed_dim, hidden_size, kernel_size, padding=kernel_size // 2)
        self.output_dim = hidden_size

    def forward(self, x, mask):
        h = torch.tanh(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return h * mask[..., None]


class TransformerEncoder(nn.Module):
    """A small pre-norm transformer with learned positions."""

    def __init__(self, embed_dim, hidden_size, *, num_layers=2, num_heads=4, dropout=0.0,
                 max_positions=4096):
        super().__init__()
        self.input = nn.Linear(embed_dim, hidden_size)
        self.positions = nn.Embedding(max_positions, hidden_size)
        layer = nn.TransformerEncoderLayer(
            hidden_size, num_heads, dim_feedforward=2 * hidden_size, dropout=dropout,
            batch_first=True, norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.output_dim = hidden_size

    def forward(self, x, mask):
        T = x.shape[1]
        pos = torch.arange(T, device=x.device).clamp_max(self.positions.num_embeddings - 1)
        h = self.input(x) + self.positions(pos)[None]
        # A row of padding only (an empty document, or a short one's missing
        # chunk) masks every key, and torch's fused inference path then returns
        # NaN states; let such rows attend over their padding instead (PlantNet
        # never attends to padding states anyway).
        pad = ~mask & mask.any(dim=1, keepdim=True)
        return self.layers(h, src_key_padding_mask=pad)


def build_encoder(name, embed_dim, hidden_size, dropout):
    """Encoder by name, or a user-supplied module passed through."""
    if isinstance(name, nn.Module):
        if not hasattr(name, "output_dim"):
            raise ValueError(
                "a custom encoder module must expose an `output_dim` attribute "
                "(the size of the states it returns)."
            )
        return name
    if name == "gru":
        return GRUEncoder(embed_dim, hidden_size)
    if name == "cnn":
        return CNNEncoder(embed_dim, 2 * hidden_size)
    if name == "transformer":
        return TransformerEncoder(embed_dim, hidden_size, dropout=dropout)
    raise ValueError(f"unknown encoder {name!r}; use 'gru', 'cnn', 'transformer' or an nn.Module.")


# ----------------------------------------------------------------------------
# Label-wise attention with planting.
# ----------------------------------------------------------------------------


class LabelAttention(nn.Module):
    """Label-wise attention whose logits can be planted from the L2R model.

    The key of position i holding token t is ``E_key[t] + W h_i``: a token path
    (a key embedding) plus a contextual path from the encoder state. The logit
    of label l at position i is ``q_l . key_i`` plus, when static scores are on,
    the frozen L2R score ``u_t . v_l + b_t`` (the label bias ``b_l`` is constant
    over positions and cancels in the softmax). Planting sets ``E_key = u``,
    ``q = v`` and ``W = 0``, so at step 0 the attention ranks a document's words
    exactly as the L2R model does, whatever the encoder.
    """

    def __init__(self, n_tokens, n_labels, state_dim, key_dim, *, inattention_k=None):
        super().__init__()
        self.key_dim = key_dim
        self.inattention_k = inattention_k
        self.key_embedding = nn.Embedding(n_tokens, key_dim, padding_idx=0)
        self.key_proj = nn.Linear(state_dim, key_dim, bias=False)
        self.queries = nn.Parameter(torch.empty(n_labels, key_dim))
        self.output_weight = nn.Parameter(torch.empty(n_labels, state_dim))
        self.output_bias = nn.Parameter(torch.zeros(n_labels))
        # Frozen L2R factors for the static scores; empty until planted.
        self.register_buffer("static_token_factors", torch.zeros(0, key_dim))
        self.register_buffer("static_token_bias", torch.zeros(0))
        self.register_buffer("static_label_factors", torch.zeros(0, key_dim))
        self.reset_random()

    @property
    def has_static_scores(self):
        return self.static_token_factors.shape[0] > 0

    def reset_random(self, generator=None):
        """Random attention initialisation (the no-planting control)."""
        # q . k then has unit variance at the start: std key_dim**-0.25 on each side.
        std = self.key_dim ** -0.25
        with torch.no_grad():
            self.key_embedding.weight.normal_(0.0, std, generator=generator)
            self.key_embedding.weight[0].zero_()
            self.queries.normal_(0.0, std, generator=generator)
            bound = 1.0 / math.sqrt(self.key_proj.in_features)
            self.key_proj.weight.uniform_(-bound, bound, generator=generator)
            bound = 1.0 / math.sqrt(self.output_weight.shape[1])
            self.output_weight.uniform_(-bound, bound, generator=generator)

    def plant(self, token_factors, label_factors, token_bias, *, plant_keys=True,
              static_scores=True):
        """Initialise queries (and keys) from L2R factors; optionally add static scores."""
        u = torch.as_tensor(token_factors, dtype=torch.float32)
        v = torch.as_tensor(label_factors, dtype=torch.float32)
        b = torch.as_tensor(token_bias, dtype=torch.float32)
        with torch.no_grad():
            self.queries.copy_(v)
            if plant_keys:
                self.key_embedding.weight.copy_(u)
                self.key_embedding.weight[0].zero_()
                self.key_proj.weight.zero_()
        if static_scores:
            dev = self.queries.device
            self.static_token_factors = u.clone().to(dev)
            self.static_label_factors = v.clone().to(dev)
            b = b.clone()
            if plant_keys:
                # The planted path q.k already equals u.v at step 0, so the logits
                # are u.v (learnt) + u.v (static) + bias: doubling the bias makes
                # them exactly twice the L2R score, i.e. the same ranking.
                b = 2.0 * b
            b[0] = 0.0
            self.static_token_bias = b.to(dev)

    def logits(self, tokens, states, mask):
        """Attention logits (n, L, T) in float32, padding at a large negative value."""
        keys = self.key_embedding(tokens) + self.key_proj(states)
        queries = self.queries
        if self.has_static_scores:
            # One matmul for both terms: [key | u_t] . [q_l | v_l] + b_t.
            keys = torch.cat([keys, self.static_token_factors[tokens]], dim=-1)
            queries = torch.cat([queries, self.static_label_factors], dim=-1)
        with torch.autocast(device_type=keys.device.type, enabled=False):
            s = torch.einsum("ntr,lr->nlt", keys.float(), queries.float())
            if self.has_static_scores:
                s = s + self.static_token_bias[tokens][:, None, :]
            s = s.masked_fill(~mask[:, None, :], _MASKED)
            if self.inattention_k is not None and s.shape[-1] > self.inattention_k:
                # Inattention: only each label's top-k positions stay in the softmax.
                kth = torch.topk(s, self.inattention_k, dim=-1).values[..., -1:]
                s = s.masked_fill(s < kth, _MASKED)
        return s


def _l2_rows(value, row, n_rows):
    """``value`` divided by the L2 norm of its row's values (rows given per entry)."""
    sq_norm = torch.zeros(n_rows, device=value.device).index_add_(0, row, value * value)
    return value / sq_norm.clamp_min(1e-12).sqrt()[row]


class EvidenceHead(nn.Module):
    """A sparse linear term per label over its evidence words.

    Every (label, word) pair given gets one weight (stage 1's MI words, or for the
    no-planting control the words that co-occur with the label in training); a label's
    logit gains the weighted sum of its selected words' tf-idf values in the
    document: ``(1 + log tf) * idf``, L2-normalised over all the document's
    known words, as in the tf-idf linear models (binary presence makes a much
    weaker linear model: long documents fire every cue at full strength). The
    term starts at zero, so it leaves the planted model's start unchanged; it
    gives each label a direct, linear path to its evidence words next to the
    attention path, which the attention's single context vector per label
    cannot express for labels with several independent cues. Its size is the
    number of pairs (at most labels x 1,000 words: top_k MI words, plus frequent
    co-occurring words for labels with many documents), never labels x vocabulary.

    Its weights come either from a convex fit before the network trains (linear
    SVMs, ``_linear.fit_restricted_svms``; the head then also has a per-label
    ``bias`` and stays frozen), or from gradient training beside the attention
    (residual on top of the attention path, or jointly with it: the training
    loop's choice, ``_train._loss``; ``bias`` stays zero). ``scale`` weighs the
    head's term in the final logits; the training loop picks it on validation
    data (0 switches the head off where it does not generalise).
    """

    def __init__(self, n_labels, *, raw_tf=False):
        super().__init__()
        self.n_labels = n_labels
        # With raw_tf every word has two features: its sublinear tf-idf (word id t) and
        # its raw-count tf-idf (id t + vocabulary size), each vector L2-normalised and
        # both scaled by 1/sqrt(2); a label's pairs then name either or both.
        self.raw_tf = raw_tf
        self.weight = nn.Parameter(torch.zeros(0))
        # Pairs sorted by word: the pairs of word t are pair_label[token_ptr[t]:token_ptr[t+1]].
        self.register_buffer("pair_label", torch.zeros(0, dtype=torch.long))
        self.register_buffer("token_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("idf", torch.zeros(0))
        self.register_buffer("bias", torch.zeros(n_labels))
        self.register_buffer("scale", torch.ones(()))

    @property
    def n_pairs(self):
        return self.weight.numel()

    def pair_tokens(self):
        """The word id of every pair, in the head's order (the inverse of ``token_ptr``)."""
        ptr = self.token_ptr.cpu()
        return torch.repeat_interleave(torch.arange(ptr.numel() - 1), torch.diff(ptr)).numpy()

    def set_pairs(self, pair_label, token_ptr, idf, weight=None, bias=None):
        """Install the pairs (labels grouped by word), the words' idf, and weights (default 0)."""
        dev = self.weight.device
        self.pair_label = torch.as_tensor(pair_label, dtype=torch.long).to(dev)
        self.token_ptr = torch.as_tensor(token_ptr, dtype=torch.long).to(dev)
        self.idf = torch.as_tensor(idf, dtype=torch.float32).to(dev)
        if weight is None:
            weight = torch.zeros(self.pair_label.numel())
        self.weight = nn.Parameter(torch.as_tensor(weight, dtype=torch.float32).to(dev).clone())
        if bias is not None:
            self.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def feature_pairs(self, labels, words, n_vocab):
        """(label, feature) pairs for (label, word) pairs, and the number of features.

        Without ``raw_tf`` a feature is the word itself; with it each pair names both of
        its word's features (sublinear ``t`` and raw-count ``t + n_vocab``).
        """
        labels, words = np.asarray(labels), np.asarray(words)
        if not self.raw_tf:
            return labels, words, n_vocab
        return (np.concatenate([labels, labels]), np.concatenate([words, words + n_vocab]),
                2 * n_vocab)

    @property
    def n_features(self):
        """Columns of the head's feature space: the vocabulary, twice with ``raw_tf``."""
        return self.idf.numel() * (2 if self.raw_tf else 1)

    def features(self, tokens):
        """Distinct (document, feature) occurrences and their normalised tf-idf values.

        A feature is a word id; with ``raw_tf`` also the word id plus the vocabulary size
        for the word's raw-count tf-idf.
        """
        n = tokens.shape[0]
        flat = tokens.reshape(n, -1)
        n_vocab = self.idf.numel()
        known = flat > 1  # padding and unknown words carry no evidence
        doc = torch.arange(n, device=tokens.device)[:, None].expand_as(flat)
        keys, tf = torch.unique(doc[known] * n_vocab + flat[known], return_counts=True)
        d, t = keys // n_vocab, keys % n_vocab
        tf = tf.float()
        value = _l2_rows((1.0 + torch.log(tf)) * self.idf[t], d, n)
        if not self.raw_tf:
            return d, t, value
        raw = _l2_rows(tf * self.idf[t], d, n)
        half = 0.5 ** 0.5
        return torch.cat([d, d]), torch.cat([t, t + n_vocab]), torch.cat([value, raw]) * half

    def forward(self, tokens):
        """Logit contributions (n, L) of documents given as token ids (n, ...)."""
        n = tokens.shape[0]
        out = torch.zeros(n, self.n_labels, device=tokens.device, dtype=torch.float32)
        if self.n_pairs == 0:
            return out
        out += self.bias
        d, t, value = self.features(tokens)
        start, stop = self.token_ptr[t], self.token_ptr[t + 1]
        counts = stop - start
        total = int(counts.sum())
        if total == 0:
            return out
        # Expand every (document, word) into the word's pairs without a Python loop.
        rep_doc = torch.repeat_interleave(d, counts)
        rep_value = torch.repeat_interleave(value, counts)
        offsets = torch.arange(total, device=tokens.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        pair = torch.repeat_interleave(start, counts) + offsets
        out.index_put_((rep_doc, self.pair_label[pair]), self.weight[pair] * rep_value,
                       accumulate=True)
        return out


class PlantNet(nn.Module):
    """Embeddings -> encoder -> planted label-wise attention -> per-label logits.

    Long documents arrive as chunks ``(n, C, T)``. Each chunk is encoded on its
    own and the attention runs as an online softmax over the chunks: a running
    maximum, normaliser and weighted state sum per label carry the evidence of
    earlier chunks, so the result is the exact softmax attention over all the
    document's positions while only one chunk's activations are alive at a time
    at inference.
    """

    def __init__(self, n_tokens, n_labels, *, embed_dim=128, hidden_size=128, key_dim=64,
                 encoder="gru", dropout=0.2, inattention_k=None, evidence_raw_tf=False):
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, embed_dim, padding_idx=0)
        self.encoder = build_encoder(encoder, embed_dim, hidden_size, dropout)
        self.dropout = nn.Dropout(dropout)
        self.attention = LabelAttention(
            n_tokens, n_labels, self.encoder.output_dim, key_dim, inattention_k=inattention_k
        )
        self.evidence = EvidenceHead(n_labels, raw_tf=evidence_raw_tf)

    def set_evidence_pairs(self, labels, tokens, n_tokens, idf, weights=None, bias=None):
        """Give the evidence head its (label, word) pairs and the words' idf.

        ``weights`` (one per pair, in the order given) and the per-label ``bias``
        install a fitted linear model; without them the head starts at zero.
        """
        labels = torch.as_tensor(labels, dtype=torch.long)
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        order = torch.argsort(tokens * (labels.max().item() + 1 if labels.numel() else 1) + labels)
        counts = torch.bincount(tokens, minlength=n_tokens)
        ptr = torch.zeros(n_tokens + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(counts, 0)
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float32)[order]
        self.evidence.set_pairs(labels[order], ptr, idf, weight=weights, bias=bias)

    def encode(self, tokens):
        mask = tokens != 0
        x = self.dropout(self.embedding(tokens))
        h = self.encoder(x, mask)
        return self.dropout(h), mask

    def forward(self, tokens, *, return_attention=False, return_parts=False, with_evidence=True):
        """Logits (n, L) of documents given as token ids (n, T) or chunks (n, C, T).

        ``return_parts=True`` returns the attention path's logits and the evidence
        head's unscaled term separately (their scaled sum is the usual output).
        ``with_evidence=False`` leaves the head out (its term is zero): training
        beside a frozen head needs the attention path only.
        """
        if tokens.dim() == 2:
            tokens = tokens[:, None, :]
        n, C, T = tokens.shape
        att = self.attention
        L = att.queries.shape[0]
        run_max = tokens.new_full((n, L), _MASKED, dtype=torch.float32)
        norm = tokens.new_zeros((n, L), dtype=torch.float32)
        acc = None
        weights = [] if return_attention else None
        # Encode every non-empty chunk of the batch in one call (chunks are read
        # independently); the attention below then streams over the chunks.
        flat = tokens.reshape(n * C, T)
        rows = (flat != 0).any(dim=1).nonzero().squeeze(1)
        states = None
        if rows.numel():
            h_rows, _ = self.encode(flat[rows])
            states = h_rows.new_zeros((n * C, T, h_rows.shape[-1]))
            states = states.index_copy(0, rows, h_rows).view(n, C, T, -1)
        for c in range(C):
            chunk = tokens[:, c]
            mask = chunk != 0
            if not bool(mask.any()):
                if weights is not None:
                    weights.append(None)
                continue
            h = states[:, c]
            # States at padding get weight 0; zeroing them keeps a custom
            # encoder's NaN/inf there out of the context (0 * NaN = NaN).
            h = h.masked_fill(~mask[..., None], 0.0)
            mask = mask & (chunk != _UNK_ID)
            s = att.logits(chunk, h, mask)  # (n, L, T)
            new_max = torch.maximum(run_max, s.amax(dim=-1))
            rescale = torch.exp(run_max - new_max)
            p = torch.exp(s - new_max[..., None]) * mask[:, None, :]
            ctx = torch.einsum("nlt,ntd->nld", p, h.float())
            norm = norm * rescale + p.sum(dim=-1)
            acc = ctx if acc is None else acc * rescale[..., None] + ctx
            run_max = new_max
            if weights is not None:
                weights.append((p, new_max))
        if acc is None:  # every document of the batch is empty
            D = self.encoder.output_dim
            acc = tokens.new_zeros((n, L, D), dtype=torch.float32)
        # An empty document has norm 0 and gets context 0: its logits are the biases,
        # i.e. the label priors the biases were initialised to.
        context = acc / norm.clamp_min(1e-20)[..., None]
        logits = (context * att.output_weight.float()).sum(dim=-1) + att.output_bias.float()
        evidence = self.evidence(tokens) if with_evidence else torch.zeros_like(logits)
        if return_parts:
            return logits, evidence
        logits = logits + self.evidence.scale * evidence
        if return_attention:
            # Final normalised weights per chunk: p_c * exp(max_c - max_final) / norm.
            out = []
            for w in weights:
                if w is None:
                    out.append(None)
                    continue
                p, m = w
                out.append(p * torch.exp(m - run_max)[..., None] / norm.clamp_min(1e-20)[..., None])
            return logits, out
        return logits

    def init_output_bias(self, prior):
        """Start every label's logit at its log prior odds."""
        p = torch.as_tensor(prior, dtype=torch.float32).clamp(1e-6, 1 - 1e-6)
        with torch.no_grad():
            self.attention.output_bias.copy_(torch.log(p) - torch.log1p(-p))

    def encoder_parameters(self):
        return list(self.embedding.parameters()) + list(self.encoder.parameters())
