"""Levers of Jacobi Forcing on the embedded SmolLM2-135M-Instruct, in small bounded CPU runs.

Every lever trains a fresh copy of the embedded model on the same built-in stdlib prompts' trajectories (collected
once per block size, resumable) and measures greedy Jacobi TPF on held-out HumanEval prompts before and during
training (a TPF-vs-steps curve), plus the fraction of held-out greedy outputs left unchanged by training (Jacobi
decoding is lossless, so a changed output is a quality change of the model, not of the decoder).

    python benchmarks/e2e_levers.py --lever reference            # one lever (results are merged into the JSON)
    python benchmarks/e2e_levers.py --lever all --num-prompts 150  # every lever, one after the other

Writes docs/results/e2e_levers.{json,md} and docs/results/e2e_levers_tpf.png. Each lever is a separate run of a
few minutes; already measured levers are kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from common import RESULTS_DIR, humaneval_chat_inputs, line_plot, write_results

import jacobi_forcing_hf as jf
from jacobi_forcing_hf.training.callbacks import TPFCallback
from jacobi_forcing_hf.trajectories import left_pad


@dataclass(frozen=True)
class Lever:
    """One training configuration; every field not set here is the reference recipe."""

    name: str
    description: str
    block_size: int = 16
    strategy: str = "progressive"
    window_size: int | None = None  # None: block_size (the reference)
    num_variants: int = 1
    attention_context: str = "noisy"
    consistency_target: str = "soft"
    ar_loss_weight: float = 10.0
    base_kl_weight: float = 0.0  # KL anchor to the untrained model at the AR positions (not in the reference)
    learning_rate: float = 1e-4
    lora_rank: int | None = None  # None: full fine-tune; else LoRA on every linear layer (merged before decoding)
    include_prompt_in_ar: bool = True  # the reference trains the AR loss on the prompt's tokens too
    epochs: int = 1  # passes over each phase's rows
    curriculum: tuple[int, ...] = ()  # block sizes trained before block_size (progressive block size), equal shares
    recollect: bool = False  # half the rows from trajectories re-collected with the model trained on the other half
    repeat_last_drafts: bool = False  # drafts of collection and TPF decoding: the last token repeated (no seed)

    @property
    def draft_init(self) -> str | None:
        """The engine's ``draft_init`` for collection and TPF decoding (None: each one's default)."""
        return "repeat_last" if self.repeat_last_drafts else None

    def phases(self) -> list[tuple[int, str]]:
        """(block size, trajectory source) of each training phase, in order; the rows are split evenly.

        The source is ``"base"`` (the untrained model's trajectories) or ``"recollected"`` (collected anew by the
        model trained so far, the paper's progressive distillation).
        """
        if self.curriculum and self.recollect:
            raise ValueError(f"lever {self.name}: a curriculum and re-collection are not combined here")
        if self.recollect:
            return [(self.block_size, "base"), (self.block_size, "recollected")]
        return [(size, "base") for size in (*self.curriculum, self.block_size)]

    def training_summary(self) -> str:
        """How the rows are trained, for the table: phases and epochs."""
        phases = " → ".join(
            f"n{size}" + (" re-collected" if source == "recollected" else "") for size, source in self.phases()
        )
        return phases + (f", {self.epochs} epochs" if self.epochs > 1 else "")


LEVERS: dict[str, Lever] = {
    lever.name: lever
    for lever in (
        Lever("reference", "reference recipe: progressive schedule, window n, noisy context, soft targets"),
        Lever(
            "random_noise",
            "noise levels drawn uniformly over the whole range (random schedule, 2 noisy states per block)",
            strategy="random",
            num_variants=2,
        ),
        Lever(
            "random_clean_hard",
            "random_noise + clean attention context + hard (CLLM) targets + AR weight 1",
            strategy="random",
            num_variants=2,
            attention_context="clean",
            consistency_target="hard",
            ar_loss_weight=1.0,
        ),
        Lever("random_n8", "random_noise at block size 8", block_size=8, strategy="random", num_variants=2),
        Lever("random_n32", "random_noise at block size 32", block_size=32, strategy="random", num_variants=2),
        Lever(
            "random_ar1",
            "random_noise with AR weight 1 instead of 10 (the consistency loss counts 10x more)",
            strategy="random",
            num_variants=2,
            ar_loss_weight=1.0,
        ),
        Lever(
            "random_response_ar",
            "random_noise with the AR loss on the response only (the reference also trains it on the prompt text)",
            strategy="random",
            num_variants=2,
            include_prompt_in_ar=False,
        ),
        Lever(
            "random_lr3e-5",
            "random_noise at learning rate 3e-5",
            strategy="random",
            num_variants=2,
            learning_rate=3e-5,
        ),
        Lever(
            "random_lora",
            "random_noise with a rank-16 LoRA on every linear layer (lr 5e-4) instead of a full fine-tune",
            strategy="random",
            num_variants=2,
            learning_rate=5e-4,
            lora_rank=16,
        ),
        Lever(
            "random_ar1_3ep",
            "random_ar1 for 3 epochs over the same rows (3x the steps)",
            strategy="random",
            num_variants=2,
            ar_loss_weight=1.0,
            epochs=3,
        ),
        Lever(
            "random_ar1_memorize",
            "random_ar1 with 8 noisy states per block for 8 epochs: can the model learn to predict through noise "
            "on prompts it has seen many times? (run on a few prompts)",
            strategy="random",
            num_variants=8,
            ar_loss_weight=1.0,
            epochs=8,
        ),
        Lever(
            "random_ar1_memorize_repeat",
            "random_ar1_memorize on trajectories whose drafts start as the last token repeated, decoded the same "
            "way: the noise at iteration 0 has one form instead of a random sample of the context",
            strategy="random",
            num_variants=8,
            ar_loss_weight=1.0,
            epochs=8,
            repeat_last_drafts=True,
        ),
        Lever(
            "random_ar1_memorize_repeat_recollect",
            "random_ar1_memorize_repeat in two halves of 4 epochs each, the second on trajectories re-collected "
            "with the model trained so far (the paper's progressive distillation, on policy)",
            strategy="random",
            num_variants=8,
            ar_loss_weight=1.0,
            epochs=4,
            recollect=True,
            repeat_last_drafts=True,
        ),
        Lever(
            "random_ar1_kl",
            "random_ar1 plus a KL anchor to the untrained model at the AR positions (weight 10)",
            strategy="random",
            num_variants=2,
            ar_loss_weight=1.0,
            base_kl_weight=10.0,
        ),
        Lever(
            "random_ar1_curriculum",
            "random_ar1 with a progressive block size: the first half of the rows at n = 8, the second at n = 16",
            strategy="random",
            num_variants=2,
            ar_loss_weight=1.0,
            curriculum=(8,),
        ),
        Lever(
            "random_ar1_recollect",
            "random_ar1 on half the rows, then on the other half re-collected with the model trained so far",
            strategy="random",
            num_variants=2,
            ar_loss_weight=1.0,
            recollect=True,
        ),
    )
}


@torch.no_grad()
def jacobi_outputs(
    model, prompts, *, block_size: int, max_new_tokens: int, pad_token_id: int, draft_init: str | None = None
):
    """Greedy Jacobi decoding of all prompts in one batch: (TPF, new tokens of every row)."""
    model.eval()
    input_ids, mask = left_pad(prompts, pad_token_id)
    output = model.generate(
        input_ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad_token_id,
        decoding="jacobi",
        block_size=block_size,
        draft_init=draft_init,
    )
    rows = []
    for row in output[:, input_ids.shape[1] :].tolist():
        rows.append(row[: row.index(pad_token_id) + 1] if pad_token_id in row else row)
    return float(model.jacobi_stats.tpf), rows


def collect(
    model,
    tokenizer,
    args: argparse.Namespace,
    *,
    block_size: int,
    num_prompts: int,
    output_dir: Path,
    draft_init: str | None = None,
):
    """The model's greedy Jacobi trajectories on the first ``num_prompts`` stdlib prompts (resumable)."""
    return jf.collect_trajectories(
        model,
        tokenizer,
        "builtin:stdlib",
        block_size=block_size,
        max_new_tokens=args.max_new_tokens,
        batch_size=8,
        limit=num_prompts,
        output_dir=output_dir,
        draft_init=draft_init or "random_context",
    )


def training_arguments(lever: Lever, output_dir: Path, block_size: int) -> jf.JacobiForcingConfig:
    """The trainer settings of one phase of a lever (global batch 4, fp32, CPU)."""
    return jf.JacobiForcingConfig(
        output_dir=str(output_dir),
        block_size=block_size,
        attention_context=lever.attention_context,
        consistency_target=lever.consistency_target,
        ar_loss_weight=lever.ar_loss_weight,
        base_kl_weight=lever.base_kl_weight,
        include_prompt_in_ar=lever.include_prompt_in_ar,
        learning_rate=lever.learning_rate,
        num_train_epochs=lever.epochs,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=4,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=False,
    )


def run_lever(lever: Lever, args: argparse.Namespace, eval_prompts: list[list[int]]) -> dict:
    work = Path(args.work_dir)
    run_name = f"{lever.name}_p{args.num_prompts}"  # one lever trained on other prompt counts is another model
    phases = lever.phases()
    if lever.lora_rank is not None and len(phases) > 1:
        raise ValueError(f"lever {lever.name}: LoRA is only measured with one training phase")
    model, tokenizer = jf.load_default_model()
    pad = tokenizer.pad_token_id

    def held_out_outputs(decoder):
        return jacobi_outputs(
            decoder,
            eval_prompts,
            block_size=lever.block_size,
            max_new_tokens=args.eval_new_tokens,
            pad_token_id=pad,
            draft_init=lever.draft_init,
        )

    base_tpf, base_rows = held_out_outputs(model)
    started = time.perf_counter()
    base_trajectories = {  # collected before any training, by the untrained model
        size: collect(
            model,
            tokenizer,
            args,
            block_size=size,
            num_prompts=args.num_prompts,
            output_dir=work
            / f"trajectories_n{size}_p{args.num_prompts}{'_repeat' if lever.repeat_last_drafts else ''}",
            draft_init=lever.draft_init,
        )
        for size, source in phases
        if source == "base"
    }
    collect_seconds = time.perf_counter() - started
    rows_per_phase = args.train_rows // len(phases)
    total_steps = len(phases) * max(1, rows_per_phase // 4) * lever.epochs
    ratios, history, train_seconds, steps_done, rows_trained = [], [], 0.0, 0, 0
    for index, (size, source) in enumerate(phases):
        if source == "base":
            trajectories = base_trajectories[size]
        else:
            started = time.perf_counter()
            recollected = work / f"trajectories_{lever.name}_phase{index}"
            shutil.rmtree(recollected, ignore_errors=True)  # the model that collects is new in every run
            # enough prompts for the phase's rows (each prompt gives num_variants rows), and the first ones again
            num_prompts = min(args.num_prompts, -(-rows_per_phase // lever.num_variants))
            trajectories = collect(
                model.eval(),
                tokenizer,
                args,
                block_size=size,
                num_prompts=num_prompts,
                output_dir=recollected,
                draft_init=lever.draft_init,
            )
            collect_seconds += time.perf_counter() - started
        packed = jf.build_training_sequences(
            trajectories,
            block_size=size,
            window_size=lever.window_size or size,
            strategy=lever.strategy,
            num_variants=lever.num_variants,
        ).shuffle(seed=index)
        rows = packed.select(range(min(rows_per_phase, len(packed))))
        ratios += [ratio for row in rows["noisy_ratios"] for ratio in row]
        rows_trained += len(rows)
        peft_config = None
        if lever.lora_rank is not None:
            from peft import LoraConfig

            peft_config = LoraConfig(r=lever.lora_rank, lora_alpha=2 * lever.lora_rank, target_modules="all-linear")
        trainer = jf.JacobiForcingTrainer(
            model.train(),
            args=training_arguments(lever, work / f"train_{lever.name}", size),
            train_dataset=rows,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        trainer.add_callback(
            TPFCallback(
                trainer,
                eval_prompts,
                block_size=lever.block_size,  # always the block size the lever is measured at
                max_new_tokens=args.eval_new_tokens,
                eval_steps=max(1, total_steps // args.curve_points),
                pad_token_id=pad,
                draft_init=lever.draft_init,
            )
        )
        started = time.perf_counter()
        trainer.train()
        train_seconds += time.perf_counter() - started
        history += [
            {**entry, "step": entry["step"] + steps_done} for entry in trainer.state.log_history if "step" in entry
        ]
        steps_done += trainer.state.global_step
        model = trainer.model
    if lever.lora_rank is not None:
        model.save_pretrained(work / f"adapter_{run_name}")  # a candidate to ship (a few MB)
        model = model.merge_and_unload()
    if args.save_model:  # for a full evaluation: jacobi-forcing eval --model <work_dir>/model_<name>_p<prompts>
        model.save_pretrained(work / f"model_{run_name}")
        tokenizer.save_pretrained(work / f"model_{run_name}")
    tpf, trained_rows = held_out_outputs(model)
    return {
        "lever": asdict(lever),
        "training": lever.training_summary(),
        "train_prompts": args.num_prompts,
        "train_rows": rows_trained,
        "optimizer_steps": steps_done,
        "collect_seconds": round(collect_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "mean_noisy_ratio": round(sum(ratios) / len(ratios), 3),
        "max_noisy_ratio": round(max(ratios), 3),
        "tpf_before": round(base_tpf, 3),
        "tpf_after": round(tpf, 3),
        "unchanged_outputs": sum(a == b for a, b in zip(base_rows, trained_rows)) / len(base_rows),
        "tpf_curve": [[0, round(base_tpf, 3)]]
        + [[entry["step"], round(entry["tpf"], 3)] for entry in history if "tpf" in entry],
        "losses": [
            {key: entry[key] for key in ("step", "ar_loss", "consistency_loss", "base_kl") if key in entry}
            for entry in history
            if "ar_loss" in entry
        ],
    }


def noise_coverage(args: argparse.Namespace) -> None:
    """Noisy ratios that each n = 16 lever's packing picks from the already collected trajectories (no training)."""
    trajectories = jf.load_trajectories(Path(args.work_dir) / f"trajectories_n16_p{args.num_prompts}")
    rows, lines = (
        {},
        [
            "| lever | schedule | variants | blocks | mean noisy ratio | max | share > 0.5 |",
            "|---|---|---|---|---|---|---|",
        ],
    )
    for lever in LEVERS.values():
        if lever.block_size != 16 or (lever.strategy, lever.num_variants) in {
            (row["strategy"], row["variants"]) for row in rows.values()
        }:
            continue
        packed = jf.build_training_sequences(
            trajectories,
            block_size=16,
            window_size=lever.window_size or 16,
            strategy=lever.strategy,
            num_variants=lever.num_variants,
        )
        ratios = [ratio for row in packed["noisy_ratios"] for ratio in row]
        rows[lever.name] = {
            "strategy": lever.strategy,
            "variants": lever.num_variants,
            "blocks": len(ratios),
            "mean": round(sum(ratios) / len(ratios), 3),
            "max": round(max(ratios), 3),
            "share_above_half": round(sum(ratio > 0.5 for ratio in ratios) / len(ratios), 3),
        }
        row = rows[lever.name]
        lines.append(
            f"| {lever.name} | {row['strategy']} | {row['variants']} | {row['blocks']} | {row['mean']} | "
            f"{row['max']} | {row['share_above_half']} |"
        )
    mean_iterations = sum(trajectories["num_iterations"]) / len(trajectories)
    header = (
        f"# Noise coverage of the packed rows (embedded model, {args.num_prompts} stdlib prompts, "
        f"{args.max_new_tokens} new tokens, n = 16, window 16)\n\nThe base model needs {mean_iterations:.1f} "
        "Jacobi iterations per 16-token block on these prompts.\n\n"
    )
    write_results(
        "e2e_noise_coverage",
        {"mean_iterations_per_block": mean_iterations, "levers": rows},
        header + "\n".join(lines) + "\n",
    )


def markdown(results: dict, settings: dict) -> str:
    lines = [
        "# Jacobi Forcing levers on the embedded SmolLM2-135M-Instruct (CPU, small runs)",
        "",
        f"Training: {settings['num_prompts']} built-in stdlib prompts, {settings['max_new_tokens']} new tokens, "
        f"at most {settings['train_rows']} packed rows "
        "(global batch 4, fp32; 1 epoch and one phase unless the training column says otherwise). "
        f'TPF: greedy Jacobi decoding (`decoding="jacobi"`) of {settings["eval_prompts"]} held-out HumanEval '
        f"prompts, {settings['eval_new_tokens']} new tokens, one batch. 'unchanged' = fraction of those greedy "
        "outputs identical to the base model's.",
        "",
        "| lever | n | schedule | variants | mean / max noisy ratio | context | target | AR w | KL w | AR on | "
        "weights | lr | training | steps | TPF before | TPF after | unchanged | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results.values():
        lever = result["lever"]
        weights = "full" if lever.get("lora_rank") is None else f"LoRA r{lever['lora_rank']}"
        ar_on = "prompt + response" if lever.get("include_prompt_in_ar", True) else "response"
        lines.append(
            f"| {lever['name']} | {lever['block_size']} | {lever['strategy']} | {lever['num_variants']} | "
            f"{result.get('mean_noisy_ratio', '–')} / {result.get('max_noisy_ratio', '–')} | "
            f"{lever['attention_context']} | {lever['consistency_target']} | {lever['ar_loss_weight']:g} | "
            f"{lever.get('base_kl_weight', 0.0):g} | {ar_on} | "
            f"{weights} | {lever['learning_rate']:g} | {result.get('training', 'n' + str(lever['block_size']))} | "
            f"{result['optimizer_steps']} | {result['tpf_before']:.3f} | "
            f"{result['tpf_after']:.3f} | {result['unchanged_outputs']:.2f} | {result['train_seconds']:.0f} |"
        )
    lines += ["", *(f"* **{name}**: {result['lever']['description']}" for name, result in results.items()), ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    line_plot(
        {name: tuple(zip(*result["tpf_curve"])) for name, result in results.items()},
        path,
        xlabel="optimizer step",
        ylabel="greedy Jacobi TPF (held-out HumanEval)",
        title="TPF vs training steps, embedded SmolLM2-135M (CPU)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lever", nargs="+", default=["all"], choices=["all", *LEVERS], help="levers, in order")
    parser.add_argument(
        "--results-name", default="e2e_levers", help="docs/results/<name>.{json,md} and <name>_tpf.png to write"
    )
    parser.add_argument("--num-prompts", type=int, default=150)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--train-rows", type=int, default=300)
    parser.add_argument("--eval-prompts", type=int, default=12)
    parser.add_argument("--eval-new-tokens", type=int, default=64)
    parser.add_argument("--curve-points", type=int, default=3)
    parser.add_argument("--work-dir", default="runs/e2e_levers")
    parser.add_argument("--force", action="store_true", help="re-run levers already in the results")
    parser.add_argument(
        "--save-model",
        action="store_true",
        help="save each trained model to <work-dir>/model_<lever>_p<num-prompts>",
    )
    parser.add_argument(
        "--coverage-only", action="store_true", help="only report the noisy ratios each packing picks (no training)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)

    if args.coverage_only:
        noise_coverage(args)
        return
    results_path = RESULTS_DIR / f"{args.results_name}.json"
    settings = {key: getattr(args, key) for key in ("num_prompts", "max_new_tokens", "train_rows", "eval_prompts")}
    settings["eval_new_tokens"] = args.eval_new_tokens
    if results_path.exists() and json.loads(results_path.read_text())["settings"] != settings:
        parser.error(f"{results_path} holds levers measured with other settings: pick another --results-name")
    _, tokenizer = jf.load_default_model()
    eval_prompts = [inputs["input_ids"][0].tolist() for inputs in humaneval_chat_inputs(tokenizer, args.eval_prompts)]
    names = list(LEVERS) if "all" in args.lever else args.lever
    for name in names:
        # another process may have added levers meanwhile: always merge into what is on disk now
        results = json.loads(results_path.read_text())["levers"] if results_path.exists() else {}
        if name in results and not args.force:
            continue
        result = run_lever(LEVERS[name], args, eval_prompts)
        results = json.loads(results_path.read_text())["levers"] if results_path.exists() else {}
        results[name] = result
        write_results(args.results_name, {"settings": settings, "levers": results}, markdown(results, settings))
        plot(results, RESULTS_DIR / f"{args.results_name}_tpf.png")
        print(json.dumps({key: results[name][key] for key in ("tpf_before", "tpf_after", "unchanged_outputs")}))


if __name__ == "__main__":
    main()
