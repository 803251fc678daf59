"""``JacobiForcingTrainer``: TRL's ``SFTTrainer`` with the Jacobi Forcing loss (REFERENCE §4.6-4.8).

One forward pass per batch of packed rows under the noise-conditioned 4D mask. Vocabulary logits are computed only
at the positions the losses read: the model's own ``logits_to_keep`` argument takes a boolean (B, L) mask and
returns logits for those positions only, so the forward goes through the (DDP/FSDP/DeepSpeed/PEFT) wrapper as usual,
the model applies its own LM head (with any logit scaling or soft-capping it has), and no B×L×V tensor exists.

Loss of a batch (``JacobiForcingConfig`` defaults give the reference exactly at batch size 1)::

    loss_b = ar_loss_weight · AR_b + consistency_loss_weight · PC_b          (per sequence b)
    loss   = Σ_b loss_b / (number of sequences in the optimizer step)

``AR_b`` is the mean AR cross-entropy of sequence b and ``PC_b`` its mean consistency cross-entropy divided by its T
(``"mean/T"``). With ``base_kl_weight > 0`` the loss also adds ``base_kl_weight · KL_b``, the mean KL(base ‖ model)
at the AR positions, from one more forward without gradients through the frozen base weights.

Each sequence counts once, whatever its length: a global batch of 4 sequences on one device (1 × 4 accumulation steps)
trains exactly like the reference's 4 GPUs × 1 sequence, whose DDP average of per-sequence losses is the same mean. The
trainer counts the sequences of each optimizer step itself (``get_batch_samples``) and passes that count as
``num_items_in_batch``, so gradient accumulation and uneven last batches are exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from peft import PeftModel
from transformers import PreTrainedTokenizerBase
from trl import SFTTrainer

from ..data.collator import JacobiForcingDataCollator
from .config import JacobiForcingConfig
from .losses import JacobiForcingLosses, jacobi_forcing_losses

LOSS_INPUT_KEYS = (
    "num_blocks",
    "ar_logit_index",
    "ar_target_index",
    "ar_row_index",
    "consistency_student_index",
    "consistency_teacher_index",
    "consistency_row_index",
)


class JacobiForcingTrainer(SFTTrainer):
    """Post-train a causal LM with Jacobi Forcing on packed ``prompt ‖ K_0 ‖ L_0 ‖ …`` rows.

    Args:
        model: a model id/path or a ``PreTrainedModel`` (PEFT models and ``peft_config`` work as in ``SFTTrainer``).
        args: a [`JacobiForcingConfig`] (``block_size`` is required).
        data_collator: defaults to a [`JacobiForcingDataCollator`] built from ``args`` and the model's pad/EOS ids.
        train_dataset / eval_dataset: rows with ``input_ids`` and ``prompt_length`` (as written by
            ``build_training_sequences``); map-style datasets are checked row by row before training starts.
        processing_class: optional tokenizer, used for its pad/EOS ids and saved with checkpoints. Rows are already
            token ids, so it is not needed.
        kl_anchor: the model the ``base_kl_weight`` term holds the trained model near (same architecture and
            parameter names; its weights are copied once). Default: the model as it is before the first step, or,
            for a PEFT model, its base weights with the adapters disabled. Set it when training continues from an
            already trained checkpoint (rounds of re-collection) but should stay near the original model.

    Logs ``ar_loss`` and ``consistency_loss`` (per-sequence means, unweighted: ``loss = ar_loss_weight · ar_loss +
    consistency_loss_weight · consistency_loss``) next to ``loss``, ``base_kl`` when ``args.base_kl_weight`` is
    positive, and ``tpf`` when ``args.tpf_eval_steps`` is set.

    Example:
        >>> from jacobi_forcing_hf import JacobiForcingConfig, JacobiForcingTrainer  # doctest: +SKIP
        >>> args = JacobiForcingConfig(output_dir="out", block_size=16)  # doctest: +SKIP
        >>> trainer = JacobiForcingTrainer(model, args=args, train_dataset=rows)  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """

    _tag_names: ClassVar[list[str]] = ["trl", "jacobi-forcing"]
    _name = "Jacobi Forcing"
    # compute_loss divides by the number of sequences of the whole optimizer step (see get_batch_samples)
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        model: Any,
        args: JacobiForcingConfig | None = None,
        data_collator: Any | None = None,
        train_dataset: Any | None = None,
        eval_dataset: Any | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        callbacks: list[Any] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        optimizer_cls_and_kwargs: tuple[type, dict[str, Any]] | None = None,
        peft_config: Any | None = None,
        kl_anchor: torch.nn.Module | None = None,
    ):
        if not isinstance(args, JacobiForcingConfig):
            raise TypeError(
                f"args must be a JacobiForcingConfig (it carries block_size and the loss settings), got "
                f"{type(args).__name__}"
            )
        _check_attention_implementation(model)
        if data_collator is None:
            data_collator = _default_collator(model, args, processing_class)
        _check_collator_matches(data_collator, args)
        if isinstance(data_collator, JacobiForcingDataCollator):
            for name, dataset in _named_datasets(train_dataset, eval_dataset):
                if hasattr(dataset, "column_names") and hasattr(dataset, "__len__"):
                    data_collator.check_dataset(dataset, name=name)

        # SFTTrainer insists on a tokenizer; packed rows do not need one. A bare tokenizer object stands in during
        # construction and is dropped right after, so nothing is saved with checkpoints and no special-token
        # alignment runs against it.
        stand_in = processing_class is None
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=PreTrainedTokenizerBase() if stand_in else processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            peft_config=peft_config,
        )
        if stand_in:
            self.processing_class = None
            self.callback_handler.processing_class = None
            self._tokenizer = None
        if kl_anchor is not None and args.base_kl_weight == 0:
            raise ValueError("kl_anchor is set but base_kl_weight is 0: the anchor would never be used")
        self.base_parameters = self._frozen_base_parameters(kl_anchor) if args.base_kl_weight > 0 else None
        if args.tpf_eval_steps is not None:
            self.add_callback(self._tpf_callback(eval_dataset))

    def _frozen_base_parameters(self, kl_anchor: torch.nn.Module | None) -> dict[str, torch.Tensor] | None:
        """The weights of the KL anchor: a frozen copy of ``kl_anchor``'s parameters, or else of the model's before
        any training step, or ``None`` for a PEFT model, whose base weights (adapters disabled) are the anchor."""
        if isinstance(self.model, PeftModel):
            if kl_anchor is not None:
                raise ValueError("kl_anchor is not supported for a PEFT model: its base weights are the anchor")
            return None
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            raise ValueError(
                "base_kl_weight > 0 with DeepSpeed or FSDP needs a PEFT model (peft_config): sharded weights are not "
                "copied; train an adapter, whose base weights serve as the anchor"
            )
        trained = dict(self.model.named_parameters())
        if kl_anchor is None:
            return {name: parameter.detach().clone() for name, parameter in trained.items()}
        anchor = dict(kl_anchor.named_parameters())
        mismatched = sorted(
            name
            for name in trained.keys() | anchor.keys()
            if name not in trained or name not in anchor or trained[name].shape != anchor[name].shape
        )
        if mismatched:
            raise ValueError(f"kl_anchor does not match the trained model's parameters: {mismatched[:5]}")
        return {
            name: anchor[name].detach().to(device=parameter.device, dtype=parameter.dtype, copy=True)
            for name, parameter in trained.items()
        }

    # --------------------------------------------------------------------------------------------------- losses
    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """``Σ_b loss_b / num_items_in_batch`` (sequences of the optimizer step), or the batch mean without it.

        With ``return_outputs=True`` the outputs' ``logits`` hold only the gathered positions, shape (N, V).
        """
        outputs, losses = self.forward_losses(model, inputs)
        if num_items_in_batch is None:
            loss = losses.total.mean()
        else:
            loss = losses.total.sum() / num_items_in_batch
            if self.args.average_tokens_across_devices:
                # num_items_in_batch counts every process's sequences while DDP averages gradients over processes
                loss = loss * self.accelerator.num_processes
        self._record_loss_terms(losses, training=model.training)
        return (loss, outputs) if return_outputs else loss

    def forward_losses(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor]
    ) -> tuple[Any, JacobiForcingLosses]:
        """One forward over the batch and the per-sequence losses (vocabulary logits only where they are used)."""
        input_ids = inputs["input_ids"]
        keep = torch.zeros(input_ids.numel(), dtype=torch.bool, device=input_ids.device)
        for key in ("ar_logit_index", "consistency_student_index", "consistency_teacher_index"):
            keep[inputs[key]] = True
        compact = keep.long().cumsum(0) - 1  # flat (B·L) position -> row of the gathered logits
        forward_inputs = {
            "input_ids": input_ids,
            "attention_mask": inputs["attention_mask"],
            "position_ids": inputs["position_ids"],
            "logits_to_keep": keep.view_as(input_ids),
            "use_cache": False,
        }
        outputs = model(**forward_inputs)
        args = self.args
        reference_ar_logits = None
        if args.base_kl_weight > 0:
            reference_ar_logits = self._reference_ar_logits(model, forward_inputs, inputs)
        losses = jacobi_forcing_losses(
            outputs.logits,
            ar_logit_rows=compact[inputs["ar_logit_index"]],
            ar_targets=input_ids.flatten()[inputs["ar_target_index"]],
            ar_row_index=inputs["ar_row_index"],
            student_rows=compact[inputs["consistency_student_index"]],
            teacher_rows=compact[inputs["consistency_teacher_index"]],
            consistency_row_index=inputs["consistency_row_index"],
            num_blocks=inputs["num_blocks"],
            ar_loss_weight=args.ar_loss_weight,
            consistency_loss_weight=args.consistency_loss_weight,
            consistency_target=args.consistency_target,
            consistency_normalization=args.consistency_normalization,
            temperature=args.distill_temperature,
            reference_ar_logits=reference_ar_logits,
            base_kl_weight=args.base_kl_weight,
        )
        return outputs, losses

    @torch.no_grad()
    def _reference_ar_logits(
        self, model: torch.nn.Module, forward_inputs: dict[str, Any], inputs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The frozen base model's logits at the AR pairs' positions, in pair order: the model run with its saved base
        parameters swapped in (``torch.func.functional_call``), or with its adapters disabled for a PEFT model. Only
        those positions go through the LM head."""
        ar_positions = inputs["ar_logit_index"]
        keep = torch.zeros(inputs["input_ids"].numel(), dtype=torch.bool, device=ar_positions.device)
        keep[ar_positions] = True
        forward_inputs = {**forward_inputs, "logits_to_keep": keep.view_as(inputs["input_ids"])}
        unwrapped = self.accelerator.unwrap_model(model)
        if self.base_parameters is None:
            with unwrapped.disable_adapter():
                logits = unwrapped(**forward_inputs).logits
        else:
            logits = torch.func.functional_call(unwrapped, self.base_parameters, args=(), kwargs=forward_inputs).logits
        return logits[keep.long().cumsum(0)[ar_positions] - 1]

    def _record_loss_terms(self, losses: JacobiForcingLosses, training: bool) -> None:
        """Accumulate the per-sequence means of the loss terms over all processes; ``log`` averages them."""
        terms = {"ar_loss": losses.ar, "consistency_loss": losses.consistency}
        if self.args.base_kl_weight > 0:
            terms["base_kl"] = losses.base_kl
        sums = torch.stack([term.detach().sum() for term in terms.values()] + [losses.ar.new_tensor(len(losses.ar))])
        sums = self.accelerator.reduce(sums, reduction="sum")
        metrics = self._metrics["train" if training else "eval"]
        for index, name in enumerate(terms):
            metrics[name].append((sums[index] / sums[-1]).item())

    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        """Collect an optimizer step's micro-batches; ``num_items_in_batch`` = its number of sequences."""
        batch_samples, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        num_sequences = torch.tensor(sum(len(batch["input_ids"]) for batch in batch_samples), device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            num_sequences = self.accelerator.gather(num_sequences).sum()
        return batch_samples, num_sequences

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation: the Jacobi Forcing loss only (there are no per-token labels to return)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # ---------------------------------------------------------------------------------------------------- TPF
    def _tpf_callback(self, eval_dataset: Any):
        from .callbacks import TPFCallback

        if eval_dataset is None or isinstance(eval_dataset, dict):
            raise ValueError(
                "tpf_eval_steps needs a single eval_dataset of packed rows: the TPF measurement decodes the prompts "
                "of its first tpf_num_prompts rows"
            )
        rows = eval_dataset.select(range(min(self.args.tpf_num_prompts, len(eval_dataset))))
        prompts = [row["input_ids"][: row["prompt_length"]] for row in rows]
        return TPFCallback(
            self,
            prompts,
            block_size=self.args.block_size,
            max_new_tokens=self.args.tpf_max_new_tokens,
            eval_steps=self.args.tpf_eval_steps,
            pad_token_id=self.data_collator.pad_token_id,
        )

    # ---------------------------------------------------------------------------------------------------- Hub
    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
    ) -> None:
        """Write the Jacobi Forcing model card, a ``generation_config.json`` whose Jacobi decoding defaults use this
        run's ``block_size``, and the ``custom_generate/`` engine folder into ``output_dir``.

        ``push_to_hub`` calls it after saving the model and then uploads the folder in one commit, so the pushed
        repo runs with ``enable_jacobi`` or ``custom_generate=<repo>`` (see ``jacobi_forcing_hf.hub``). TRL also
        calls it before every checkpoint save, when ``output_dir`` may hold no model yet.
        """
        if not self.is_world_process_zero():
            return
        from ..hub import prepare_checkpoint_folder

        extra_tags = [tags] if isinstance(tags, str) else list(tags or [])
        prepare_checkpoint_folder(
            self.args.output_dir,
            self.hub_model_id or model_name or Path(self.args.output_dir).name,
            model=self.model,
            tokenizer=self.processing_class,
            training_config=self.args,
            datasets=[dataset_name] if dataset_name else (),
            tags=[*self._tag_names, *extra_tags],
            generation_defaults={"block_size": self.args.block_size},
        )


def _model_config(model: Any):
    if isinstance(model, str):
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model).get_text_config()
    return model.config.get_text_config()


def _first(*candidates: Any) -> Any:
    return next((candidate for candidate in candidates if candidate is not None), None)


def _default_collator(
    model: Any, args: JacobiForcingConfig, processing_class: PreTrainedTokenizerBase | None
) -> JacobiForcingDataCollator:
    """The collator for ``args``, with pad/EOS ids from the tokenizer if given, else from the model's configs."""
    config = _model_config(model)
    generation_config = getattr(model, "generation_config", None)
    tokenizer_pad = getattr(processing_class, "pad_token_id", None)
    tokenizer_eos = getattr(processing_class, "eos_token_id", None)
    eos_token_id = _first(tokenizer_eos, getattr(generation_config, "eos_token_id", None), config.eos_token_id)
    pad_token_id = _first(tokenizer_pad, config.pad_token_id, getattr(generation_config, "pad_token_id", None))
    if pad_token_id is None and eos_token_id is not None:
        pad_token_id = eos_token_id if isinstance(eos_token_id, int) else eos_token_id[0]
    if pad_token_id is None:
        raise ValueError(
            "no pad token id found: pass a tokenizer with a pad token as processing_class, set "
            "model.config.pad_token_id, or pass your own JacobiForcingDataCollator(pad_token_id=...)"
        )
    return JacobiForcingDataCollator(
        block_size=args.block_size,
        pad_token_id=pad_token_id,
        attention_context=args.attention_context,
        eos_token_id=eos_token_id,
        include_prompt_in_ar=args.include_prompt_in_ar,
        keep_last_offset=args.keep_last_offset,
        mask_dtype=torch.float32 if isinstance(model, str) else model.dtype,
    )


def _check_attention_implementation(model: Any) -> None:
    """The noise-conditioned mask is a dense 4D mask: flash attention ignores it, flex attention wants a BlockMask."""
    if isinstance(model, str):
        return
    implementation = getattr(model.config, "_attn_implementation", None) or ""
    if "flash" in implementation or "flex" in implementation:
        raise ValueError(
            f"attn_implementation={implementation!r} cannot apply the 4D noise-conditioned attention mask; load the "
            "model with attn_implementation='sdpa' (or 'eager')"
        )


def _check_collator_matches(collator: Any, args: JacobiForcingConfig) -> None:
    if not isinstance(collator, JacobiForcingDataCollator):
        return
    for name in ("block_size", "attention_context", "include_prompt_in_ar", "keep_last_offset"):
        if getattr(collator, name) != getattr(args, name):
            raise ValueError(
                f"the data collator has {name}={getattr(collator, name)!r} but the config has "
                f"{name}={getattr(args, name)!r}; make them agree (or pass no collator to build it from the config)"
            )


def _named_datasets(train_dataset: Any, eval_dataset: Any) -> list[tuple[str, Any]]:
    named = [("train", train_dataset)] if train_dataset is not None else []
    if isinstance(eval_dataset, dict):
        named += [(f"eval[{key}]", dataset) for key, dataset in eval_dataset.items()]
    elif eval_dataset is not None:
        named.append(("eval", eval_dataset))
    return named
