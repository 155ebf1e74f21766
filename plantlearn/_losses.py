"""Ranking losses and metrics over padded lists (torch, no sklearn)."""

import torch
import torch.nn.functional as F

__all__ = ["lambdarank_loss", "ndcg_at_k", "gains_from_grades"]


def gains_from_grades(grades, kind="linear"):
    """Relevance gains of integer grades.

    ``"linear"`` uses the grade itself; ``"exponential"`` uses ``2**grade - 1``
    (the usual NDCG gain). With ~100 log-scale grades the exponential gain puts
    practically all of a list's weight on its single best word, which starves
    every other pair of gradient; the linear gain keeps the whole ranking in
    play, so it is the default.
    """
    grades = grades.to(torch.float64)
    if kind == "linear":
        gains = grades
    elif kind == "exponential":
        gains = torch.exp2(grades) - 1.0
    else:
        raise ValueError(f"unknown gain {kind!r}")
    # Scale each list to a maximum of 1: NDCG and |delta NDCG| are scale free,
    # and this keeps 2**100 out of float32.
    top = gains.amax(dim=1, keepdim=True).clamp_min(1e-300)
    return (gains / top).to(torch.float32)


def _discounts(scores, mask, k):
    """Rank discount 1/log2(rank + 2) of every item under the current scores, 0 past k."""
    n = scores.shape[1]
    masked = scores.detach().masked_fill(~mask, float("-inf"))
    order = torch.argsort(masked, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=scores.device).expand_as(order))
    disc = 1.0 / torch.log2(ranks.to(torch.float32) + 2.0)
    disc = disc.masked_fill((ranks >= k) | ~mask, 0.0)
    return disc


def _ideal_dcg(gains, mask, k):
    g = gains.masked_fill(~mask, 0.0)
    top = torch.sort(g, dim=1, descending=True).values[:, :k]
    pos = torch.arange(top.shape[1], device=gains.device, dtype=torch.float32)
    return (top / torch.log2(pos + 2.0)).sum(dim=1)


def ndcg_at_k(scores, gains, mask, k):
    """NDCG@k of each list; lists without any relevant item get NaN."""
    disc = _discounts(scores, mask, k)
    dcg = (gains.masked_fill(~mask, 0.0) * disc).sum(dim=1)
    idcg = _ideal_dcg(gains, mask, k)
    out = dcg / idcg
    return out.masked_fill(idcg <= 0, float("nan"))


def lambdarank_loss(scores, gains, mask, *, sigma=0.5, k=15):
    """LambdaRank: pairwise logistic loss weighted by |delta NDCG@k|.

    Parameters
    ----------
    scores : tensor (n_lists, list_size)
        Model scores.
    gains : tensor (n_lists, list_size)
        Relevance gains (0 for irrelevant items).
    mask : bool tensor (n_lists, list_size)
        False for padding.
    sigma : float
        Slope of the pairwise logistic.
    k : int
        NDCG truncation: a swap counts only when it moves an item into or out
        of the top k.

    Returns
    -------
    Scalar tensor: the mean over lists that contain a relevant item.
    """
    with torch.no_grad():
        disc = _discounts(scores, mask, k)
        idcg = _ideal_dcg(gains, mask, k)
        valid_list = idcg > 0
        inv_idcg = torch.where(valid_list, 1.0 / idcg.clamp_min(1e-12), torch.zeros_like(idcg))
        g = gains.masked_fill(~mask, 0.0)
        better = (g[:, :, None] > g[:, None, :]) & mask[:, :, None] & mask[:, None, :]
        weight = (
            (g[:, :, None] - g[:, None, :]).abs()
            * (disc[:, :, None] - disc[:, None, :]).abs()
            * inv_idcg[:, None, None]
        ) * better
    diff = scores[:, :, None] - scores[:, None, :]
    pair_loss = F.softplus(-sigma * diff) * weight
    n_lists = valid_list.sum().clamp_min(1)
    return pair_loss.sum() / n_lists
