"""Put several models' `jacobi-forcing eval` results side by side: one table and a pass@1-vs-TPF figure.

The pipeline's `report` stage does this for its own base and trained model; this script does it for any set of
evaluation results, e.g. a model trained by `benchmarks/e2e_levers.py --save-model` next to the pipeline's models:

    python benchmarks/compare_evaluations.py --name lever_vs_pipeline \\
        base=runs/smollm2_code_cpu/eval/base_eval-humaneval-40-128tok.json \\
        random_ar1_3ep=docs/results/lever_eval/random_ar1_3ep_eval-humaneval-40-128tok.json

Writes docs/results/<name>.{json,md,png}. Every file must hold the same task and problems (checked).
``--without-echoes`` adds the TPF of every model and method over the problems that no model echoes its prompt in
(recycling predicts copied prompt text for free; see ``tpf_without_echoes``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import RESULTS_DIR, split_named, write_results

from jacobi_forcing_hf.evaluation.comparison import (
    compare_models,
    comparison_markdown,
    plot_quality_vs_tpf,
    tpf_without_echoes,
)
from jacobi_forcing_hf.evaluation.tasks import TASKS


def load_evaluation(argument: str) -> tuple[str, dict]:
    """``NAME=PATH`` → (name, the evaluation results file's content)."""
    name, path = split_named(argument, "PATH")
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such evaluation results file")
    results = json.loads(Path(path).read_text())
    if results.get("kind") != "eval":
        raise argparse.ArgumentTypeError(f"{path} is not a `jacobi-forcing eval` results file")
    return name, results


def problem_prompts(evaluations: list[tuple[str, dict]]) -> dict[str, str]:
    """Problem id → the prompt the evaluations asked (the task's default data, chat wording as evaluated)."""
    (task_name, task), *others = evaluations[0][1]["config"]["tasks"].items()
    if others:
        raise SystemExit("--without-echoes takes evaluations of one task")
    chat = evaluations[0][1]["config"]["chat_template"]
    prompts = {
        problem.problem_id: problem.prompt
        for problem in TASKS[task_name]().load_problems(limit=task["problems"], chat=chat)
    }
    evaluated = {record["problem_id"] for _, results in evaluations for record in results["records"]}
    if not evaluated <= set(prompts):
        raise SystemExit(
            f"--without-echoes: problems {sorted(evaluated - set(prompts))[:5]} are not in the "
            f"{task_name} task's default data; evaluate with it"
        )
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluations", nargs="+", type=load_evaluation, metavar="NAME=PATH")
    parser.add_argument("--name", required=True, help="docs/results/<name>.{json,md,png}")
    parser.add_argument("--without-echoes", action="store_true", help="add TPF over the problems no model echoes")
    args = parser.parse_args()
    tasks = {json.dumps(results["config"]["tasks"], sort_keys=True) for _, results in args.evaluations}
    if len(tasks) > 1:
        parser.error(f"the files evaluate different tasks or problems: {sorted(tasks)}")
    # tokens/s and the speed-up over greedy come from the evaluation runs themselves (timed per problem)
    rows = compare_models(
        {name: {"eval": results["summary"], "bench": results["summary"]} for name, results in args.evaluations}
    )
    settings = {
        name: {key: results["config"][key] for key in ("model", "dtype", "max_new_tokens", "jacobi_knobs")}
        for name, results in args.evaluations
    }
    lines = [f"* **{name}**: {json.dumps(value)}" for name, value in settings.items()]
    text = "# Models side by side\n\n" + comparison_markdown(rows) + "\n" + "\n".join(lines) + "\n"
    results = {"settings": settings, "rows": rows}
    if args.without_echoes:
        results["without_echoes"] = unechoed = tpf_without_echoes(
            {name: evaluation["records"] for name, evaluation in args.evaluations}, problem_prompts(args.evaluations)
        )
        text += f"\n## TPF on the {len(unechoed['problems'])} problems that no model echoes\n\n"
        text += "".join(f"* **{name}**: {json.dumps(tpf)}\n" for name, tpf in unechoed["tpf"].items())
    write_results(args.name, results, text)
    plot_quality_vs_tpf(rows, RESULTS_DIR / f"{args.name}.png", command=f"compare_evaluations.py --name {args.name}")


if __name__ == "__main__":
    main()
