"""``fixed_point_agreement`` against an independent per-position computation, and its report outputs."""

from __future__ import annotations

import torch

from jacobi_forcing_hf.diagnostics import agreement_markdown, fixed_point_agreement, plot_agreement


def trajectory_rows(model, block_size=4):
    """Two blocks whose states are the fixed point (the model's greedy block) with some tokens replaced."""
    rows = []
    for seed, prefix in ((0, [5, 9, 17, 33]), (1, [40, 41, 42])):
        with torch.no_grad():
            greedy = model.generate(torch.tensor([prefix]), max_new_tokens=block_size, do_sample=False)
        fixed_point = greedy[0, len(prefix) :].tolist()
        generator = torch.Generator().manual_seed(seed)
        noisy = torch.randint(3, 128, (block_size,), generator=generator).tolist()
        half = fixed_point[:2] + noisy[2:]
        rows.append({"prefix_ids": prefix, "states": [noisy, half, fixed_point], "output_ids": fixed_point})
    return rows


def expected_counts(model, rows):
    """Per offset t: (agreeing, total) over every draft, from one plain forward per (draft, offset)."""
    counts = {}
    for row in rows:
        fixed_point = row["output_ids"]
        for draft in row["states"][:-1]:
            for offset in range(1, len(fixed_point)):
                with torch.no_grad():
                    logits = model(torch.tensor([row["prefix_ids"] + draft[:offset]])).logits
                clean = draft[:offset] == fixed_point[:offset]
                for group in ("all", "clean_prefix" if clean else "noisy_prefix"):
                    agreeing, total = counts.get((group, offset), (0, 0))
                    counts[group, offset] = (agreeing + int(logits[0, -1].argmax() == fixed_point[offset]), total + 1)
    return counts


def test_agreement_matches_an_independent_computation(llama_tiny, tmp_path):
    rows = trajectory_rows(llama_tiny)
    report = fixed_point_agreement(llama_tiny, rows, max_states_per_forward=1)
    assert report["num_blocks"] == 2 and report["num_states"] == 4 and report["block_size"] == 4
    for (group, offset), (agreeing, total) in expected_counts(llama_tiny, rows).items():
        entry = report["by_offset"][group][offset - 1]
        assert entry["count"] == total
        assert entry["agree"] == round(agreeing / total, 4)
    # the half-converged drafts (iteration 1) have a clean prefix at offsets 1 and 2 and agree there by construction
    assert report["by_offset"]["clean_prefix"][0]["agree"] == 1.0
    assert report["by_iteration"]["all"][1]["count"] == 2 * 3

    markdown = agreement_markdown({"base": report, "trained": report})
    assert "| offset t |" in markdown and "| iteration k |" in markdown
    losses = [
        {"step": 1, "ar_loss": 2.0, "consistency_loss": 1.0},
        {"step": 2, "ar_loss": 1.0, "consistency_loss": 0.5},
    ]
    assert plot_agreement({"base": report}, tmp_path / "a.png", losses=losses).stat().st_size > 0


def test_bad_trajectories_are_refused(llama_tiny):
    import pytest

    with pytest.raises(ValueError, match="at least one"):
        fixed_point_agreement(llama_tiny, [])
    with pytest.raises(ValueError, match="prefix_ids"):
        fixed_point_agreement(llama_tiny, [{"states": [[1, 2]], "output_ids": [1, 2]}])
