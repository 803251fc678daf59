"""The base-vs-trained comparison table: rows joined by method, missing timings shown as such."""

from jacobi_forcing_hf.evaluation.comparison import compare_models, comparison_markdown, tpf_without_echoes


def test_rows_join_quality_and_speed_by_method_and_render_missing_values_as_dashes():
    evaluations = {
        "base": {
            "eval": [
                {"method": "greedy", "score": 0.25, "problems": 4, "tpf": 1.0},
                {
                    "method": "jacobi_mr",
                    "score": 0.25,
                    "problems": 4,
                    "tpf": 2.5,
                    "matches_greedy": 4,
                    "prompt_echoes": 1,
                },
            ],
            "bench": [{"method": "jacobi_mr", "tokens_per_s": 30.0, "speedup": 1.5}],
        },
        "trained": {"eval": [{"method": "jacobi_mr", "score": 0.0, "problems": 4, "tpf": 3.0}]},
    }
    rows = compare_models(evaluations)
    assert [(row["model"], row["method"], row["speedup"]) for row in rows] == [
        ("base", "greedy", None),
        ("base", "jacobi_mr", 1.5),
        ("trained", "jacobi_mr", None),
    ]
    lines = comparison_markdown(rows).splitlines()
    assert lines[3] == "| base | jacobi_mr | 4 | 0.250 | 2.50 | 30.0 | 1.50 | 4/4 | 1 |"
    assert lines[4] == "| trained | jacobi_mr | 4 | 0.000 | 3.00 | – | – | – | – |"


def test_a_problem_one_model_echoes_leaves_every_models_tpf_and_the_rest_is_pooled_per_method():
    docstring = "Return the sum of the squares of the odd numbers in the list, ignoring negatives. " * 2
    prompts = {"a": "def f(xs):\n" + docstring, "b": "def g():\n" + docstring, "c": "def h():"}

    def record(problem_id, method, tokens, forwards, completion="    return 0"):
        return {
            "problem_id": problem_id,
            "method": method,
            "completion": completion,
            "new_tokens": tokens,
            "forwards": forwards,
            "seconds": 1.0,
            "stopped_at_eos": True,
        }

    records = {
        "base": [record("a", "jacobi_mr", 10, 5), record("b", "jacobi_mr", 30, 3), record("c", "jacobi_mr", 6, 6)],
        "trained": [
            record("a", "jacobi_mr", 12, 4),
            record("b", "jacobi_mr", 40, 2, completion=docstring),  # only the trained model echoes b
            record("c", "jacobi_mr", 6, 2),
        ],
    }
    result = tpf_without_echoes(records, prompts)
    assert result["problems"] == ["a", "c"]
    assert result["tpf"] == {"base": {"jacobi_mr": 16 / 11}, "trained": {"jacobi_mr": 18 / 6}}
