"""The two Jacobi Forcing losses, per sequence (REFERENCE §4.6-4.8).

Both take logits already gathered at the positions they use (one row per pair) and a row index per pair, and return
one value per sequence of the batch, so that a batch's loss is exactly the mean of the losses of its rows run alone:

* AR loss of sequence b: mean cross-entropy over its AR pairs (0 when it has none);
* consistency loss of sequence b: mean over its kept positions of the cross-entropy from the student (noisy
  position) to the detached teacher (clean position), divided by its number of blocks T for ``"mean/T"`` (the
  reference) and 0 when no position is kept;
* base KL of sequence b (optional, not in the reference): mean over its AR pairs of KL(base ‖ model), the divergence
  of the trained model's next-token distribution from the frozen base model's at the same clean-stream position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class JacobiForcingLosses:
    """Per-sequence loss terms, each of shape (B,); ``total`` is the weighted sum that is trained."""

    ar: torch.Tensor
    consistency: torch.Tensor
    base_kl: torch.Tensor
    total: torch.Tensor


def mean_per_row(values: torch.Tensor, rows: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Mean of ``values`` grouped by ``rows`` (one entry per row of the batch, 0 for rows without values)."""
    sums = values.new_zeros(num_rows).index_add(0, rows, values)
    counts = torch.bincount(rows, minlength=num_rows).to(values.dtype)
    return sums / counts.clamp(min=1)


def ar_loss_per_row(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Mean next-token cross-entropy of each sequence over its AR pairs (§4.6); ``logits`` is (N, V)."""
    cross_entropy = F.cross_entropy(logits.float(), targets, reduction="none")
    return mean_per_row(cross_entropy, rows, num_rows)


def kl_to_reference_per_row(
    logits: torch.Tensor, reference_logits: torch.Tensor, rows: torch.Tensor, num_rows: int
) -> torch.Tensor:
    """Mean of ``KL(softmax(reference) ‖ softmax(logits))`` of each sequence over its positions; inputs are (N, V)."""
    reference_log_probs = F.log_softmax(reference_logits.detach().float(), dim=-1)
    log_probs = F.log_softmax(logits.float(), dim=-1)
    divergence = (reference_log_probs.exp() * (reference_log_probs - log_probs)).sum(dim=-1)
    return mean_per_row(divergence, rows, num_rows)


def consistency_cross_entropy(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, target: str = "soft", temperature: float = 1.0
) -> torch.Tensor:
    """Per-position cross-entropy from student to the detached teacher (§4.7), shape (N,).

    ``"soft"``: ``-Σ_v softmax(z_t/τ)_v · log_softmax(z_s/τ)_v · τ²`` (the reference). ``"hard"``: cross-entropy of
    the student to the teacher's argmax token (temperature unused).
    """
    teacher_logits = teacher_logits.detach().float()
    student_logits = student_logits.float()
    if target == "hard":
        return F.cross_entropy(student_logits, teacher_logits.argmax(dim=-1), reduction="none")
    teacher_probs = F.softmax(teacher_logits / temperature, dim=-1)
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    return -(teacher_probs * student_log_probs).sum(dim=-1) * temperature**2


def consistency_loss_per_row(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    rows: torch.Tensor,
    num_blocks: torch.Tensor,
    *,
    target: str = "soft",
    temperature: float = 1.0,
    normalization: str = "mean/T",
) -> torch.Tensor:
    """Consistency loss of each sequence: mean over its kept positions, divided by its T for ``"mean/T"``."""
    cross_entropy = consistency_cross_entropy(student_logits, teacher_logits, target=target, temperature=temperature)
    per_row = mean_per_row(cross_entropy, rows, len(num_blocks))
    if normalization == "mean/T":
        per_row = per_row / num_blocks.to(per_row.dtype)
    return per_row


def jacobi_forcing_losses(
    logits: torch.Tensor,
    *,
    ar_logit_rows: torch.Tensor,
    ar_targets: torch.Tensor,
    ar_row_index: torch.Tensor,
    student_rows: torch.Tensor,
    teacher_rows: torch.Tensor,
    consistency_row_index: torch.Tensor,
    num_blocks: torch.Tensor,
    ar_loss_weight: float = 10.0,
    consistency_loss_weight: float = 1.0,
    consistency_target: str = "soft",
    consistency_normalization: str = "mean/T",
    temperature: float = 1.0,
    reference_ar_logits: torch.Tensor | None = None,
    base_kl_weight: float = 0.0,
) -> JacobiForcingLosses:
    """The losses of a batch from gathered ``logits`` (N, V); ``*_rows`` index rows of ``logits``.

    ``reference_ar_logits`` are the frozen base model's logits of the AR pairs, one row per pair in the order of
    ``ar_logit_rows``; with them the base KL is computed and added with ``base_kl_weight`` (it is 0 without them).
    """
    num_rows = len(num_blocks)
    ar = ar_loss_per_row(logits[ar_logit_rows], ar_targets, ar_row_index, num_rows)
    consistency = consistency_loss_per_row(
        logits[student_rows],
        logits[teacher_rows],
        consistency_row_index,
        num_blocks,
        target=consistency_target,
        temperature=temperature,
        normalization=consistency_normalization,
    )
    total = ar_loss_weight * ar + consistency_loss_weight * consistency
    if reference_ar_logits is None:
        base_kl = torch.zeros_like(ar)
    else:
        base_kl = kl_to_reference_per_row(logits[ar_logit_rows], reference_ar_logits, ar_row_index, num_rows)
        total = total + base_kl_weight * base_kl
    return JacobiForcingLosses(ar=ar, consistency=consistency, base_kl=base_kl, total=total)
