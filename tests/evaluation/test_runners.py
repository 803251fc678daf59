"""bench / eval / sweep on tiny models: reports written, resume skips finished work, bad input refused."""

from __future__ import annotations

import json

import pytest
from evaluation_helpers import FIXTURES

import jacobi_forcing_hf
from jacobi_forcing_hf.cli import main
from jacobi_forcing_hf.evaluation.bench import benchmark_speed
from jacobi_forcing_hf.evaluation.errors import EvaluationInputError
from jacobi_forcing_hf.evaluation.quality import evaluate_model
from jacobi_forcing_hf.evaluation.sweep import SweepGrid, run_sweep
from tiny_models import build_tiny_model

HAS_ENGINE = hasattr(jacobi_forcing_hf, "enable_jacobi")
needs_engine = pytest.mark.skipif(not HAS_ENGINE, reason="the Jacobi engine is not on this branch yet")
PROMPTS = ["abc abc abc abc", "def f(x): return x", "hello hello world"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WRONG_COLUMNS = str(FIXTURES / "gsm8k_wrong_columns.jsonl")


def _count_generate_calls(model, monkeypatch) -> list[int]:
    calls = [0]
    original = model.generate

    def counting_generate(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting_generate)
    return calls


def _drop_last_record(path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))


def test_bench_cli_writes_json_markdown_and_png(tiny_model_dir, tmp_path):
    argv = [
        "bench", "--model", str(tiny_model_dir), "--methods", "greedy", "prompt_lookup",
        "--prompts-file", str(FIXTURES / "prompts.txt"), "--max-new-tokens", "8", "--repeats", "2",
        "--output-dir", str(tmp_path), "--name", "bench_tiny", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "bench_tiny.json").read_text())
    assert report["command"].startswith("jacobi-forcing bench --model ")
    assert "--max-new-tokens 8" in report["command"] and "--repeats 2" in report["command"]
    assert report["hardware"]["cpu"] and report["hardware"]["torch"]
    assert [row["method"] for row in report["summary"]] == ["greedy", "prompt_lookup"]
    greedy = report["summary"][0]
    assert greedy["tpf"] == 1.0 and greedy["speedup"] == 1.0 and greedy["prompts"] == 2
    for record in report["records"]:
        assert len(record["methods"]["greedy"]["seconds_per_repeat"]) == 2
        assert record["methods"]["prompt_lookup"]["matches_greedy"] is True
    markdown = (tmp_path / "bench_tiny.md").read_text()
    assert report["command"] in markdown
    assert "| greedy | 2 |" in markdown and "| prompt_lookup | 2 |" in markdown
    png = (tmp_path / "bench_tiny.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    from PIL import Image

    assert Image.open(tmp_path / "bench_tiny.png").info["Description"] == report["command"]


def test_bench_resume_skips_finished_prompts(char_tokenizer, tmp_path, monkeypatch):
    model = build_tiny_model("llama")
    calls = _count_generate_calls(model, monkeypatch)
    results = tmp_path / "bench.jsonl"
    options = dict(methods=["greedy", "prompt_lookup"], max_new_tokens=6, repeats=1, results_file=results)
    first = benchmark_speed(model, char_tokenizer, PROMPTS, progress=False, **options)
    assert calls[0] == 2 + 3 * 2  # warm-up per method, then every method on every prompt
    _drop_last_record(results)  # as if the run had been killed during the last prompt
    calls[0] = 0
    resumed = benchmark_speed(model, char_tokenizer, PROMPTS, progress=False, **options)
    assert calls[0] == 2 + 1 * 2  # warm-up, then only the unfinished prompt
    assert resumed.records[:2] == first.records[:2]
    assert len(resumed.records) == 3
    calls[0] = 0
    benchmark_speed(model, char_tokenizer, PROMPTS, progress=False, **options)
    assert calls[0] == 0  # nothing left: no warm-up either


def test_bench_refuses_a_results_file_made_with_other_arguments(char_tokenizer, llama_tiny, tmp_path):
    results = tmp_path / "bench.jsonl"
    options = dict(methods=["greedy"], repeats=1, results_file=results, progress=False)
    benchmark_speed(llama_tiny, char_tokenizer, PROMPTS[:1], max_new_tokens=4, **options)
    with pytest.raises(EvaluationInputError, match="max_new_tokens: file has 4, this run has 5"):
        benchmark_speed(llama_tiny, char_tokenizer, PROMPTS[:1], max_new_tokens=5, **options)
    with pytest.raises(EvaluationInputError, match="prompts_sha256"):
        benchmark_speed(llama_tiny, char_tokenizer, PROMPTS[1:2], max_new_tokens=4, **options)


def test_eval_resume_skips_finished_problems(char_tokenizer, tmp_path, monkeypatch):
    model = build_tiny_model("llama")
    calls = _count_generate_calls(model, monkeypatch)
    results = tmp_path / "eval.jsonl"
    options = dict(data={"gsm8k": str(FIXTURES / "gsm8k.jsonl")}, max_new_tokens=6, results_file=results)
    first = evaluate_model(model, char_tokenizer, ["gsm8k"], progress=False, **options)
    assert calls[0] == 1 + 3  # warm-up, then one completion per problem
    assert first.summary[0]["problems"] == 3 and first.summary[0]["metric"] == "accuracy"
    _drop_last_record(results)
    _drop_last_record(results)
    calls[0] = 0
    resumed = evaluate_model(model, char_tokenizer, ["gsm8k"], progress=False, **options)
    assert calls[0] == 1 + 2
    assert [record["problem_id"] for record in resumed.records] == ["gsm8k/0", "gsm8k/1", "gsm8k/2"]
    assert resumed.records[0] == first.records[0]


def test_eval_cli_on_fixture_tasks(tiny_model_dir, tmp_path):
    argv = [
        "eval", "--model", str(tiny_model_dir), "--tasks", "gsm8k", "math", "mbpp", "humaneval",
        "--data", f"gsm8k={FIXTURES / 'gsm8k.jsonl'}", "--data", f"math={FIXTURES / 'math.jsonl'}",
        "--data", f"mbpp={FIXTURES / 'mbpp.jsonl'}", "--data", f"humaneval={FIXTURES / 'humaneval.jsonl'}",
        "--limit", "2", "--max-new-tokens", "6", "--methods", "greedy", "prompt_lookup",
        "--output-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    rows = {(row["task"], row["method"]): row for row in report["summary"]}
    tasks, methods = ("gsm8k", "math", "mbpp", "humaneval"), ("greedy", "prompt_lookup")
    assert set(rows) == {(task, method) for task in tasks for method in methods}
    assert rows[("mbpp", "greedy")]["metric"] == "pass@1" and rows[("math", "greedy")]["metric"] == "accuracy"
    assert all(row["problems"] == 2 for row in report["summary"])
    assert all(row["tpf"] == 1.0 for (task, method), row in rows.items() if method == "greedy")
    assert report["config"]["chat_template"] is False  # the tiny tokenizer has no chat template
    assert all(isinstance(row["prompt_echoes"], int) for row in report["summary"])
    assert "| mbpp | greedy | pass@1 |" in (tmp_path / "eval.md").read_text()
    assert "echo the prompt" in (tmp_path / "eval.md").read_text()
    assert (tmp_path / "eval.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--model", "./no-such-model"], "no such model folder"),
        (
            ["bench", "--methods", "greedy", "--task", "gsm8k", "--data", WRONG_COLUMNS],
            "lacks the column(s) the gsm8k task needs: question, answer",
        ),
        (["bench", "--methods", "greedy", "assisted"], "needs a draft model"),
        (
            ["bench", "--methods", "greedy", "--prompts-file", "nope.txt"],
            "prompts file 'nope.txt' does not exist",
        ),
        (["bench", "--methods", "greedy", "--repeats", "0"], "repeats must be >= 1"),
        (
            ["bench", "--methods", "greedy", "--activation-ratio", "2"],
            "activation_ratio must be a number with 0 < r",
        ),
        (["bench", "--methods", "greedy", "--onednn-linear", "--dtype", "bfloat16"], "float32 models on the CPU"),
        (["eval", "--onednn-linear", "--device", "cuda"], "float32 models on the CPU; got --dtype float32"),
        (["sweep", "--block-size", "16", "0"], "block_size must be an integer >= 1, got 0"),
        (["sweep", "--num-blocks", "0"], "num_blocks must be an integer >= 1, got 0"),
        (["sweep", "--pool-size", "-1"], "pool_size must be an integer >= 0, got -1"),
        (["sweep", "--activation-ratio", "0.5", "1.5"], "activation_ratio must be a number with 0 < r <= 1"),
        (["sweep", "--activation-ratio", "0"], "activation_ratio must be a number with 0 < r <= 1, got 0.0"),
        (["sweep", "--method", "jacobi", "--num-blocks", "1", "2"], "method 'jacobi' keeps one block"),
        (["eval", "--data", "gsm8k=x.jsonl"], "data is given for task 'gsm8k', which is not among the tasks"),
        (["eval", "--tasks", "gsm8k", "--data", "gsm8k"], "--data takes TASK=VALUE"),
        (["eval", "--tasks", "gsm8k", "--data", "gsm8k=./missing.jsonl"], "does not exist"),
    ],
)
def test_bad_input_is_refused_before_any_model_is_loaded(argv, message, tiny_model_dir, tmp_path, monkeypatch, capsys):
    from jacobi_forcing_hf.evaluation import loading

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(loading, "load_model", refuse)
    model = [] if "--model" in argv else ["--model", str(tiny_model_dir)]
    code = main([*argv, *model, "--output-dir", str(tmp_path), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.jsonl"))


def test_unknown_task_is_refused_by_the_cli(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["eval", "--tasks", "gsm8k", "triviaqa"])
    assert raised.value.code == 2
    assert "invalid choice: 'triviaqa'" in capsys.readouterr().err


def test_sweep_grid_is_validated_when_built():
    with pytest.raises(EvaluationInputError, match="pool_size values repeat"):
        SweepGrid(pool_size=(4, 4))
    with pytest.raises(EvaluationInputError, match="at least one num_blocks"):
        SweepGrid(num_blocks=())
    assert len(SweepGrid(block_size=(8, 16), num_blocks=(1, 2), pool_size=(0,), activation_ratio=(0.5, 1)).cells()) == 8


@needs_engine
def test_sweep_writes_json_markdown_and_heatmaps_and_resumes(char_tokenizer, tmp_path, monkeypatch):
    from jacobi_forcing_hf.evaluation.report import write_reports

    model = build_tiny_model("llama")
    grid = SweepGrid(block_size=(4, 8), num_blocks=(1, 2), pool_size=(0, 2), activation_ratio=(0.5,))
    results = tmp_path / "sweep.jsonl"
    options = dict(max_new_tokens=8, results_file=results, progress=False)
    first = run_sweep(model, char_tokenizer, PROMPTS[:2], grid, **options)
    cells = [row for row in first.summary if row["cell"] is not None]
    assert len(cells) == 8 and first.summary[0]["method"] == "greedy"
    assert all(row["matches_greedy"] == 2 for row in cells)  # lossless in every cell
    paths = write_reports(first, tmp_path, "sweep_tiny", "jacobi-forcing sweep --model tiny")
    assert sorted(path.name for path in paths) == [
        "sweep_tiny.json", "sweep_tiny.md", "sweep_tiny.png", "sweep_tiny_speedup.png"
    ]  # fmt: skip
    assert "jacobi-forcing sweep --model tiny" in (tmp_path / "sweep_tiny.md").read_text()
    calls = _count_generate_calls(model, monkeypatch)
    _drop_last_record(results)
    run_sweep(model, char_tokenizer, PROMPTS[:2], grid, max_new_tokens=8, results_file=results, progress=False)
    assert calls[0] == 2 + 1  # warm-up (greedy + one cell), then the one unfinished cell


@needs_engine
def test_sweep_cli_writes_reports_with_the_command(tiny_model_dir, tmp_path):
    argv = [
        "sweep", "--model", str(tiny_model_dir), "--prompts-file", str(FIXTURES / "prompts.txt"), "--limit", "1",
        "--block-size", "4", "--num-blocks", "2", "--pool-size", "0", "2", "--draft-alternatives", "0", "2",
        "--copy-length", "8", "--max-new-tokens", "6", "--output-dir", str(tmp_path), "--name", "sweep_tiny",
        "--no-progress", "--onednn-linear",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "sweep_tiny.json").read_text())
    assert report["command"].startswith("jacobi-forcing sweep --model ")
    assert "--pool-size 0 2" in report["command"] and "--onednn-linear" in report["command"]
    assert report["config"]["linear"] == "onednn"
    assert all(row["matches_greedy"] == row["prompts"] for row in report["summary"][1:])
    cells = [(row["cell"]["pool_size"], row["cell"].get("draft_alternatives", 0)) for row in report["summary"][1:]]
    assert cells == [(0, 0), (0, 2), (2, 0), (2, 2)]
    assert all(row["cell"]["copy_length"] == 8 for row in report["summary"][1:])
    markdown = (tmp_path / "sweep_tiny.md").read_text()
    assert report["command"] in markdown and "| draft_alternatives | copy_length |" in markdown
    for image in ("sweep_tiny.png", "sweep_tiny_speedup.png"):
        assert (tmp_path / image).read_bytes().startswith(PNG_MAGIC)


@needs_engine
def test_bench_counts_jacobi_forwards_like_the_engine(char_tokenizer, llama_tiny):
    methods = ["jacobi", "jacobi_mr"]
    result = benchmark_speed(llama_tiny, char_tokenizer, PROMPTS[:2], methods=methods, max_new_tokens=12, repeats=1)
    for record in result.records:
        for method in ("jacobi", "jacobi_mr"):
            measured = record["methods"][method]
            assert measured["forwards"] == measured["engine_forwards"]
            assert measured["matches_greedy"] is True
            assert measured["forwards"] <= measured["new_tokens"]


def test_eval_summary_counts_completions_that_echo_their_prompt():
    from jacobi_forcing_hf.evaluation.quality import ECHO_MIN_CHARS, _summary, echoes_prompt
    from jacobi_forcing_hf.evaluation.tasks import Problem, get_task

    docstring = "Return the number of vowels in the text, counting a, e, i, o and u in either case. " * 2
    assert len(docstring) >= ECHO_MIN_CHARS
    problems = [
        Problem("humaneval", f"p{index}", f"def count(text):\n    {docstring}\n", False, {}) for index in range(3)
    ]
    completions = {
        "p0": f"def count(text):\n    {docstring}\n    return 0",  # echoes the whole docstring
        "p1": "def count(text):\n    return sum(c in 'aeiou' for c in text.lower())",
        "p2": f"{docstring[: ECHO_MIN_CHARS - 1]}",  # one character short of the threshold
    }
    store = {
        f"humaneval|{problem.problem_id}|greedy": {
            "correct": False, "completion": completions[problem.problem_id], "new_tokens": 10, "forwards": 10,
            "seconds": 1.0, "stopped_at_eos": True,
        }
        for problem in problems
    }  # fmt: skip
    (row,) = _summary({"humaneval": problems}, {"humaneval": get_task("humaneval")}, ["greedy"], store)
    assert row["prompt_echoes"] == 1
    assert echoes_prompt(problems[0].prompt, completions["p2"], min_chars=ECHO_MIN_CHARS - 1)
    with pytest.raises(ValueError, match="min_chars must be >= 1"):
        echoes_prompt("a", "a", min_chars=0)
