"""JacobiForcingDataCollator against the worked example of REFERENCE §4.4/§4.7 (P=2, n=3, T=2), written out by hand."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset

from jacobi_forcing_hf import JacobiForcingDataCollator
from jacobi_forcing_hf.data.collator import plot_attention_mask

PAD, EOS = 0, 1
# prompt [p, q]; K0 = [a, x, y], L0 = [a, b, c], K1 = [d, e, z], L1 = [d, e, f]  (REFERENCE §4.7 worked example)
p, q, a, b, c, d, e, f, x, y, z = 50, 51, 60, 61, 62, 63, 64, 65, 70, 71, 72
WORKED_ROW = {"input_ids": [p, q, a, x, y, a, b, c, d, e, z, d, e, f], "prompt_length": 2}

# REFERENCE §4.4, rows = queries, columns = keys: P0 P1 K0.0 K0.1 K0.2 L0.0 L0.1 L0.2 K1.0 K1.1 K1.2 L1.0 L1.1 L1.2
NOISY_CONTEXT = """
#.............
##............
###...........
####..........
#####.........
##...#........
##...##.......
##...###......
#####...#.....
#####...##....
#####...###...
##...###...#..
##...###...##.
##...###...###
"""
# identical except rows K1.t, whose K0 columns are '.' and L0 columns are '#'
CLEAN_CONTEXT = """
#.............
##............
###...........
####..........
#####.........
##...#........
##...##.......
##...###......
##...####.....
##...#####....
##...######...
##...###...#..
##...###...##.
##...###...###
"""


def _matrix(picture: str) -> torch.Tensor:
    return torch.tensor([[char == "#" for char in line] for line in picture.split()])


def _visible(batch, row: int = 0) -> torch.Tensor:
    return batch["attention_mask"][row, 0] == 0


def _pairs(batch, first: str, second: str) -> list[tuple[int, int]]:
    return list(zip(batch[first].tolist(), batch[second].tolist()))


@pytest.mark.parametrize(("context", "picture"), [("noisy", NOISY_CONTEXT), ("clean", CLEAN_CONTEXT)])
def test_worked_example_mask_and_positions(context, picture):
    batch = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD, attention_context=context)([WORKED_ROW])
    assert torch.equal(_visible(batch), _matrix(picture))
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 7, 5, 6, 7]]
    mask = batch["attention_mask"]
    assert mask.shape == (1, 1, 14, 14) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, torch.finfo(torch.float32).min}


def test_worked_example_loss_positions():
    batch = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD)([WORKED_ROW])
    # P0→P1, P1→L0.0, L0.0→L0.1, L0.1→L0.2, L0.2→L1.0, L1.0→L1.1, L1.1→L1.2
    assert _pairs(batch, "ar_logit_index", "ar_target_index") == [
        (0, 1),
        (1, 5),
        (5, 6),
        (6, 7),
        (7, 11),
        (11, 12),
        (12, 13),
    ]
    # block 0 first differs at t=1: K0.1, K0.2 vs L0.1, L0.2; block 1 at t=2: K1.2 vs L1.2
    assert _pairs(batch, "consistency_student_index", "consistency_teacher_index") == [(3, 6), (4, 7), (10, 13)]
    assert batch["num_blocks"].tolist() == [2]
    assert batch["ar_row_index"].tolist() == [0] * 7 and batch["consistency_row_index"].tolist() == [0] * 3


def test_reference_options_change_exactly_their_terms():
    collator = JacobiForcingDataCollator(
        block_size=3, pad_token_id=PAD, include_prompt_in_ar=False, keep_last_offset=False
    )
    batch = collator([WORKED_ROW])
    assert _pairs(batch, "ar_logit_index", "ar_target_index") == [(1, 5), (5, 6), (6, 7), (7, 11), (11, 12), (12, 13)]
    assert _pairs(batch, "consistency_student_index", "consistency_teacher_index") == [(3, 6)]


def test_eos_in_last_clean_block_is_followed_by_pad_and_ends_the_ar_pairs():
    row = {"input_ids": [p, q, a, x, y, a, b, c, d, e, z, d, EOS, f], "prompt_length": 2}
    batch = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD, eos_token_id=EOS)([row])
    assert batch["input_ids"].tolist() == [[p, q, a, x, y, a, b, c, d, e, z, d, EOS, PAD]]
    # EOS (L1.1) is the last AR target; L1.2 (now PAD) is neither input of a pair nor a target
    assert _pairs(batch, "ar_logit_index", "ar_target_index")[-2:] == [(7, 11), (11, 12)]
    # K1 = [d, e, z] vs L1 = [d, EOS, PAD]: first difference at t=1, the noisy tokens are not edited
    assert _pairs(batch, "consistency_student_index", "consistency_teacher_index") == [
        (3, 6),
        (4, 7),
        (9, 12),
        (10, 13),
    ]


def test_eos_outside_the_last_clean_block_is_not_replaced():
    row = {"input_ids": [p, EOS, a, x, y, a, EOS, c, d, e, z, d, e, f], "prompt_length": 2}
    batch = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD, eos_token_id=[EOS, 99])([row])
    assert batch["input_ids"].tolist() == [row["input_ids"]]
    # inside L0 the pairs stop at its EOS (L0.1); the bridge from L0.2 into L1 stays (§4.6)
    assert _pairs(batch, "ar_logit_index", "ar_target_index") == [(0, 1), (1, 5), (5, 6), (7, 11), (11, 12), (12, 13)]


def test_pad_tokens_are_ignored_unless_pad_is_eos():
    row = {"input_ids": [p, PAD, a, PAD, y, a, b, c, d, e, z, d, e, f], "prompt_length": 2}
    batch = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD)([row])
    assert (0, 1) not in _pairs(batch, "ar_logit_index", "ar_target_index")  # a PAD target
    assert 3 not in batch["consistency_student_index"].tolist()  # a PAD student token (K0.1)
    batch = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD, eos_token_id=PAD)([row])
    assert (0, 1) in _pairs(batch, "ar_logit_index", "ar_target_index")
    assert 3 in batch["consistency_student_index"].tolist()


def test_padded_rows_match_the_rows_alone_and_padding_sees_only_itself():
    collator = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD, eos_token_id=EOS)
    short = {"input_ids": [p, q, q, a, x, y, a, b, EOS], "prompt_length": 3, "extra": "ignored"}
    rows = [short, WORKED_ROW]
    batch = collator(rows)
    width = batch["input_ids"].shape[1]
    assert width == 14
    visible = _visible(batch, 0)
    assert torch.equal(visible[9:], torch.eye(14, dtype=torch.bool)[9:]), "a padded query sees only itself"
    assert not visible[:9, 9:].any(), "no real query sees padding"
    assert batch["input_ids"][0, 9:].eq(PAD).all() and batch["position_ids"][0, 9:].eq(0).all()
    for index, row in enumerate(rows):
        alone = collator([row])
        length = len(row["input_ids"])
        assert torch.equal(_visible(batch, index)[:length, :length], _visible(alone))
        assert torch.equal(batch["position_ids"][index, :length], alone["position_ids"][0])
        for prefix in ("ar_logit", "ar_target", "consistency_student", "consistency_teacher"):
            in_batch = batch[f"{prefix}_index"][batch[prefix.split("_")[0] + "_row_index"] == index] - index * width
            rows_alone = alone[f"{prefix}_index"]
            assert in_batch.tolist() == rows_alone.tolist(), prefix


def test_mask_dtype_and_pad_to_multiple_of():
    batch = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD, mask_dtype=torch.bfloat16, pad_to_multiple_of=8)(
        [WORKED_ROW]
    )
    assert batch["input_ids"].shape == (1, 16)
    assert batch["attention_mask"].dtype == torch.bfloat16
    assert batch["attention_mask"][0, 0, 0, 1] == torch.finfo(torch.bfloat16).min


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"input_ids": [1, 2, 3, 4, 5, 6, 7]}, "row 0 has no 'prompt_length'"),
        ({"prompt_length": 1}, "row 0 has no 'input_ids'"),
        ({"input_ids": list(range(10)), "prompt_length": 2}, "row 0: length 10 is not prompt_length + 2·T·block_size"),
        ({"input_ids": list(range(2)), "prompt_length": 2}, "row 0: length 2"),
        ({"input_ids": list(range(8)), "prompt_length": 0}, "prompt_length must be >= 1"),
        ({"input_ids": list(range(14)), "prompt_length": 2, "num_blocks": 1}, "packed with block size 6"),
        ({**WORKED_ROW, "block_size": 6}, "row 0 was packed with block_size=6 but the collator .* has block_size=3"),
    ],
)
def test_bad_rows_are_refused_with_a_clear_error(row, message):
    collator = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD)
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        collator([row])


def test_bad_row_in_a_batch_is_named():
    collator = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD)
    with pytest.raises(ValueError, match=r"row 1: length 15 .*prompt_length=2, block_size=3"):
        collator([WORKED_ROW, {"input_ids": list(range(15)), "prompt_length": 2}])


def test_check_dataset_reads_the_whole_dataset_up_front():
    collator = JacobiForcingDataCollator(block_size=3, pad_token_id=PAD)
    good = Dataset.from_list([WORKED_ROW] * 3)
    collator.check_dataset(good)
    bad = Dataset.from_list([WORKED_ROW, WORKED_ROW, {"input_ids": list(range(13)), "prompt_length": 2}])
    with pytest.raises(ValueError, match="eval dataset: row 1: length 13"):
        collator.check_dataset(bad.select([0, 2, 1]), name="eval")
    with pytest.raises(ValueError, match=r"no column\(s\) \['prompt_length'\]"):
        collator.check_dataset(good.remove_columns("prompt_length"))
    # rows packed with n=6 have lengths that also fit n=3; the num_blocks column gives them away
    packed_with_six = Dataset.from_list([{**WORKED_ROW, "num_blocks": 1}])
    with pytest.raises(ValueError, match="packed with block size 6"):
        collator.check_dataset(packed_with_six)
    with pytest.raises(ValueError, match="row 0 was packed with block_size=6"):
        collator.check_dataset(Dataset.from_list([{**WORKED_ROW, "block_size": 6}]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"block_size": 0}, "block_size must be a positive integer"),
        ({"attention_context": "window"}, r"attention_context must be one of \('noisy', 'clean'\)"),
        ({"mask_dtype": torch.int64}, "mask_dtype must be a floating dtype"),
        ({"pad_token_id": None}, "pad_token_id is required"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        JacobiForcingDataCollator(**{"block_size": 3, "pad_token_id": PAD, **settings})


def test_plot_attention_mask_writes_a_png(tmp_path):
    path = plot_attention_mask(tmp_path / "mask.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
