"""Losses of contrastive training: NT-Xent between two views, and relational distillation from the teacher."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """NT-Xent loss of paired, L2-normalised views.

    Parameters
    ----------
    z1, z2 : torch.Tensor [shape=(batch, d)]
        Row i of ``z1`` and of ``z2`` come from the same track.

    Returns
    -------
    torch.Tensor (scalar)
    """
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    sims = z @ z.T / temperature
    sims.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sims, targets)


def relational_loss(embeddings: tuple[torch.Tensor, ...], target: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """How far the batch's similarity structure is from the teacher's: for each track, KL divergence from the
    teacher's softmax over its cosine similarities to the other tracks to the student's (embedding space, not
    the projection head's), averaged over views. Tracks without a teacher target (NaN) take no part.

    Parameters
    ----------
    embeddings : tuple of torch.Tensor [shape=(batch, d)]
        Each view's embedding before L2 normalisation.
    target : torch.Tensor [shape=(batch, d_teacher)]
        L2-normalised teacher embeddings.
    """
    ok = ~torch.isnan(target).any(dim=1)
    if int(ok.sum()) < 3:
        return target.new_zeros(())
    t = target[ok]
    eye = torch.eye(len(t), dtype=torch.bool, device=t.device)
    teacher = F.softmax((t @ t.T / temperature).masked_fill(eye, float("-inf")), dim=1)
    losses = []
    for e in embeddings:
        z = F.normalize(e[ok], dim=1)
        student = F.log_softmax((z @ z.T / temperature).masked_fill(eye, float("-inf")), dim=1)
        losses.append((teacher * (torch.log(teacher.clamp_min(1e-12)) - student.masked_fill(eye, 0))).sum(dim=1).mean())
    return sum(losses) / len(losses)
