"""Test helpers for Jacobi Forcing training: synthetic packed rows, a fast trainer factory, and an independent
re-statement of the reference losses (REFERENCE §4.5-4.7) computed from plain causal forwards, without any 4D mask.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset

from jacobi_forcing_hf import JacobiForcingConfig, JacobiForcingTrainer
from tiny_models import EOS_TOKEN_ID, PAD_TOKEN_ID, VOCAB_SIZE, build_tiny_model

BLOCK_SIZE = 4


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models train fastest on one thread: OpenMP synchronisation costs more than their operations, and much
    more on a machine whose cores are shared with other jobs. Test modules import this fixture (autouse applies
    where it is imported); the previous setting is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def packed_row(
    prompt_length: int,
    num_blocks: int,
    *,
    block_size: int = BLOCK_SIZE,
    seed: int = 0,
    eos_at: int | None = None,
) -> dict:
    """One packed row ``prompt ‖ K_0 ‖ L_0 ‖ …``: random clean blocks; each noisy block copies its clean block up
    to a random first divergence and is random after it. ``eos_at`` puts EOS at that offset of the last clean block
    (and continues with ordinary tokens after it, as a fixed point that ran past EOS does)."""
    rng = random.Random(seed)

    def tokens(count: int) -> list[int]:
        return [rng.randrange(3, VOCAB_SIZE) for _ in range(count)]

    ids = tokens(prompt_length)
    for block in range(num_blocks):
        clean = tokens(block_size)
        if eos_at is not None and block == num_blocks - 1:
            clean[eos_at] = EOS_TOKEN_ID
        first_divergence = rng.randrange(0, block_size + 1)
        noisy = clean[:first_divergence]
        for offset in range(first_divergence, block_size):
            token = rng.randrange(3, VOCAB_SIZE)
            noisy.append(token if token != clean[offset] else 3 + (token - 2) % (VOCAB_SIZE - 3))
        ids += noisy + clean
    return {"input_ids": ids, "prompt_length": prompt_length, "num_blocks": num_blocks}


def packed_rows(count: int, *, block_size: int = BLOCK_SIZE, seed: int = 0) -> list[dict]:
    """``count`` rows of varied prompt lengths (4-9) and block counts (1-3); every third row ends with an EOS."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        num_blocks = rng.randint(1, 3)
        eos_at = rng.randrange(block_size) if index % 3 == 2 else None
        rows.append(
            packed_row(rng.randint(4, 9), num_blocks, block_size=block_size, seed=seed * 1000 + index, eos_at=eos_at)
        )
    return rows


def sgd_rows() -> list[dict]:
    """Rows of different lengths (so a batch of two is padded) for the SGD comparisons."""
    return [packed_row(4, 1, seed=20), packed_row(9, 3, seed=21, eos_at=1), packed_row(6, 2, seed=22)] * 2


# SGD applies learning rate × gradient (no normalisation by the optimizer, no clipping): equal updates mean equal
# gradients, so runs that must compute the same loss can be compared through their weights.
SGD_SETTINGS = {"max_steps": 2, "optim": "sgd", "max_grad_norm": 0.0, "learning_rate": 0.01}


def fast_config(output_dir, **overrides) -> JacobiForcingConfig:
    """A JacobiForcingConfig for second-long CPU runs on tiny models."""
    settings = {
        "output_dir": str(output_dir),
        "block_size": BLOCK_SIZE,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "learning_rate": 3e-3,
        "warmup_steps": 0,
        "lr_scheduler_type": "constant",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "activation_checkpointing": False,
        "disable_tqdm": True,
        "train_sampling_strategy": "sequential",
        "dataloader_pin_memory": False,
        "seed": 0,
    }
    settings.update(overrides)
    return JacobiForcingConfig(**settings)


def make_trainer(output_dir, rows=None, model=None, kl_anchor=None, **config_overrides) -> JacobiForcingTrainer:
    """A trainer over ``rows`` (default: 8 synthetic rows) and a tiny Llama (default), in training mode."""
    rows = packed_rows(8) if rows is None else rows
    model = build_tiny_model("llama") if model is None else model
    return JacobiForcingTrainer(
        model.train(),
        args=fast_config(output_dir, **config_overrides),
        train_dataset=Dataset.from_list(rows),
        kl_anchor=kl_anchor,
    )


def updates_since(initial: dict[str, torch.Tensor], final: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value - initial[name] for name, value in final.items()}


def assert_same_updates(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    """Equal up to float noise; a wrong loss scale (e.g. a factor 2 over accumulation steps) is far outside."""
    assert first.keys() == second.keys()
    for name in first:
        scale = first[name].abs().max()
        assert scale > 0, name
        torch.testing.assert_close(first[name], second[name], rtol=1e-3, atol=1e-3 * float(scale), msg=name)


# ------------------------------------------------------------------------------------------ reference oracle
def split_row(row: dict, block_size: int) -> tuple[list[int], list[list[int]], list[list[int]]]:
    """(prompt, noisy blocks, clean blocks) of a packed row."""
    ids, prompt_length = list(row["input_ids"]), row["prompt_length"]
    num_blocks = (len(ids) - prompt_length) // (2 * block_size)
    prompt = ids[:prompt_length]
    noisy = [ids[prompt_length + 2 * j * block_size :][:block_size] for j in range(num_blocks)]
    clean = [ids[prompt_length + (2 * j + 1) * block_size :][:block_size] for j in range(num_blocks)]
    return prompt, noisy, clean


def flatten(blocks: list[list[int]]) -> list[int]:
    return [token for block in blocks for token in block]


def _causal_logits(model, tokens: list[int]) -> torch.Tensor:
    return model(torch.tensor([tokens])).logits[0].float()


def reference_row_losses(
    model,
    row: dict,
    *,
    block_size: int = BLOCK_SIZE,
    pad: int = PAD_TOKEN_ID,
    eos: int | None = EOS_TOKEN_ID,
    attention_context: str = "noisy",
    include_prompt_in_ar: bool = True,
    keep_last_offset: bool = True,
    consistency_target: str = "soft",
    consistency_normalization: str = "mean/T",
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(AR loss, consistency loss) of one row, restated from REFERENCE §4.5-4.7 with explicit loops.

    The clean stream is one ordinary causal forward over ``prompt ‖ L_0 ‖ … ‖ L_{T-1}``; a noisy block is an ordinary
    causal forward over its context (``prompt ‖ K_0 ‖ … ‖ K_j`` for the noisy context, ``prompt ‖ L_<j ‖ K_j`` for
    the clean one), so the oracle shares nothing with the collator's mask, positions or indices.
    """
    n = block_size
    prompt, noisy, clean = split_row(row, n)
    prompt_length, num_blocks = len(prompt), len(clean)
    if eos is not None and eos in clean[-1]:  # §4.5
        first_eos = clean[-1].index(eos)
        clean[-1] = clean[-1][: first_eos + 1] + [pad] * (n - first_eos - 1)

    def ignored(token: int) -> bool:
        return token == pad and pad != eos

    clean_sequence = prompt + flatten(clean)
    clean_logits = _causal_logits(model, clean_sequence)

    pairs = [(p, p + 1) for p in range(prompt_length - 1)] if include_prompt_in_ar else []
    for j in range(num_blocks):
        start = prompt_length + j * n  # L_j inside the clean sequence
        pairs.append((start - 1, start))  # bridge
        end = clean[j].index(eos) + 1 if eos is not None and eos in clean[j] else n
        pairs += [(start + x, start + x + 1) for x in range(end - 1)]
    ar_terms = [
        F.cross_entropy(clean_logits[a], torch.tensor(clean_sequence[b]))
        for a, b in pairs
        if not ignored(clean_sequence[b])
    ]
    ar = torch.stack(ar_terms).mean() if ar_terms else torch.tensor(0.0)

    consistency_terms = []
    for j in range(num_blocks):
        divergent = [t for t in range(n) if noisy[j][t] != clean[j][t]]
        if not divergent:
            continue
        if attention_context == "noisy":
            student_sequence = prompt + flatten(noisy[: j + 1])
        else:
            student_sequence = prompt + flatten(clean[:j]) + noisy[j]
        student_logits = _causal_logits(model, student_sequence)
        last_offset = n if keep_last_offset else n - 1
        for t in range(divergent[0], last_offset):
            if ignored(noisy[j][t]):
                continue
            student = student_logits[prompt_length + j * n + t]
            teacher = clean_logits[prompt_length + j * n + t]
            if consistency_target == "soft":
                term = -(F.softmax(teacher / temperature, -1) * F.log_softmax(student / temperature, -1)).sum()
                consistency_terms.append(term * temperature**2)
            else:
                consistency_terms.append(F.cross_entropy(student, teacher.argmax()))
    consistency = torch.stack(consistency_terms).mean() if consistency_terms else torch.tensor(0.0)
    if consistency_normalization == "mean/T":
        consistency = consistency / num_blocks
    return ar, consistency
