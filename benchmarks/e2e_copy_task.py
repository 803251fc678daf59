"""The controlled demonstration of tests/test_end_to_end.py, with its numbers and the diagnostic written to docs.

AR-pretrains the small copy model (tests/copy_task.py), collects and packs its trajectories, then trains it with
Jacobi Forcing and, as the control, with the same pipeline but no consistency loss. For the base model and both
trained ones: greedy Jacobi TPF and exact copies on 32 held-out copies, and the fixed-point agreement of the draft
predictions on each model's own held-out trajectories, next to the training losses.

    python benchmarks/e2e_copy_task.py        # about 2 minutes on 2 cores

Writes docs/results/e2e_copy_task.{json,md,png}.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from common import RESULTS_DIR, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import datasets

import jacobi_forcing_hf as jf
from copy_task import (
    BLOCK_SIZE,
    ar_pretrain,
    build_char_tokenizer,
    build_copy_model,
    collect_and_pack,
    copy_prompts,
    jacobi_copy_score,
    jacobi_forcing,
)
from jacobi_forcing_hf.diagnostics import agreement_markdown, fixed_point_agreement, plot_agreement


def own_trajectories(model, tokenizer, prompts):
    return jf.collect_trajectories(
        model,
        tokenizer,
        datasets.Dataset.from_dict({"prompt": prompts}),
        block_size=BLOCK_SIZE,
        max_new_tokens=len(prompts[0]) - 1,
        batch_size=64,
        seed=7,
        progress=False,
    )


def main() -> None:
    torch.set_num_threads(1)
    tokenizer = build_char_tokenizer()
    held_out = copy_prompts(32, seed=10_000)
    base = ar_pretrain(build_copy_model(), tokenizer)
    packed = collect_and_pack(base, tokenizer, copy_prompts(1024, seed=1))
    models = {"AR-pretrained": (base, None)}
    with tempfile.TemporaryDirectory() as folder:
        models["Jacobi Forcing"] = jacobi_forcing(base, tokenizer, packed, Path(folder) / "jf")
        models["no consistency loss"] = jacobi_forcing(
            base, tokenizer, packed, Path(folder) / "ar", consistency_loss_weight=0.0
        )
    rows, reports = {}, {}
    for name, (model, trainer) in models.items():
        tpf, exact = jacobi_copy_score(model, tokenizer, held_out)
        reports[name] = fixed_point_agreement(model, own_trajectories(model, tokenizer, held_out))
        history = trainer.state.log_history if trainer else []
        rows[name] = {
            "tpf": round(tpf, 3),
            "exact_copies": exact,
            "losses": [entry for entry in history if "ar_loss" in entry],
        }
    table = [
        "| model | greedy Jacobi TPF (held-out) | exact copies | last AR loss | last consistency loss |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        last = row["losses"][-1] if row["losses"] else {}
        losses = [f"{last[key]:.3g}" if key in last else "–" for key in ("ar_loss", "consistency_loss")]
        table.append(f"| {name} | {row['tpf']:.2f} | {row['exact_copies']:.2f} | {losses[0]} | {losses[1]} |")
    markdown = "\n".join(
        [
            "# Controlled demonstration: Jacobi Forcing on the copy corpus",
            "",
            f"Block size {BLOCK_SIZE}, 16-letter copies (16 new tokens; the most TPF possible is 16/3 = 5.33), "
            "32 held-out prompts. Setup: tests/copy_task.py; test: tests/test_end_to_end.py.",
            "",
            *table,
            "",
            "## Draft predictions equal to the fixed point, on each model's own held-out trajectories",
            "",
            agreement_markdown(reports),
            "![agreement and losses](e2e_copy_task.png)",
            "",
        ]
    )
    write_results("e2e_copy_task", {"models": rows, "agreement": reports}, markdown)
    plot_agreement(
        {name: reports[name] for name in ("AR-pretrained", "Jacobi Forcing")},
        RESULTS_DIR / "e2e_copy_task.png",
        losses=rows["Jacobi Forcing"]["losses"],
        title="Copy corpus: draft predictions = fixed point, before/after Jacobi Forcing",
    )


if __name__ == "__main__":
    main()
