"""``jacobi-forcing pipeline`` end to end on a tiny model with tiny limits: every stage, its outputs and markers,
resuming across runs, and refusing a run folder made with other settings."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import datasets
import pytest
import torch
import yaml
from transformers import GenerationConfig

from jacobi_forcing_hf.cli import main
from jacobi_forcing_hf.evaluation.comparison import round_boundaries
from jacobi_forcing_hf.pipeline import EVALUATION_STAGES, STAGES, Pipeline, PipelineConfig
from tiny_models import build_tiny_model

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))

from char_tokenizer import build_char_tokenizer

PROMPTS = ["def add(a, b):", "hello there", "x = [1, 2, 3]", "class A:"]


@pytest.fixture(autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_setup(tmp_path):
    """A saved tiny Llama with a character tokenizer, a prompt file, and a pipeline YAML with tiny limits."""
    model_dir = tmp_path / "model"
    model = build_tiny_model("llama")
    model.config.max_position_embeddings = 4096  # HumanEval prompts are long in a one-token-per-character tokenizer
    model.save_pretrained(model_dir)
    build_char_tokenizer().save_pretrained(model_dir)
    prompts = tmp_path / "prompts.jsonl"
    datasets.Dataset.from_dict({"prompt": PROMPTS}).to_json(prompts)
    config = {
        "run_dir": str(tmp_path / "run"),
        "model": str(model_dir),
        "prompts": str(prompts),
        "num_prompts": 4,
        "block_size": 4,
        "max_new_tokens": 8,
        "collect_batch_size": 2,
        "window_size": 4,
        "train": {
            "max_steps": 2,
            "save_steps": 1,
            "save_total_limit": 2,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "use_cpu": True,
            "disable_tqdm": True,
        },
        "eval_limit": 2,
        "eval_max_new_tokens": 8,
        "bench_limit": 1,
        "diagnose_prompts": 2,
        "curve_prompts": 2,
        "curve_steps": 1,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, Path(config["run_dir"])


def test_pipeline_runs_every_stage_and_writes_its_outputs(tiny_setup, capsys):
    config_path, run_dir = tiny_setup
    assert main(["pipeline", "--config", str(config_path)]) == 0
    tag = "humaneval-2-8tok"
    for stage in STAGES:
        name = f"{stage}-{tag}" if stage in EVALUATION_STAGES else stage
        assert (run_dir / "stages" / f"{name}.json").is_file(), stage
    assert datasets.load_from_disk(str(run_dir / "trajectories")).num_rows == 4 * 2  # 4 prompts x 2 blocks of 4
    assert datasets.load_from_disk(str(run_dir / "packed")).num_rows == 4 * 2  # num_variants=2 by default
    trained = json.loads((run_dir / "stages" / "train.json").read_text())
    assert trained["steps"] == 2
    # the trained model is saved with its Jacobi knobs
    assert GenerationConfig.from_pretrained(run_dir / "train" / "final").block_size == 4
    agreement = json.loads((run_dir / "diagnose" / "agreement.json").read_text())
    assert set(agreement) == {"base", "trained"} and (run_dir / "diagnose" / "agreement.png").is_file()
    for name in ("base", "trained"):
        report = json.loads((run_dir / "eval" / f"{name}_eval-{tag}.json").read_text())
        assert {row["method"] for row in report["summary"]} == {"greedy", "jacobi", "jacobi_mr"}
        assert (run_dir / "eval" / f"{name}_bench-{tag}.md").is_file()
    # the TPF-vs-steps curve: the untrained model's point at step 0, then one point per optimizer step
    history = json.loads((run_dir / "train" / "log_history.json").read_text())
    assert [entry["step"] for entry in history if "tpf" in entry] == [0, 1, 2]
    assert (run_dir / "tpf_curve.png").is_file()
    # the report: both models, every method, the pass@1-vs-TPF figure
    rows = json.loads((run_dir / f"report-{tag}.json").read_text())
    assert {(row["model"], row["method"]) for row in rows} == {
        (model, method) for model in ("base", "trained") for method in ("greedy", "jacobi", "jacobi_mr")
    }
    assert all(row["speedup"] is not None for row in rows)  # every method was also benchmarked
    assert "| trained | jacobi_mr |" in (run_dir / f"report-{tag}.md").read_text()
    assert (run_dir / f"pass1_vs_tpf-{tag}.png").is_file()

    # a second run finds everything done and skips it
    assert main(["pipeline", "--config", str(config_path)]) == 0
    assert capsys.readouterr().out.count("done before, skipped") == len(STAGES)
    # another evaluation limit is allowed in the same run: only the evaluation stages run again
    assert main(["pipeline", "--config", str(config_path), "--limit", "1", "--stages", "eval_base"]) == 0
    assert (run_dir / "stages" / "eval_base-humaneval-1-8tok.json").is_file()


def test_an_interrupted_run_resumes_its_stages(tiny_setup):
    config_path, run_dir = tiny_setup
    config = PipelineConfig.from_yaml(config_path)
    logs: list[str] = []
    Pipeline(config, log=logs.append).run(["collect", "pack", "train"])
    # simulate a run killed after its first checkpoint: the marker and the final model are not written yet
    (run_dir / "stages" / "train.json").unlink()
    shutil.rmtree(run_dir / "train" / "checkpoint-2")
    logs.clear()
    Pipeline(config, log=logs.append).run(["collect", "pack", "train"])
    assert any("collect: done before, skipped" in line for line in logs)
    assert any("train: resuming from" in line and "checkpoint-1" in line for line in logs)
    assert json.loads((run_dir / "stages" / "train.json").read_text())["steps"] == 2


def test_draft_init_reaches_every_decoding_of_the_run(tiny_setup, monkeypatch):
    from jacobi_forcing_hf.training import callbacks

    curve_draft_inits = []

    class RecordingTPFCallback(callbacks.TPFCallback):
        def __init__(self, *args, **kwargs):
            curve_draft_inits.append(kwargs.get("draft_init"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(callbacks, "TPFCallback", RecordingTPFCallback)
    config_path, run_dir = tiny_setup
    config = PipelineConfig.from_yaml(config_path, draft_init="repeat_last")
    pipeline = Pipeline(config, log=lambda line: None)
    pipeline.run(["collect", "pack", "train"])
    manifest = json.loads((run_dir / "trajectories" / "manifest.json").read_text())
    assert manifest["decoding"]["draft_init"] == "repeat_last"
    assert curve_draft_inits == ["repeat_last"]
    assert GenerationConfig.from_pretrained(run_dir / "train" / "final").draft_init == "repeat_last"
    assert pipeline.base_model()[0].generation_config.draft_init == "repeat_last"  # the base model's evaluation
    with pytest.raises(ValueError, match="draft_init"):
        Pipeline(PipelineConfig.from_yaml(config_path), log=lambda line: None).run(["collect"])


def test_evaluation_with_onednn_kernels_is_named_apart_and_leaves_the_base_model_trainable(tiny_setup):
    from jacobi_forcing_hf.onednn import uses_onednn_linear

    config_path, run_dir = tiny_setup
    pipeline = Pipeline(PipelineConfig.from_yaml(config_path, eval_onednn_linear=True), log=lambda line: None)
    pipeline.run(["eval_base"])
    report = json.loads((run_dir / "eval" / "base_eval-humaneval-2-8tok-onednn.json").read_text())
    assert report["config"]["linear"] == "onednn"
    tokens = {(record["problem_id"], record["method"]): record["token_ids"] for record in report["records"]}
    assert len(tokens) == 2 * 3
    assert all(ids == tokens[(problem, "greedy")] for (problem, _), ids in tokens.items())
    assert not uses_onednn_linear(pipeline.base_model()[0])


def test_an_ngram_table_of_the_models_own_outputs_reaches_its_evaluation(tiny_setup):
    config_path, run_dir = tiny_setup
    pipeline = Pipeline(PipelineConfig.from_yaml(config_path, ngram_table_prompts=3), log=lambda line: None)
    pipeline.run(["eval_base"])
    corpus = (run_dir / "ngram" / "base" / "corpus" / "outputs.jsonl").read_text().splitlines()
    assert len(corpus) == 3  # the base model's greedy outputs on the first 3 training prompts
    report = json.loads((run_dir / "eval" / "base_eval-humaneval-2-8tok-table3.json").read_text())
    assert report["config"]["jacobi_knobs"]["ngram_table"] == str(run_dir / "ngram" / "base" / "ngram_table.json")
    tokens = {(record["problem_id"], record["method"]): record["token_ids"] for record in report["records"]}
    assert all(ids == tokens[(problem, "greedy")] for (problem, _), ids in tokens.items())
    with pytest.raises(ValueError, match="ngram_table_prompts"):
        PipelineConfig.from_yaml(config_path, ngram_table_prompts=-1)


def _parameters(model) -> dict[str, torch.Tensor]:
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def _same_parameters(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def test_rounds_collect_with_the_previous_rounds_model_and_train_it_further(tiny_setup, monkeypatch):
    """Round 2 decodes with round 1's trained model, trains that model (not the base) further, and anchors its KL
    term to the original model; the curve continues the step count; the evaluation uses the last round's model."""
    from jacobi_forcing_hf.training import trainer as trainer_module
    from jacobi_forcing_hf.trajectories import model_weights_fingerprint

    trainers = []

    class RecordingTrainer(trainer_module.JacobiForcingTrainer):
        def __init__(self, model, **kwargs):
            super().__init__(model, **kwargs)
            trainers.append((_parameters(model), self))

    monkeypatch.setattr(trainer_module, "JacobiForcingTrainer", RecordingTrainer)
    config_path, run_dir = tiny_setup
    config = PipelineConfig.from_yaml(config_path, rounds=2)
    config.train["base_kl_weight"] = 1.0
    pipeline = Pipeline(config, log=lambda line: None)
    summaries = pipeline.run(["collect", "pack", "train"])

    assert list(summaries) == ["collect", "pack", "train", "collect-round2", "pack-round2", "train-round2"]
    base = _parameters(pipeline.base_model()[0])
    round1 = _parameters(pipeline.round_model(1)[0])
    assert not _same_parameters(base, round1)
    collected_with = [
        json.loads((folder / "trajectories" / "manifest.json").read_text())["model_weights_sha256"]
        for folder in (run_dir, run_dir / "round2")
    ]
    assert collected_with == [
        model_weights_fingerprint(pipeline.base_model()[0]),
        model_weights_fingerprint(pipeline.round_model(1)[0]),
    ]
    (start1, trainer1), (start2, trainer2) = trainers
    assert _same_parameters(start1, base) and _same_parameters(start2, round1)
    assert _same_parameters(trainer1.base_parameters, base) and _same_parameters(trainer2.base_parameters, base)
    assert datasets.load_from_disk(str(run_dir / "round2" / "trajectories")).num_rows == 4 * 2
    assert _same_parameters(_parameters(pipeline.trained_model()[0]), _parameters(trainer2.model))
    # the TPF curve: step 0, round 1's steps 1-2, then round 2's steps counted on from there
    curve = [(entry["step"], entry["round"]) for entry in pipeline.training_history() if "tpf" in entry]
    assert curve == [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2)]
    assert round_boundaries(pipeline.training_history()) == [(2, 2)]  # the dashed line of tpf_curve.png


def test_a_finished_run_extended_by_a_round_trains_on_top_and_evaluates_the_new_model(tiny_setup, capsys):
    """--rounds 2 on a finished one-round run: round 2 trains round 1's model further; the trained-model stages run
    again with round 2's model, their round-1 outputs set aside in after_round1/; rounds may not shrink."""
    config_path, run_dir = tiny_setup
    tag = "humaneval-2-8tok"
    assert main(["pipeline", "--config", str(config_path), "--stages", "collect", "pack", "train", "eval_trained"]) == 0
    first_eval = (run_dir / "eval" / f"trained_eval-{tag}.json").read_text()
    capsys.readouterr()

    stages = ["collect", "pack", "train", "eval_trained"]
    assert main(["pipeline", "--config", str(config_path), "--rounds", "2", "--stages", *stages]) == 0
    out = capsys.readouterr().out
    assert "extending the run from 1 to 2 rounds" in out
    assert out.count("done before, skipped") == 3  # round 1's collect, pack and train
    assert "[pipeline] eval_trained: running" in out
    archive = run_dir / "after_round1"
    assert (archive / "eval" / f"trained_eval-{tag}.json").read_text() == first_eval
    assert (archive / "stages" / f"eval_trained-{tag}.json").is_file()
    assert yaml.safe_load((run_dir / "pipeline.yaml").read_text())["rounds"] == 2
    assert (run_dir / "stages" / "train-round2.json").is_file()
    # evaluated afresh: the results file of round 1's model was moved, not resumed
    assert (archive / "eval" / f"trained_eval-{tag}.jsonl").is_file()
    assert (run_dir / "eval" / f"trained_eval-{tag}.jsonl").is_file()

    with pytest.raises(ValueError, match=r"rounds can grow .* but not shrink to 1"):
        Pipeline(PipelineConfig.from_yaml(config_path), log=lambda line: None).run(["collect"])


def test_fresh_round_prompts_take_the_next_slice_and_must_exist(tiny_setup):
    config_path, run_dir = tiny_setup
    config = PipelineConfig.from_yaml(config_path, rounds=2, round_prompts="fresh", num_prompts=2)
    Pipeline(config, log=lambda line: None).run(["collect", "pack", "train"])
    manifests = [
        json.loads((folder / "trajectories" / "manifest.json").read_text()) for folder in (run_dir, run_dir / "round2")
    ]
    assert manifests[0]["prompt_set_fingerprint"] != manifests[1]["prompt_set_fingerprint"]
    round2 = datasets.load_from_disk(str(run_dir / "round2" / "trajectories"))
    assert sorted(set(round2["prompt_id"])) == [0, 1]  # ids within the round's slice: prompts 2 and 3
    too_many = PipelineConfig.from_yaml(config_path, rounds=3, round_prompts="fresh", num_prompts=2)
    too_many.run_dir = str(run_dir.parent / "other")
    with pytest.raises(ValueError, match="needs rounds x num_prompts = 6 prompts"):
        Pipeline(too_many, log=lambda line: None).run()
    assert not (run_dir.parent / "other" / "trajectories").exists()


def test_a_later_round_needs_the_stages_before_it(tiny_setup):
    config_path, _ = tiny_setup
    pipeline = Pipeline(PipelineConfig.from_yaml(config_path, rounds=2), log=lambda line: None)
    with pytest.raises(RuntimeError, match="needs train first"):
        pipeline.run(["collect"])  # round 2's collection decodes with round 1's model
    assert pipeline.is_done("collect") and not pipeline.is_done("collect", 2)


def test_a_run_folder_with_other_settings_is_refused(tiny_setup):
    config_path, _ = tiny_setup
    Pipeline(PipelineConfig.from_yaml(config_path), log=lambda line: None).run(["collect"])
    changed = PipelineConfig.from_yaml(config_path, num_prompts=3)
    with pytest.raises(ValueError, match="num_prompts"):
        Pipeline(changed).run(["collect"])


def test_a_run_started_before_a_setting_existed_still_resumes(tiny_setup):
    """pipeline.yaml of an older package version lacks newer settings: at their defaults they are no difference."""
    config_path, run_dir = tiny_setup
    config = PipelineConfig.from_yaml(config_path)
    Pipeline(config, log=lambda line: None).run(["collect"])
    saved = yaml.safe_load((run_dir / "pipeline.yaml").read_text())
    saved.pop("num_variants")  # as if the setting had not existed then (its default: 2, this run's value)
    (run_dir / "pipeline.yaml").write_text(yaml.safe_dump(saved))
    logs: list[str] = []
    Pipeline(config, log=logs.append).run(["collect"])
    assert any("collect: done before, skipped" in line for line in logs)


def test_the_report_needs_the_evaluations(tiny_setup):
    config_path, _ = tiny_setup
    with pytest.raises(RuntimeError, match="eval_base"):
        Pipeline(PipelineConfig.from_yaml(config_path), log=lambda line: None).run(["report"])


def test_bad_settings_are_refused_before_any_work(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "r"), "blok_size": 4}))
    with pytest.raises(ValueError, match="blok_size"):
        PipelineConfig.from_yaml(path)
    with pytest.raises(ValueError, match=r"train\.block_size"):
        PipelineConfig(train={"block_size": 8})
    with pytest.raises(ValueError, match="draft_init must be None or one of"):
        PipelineConfig(draft_init="lookup")
    with pytest.raises(ValueError, match="rounds must be an integer >= 1"):
        PipelineConfig(rounds=0)
    with pytest.raises(ValueError, match="round_prompts must be one of"):
        PipelineConfig(round_prompts="new")
    with pytest.raises(ValueError, match="unknown stages"):
        Pipeline(PipelineConfig(run_dir=str(tmp_path / "r"))).run(["evaluate"])
    assert not (tmp_path / "r").exists()


PIPELINE_CONFIGS = sorted((Path(__file__).parents[2] / "examples" / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPELINE_CONFIGS, ids=lambda path: path.name)
def test_the_shipped_configs_are_valid(path, tmp_path):
    """Every examples/pipelines config parses, and its train settings make a valid JacobiForcingConfig."""
    from jacobi_forcing_hf import JacobiForcingConfig

    config = PipelineConfig.from_yaml(path)
    assert config.model == "embedded" and config.strategy == "random"
    assert set(config.eval_methods) >= {"jacobi", "jacobi_mr"} and config.curve_prompts > 0
    JacobiForcingConfig(output_dir=str(tmp_path), block_size=config.block_size, **config.train)  # raises if invalid


def test_the_main_config_evaluates_all_of_humaneval():
    assert {path.name for path in PIPELINE_CONFIGS} >= {"smollm2_code.yaml", "smollm2_code_cpu.yaml"}
    config = PipelineConfig.from_yaml(PIPELINE_CONFIGS[0].parent / "smollm2_code.yaml")
    assert config.eval_task == "humaneval" and config.eval_limit is None  # all 164 problems
