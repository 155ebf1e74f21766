"""PyTorch modules: the L2R factor model and the planted label-wise attention network.

No scikit-learn estimators here. The estimators in ``_ltr_pretrainer.py`` and
``_classifier.py`` build these modules; the loops in ``_ltr.py`` and
``_train.py`` train them; the evidence head lives in ``_head.py``.
"""

import math

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from ._head import EvidenceHead

__all__ = [
    "FactorRanker",
    "GRUEncoder",
    "CNNEncoder",
    "TransformerEncoder",
    "LabelAttention",
    "PlantNet",
    "plant_attention",
    "build_plant_net",
    "NETWORK_PARAMS",
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


def _is_pretrained_spec(encoder):
    from ._pretrained import PretrainedEncoder

    return isinstance(encoder, PretrainedEncoder)


def build_encoder(name, embed_dim, hidden_size, dropout):
    """Encoder by name, a pretrained backbone (``PretrainedEncoder``), or a user-supplied
    module passed through."""
    if _is_pretrained_spec(name):
        return name.build()
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

    def plant(self, token_factors, label_factors, *, plant_keys=True):
        """Start the queries at the L2R label factors ``v`` and (``plant_keys``) the keys at
        the token factors ``u``, so that ``q_l . key_t = u_t . v_l`` at step 0."""
        u = torch.as_tensor(token_factors, dtype=torch.float32)
        v = torch.as_tensor(label_factors, dtype=torch.float32)
        with torch.no_grad():
            self.queries.copy_(v)
            if plant_keys:
                self.key_embedding.weight.copy_(u)
                self.key_embedding.weight[0].zero_()
                self.key_proj.weight.zero_()

    def set_static_scores(self, token_factors, label_factors, token_bias):
        """Add the frozen score ``u_t . v_l + b_t`` of every input word to the logits."""
        dev = self.queries.device
        self.static_token_factors = torch.as_tensor(token_factors, dtype=torch.float32).clone().to(dev)
        self.static_label_factors = torch.as_tensor(label_factors, dtype=torch.float32).clone().to(dev)
        b = torch.as_tensor(token_bias, dtype=torch.float32).clone()
        b[0] = 0.0  # padding
        self.static_token_bias = b.to(dev)

    def logits(self, tokens, states, mask, labels=None):
        """Attention logits (n, L, T) in float32, padding at a large negative value; with
        ``labels`` (n, K), only those labels of each document: (n, K, T)."""
        keys = self.key_embedding(tokens) + self.key_proj(states)
        queries = self.queries if labels is None else self.queries[labels]
        if self.has_static_scores:
            # One matmul for both terms: [key | u_t] . [q_l | v_l] + b_t.
            keys = torch.cat([keys, self.static_token_factors[tokens]], dim=-1)
            label_factors = (self.static_label_factors if labels is None
                             else self.static_label_factors[labels])
            queries = torch.cat([queries, label_factors], dim=-1)
        with torch.autocast(device_type=keys.device.type, enabled=False):
            if labels is None:
                s = torch.einsum("ntr,lr->nlt", keys.float(), queries.float())
            else:
                s = torch.einsum("ntr,nkr->nkt", keys.float(), queries.float())
            if self.has_static_scores:
                s = s + self.static_token_bias[tokens][:, None, :]
            s = s.masked_fill(~mask[:, None, :], _MASKED)
            if self.inattention_k is not None and s.shape[-1] > self.inattention_k:
                # Inattention: only each label's top-k positions stay in the softmax.
                kth = torch.topk(s, self.inattention_k, dim=-1).values[..., -1:]
                s = s.masked_fill(s < kth, _MASKED)
        return s


#: The estimator parameters that decide the network's shape (``build_plant_net``'s keywords).
NETWORK_PARAMS = ("embed_dim", "hidden_size", "encoder", "dropout", "inattention_k",
                  "evidence_tf")


def build_plant_net(vocab_size, n_labels, key_dim, *, embed_dim, hidden_size, encoder, dropout,
                    inattention_k, evidence_tf, seed=0):
    """A PlantNet from the estimator's parameters (``NETWORK_PARAMS``), its initial weights
    drawn with ``seed``.

    Module constructors draw their initial weights from torch's global generator: seeded
    inside a fork, the same seed gives the same weights and the caller's global random state
    is left untouched. A user-supplied encoder module is copied, so that refits start anew.
    """
    import copy

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PlantNet(
            vocab_size, n_labels, embed_dim=embed_dim, hidden_size=hidden_size, key_dim=key_dim,
            encoder=copy.deepcopy(encoder) if isinstance(encoder, nn.Module) else encoder,
            dropout=dropout, inattention_k=inattention_k,
            evidence_raw_tf=evidence_tf == "sublinear+raw",
        )


def plant_attention(attention, token_factors, label_factors, token_bias, *, plant,
                    plant_keys, static_scores, generator):
    """Initialise label-wise attention: the one place that decides how attention starts.

    The attention always gets a random start first (drawn from ``generator``). With
    ``plant`` the queries (and with ``plant_keys`` the keys) are then set from the L2R
    factors; ``static_scores`` adds the frozen L2R score of each input word to the logits
    whether or not the attention was planted, so that ``plant=False`` is the same network
    with a random start only (the paper's control). The L2R factors may be None when
    neither option needs them.
    """
    attention.reset_random(generator)
    if plant:
        attention.plant(token_factors, label_factors, plant_keys=plant_keys)
    if static_scores:
        bias = torch.as_tensor(token_bias, dtype=torch.float32)
        if plant and plant_keys:
            # The planted path q.k already equals u.v at step 0, so the logits are u.v
            # (learnt) + u.v (static) + bias: doubling the bias makes them exactly twice the
            # L2R score, i.e. the L2R model's ranking.
            bias = 2.0 * bias
        attention.set_static_scores(token_factors, label_factors, bias)


def top_labels(scores, k):
    """The ``k`` best-scoring labels of each row of ``scores`` (n, L), ties at the k-th value
    going to the lowest label indices.

    ``torch.topk`` breaks ties one way on the CPU and another on CUDA, and ties at a shortlist's
    boundary are common (a label none of whose words is in the document scores its bias, and
    rare labels share biases: 28% of CodiEsp-D's dev documents tie at the 256th candidate).
    Which tied label gets attention changed a GPU-fitted CodiEsp-D model's float32
    probabilities by up to 0.08 between predicting on the GPU and on the CPU; a fixed rule
    makes them the same labels everywhere. Only rows with more labels at the k-th value than places pay for the rule.
    """
    top = torch.topk(scores, k, dim=1)
    kth = top.values[:, -1:]
    crowded = (scores >= kth).sum(dim=1) > k
    if not bool(crowded.any()):
        return top.indices
    rows = crowded.nonzero().squeeze(1)
    s, v = scores[rows], kth[rows]
    above, tied = s > v, s == v
    places_left = k - above.sum(dim=1, keepdim=True)
    take = above | (tied & (torch.cumsum(tied, dim=1) <= places_left))
    indices = top.indices.clone()
    indices[rows] = take.nonzero()[:, 1].view(rows.numel(), k)  # k per row, in label order
    return indices


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
        # A pretrained backbone embeds its token ids itself: no embedding table of ours.
        reads_ids = getattr(encoder, "reads_token_ids", False) or _is_pretrained_spec(encoder)
        self.embedding = None if reads_ids else nn.Embedding(n_tokens, embed_dim, padding_idx=0)
        self.encoder = build_encoder(encoder, embed_dim, hidden_size, dropout)
        self.dropout = nn.Dropout(dropout)
        self.attention = LabelAttention(
            n_tokens, n_labels, self.encoder.output_dim, key_dim, inattention_k=inattention_k
        )
        self.evidence = EvidenceHead(n_labels, raw_tf=evidence_raw_tf)
        # Candidate labels per document whose attention is computed (0: every label).
        self.shortlist_size = 0

    def encode(self, tokens):
        mask = tokens != 0
        if self.embedding is None:
            h = self.encoder(tokens, mask)
        else:
            h = self.encoder(self.dropout(self.embedding(tokens)), mask)
        return self.dropout(h), mask

    def _chunk_summary(self, chunk, h, mask, labels=None):
        """One chunk's share of every label's attention output, as three (n, L) tensors.

        With ``s`` the chunk's attention logits, ``m = max_t s``, ``e_t = exp(s_t - m)``:
        ``z = sum_t e_t`` and ``y = sum_t e_t (w_l . h_t)``. The label's output is the softmax
        average of ``w_l . h_t`` over all positions of all chunks, ``sum y / sum z`` once the
        chunks are brought to a common maximum: the exact attention over the whole document,
        while only one chunk's (n, L, T) tensors ever exist.
        """
        att = self.attention
        s = att.logits(chunk, h, mask, labels)  # (n, L, T), float32
        m = s.amax(dim=-1)
        e = torch.exp(s - m[..., None]) * mask[:, None, :]
        if labels is None:
            values = h.float() @ att.output_weight.float().t()  # (n, T, L): w_l . h_t
        else:
            values = torch.einsum("ntd,nkd->ntk", h.float(), att.output_weight.float()[labels])
        y = torch.einsum("nlt,ntl->nl", e, values)
        return m, e.sum(dim=-1), y

    @property
    def candidate_ranker(self):
        """What picks a shortlist's candidates: ``"head"`` (the evidence head's score),
        ``"static"`` (the L2R score of the document) or None (nothing can)."""
        if self.evidence.n_pairs:
            return "head"
        if self.attention.has_static_scores:
            return "static"
        return None

    def shortlist(self, tokens, size, targets=None):
        """Each document's candidate labels (n, K): its ``size`` best labels by cheap linear
        evidence, and in training its true labels (``targets``, (n, L) 0/1) besides.

        The evidence is the head's term when the network has a head, else the L2R model's
        score of the document (the mean static score ``u_t . v_l + b_t`` of its words).
        """
        L = self.attention.queries.shape[0]
        ranker = self.candidate_ranker
        with torch.no_grad():
            if ranker == "head":
                scores = self.evidence(tokens)
            elif ranker == "static":
                att = self.attention
                flat = tokens.reshape(tokens.shape[0], -1)
                known = (flat > _UNK_ID).float()
                mean_u = ((att.static_token_factors[flat] * known[..., None]).sum(1)
                          / known.sum(1, keepdim=True).clamp_min(1.0))
                scores = mean_u @ att.static_label_factors.t()
            else:
                raise ValueError("a label shortlist needs the evidence head or the static L2R "
                                 "scores to rank candidates; set shortlist=None.")
            extra = 0
            if targets is not None:
                scores = scores + 1e6 * targets  # true labels always among the candidates
                extra = int(targets.sum(dim=1).max().item()) if targets.numel() else 0
            return top_labels(scores, min(L, size + extra))

    def forward(self, tokens, *, return_attention=False, return_parts=False, with_evidence=True,
                candidates=None, targets=None):
        """Logits (n, L) of documents given as token ids (n, T) or chunks (n, C, T).

        ``return_parts=True`` returns the attention path's logits and the evidence
        head's unscaled term separately (their scaled sum is the usual output);
        ``return_attention=True`` returns ``(output, weights)``, the final attention
        weights of every chunk (None for an empty chunk).
        ``with_evidence=False`` leaves the head out (its term is zero): training
        beside a frozen head needs the attention path only.

        ``candidates`` (n, K) restricts the attention to those labels of each document (the
        others get their output bias, as for a document without words); without it, a network
        with ``shortlist_size`` picks them itself (:meth:`shortlist`; ``targets`` adds the true
        labels in training). Attention weights are then returned for the candidates only.

        In training, each chunk's attention is recomputed in the backward pass instead of
        being kept (gradient checkpointing): memory is bounded by the batch size and the
        chunk length, not by the number of chunks, since only three (n, L) tensors per
        chunk are kept.
        """
        if tokens.dim() == 2:
            tokens = tokens[:, None, :]
        n, C, T = tokens.shape
        att = self.attention
        L = att.queries.shape[0]
        # Encode every non-empty chunk of the batch in one call (chunks are read
        # independently); the attention below then streams over the chunks.
        flat = tokens.reshape(n * C, T)
        rows = (flat != 0).any(dim=1).nonzero().squeeze(1)
        states = None
        if rows.numel():
            h_rows, _ = self.encode(flat[rows])
            states = h_rows.new_zeros((n * C, T, h_rows.shape[-1]))
            states = states.index_copy(0, rows, h_rows).view(n, C, T, -1)
        recompute = torch.is_grad_enabled() and self.training and not return_attention
        if candidates is None and self.shortlist_size and self.shortlist_size < L:
            candidates = self.shortlist(tokens, self.shortlist_size, targets)
        width = L if candidates is None else candidates.shape[1]
        summaries, kept = [], []
        for c in range(C):
            chunk = tokens[:, c]
            mask = chunk != 0
            if not bool(mask.any()):
                kept.append(None)
                continue
            # States at padding get weight 0; zeroing them keeps a custom encoder's NaN/inf
            # there out of the output (0 * NaN = NaN).
            h = states[:, c].masked_fill(~mask[..., None], 0.0)
            mask = mask & (chunk != _UNK_ID)
            if recompute:
                summary = checkpoint(self._chunk_summary, chunk, h, mask, candidates,
                                     use_reentrant=False)
            else:
                summary = self._chunk_summary(chunk, h, mask, candidates)
            summaries.append(summary)
            if return_attention:
                s = att.logits(chunk, h, mask, candidates)
                kept.append((torch.exp(s - summary[0][..., None]) * mask[:, None, :], summary[0]))
        if summaries:
            m = torch.stack([sm[0] for sm in summaries])  # (chunks, n, L)
            top = m.amax(dim=0)
            scale = torch.exp(m - top)
            norm = (scale * torch.stack([sm[1] for sm in summaries])).sum(dim=0)
            total = (scale * torch.stack([sm[2] for sm in summaries])).sum(dim=0)
        else:  # every document of the batch is empty
            top = tokens.new_full((n, width), _MASKED, dtype=torch.float32)
            norm = total = tokens.new_zeros((n, width), dtype=torch.float32)
        # An empty document has norm 0 and output 0: its logits are the biases, i.e. the
        # label priors the biases were initialised to.
        bias = att.output_bias.float()
        if candidates is None:
            logits = total / norm.clamp_min(1e-20) + bias
        else:
            # Labels outside the shortlist get their bias alone, as for an empty document.
            logits = torch.scatter(bias.expand(n, L), 1, candidates,
                                   total / norm.clamp_min(1e-20) + bias[candidates])
        evidence = self.evidence(tokens) if with_evidence else torch.zeros_like(logits)
        if return_parts:
            out = (logits, evidence)
        else:
            out = logits + self.evidence.scale * evidence
        if return_attention:
            # Final normalised weights per chunk: e_c * exp(max_c - max) / norm.
            weights = []
            for w in kept:
                if w is None:
                    weights.append(None)
                    continue
                e, m_c = w
                weights.append(e * torch.exp(m_c - top)[..., None]
                               / norm.clamp_min(1e-20)[..., None])
            return out, weights
        return out

    def init_output_bias(self, prior):
        """Start every label's logit at its log prior odds."""
        p = torch.as_tensor(prior, dtype=torch.float32).clamp(1e-6, 1 - 1e-6)
        with torch.no_grad():
            self.attention.output_bias.copy_(torch.log(p) - torch.log1p(-p))

    def encoder_parameters(self):
        embedding = [] if self.embedding is None else list(self.embedding.parameters())
        return embedding + list(self.encoder.parameters())

    @property
    def vocab_size(self):
        return self.attention.key_embedding.num_embeddings
