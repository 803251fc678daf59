"""A synthetic copy corpus on which Jacobi Forcing shows its effect in about a minute of CPU (tests and benchmarks).

A sample is ``L distinct letters`` + ``=`` + the same letters again, in the character tokenizer of
``tests/data/char_tokenizer.py``. Plain AR pretraining on copies of **varied** lengths (8-20 letters) can only
solve it with an induction-style copy: find the previous output letter in the prompt and emit the one after it. Such
a model predicts from its previous token, so greedy Jacobi decoding, whose draft tokens are wrong until they
converge, accepts about one token per forward. The Jacobi Forcing data are trajectories on copies of one length
(``COPY_LENGTH``), where output position i always copies the prompt letter at a fixed distance behind it: a
noise-robust positional copy exists there, and only the consistency loss (predict the fixed point from a noisy
draft) rewards finding it. Held-out copies of that length then converge in about two forwards per block.
"""

from __future__ import annotations

import copy
import random
import string
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, LlamaConfig

sys.path.insert(0, str(Path(__file__).parent / "data"))

from char_tokenizer import build_char_tokenizer

ALPHABET = string.ascii_letters  # 52 letters; a copy uses distinct ones, so induction is unambiguous
SEPARATOR = "="
COPY_LENGTH = 16  # the length of the Jacobi Forcing data and of the held-out copies
PRETRAIN_LENGTHS = (8, 20)  # AR pretraining lengths, inclusive: varied, so position alone does not solve it
BLOCK_SIZE = 8
PAD_TOKEN_ID, EOS_TOKEN_ID = 0, 1


def copy_prompt(rng: random.Random, length: int) -> str:
    """``length`` distinct random letters followed by the separator."""
    return "".join(rng.sample(ALPHABET, length)) + SEPARATOR


def copy_prompts(count: int, *, seed: int, length: int = COPY_LENGTH) -> list[str]:
    """``count`` prompts of one length; disjoint seeds give disjoint (train / held-out) sets in practice."""
    rng = random.Random(seed)
    return [copy_prompt(rng, length) for _ in range(count)]


def build_copy_model(seed: int = 0):
    """A small random Llama (2 layers, hidden 128) over the character tokenizer's vocabulary of 128."""
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=PAD_TOKEN_ID,
        eos_token_id=EOS_TOKEN_ID,
        bos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.generation_config.pad_token_id = PAD_TOKEN_ID
    model.generation_config.eos_token_id = EOS_TOKEN_ID
    return model


def pretraining_batch(tokenizer, rng: random.Random, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``prompt ‖ copy`` rows of varied lengths and their labels (-100 outside the copy)."""
    rows, starts = [], []
    for _ in range(batch_size):
        prompt = copy_prompt(rng, rng.randint(*PRETRAIN_LENGTHS))
        prompt_ids = tokenizer(prompt)["input_ids"]
        rows.append(prompt_ids + tokenizer(prompt[:-1])["input_ids"])
        starts.append(len(prompt_ids))
    width = max(map(len, rows))
    input_ids = torch.full((batch_size, width), PAD_TOKEN_ID)
    labels = torch.full((batch_size, width), -100)
    for row, (ids, start) in enumerate(zip(rows, starts)):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
    return input_ids, labels


def ar_pretrain(model, tokenizer, *, steps: int = 350, batch_size: int = 64, lr: float = 3e-3, seed: int = 0):
    """Plain causal-LM training on the copy corpus (varied lengths); returns the model in eval mode."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        input_ids, labels = pretraining_batch(tokenizer, rng, batch_size)
        logits = model(input_ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def jacobi_copy_score(model, tokenizer, prompts: list[str], *, block_size: int = BLOCK_SIZE) -> tuple[float, float]:
    """Greedy Jacobi decoding of ``prompts`` (one batch): (tokens per forward, fraction of exact copies)."""
    import jacobi_forcing_hf as jf

    model = jf.enable_jacobi(model).eval()
    input_ids = torch.tensor([tokenizer(prompt)["input_ids"] for prompt in prompts])
    length = len(prompts[0]) - 1
    output = model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=length,
        do_sample=False,
        pad_token_id=PAD_TOKEN_ID,
        decoding="jacobi",
        block_size=block_size,
    )
    copies = tokenizer.batch_decode(output[:, input_ids.shape[1] :])
    exact = sum(text == prompt[:-1] for text, prompt in zip(copies, prompts)) / len(prompts)
    return float(model.jacobi_stats.tpf), exact


def collect_and_pack(model, tokenizer, prompts: list[str]):
    """The model's own greedy Jacobi trajectories on ``prompts``, packed with noise over the whole range."""
    import datasets

    import jacobi_forcing_hf as jf

    trajectories = jf.collect_trajectories(
        model,
        tokenizer,
        datasets.Dataset.from_dict({"prompt": prompts}),
        block_size=BLOCK_SIZE,
        max_new_tokens=len(prompts[0]) - 1,
        batch_size=128,
        progress=False,
    )
    # noise levels drawn over the whole range: with 2 blocks per response, the progressive schedule would only ever
    # pick nearly converged states (target ratios 0 and 1/7) and leave the consistency loss almost nothing to learn
    return jf.build_training_sequences(
        trajectories, block_size=BLOCK_SIZE, window_size=BLOCK_SIZE, strategy="random", num_variants=2
    )


def jacobi_forcing(model, tokenizer, packed, output_dir, **overrides):
    """Post-train a copy of ``model`` on ``packed`` with Jacobi Forcing; returns the trained copy and the trainer."""
    import jacobi_forcing_hf as jf

    settings = {
        "output_dir": str(output_dir),
        "block_size": BLOCK_SIZE,
        "max_steps": 200,
        "per_device_train_batch_size": 16,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        # the prompts are random letters: their next-token loss is pure noise, so the AR term covers the copy only
        "include_prompt_in_ar": False,
        "ar_loss_weight": 1.0,
        "consistency_normalization": "mean",
        "logging_steps": 50,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        **overrides,
    }
    trained = copy.deepcopy(model).train()
    trainer = jf.JacobiForcingTrainer(
        trained, args=jf.JacobiForcingConfig(**settings), train_dataset=packed, processing_class=tokenizer
    )
    trainer.train()
    return trained.eval(), trainer


__all__ = [
    "BLOCK_SIZE",
    "COPY_LENGTH",
    "ar_pretrain",
    "build_char_tokenizer",
    "build_copy_model",
    "collect_and_pack",
    "copy_prompts",
    "jacobi_copy_score",
    "jacobi_forcing",
]
