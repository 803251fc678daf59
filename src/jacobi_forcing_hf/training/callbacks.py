"""``TPFCallback``: measure Jacobi decoding's tokens per forward on held-out prompts while training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import TrainerCallback


class TPFCallback(TrainerCallback):
    """Every ``eval_steps`` optimizer steps, decode ``prompts`` with greedy Jacobi decoding and log ``tpf``.

    TPF (tokens per forward) is ``model.jacobi_stats.tpf`` of one batched ``generate(decoding="jacobi")`` call over
    all prompts: new tokens over model forwards, 1.00 for greedy decoding. It is the number Jacobi Forcing training
    exists to raise. The model is decoded in eval mode and switched back to training afterwards. A model not prepared
    with ``enable_jacobi`` reaches the decoding engine through ``custom_generate``, so its class is left alone.

    Args:
        trainer: the trainer whose ``log`` receives ``{"tpf": ...}``.
        prompts: token ids of the held-out prompts (any lengths; they are left padded into one batch).
        block_size: Jacobi block size n.
        max_new_tokens: new tokens per prompt.
        eval_steps: measure when ``global_step`` is a multiple of this (and at the end of training).
        pad_token_id: id used for left padding.
        draft_init: the engine's ``draft_init`` for this decoding (default: the engine's own); a model trained on
            ``"repeat_last"`` trajectories is measured with ``"repeat_last"``.
    """

    def __init__(
        self,
        trainer: Any,
        prompts: Sequence[Sequence[int]],
        *,
        block_size: int,
        max_new_tokens: int = 64,
        eval_steps: int = 100,
        pad_token_id: int = 0,
        draft_init: str | None = None,
    ):
        if not prompts:
            raise ValueError("TPFCallback needs at least one prompt")
        if eval_steps < 1 or block_size < 1 or max_new_tokens < 1:
            raise ValueError("eval_steps, block_size and max_new_tokens must be >= 1")
        self.trainer = trainer
        self.prompts = [list(prompt) for prompt in prompts]
        self.block_size = block_size
        self.max_new_tokens = max_new_tokens
        self.eval_steps = eval_steps
        self.pad_token_id = pad_token_id
        self.draft_init = draft_init
        self._last_measured_step: int | None = None

    def left_padded_batch(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompts as one left-padded batch: ``(input_ids, attention_mask)``."""
        from ..trajectories import left_pad

        return left_pad(self.prompts, self.pad_token_id, device=device)

    @torch.no_grad()
    def measure(self, model: torch.nn.Module) -> float:
        """Tokens per forward of greedy Jacobi decoding of the prompts by ``model`` (left in its previous mode)."""
        from ..generation.mixin import JacobiGenerationMixin, jacobi_generate

        jacobi_arguments = {"decoding": "jacobi", "block_size": self.block_size, "draft_init": self.draft_init}
        decoder = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wraps the decoder
        if not isinstance(decoder, JacobiGenerationMixin):  # not enable_jacobi'd: reach the engine directly
            jacobi_arguments["custom_generate"] = jacobi_generate
        was_training = model.training
        model.eval()
        try:
            input_ids, attention_mask = self.left_padded_batch(next(model.parameters()).device)
            model.generate(
                input_ids,
                attention_mask=attention_mask,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.pad_token_id,
                **jacobi_arguments,
            )
            return float(model.jacobi_stats.tpf)
        finally:
            model.train(was_training)

    def _measure_and_log(self, state) -> None:
        if self._last_measured_step == state.global_step:
            return
        self._last_measured_step = state.global_step
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        was_training = model.training
        model.eval()
        try:
            # logged in eval mode, so that SFTTrainer.log leaves the running training averages for the next log
            self.trainer.log({"tpf": self.measure(model)})
        finally:
            model.train(was_training)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.eval_steps == 0:
            should_log = control.should_log
            self._measure_and_log(state)
            # Trainer.log clears should_log, which would drop this step's regular loss log
            control.should_log = should_log

    def on_train_end(self, args, state, control, **kwargs):
        self._measure_and_log(state)
