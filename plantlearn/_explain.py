"""Explanations of PlantClassifier predictions: evidence words and an HTML report.

For every top label the trained label-wise attention says which positions of the
document the label read; the planted L2R model says which words it expected to
matter before any training (its static score ``u_t . v_l + b_t``); the evidence
head says which of the document's words its SVM weighed, and the label's logit
splits into the attention path's part and the head's. :func:`explain` returns all
of it per label, word occurrences located in the original text by character
offsets; :func:`explain_html` renders it as one self-contained page (inline CSS, no
scripts, no external resources). Probabilities are the calibrated ones of
``predict_proba``, and "predicted" is what ``predict`` decides.

The classifier is passed in duck-typed (this module never imports
``_classifier``), so the estimator shell stays the only sklearn-facing layer.
"""

import html
import numbers
from pathlib import Path

import numpy as np
import torch

from sklearn.utils.validation import check_is_fitted

from ._batches import collate
from ._tokenize import UNK_ID
from ._validation import check_texts, resolve_device

__all__ = ["explain", "explain_html"]

# Documents per forward pass. Attention comes back for every label, (n, L, T)
# per chunk, so batches stay small to bound memory when L is large.
_BATCH = 8
# Positions whose shade (sqrt of the weight relative to the label's largest)
# is below this are left unhighlighted: invisible anyway, and they would bloat
# the page. The square root keeps secondary evidence visible when one word
# takes most of the attention, while preserving the order of the weights.
_MIN_SHADE = 0.06


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def _label_value(classes, j):
    """A label as a plain Python value (str or int), JSON-friendly."""
    value = classes[j]
    return value.item() if isinstance(value, np.generic) else value


def _prior_source(clf):
    """(token factors, label factors, token bias) of the planted L2R model, or None.

    The static-score buffers of the attention hold exactly the L2R factors; a model fitted
    with ``static_scores=False`` has none, and then its fitted (or loaded) LTR step supplies
    them. A model with neither (no stage-1 factors at all) has no prior.
    """
    att = clf.net_.attention
    if att.has_static_scores:
        return (att.static_token_factors.detach().cpu().numpy(),
                att.static_label_factors.detach().cpu().numpy(),
                att.static_token_bias.detach().cpu().numpy())
    ltr = getattr(clf, "ltr_", None)
    if ltr is not None and hasattr(ltr, "token_factors_"):
        return ltr.token_factors_, ltr.label_factors_, ltr.token_bias_
    return None


def _head_words(head, tokens_row, labels, scale):
    """Per label, the document's words by their contribution to the head's weighted term."""
    out = [[] for _ in labels]
    if head.n_pairs == 0 or scale == 0:
        return out
    d, t, value = head.features(tokens_row[None])
    ptr = head.token_ptr.cpu().numpy()
    pair_label = head.pair_label.cpu().numpy()
    weight = head.weight.detach().cpu().numpy()
    n_vocab = head.idf.numel()
    want = {int(j): r for r, j in enumerate(labels)}
    for feature, v in zip(t.cpu().numpy(), value.cpu().numpy()):
        lo, hi = ptr[feature], ptr[feature + 1]
        for pair in range(lo, hi):
            r = want.get(int(pair_label[pair]))
            if r is not None:
                word = int(feature) % n_vocab  # raw-tf features sit one vocabulary higher
                out[r].append((word, float(scale * weight[pair] * v)))
    merged = []
    for pairs in out:
        total = {}
        for word, c in pairs:
            total[word] = total.get(word, 0.0) + c
        merged.append(sorted(total.items(), key=lambda kv: (-abs(kv[1]), kv[0])))
    return merged


def _analyse(clf, texts, top_labels):
    """Run the network with attention on every document.

    Returns one dict per document with the read token ids and their offsets, the
    ``top_labels`` most probable labels with their calibrated probabilities, decisions and
    logit parts, and per label the attention weight (and L2R prior score) of every read
    position and the head's words.
    """
    check_is_fitted(clf, "net_")
    texts = check_texts(texts, allow_empty_corpus=True)
    top_labels = min(_check_count(top_labels, "top_labels"), clf.classes_.size)
    n_chunks = clf.max_chunks if clf.stateful else 1
    limit = clf.max_length * n_chunks
    tok = clf.tokenizer_
    prior_src = _prior_source(clf)
    rule = clf.decision_rule_
    scale = float(clf.net_.evidence.scale) if clf.net_.evidence.n_pairs else 0.0

    docs = []
    for text in texts:
        ids, offsets = tok.encode_with_offsets(text)
        n_read = min(len(ids), limit)
        docs.append({
            "text": text,
            "ids": ids[:n_read].astype(np.int64),
            "offsets": [tuple(o) for o in offsets[:n_read]],
            "n_tokens": len(ids),
        })

    net = clf.net_
    device = resolve_device(clf.device)
    was_training = net.training
    net.to(device)
    net.eval()
    m = clf.max_length
    try:
        with torch.no_grad():
            for start in range(0, len(docs), _BATCH):
                batch = docs[start:start + _BATCH]
                # Exactly the chunking of encode_chunks: chunk c, position i is
                # token c * max_length + i of the document.
                chunked = [[d["ids"][s:s + m] for s in range(0, d["ids"].size, m)] for d in batch]
                tokens = collate(chunked, m).to(device)
                attention, evidence = net(tokens, return_parts=True)
                attention = attention.float().cpu().numpy().astype(np.float64)
                evidence = evidence.float().cpu().numpy().astype(np.float64) * scale
                logits = (attention + evidence).astype(np.float32)
                top = np.argsort(-logits, axis=1, kind="stable")[:, :top_labels]
                # The attention weights of the explained labels only (memory: top_labels
                # rows per document, whatever the number of labels).
                _, weights = net(tokens, return_attention=True,
                                 candidates=torch.as_tensor(top, device=device))
                for b, d in enumerate(batch):
                    labels = top[b]
                    w = np.zeros((labels.size, d["ids"].size), dtype=np.float64)
                    for c, wc in enumerate(weights):
                        lo = c * m
                        hi = min(lo + m, d["ids"].size)
                        if wc is None or hi <= lo:
                            continue
                        w[:, lo:hi] = wc[b][:, : hi - lo].float().cpu().numpy()
                    d["labels"] = labels
                    d["proba"] = rule.probabilities(logits[b][labels][None],
                                                    columns=labels[None])[0]
                    # As predict() decides, from the same logits.
                    d["predicted"] = rule.decide(logits[b:b + 1]).toarray()[0][labels] > 0
                    d["attention_part"] = attention[b][labels]
                    d["head_part"] = evidence[b][labels]
                    # Float rounding can leave a weight a hair outside [0, 1].
                    d["weights"] = np.clip(w, 0.0, 1.0)
                    d["head_words"] = _head_words(net.evidence, tokens[b].cpu(), labels, scale)
                    if prior_src is None:
                        d["priors"] = None
                    else:
                        u, v, bias = prior_src
                        d["priors"] = (v[labels] @ u[d["ids"]].T + bias[d["ids"]][None, :]
                                       ).astype(np.float64)
    finally:
        net.cpu()
        net.train(was_training)
    return docs


def _shares(attention_part, head_part):
    """The shares of a logit that come from the attention path and from the head (of the
    absolute sum of the two parts; 1 and 0 without a head)."""
    total = abs(attention_part) + abs(head_part)
    if total == 0:
        return 1.0, 0.0
    return abs(attention_part) / total, abs(head_part) / total


def _public(doc, classes, top_tokens, tok):
    """The explain() record of one analysed document."""
    out = []
    text = doc["text"]
    for r, j in enumerate(doc["labels"]):
        w = doc["weights"][r]
        order = np.argsort(-w, kind="stable")[:top_tokens]
        tokens = []
        for i in order:
            if w[i] <= 0.0:  # masked by inattention: the label never read it
                break
            s, e = doc["offsets"][i]
            tokens.append({
                "token": text[s:e],
                "weight": float(w[i]),
                "start": int(s),
                "end": int(e),
                "prior": None if doc["priors"] is None else float(doc["priors"][r, i]),
            })
        attention_share, head_share = _shares(doc["attention_part"][r], doc["head_part"][r])
        out.append({
            "label": _label_value(classes, j),
            "probability": float(doc["proba"][r]),
            "predicted": bool(doc["predicted"][r]),
            "attention_share": float(attention_share),
            "head_share": float(head_share),
            "tokens": tokens,
            "head_tokens": [{"token": tok.id_to_token(word), "contribution": c}
                            for word, c in doc["head_words"][r][:top_tokens]],
        })
    return out


def explain(clf, X, *, top_labels=5, top_tokens=10):
    """Evidence words of the most probable labels of each document.

    See :meth:`PlantClassifier.explain`, which calls this.
    """
    top_tokens = _check_count(top_tokens, "top_tokens")
    docs = _analyse(clf, X, top_labels)
    return [_public(d, clf.classes_, top_tokens, clf.tokenizer_) for d in docs]


# ----------------------------------------------------------------------------
# HTML report
# ----------------------------------------------------------------------------

_CSS = """
:root { --att: 234, 120, 0; --prior: 38, 99, 196; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1d1d1f; background: #f4f5f7; margin: 0; padding: 24px; }
header, section.doc { max-width: 1150px; margin: 0 auto 20px auto; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 17px; margin: 0 0 8px 0; }
h3 { font-size: 13px; margin: 0 0 6px 0; text-transform: uppercase; letter-spacing: .04em;
  color: #555; }
.meta { color: #555; font-size: 13px; }
.legend { font-size: 13px; color: #444; margin-top: 8px; }
.legend .swatch { display: inline-block; width: 48px; height: 12px; vertical-align: middle;
  background: linear-gradient(to right, rgba(var(--att), .08), rgba(var(--att), 1)); }
section.doc { background: #fff; border: 1px solid #dcdfe4; border-radius: 8px; padding: 16px 18px; }
.gold { font-size: 13px; color: #444; margin-bottom: 10px; }
.chip { display: inline-block; padding: 1px 8px; margin: 0 4px 4px 0; border-radius: 10px;
  background: #eef0f3; font-size: 12px; }
.tabs > input { position: absolute; opacity: 0; pointer-events: none; }
.tabs > label { display: inline-block; padding: 5px 12px; margin: 0 4px 0 0; cursor: pointer;
  border: 1px solid #cfd3da; border-bottom: none; border-radius: 6px 6px 0 0;
  background: #eef0f3; font-size: 13px; }
.tabs > label .p { color: #666; margin-left: 6px; font-variant-numeric: tabular-nums; }
.tabs > label.on { font-weight: 600; }
.tabs > label.hit::after { content: " \\2713"; color: #1a7f37; }
.tabs > input:checked + label { background: #fff; border-color: #8a93a3; }
.tabs > input:focus-visible + label { outline: 2px solid rgb(var(--prior)); }
.panel { display: none; border: 1px solid #8a93a3; border-radius: 0 6px 6px 6px; padding: 12px; }
.cols { display: flex; gap: 18px; align-items: flex-start; }
.text { flex: 1 1 62%; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 14px;
  line-height: 1.65; max-height: 560px; overflow-y: auto; }
.side { flex: 0 0 36%; }
.status { font-size: 13px; margin-bottom: 8px; color: #333; }
.status b.yes { color: #1a7f37; }
.status b.no { color: #8a4b00; }
mark { color: inherit; border-radius: 3px; padding: 0 1px; }
mark.top { outline: 1px solid rgba(var(--att), .9); }
.pr { border-bottom: 2px dotted rgb(var(--prior)); }
.unread { color: #9aa0a8; }
.note { font-size: 12px; color: #666; margin-top: 6px; }
table.cmp { width: 100%; border-collapse: collapse; font-size: 13px; }
table.cmp th { text-align: left; font-weight: 600; padding: 4px 6px; border-bottom: 1px solid #ccc; }
table.cmp td { padding: 3px 6px; vertical-align: top; border-bottom: 1px solid #f0f0f0; }
table.cmp td.rk { color: #999; width: 1.5em; text-align: right; }
table.cmp td .w { display: block; font-size: 11px; color: #666; font-variant-numeric: tabular-nums; }
.bar { display: block; height: 4px; margin-top: 2px; border-radius: 2px; }
.bar.a { background: rgb(var(--att)); }
.bar.b { background: rgb(var(--prior)); }
.both { font-weight: 600; }
.both::before { content: "\\25CF "; font-size: 9px; vertical-align: middle; color: #1a7f37; }
@media print { .panel { display: block !important; margin-bottom: 8px; } }
"""


def _tab_rules(n):
    """CSS showing the panel of the checked tab (radio buttons; no script)."""
    return "\n".join(
        f".tabs > input:nth-of-type({k}):checked ~ .panel:nth-of-type({k}) {{ display: block; }}"
        for k in range(1, n + 1)
    )


def _e(value):
    return html.escape(str(value), quote=True)


def _pct(w):
    """A weight as a percentage that stays readable when it is tiny."""
    if w >= 0.01:
        return f"{w:.1%}"
    if w >= 1e-4:
        return f"{w * 100:.2g}%"
    return "<0.01%"


def _word(tok, text, doc, i):
    """Normalised word at read position i (its surface text when unknown)."""
    t = int(doc["ids"][i])
    if t == UNK_ID:
        s, e = doc["offsets"][i]
        return text[s:e].lower()
    return tok.id_to_token(t)


def _word_table(doc, r, tok, top_tokens):
    """Side-by-side rankings for label row r: planted prior vs trained attention."""
    text = doc["text"]
    w = doc["weights"][r]
    # Trained attention: the weight of a word is the sum over its occurrences.
    att = {}
    for i in range(doc["ids"].size):
        if w[i] > 0.0:
            key = _word(tok, text, doc, i)
            total, count = att.get(key, (0.0, 0))
            att[key] = (total + w[i], count + 1)
    att_rank = sorted(att.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top_tokens]
    prior_rank = []
    if doc["priors"] is not None:
        seen = {}
        for i in range(doc["ids"].size):
            if int(doc["ids"][i]) == UNK_ID:
                continue  # one score for all unknown words: not evidence the L2R model learnt
            seen.setdefault(int(doc["ids"][i]), float(doc["priors"][r, i]))
        prior_rank = [(tok.id_to_token(t), s)
                      for t, s in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))[:top_tokens]]
    prior_words = {word for word, _ in prior_rank}
    att_words = {word for word, _ in att_rank}
    shared = prior_words & att_words
    return att_rank, prior_rank, shared, prior_words


def _render_text(doc, r, tok, prior_words):
    """The document with label row r's attention as highlight intensity."""
    text = doc["text"]
    w = doc["weights"][r]
    wmax = float(w.max()) if w.size else 0.0
    top = set(np.argsort(-w, kind="stable")[:3].tolist()) if wmax > 0 else set()
    parts, cursor = [], 0
    for i, (s, e) in enumerate(doc["offsets"]):
        if s < cursor or e <= s:
            continue  # overlapping or empty span (never for word tokens): leave unmarked
        share = float(np.sqrt(w[i] / wmax)) if wmax > 0 else 0.0
        in_prior = _word(tok, text, doc, i) in prior_words
        if share < _MIN_SHADE and not in_prior:
            continue
        parts.append(_e(text[cursor:s]))
        word = _e(text[s:e])
        if in_prior:
            word = f'<span class="pr">{word}</span>'
        if share >= _MIN_SHADE:
            title = f"attention {_pct(w[i])}"
            if doc["priors"] is not None:
                title += f" | L2R prior {doc['priors'][r, i]:.2f}"
            cls = ' class="top"' if i in top else ""
            word = (f'<mark{cls} style="background: rgba(var(--att), {0.08 + 0.82 * share:.2f})" '
                    f'title="{_e(title)}">{word}</mark>')
        parts.append(word)
        cursor = e
    # Text past the last position the model read (beyond max_length * max_chunks).
    read_end = doc["offsets"][-1][1] if doc["offsets"] and doc["n_tokens"] > doc["ids"].size else None
    if read_end is not None and read_end >= cursor:
        parts.append(_e(text[cursor:read_end]))
        parts.append(f'<span class="unread">{_e(text[read_end:])}</span>')
    else:
        parts.append(_e(text[cursor:]))
    return "".join(parts)


def _render_table(att_rank, prior_rank, shared, planted):
    rows = []
    pmax = max((abs(s) for _, s in prior_rank), default=0.0) or 1.0
    amax = max((v[0] for _, v in att_rank), default=0.0) or 1.0
    for k in range(max(len(att_rank), len(prior_rank))):
        cells = [f'<td class="rk">{k + 1}</td>']
        if planted:
            if k < len(prior_rank):
                word, score = prior_rank[k]
                cls = ' class="both"' if word in shared else ""
                width = max(0.0, score) / pmax * 100
                cells.append(f'<td><span{cls}>{_e(word)}</span><span class="w">score {score:.2f}'
                             f'</span><span class="bar b" style="width: {width:.0f}%"></span></td>')
            else:
                cells.append("<td></td>")
        if k < len(att_rank):
            word, (weight, count) = att_rank[k]
            cls = ' class="both"' if word in shared else ""
            times = f" &#215;{count}" if count > 1 else ""
            cells.append(f'<td><span{cls}>{_e(word)}</span><span class="w">{_e(_pct(weight))}{times}'
                         f'</span><span class="bar a" style="width: {weight / amax * 100:.0f}%">'
                         f'</span></td>')
        else:
            cells.append("<td></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = '<tr><th></th>' + ('<th>Planted L2R prior</th>' if planted else "") + \
        "<th>Trained attention</th></tr>"
    body = "".join(rows) or '<tr><td colspan="3">No word of this document is in the vocabulary.</td></tr>'
    return f'<table class="cmp"><thead>{head}</thead><tbody>{body}</tbody></table>'


def _render_head(head_words, tok, top_tokens):
    """The evidence head's words of one label: their signed contributions to its logit."""
    words = head_words[:top_tokens]
    if not words:
        return ""
    cmax = max(abs(c) for _, c in words) or 1.0
    rows = []
    for k, (word, c) in enumerate(words):
        bar = "a" if c >= 0 else "b"
        rows.append(f'<tr><td class="rk">{k + 1}</td><td>{_e(tok.id_to_token(word))}'
                    f'<span class="w">{c:+.3f}</span><span class="bar {bar}" '
                    f'style="width: {abs(c) / cmax * 100:.0f}%"></span></td></tr>')
    return ('<h3>Evidence head: weighted words</h3><table class="cmp"><tbody>'
            + "".join(rows) + "</tbody></table>")


def _render_doc(n, doc, clf, gold, doc_id, top_tokens):
    tok = clf.tokenizer_
    classes = clf.classes_
    thr = np.asarray(clf.decision_rule_.threshold_, dtype=np.float64)
    planted = doc["priors"] is not None
    known = {str(c) for c in classes.tolist()}
    gold_set = None if gold is None else {str(g) for g in gold}
    title = f"Document {n + 1}" + (f" &#8212; {_e(doc_id)}" if doc_id is not None else "")
    out = [f'<section class="doc" id="doc-{n}"><h2>{title}</h2>']
    read = doc["ids"].size
    info = f"{doc['n_tokens']} words"
    if read < doc["n_tokens"]:
        info += f", the model read the first {read}"
    out.append(f'<div class="meta">{info}</div>')
    if gold_set is not None:
        chips = "".join(
            f'<span class="chip">{_e(g)}</span>' if g in known else
            f'<span class="chip" title="not one of the model\'s labels">{_e(g)} (unknown)</span>'
            for g in sorted(gold_set)) or "none"
        out.append(f'<div class="gold">True labels: {chips}</div>')
    out.append('<div class="tabs">')
    name = f"doc{n}"
    for r, j in enumerate(doc["labels"]):
        label = _label_value(classes, j)
        cls = []
        if doc["predicted"][r]:
            cls.append("on")
        if gold_set is not None and str(label) in gold_set:
            cls.append("hit")
        checked = ' checked="checked"' if r == 0 else ""
        out.append(f'<input type="radio" name="{name}" id="{name}-{r}"{checked} />')
        cls_attr = f' class="{" ".join(cls)}"' if cls else ""
        out.append(f'<label for="{name}-{r}"{cls_attr}>{_e(label)}'
                   f'<span class="p">{doc["proba"][r]:.2f}</span></label>')
    for r, j in enumerate(doc["labels"]):
        label = _label_value(classes, j)
        t = float(thr[j]) if thr.ndim else float(thr)
        p = float(doc["proba"][r])
        verdict = ('<b class="yes">predicted</b>' if doc["predicted"][r]
                   else '<b class="no">not predicted</b>')
        if gold_set is not None:
            verdict += " &#183; " + ("a true label" if str(label) in gold_set else "not a true label")
        att_share, head_share = _shares(doc["attention_part"][r], doc["head_part"][r])
        att_rank, prior_rank, shared, prior_words = _word_table(doc, r, tok, top_tokens)
        out.append('<div class="panel">')
        out.append(f'<div class="status">Label <b>{_e(label)}</b>: probability {p:.3f} '
                   f'(threshold {t:.2f}), {verdict}</div>')
        if clf.net_.evidence.n_pairs:
            out.append(f'<div class="status">Score: {att_share:.0%} from the attention '
                       f'({doc["attention_part"][r]:+.2f}), {head_share:.0%} from the evidence '
                       f'head ({doc["head_part"][r]:+.2f})</div>')
        out.append('<div class="cols">')
        out.append(f'<div class="text">{_render_text(doc, r, tok, prior_words)}</div>')
        out.append('<div class="side">')
        if planted:
            out.append("<h3>Evidence words: prior vs trained attention</h3>")
        else:
            out.append("<h3>Evidence words of the attention</h3>")
        out.append(_render_table(att_rank, prior_rank, shared, planted))
        if planted:
            out.append(f'<div class="note">{len(shared)} of the top {top_tokens} words are in both '
                       f'lists (&#9679;). Prior: the L2R score u&#183;v + b of each word of the '
                       f'document before training; attention: the share of the label&#8217;s '
                       f'attention on the word, summed over its occurrences.</div>')
        else:
            out.append('<div class="note">This model has no stage-1 factors, so there is no '
                       'L2R prior to compare with.</div>')
        out.append(_render_head(doc["head_words"][r], tok, top_tokens))
        out.append("</div></div></div>")
    out.append("</div></section>")
    return "\n".join(out)


def explain_html(clf, X, *, top_labels=5, top_tokens=10, ids=None, labels=None,
                 title="plantlearn explanations"):
    """Render explanations as one self-contained HTML page.

    See :meth:`PlantClassifier.explain_html`. ``ids`` (one per document)
    titles the documents; ``labels`` (one list of true labels per document)
    marks which predicted labels are right.
    """
    top_tokens = _check_count(top_tokens, "top_tokens")
    docs = _analyse(clf, X, top_labels)
    for name, extra in (("ids", ids), ("labels", labels)):
        if extra is not None and len(extra) != len(docs):
            raise ValueError(f"{name} has {len(extra)} entries for {len(docs)} documents.")
    if labels is not None:
        _check_gold_labels(labels, clf.classes_)
    planted = _prior_source(clf) is not None
    n_top = min(top_labels, clf.classes_.size)
    model = "planted attention (PLANT)" if clf.plant else "attention from a random start"
    if clf.net_.evidence.n_pairs:
        model += f" + evidence head (weight {clf.evidence_scale_:g})"
    summary = (f"{len(docs)} document(s) &#183; {clf.classes_.size} labels &#183; {model} "
               f"&#183; top {n_top} labels per document &#183; calibrated probabilities, "
               f"predicted when at least the threshold")
    legend = ('<div class="legend"><span class="swatch"></span> attention weight of the selected '
              'label (shade grows with the square root of the weight; outlined: its 3 strongest '
              'positions; hover for values)')
    if planted:
        legend += (' &#183; <span class="pr">dotted underline</span>: among the words the '
                   'planted L2R prior ranks highest in this document')
    legend += " &#183; &#10003; on a tab: a true label</div>"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8" />',
        '<meta name="viewport" content="width=device-width, initial-scale=1" />',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}{_tab_rules(n_top)}\n</style></head><body>",
        f'<header><h1>{_e(title)}</h1><div class="meta">{summary}</div>{legend}</header>',
    ]
    for n, doc in enumerate(docs):
        parts.append(_render_doc(
            n, doc, clf, None if labels is None else labels[n],
            None if ids is None else ids[n], top_tokens,
        ))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _check_gold_labels(labels, classes):
    """True labels named in another way than the model's labels (names against column
    indices) would mark every right prediction wrong: refuse them instead."""
    known = {str(c) for c in np.asarray(classes).tolist()}
    given = {str(g) for doc_labels in labels for g in doc_labels}
    if given and not given & known:
        example = sorted(given)[:3]
        kind = ("column indices" if np.asarray(classes).dtype.kind in "iu" else "names")
        raise ValueError(
            f"none of the true labels given ({example} ...) is one of the model's labels, "
            f"which are {kind} such as {sorted(known)[:3]}. Fit with "
            f"PlantClassifier(classes=label_names) to carry names, or give the labels as the "
            f"model knows them.")


def write_html(page, path):
    """Write the page as UTF-8 to ``path``, whose folder must exist; return the Path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory.")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
