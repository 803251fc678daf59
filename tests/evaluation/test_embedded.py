"""The harness on the embedded SmolLM2 model: one prompt, few tokens (the full benchmarks live in benchmarks/)."""

from __future__ import annotations

import pytest

from jacobi_forcing_hf.evaluation.bench import benchmark_speed
from jacobi_forcing_hf.evaluation.quality import evaluate_model
from jacobi_forcing_hf.evaluation.tasks import get_task


@pytest.mark.slow
def test_bench_every_method_on_the_embedded_model(embedded_model):
    model, tokenizer = embedded_model
    result = benchmark_speed(
        model,
        tokenizer,
        ["Write a Python function that returns the square of a number."],
        methods=["greedy", "jacobi", "jacobi_mr", "prompt_lookup"],
        max_new_tokens=8,
        repeats=1,
        warmup=False,
        progress=False,
    )
    assert result.config["chat_template"] is True
    summary = {row["method"]: row for row in result.summary}
    assert summary["greedy"]["tpf"] == 1.0
    record = result.records[0]
    assert record["prompt_tokens"] > len(tokenizer("Write a Python function")["input_ids"]) + 10  # chat template
    for method in ("jacobi", "jacobi_mr", "prompt_lookup"):
        assert record["methods"][method]["matches_greedy"], method
    for method in ("jacobi", "jacobi_mr"):
        assert record["methods"][method]["forwards"] == record["methods"][method]["engine_forwards"]


@pytest.mark.slow
def test_humaneval_problem_through_the_chat_template_is_scored_in_the_sandbox(embedded_model):
    model, tokenizer = embedded_model
    problems = {"humaneval": get_task("humaneval").load_problems(limit=1, chat=True)}
    result = evaluate_model(model, tokenizer, problems=problems, max_new_tokens=32, warmup=False, progress=False)
    record = result.records[0]
    assert record["completion"].startswith("```python")  # the instruction asks for a fenced block
    assert "has_close_elements" in record["extracted"]
    assert record["detail"].startswith(("passed", "failed", "timed out"))
    assert result.summary[0]["problems"] == 1
