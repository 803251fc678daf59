"""``JacobiForcingConfig``: TRL's ``SFTConfig`` plus the knobs of Jacobi Forcing training (REFERENCE §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from trl import SFTConfig

ATTENTION_CONTEXTS = ("noisy", "clean")
CONSISTENCY_NORMALIZATIONS = ("mean/T", "mean")
CONSISTENCY_TARGETS = ("soft", "hard")
# the fields whose value must be one of a fixed set (checked in JacobiForcingConfig.__post_init__)
CHOICE_FIELDS: dict[str, tuple[str, ...]] = {
    "attention_context": ATTENTION_CONTEXTS,
    "consistency_normalization": CONSISTENCY_NORMALIZATIONS,
    "consistency_target": CONSISTENCY_TARGETS,
}


def _bf16_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _choice_field(name: str, default: str, help_text: str) -> Any:
    """A dataclass field whose allowed values are ``CHOICE_FIELDS[name]`` (listed in the command-line help)."""
    return field(default=default, metadata={"help": help_text, "choices": list(CHOICE_FIELDS[name])})


@dataclass
class JacobiForcingConfig(SFTConfig):
    r"""
    Configuration of [`JacobiForcingTrainer`]: everything of [`~trl.SFTConfig`] plus the Jacobi Forcing fields.

    The defaults reproduce the reference recipe (REFERENCE §4.6-4.9): noisy-context mask, ``10·L_AR + L_PC`` with the
    consistency term divided by the number of blocks, soft targets, AR loss on the prompt too, AdamW at lr 1e-5 with
    a cosine schedule, 3% warm-up, one epoch and a global batch of 4 sequences (1 per device × 4 accumulation steps).

    Parameters:
        block_size (`int`):
            Block size ``n`` the training rows were packed with (required).
        attention_context (`str`, *optional*, defaults to `"noisy"`):
            What a noisy block sees besides the prompt and its own causal prefix: the earlier noisy blocks
            (`"noisy"`, the reference) or the earlier clean blocks (`"clean"`, CLLM-like).
        ar_loss_weight (`float`, *optional*, defaults to `10.0`):
            Weight of the AR (clean-stream next-token) loss.
        consistency_loss_weight (`float`, *optional*, defaults to `1.0`):
            Weight of the progressive consistency loss.
        consistency_normalization (`str`, *optional*, defaults to `"mean/T"`):
            Per sequence, the consistency term is the mean over kept positions divided by the number of blocks T
            (`"mean/T"`, the reference) or just the mean (`"mean"`).
        consistency_target (`str`, *optional*, defaults to `"soft"`):
            `"soft"`: cross-entropy to the detached teacher distribution (the reference); `"hard"`: cross-entropy to
            the teacher's argmax token (CLLM-style; equal to the clean token when the data are the model's greedy
            fixed points).
        include_prompt_in_ar (`bool`, *optional*, defaults to `True`):
            Include the prompt's next-token pairs in the AR loss (the reference does).
        keep_last_offset (`bool`, *optional*, defaults to `True`):
            Keep the last offset of every noisy block in the consistency loss (the reference does).
        distill_temperature (`float`, *optional*, defaults to `1.0`):
            Temperature of the soft consistency target (the loss is scaled by its square).
        base_kl_weight (`float`, *optional*, defaults to `0.0`):
            Weight of an anchor that is not in the reference: the KL divergence from the frozen base model's
            next-token distribution to the trained model's at the AR (clean-stream) positions. It holds the model's
            own greedy behaviour, and with it the quality, in place. A positive weight costs one extra forward
            without gradients per batch: with the adapters disabled for a PEFT model, else with a frozen copy of the
            weights taken when the trainer is built (one more copy of the parameters in memory).
        tpf_eval_steps (`int`, *optional*):
            Every this many optimizer steps, measure Jacobi tokens per forward on held-out prompts (taken from the
            eval dataset) and log it as `tpf`. `None` disables the measurement.
        tpf_num_prompts (`int`, *optional*, defaults to `4`):
            Number of eval-dataset prompts the TPF measurement decodes.
        tpf_max_new_tokens (`int`, *optional*, defaults to `64`):
            New tokens per prompt in the TPF measurement.
    """

    block_size: int | None = field(
        default=None,
        metadata={"help": "Block size n the training rows were packed with (required)."},
    )
    attention_context: str = _choice_field(
        "attention_context",
        "noisy",
        "What a noisy block sees besides the prompt and its causal prefix: earlier noisy blocks "
        "('noisy', reference) or earlier clean blocks ('clean', CLLM-like).",
    )
    ar_loss_weight: float = field(default=10.0, metadata={"help": "Weight of the AR loss (reference: 10)."})
    consistency_loss_weight: float = field(
        default=1.0, metadata={"help": "Weight of the progressive consistency loss (reference: 1)."}
    )
    consistency_normalization: str = _choice_field(
        "consistency_normalization",
        "mean/T",
        "Per sequence: mean over kept positions divided by the number of blocks T ('mean/T', reference) "
        "or the plain mean ('mean').",
    )
    consistency_target: str = _choice_field(
        "consistency_target",
        "soft",
        "'soft': cross-entropy to the detached teacher distribution (reference); 'hard': cross-entropy "
        "to the teacher's argmax token (CLLM-style).",
    )
    include_prompt_in_ar: bool = field(
        default=True, metadata={"help": "Train the AR loss on the prompt's next-token pairs too (reference: True)."}
    )
    keep_last_offset: bool = field(
        default=True,
        metadata={"help": "Keep the last offset of each noisy block in the consistency loss (reference: True)."},
    )
    distill_temperature: float = field(
        default=1.0, metadata={"help": "Temperature of the soft consistency target (reference: 1)."}
    )
    base_kl_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of KL(base || model) at the AR positions, an anchor to the frozen base model "
            "(not in the reference; 0 disables it and its extra forward)."
        },
    )
    tpf_eval_steps: int | None = field(
        default=None,
        metadata={
            "help": "Measure Jacobi tokens per forward on eval-dataset prompts every this many steps and log it as "
            "'tpf'. None disables it."
        },
    )
    tpf_num_prompts: int = field(default=4, metadata={"help": "Prompts decoded by the TPF measurement."})
    tpf_max_new_tokens: int = field(default=64, metadata={"help": "New tokens per prompt in the TPF measurement."})

    # SFTConfig / TrainingArguments fields whose defaults change: the reference recipe, and packed rows that must
    # reach the collator untouched (no truncation, no dataset preparation, no column removal).
    learning_rate: float = field(default=1e-5, metadata={"help": "Initial AdamW learning rate (reference: 1e-5)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule (reference: cosine)."})
    warmup_steps: float = field(
        default=0.03,
        metadata={"help": "Warm-up steps; a float in [0, 1) is a ratio of the total steps (reference: 0.03)."},
    )
    num_train_epochs: float = field(default=1.0, metadata={"help": "Training epochs (reference: 1)."})
    per_device_train_batch_size: int = field(
        default=1, metadata={"help": "Packed sequences per device and step (reference: 1)."}
    )
    gradient_accumulation_steps: int = field(
        default=4, metadata={"help": "Accumulation steps (1 × 4 = the reference's global batch of 4 sequences)."}
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Must stay None: packed rows are never truncated (a cut row loses its block layout)."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Must stay False: the collator needs the 'prompt_length' column."},
    )
    dataset_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "Must keep skip_prepare_dataset=True (the default): packed rows are already token ids."},
    )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "bf16 mixed precision. Defaults to True on a CUDA device that supports it, else False."},
    )

    def __post_init__(self) -> None:
        if self.bf16 is None:
            self.bf16 = not self.fp16 and _bf16_available()
        if self.dataset_kwargs is None:
            self.dataset_kwargs = {"skip_prepare_dataset": True}
        super().__post_init__()
        self._validate()

    def _validate(self) -> None:
        if self.block_size is None:
            raise ValueError("block_size is required: set it to the block size n the training rows were packed with")
        if int(self.block_size) != self.block_size or self.block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {self.block_size!r}")
        for name, allowed in CHOICE_FIELDS.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        for name in ("ar_loss_weight", "consistency_loss_weight", "base_kl_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.ar_loss_weight == 0 and self.consistency_loss_weight == 0:
            raise ValueError("ar_loss_weight and consistency_loss_weight are both 0: there is nothing to train")
        if not self.distill_temperature > 0:
            raise ValueError(f"distill_temperature must be > 0, got {self.distill_temperature}")
        if self.tpf_eval_steps is not None and self.tpf_eval_steps < 1:
            raise ValueError(f"tpf_eval_steps must be None or >= 1, got {self.tpf_eval_steps}")
        if self.tpf_num_prompts < 1 or self.tpf_max_new_tokens < 1:
            raise ValueError("tpf_num_prompts and tpf_max_new_tokens must be >= 1")
        self._refuse_sft_options()

    def _refuse_sft_options(self) -> None:
        """SFT options that would break the packed layout or the 4D mask, refused before any work starts."""
        for name in ("packing", "padding_free", "eval_packing"):
            if getattr(self, name):
                raise ValueError(
                    f"{name}=True is not supported by Jacobi Forcing training: each row already is one packed "
                    "prompt ‖ K_0 ‖ L_0 ‖ … sequence with its own 4D attention mask, which packing several rows "
                    "together or padding-free batching would break. Set it to False."
                )
        if self.max_length is not None:
            raise ValueError(
                f"max_length={self.max_length} is not supported: packed rows are never truncated (a cut row loses "
                "its block layout). Filter long rows when packing (build_training_sequences(max_length=...))."
            )
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns=True would drop the 'prompt_length' column; set it to False")
        dataset_kwargs = self.dataset_kwargs if isinstance(self.dataset_kwargs, dict) else {}
        if not dataset_kwargs.get("skip_prepare_dataset", False):
            raise ValueError(
                "dataset_kwargs must contain skip_prepare_dataset=True: packed rows are token ids that SFT's "
                "dataset preparation must not touch"
            )
        for name in ("assistant_only_loss", "completion_only_loss"):
            if getattr(self, name):
                raise ValueError(f"{name} is an SFT option that Jacobi Forcing training does not use; unset it")
        for name in ("eos_token", "pad_token", "chat_template_path"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name} is not supported: packed rows are token ids already, so special tokens and the chat "
                    "template are fixed when trajectories are collected; set them on the tokenizer there"
                )
        if self.label_smoothing_factor:
            raise ValueError("label_smoothing_factor is not supported (the reference trains without smoothing)")
