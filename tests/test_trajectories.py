"""Trajectory collection: lossless fixed points, the recorded states, resumable and sharded output folders."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch

from tiny_models import build_tiny_model

sys.path.insert(0, str(Path(__file__).parent / "data"))

from char_tokenizer import build_char_tokenizer

from jacobi_forcing_hf.data.packing import build_training_sequences
from jacobi_forcing_hf.trajectories import collect_trajectories, load_trajectories, resolve_shard

PROMPTS = ["def add(a, b):", "hello", "x = [1, 2, 3]\nprint(x)", "class A:", "import os", "for i in range(3):"]
BLOCK_SIZE = 4


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def model():
    return build_tiny_model("llama")


@pytest.fixture(scope="module")
def prompts():
    return datasets.Dataset.from_dict({"prompt": PROMPTS})


@pytest.fixture(scope="module")
def baseline(model, tokenizer, prompts):
    """The in-memory collection with default settings, shared by the tests that only read it."""
    return collect(model, tokenizer, prompts)


@pytest.fixture(scope="module")
def collected_dir(model, tokenizer, prompts, tmp_path_factory):
    directory = tmp_path_factory.mktemp("collected")
    collect(model, tokenizer, prompts, output_dir=directory)
    return directory


def collect(model, tokenizer, prompts, **kwargs):
    arguments = {"block_size": BLOCK_SIZE, "max_new_tokens": 10, "batch_size": 4, "progress": False}
    return collect_trajectories(model, tokenizer, prompts, **{**arguments, **kwargs})


def greedy(model, tokenizer, text, max_new_tokens):
    input_ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        output = model.generate(input_ids, max_new_tokens=max_new_tokens, do_sample=False)
    return output[0, input_ids.shape[1] :].tolist()


def rows_of(trajectories, prompt_id):
    return [row for row in trajectories if row["prompt_id"] == prompt_id]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_fixed_points_concatenated_equal_greedy_generate(arch, tokenizer, prompts):
    model = build_tiny_model(arch)
    trajectories = collect(model, tokenizer, prompts, max_new_tokens=10)
    num_blocks = math.ceil(10 / BLOCK_SIZE)
    for prompt_id, text in enumerate(PROMPTS):
        rows = rows_of(trajectories, prompt_id)
        assert [row["block_index"] for row in rows] == list(range(num_blocks))
        fixed_points = [token for row in rows for token in row["output_ids"]]
        # the last block is complete: greedy decoding of all num_blocks * n positions
        assert fixed_points == greedy(model, tokenizer, text, num_blocks * BLOCK_SIZE)


def test_rows_stop_at_their_own_eos(tokenizer, prompts):
    model = build_tiny_model("llama")
    free_run = greedy(model, tokenizer, PROMPTS[0], 24)
    eos = next(token for token in free_run[4:8] if token not in free_run[:4])  # first emitted in block 1
    model.generation_config.eos_token_id = eos
    trajectories = collect(model, tokenizer, prompts, max_new_tokens=24)
    for prompt_id, text in enumerate(PROMPTS):
        rows = rows_of(trajectories, prompt_id)
        fixed_points = [token for row in rows for token in row["output_ids"]]
        expected = greedy(model, tokenizer, text, 24)  # generate stops at the EOS
        assert fixed_points[: len(expected)] == expected
        if eos in fixed_points:
            # the block holding the first EOS is the last one, and it is complete
            assert fixed_points.index(eos) // BLOCK_SIZE == len(rows) - 1
        else:
            assert len(rows) == 24 // BLOCK_SIZE
    assert len(rows_of(trajectories, 0)) == 2


def test_rows_hold_prefix_states_and_the_initial_draft(baseline, tokenizer):
    trajectories = baseline
    for prompt_id, text in enumerate(PROMPTS):
        prompt = tokenizer(text)["input_ids"]
        prefix = list(prompt)
        for row in rows_of(trajectories, prompt_id):
            assert row["prompt_length"] == len(prompt)
            assert row["prefix_ids"] == prefix
            assert row["states"][-1] == row["output_ids"]
            assert all(len(state) == BLOCK_SIZE for state in row["states"])
            assert row["num_iterations"] >= 1
            prefix += row["output_ids"]
        first = rows_of(trajectories, prompt_id)[0]
        # REFERENCE §2.6 fixed: states[0] is the initial draft: the exact first token, then tokens of the context
        assert first["states"][0][0] == first["output_ids"][0]
        assert set(first["states"][0][1:]) <= {*prompt, first["output_ids"][0]}
    assert sum(row["states"][0] != row["output_ids"] for row in trajectories) > len(trajectories) // 2


def test_seed_changes_the_drafts_but_never_the_fixed_points(model, tokenizer, prompts, baseline):
    first = baseline
    assert collect(model, tokenizer, prompts, seed=0)["states"] == first["states"]
    other = collect(model, tokenizer, prompts, seed=1)
    assert other["output_ids"] == first["output_ids"]
    assert other["states"] != first["states"]


def test_repeat_last_drafts_depend_on_the_text_alone(model, tokenizer, prompts, baseline, tmp_path):
    repeated = collect(model, tokenizer, prompts, draft_init="repeat_last", output_dir=tmp_path)
    assert repeated["output_ids"] == baseline["output_ids"]
    for row in repeated:  # one token repeated over the whole draft; for a first block, the exact first token
        assert row["states"][0] == [row["states"][0][0]] * BLOCK_SIZE
        if row["block_index"] == 0:
            assert row["states"][0][0] == row["output_ids"][0]
    assert collect(model, tokenizer, prompts, draft_init="repeat_last", seed=5)["states"] == repeated["states"]
    assert load_trajectories(tmp_path).to_list() == repeated.to_list()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["decoding"]["draft_init"] == "repeat_last"


def test_output_dir_holds_a_loadable_dataset_equal_to_the_in_memory_result(
    model, tokenizer, prompts, baseline, tmp_path
):
    in_memory = collect(model, tokenizer, prompts, limit=5)
    # the rows of a prompt do not depend on the other prompts of its batch
    assert in_memory.to_list() == [row for row in baseline if row["prompt_id"] < 5]
    saved = collect(model, tokenizer, prompts, limit=5, output_dir=tmp_path)
    assert saved.to_list() == in_memory.to_list()
    assert datasets.load_from_disk(str(tmp_path)).to_list() == in_memory.to_list()
    assert load_trajectories(tmp_path).to_list() == in_memory.to_list()
    assert sorted(path.name for path in (tmp_path / "shards").iterdir()) == [
        "batch-000000.parquet",
        "batch-000001.parquet",
    ]
    # a second run with the same arguments decodes nothing more and returns the same rows
    assert collect(model, tokenizer, prompts, limit=5, output_dir=tmp_path).to_list() == in_memory.to_list()


def test_shards_split_batches_between_processes_and_merge_deterministically(model, tokenizer, prompts, tmp_path):
    single = collect(model, tokenizer, prompts, batch_size=2)
    first = collect(model, tokenizer, prompts, batch_size=2, output_dir=tmp_path, shard_index=0, num_shards=2)
    assert sorted(set(first["prompt_id"])) == [0, 1, 4, 5]  # batches 0 and 2
    with pytest.raises(ValueError, match="1 of 3 batches are missing"):
        load_trajectories(tmp_path)
    second = collect(model, tokenizer, prompts, batch_size=2, output_dir=tmp_path, shard_index=1, num_shards=2)
    assert sorted(set(second["prompt_id"])) == [2, 3]
    assert load_trajectories(tmp_path).to_list() == single.to_list()
    assert datasets.load_from_disk(str(tmp_path)).to_list() == single.to_list()  # merged by the last process


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"block_size": 8}, "block_size: 4 there, 8 now"),
        ({"max_new_tokens": 12}, "max_new_tokens: 10 there, 12 now"),
        ({"seed": 3}, "seed: 0 there, 3 now"),
        ({"draft_init": "repeat_last"}, "decoding: .*'random_context'.* there, .*'repeat_last'.* now"),
        ({"limit": 3}, "num_prompts: 6 there, 3 now"),
        ({"model": "other"}, "model_weights_sha256"),
        ({"prompts": ["other prompt"] * 6}, "prompt_set_fingerprint"),
    ],
)
def test_output_dir_of_other_settings_is_refused(model, tokenizer, prompts, collected_dir, change, message):
    change = dict(change)
    other_model = build_tiny_model("llama", seed=1) if change.pop("model", None) else model
    other_prompts = prompts
    if "prompts" in change:
        other_prompts = datasets.Dataset.from_dict({"prompt": change.pop("prompts")})
    with pytest.raises(ValueError, match=message) as error:
        collect(other_model, tokenizer, other_prompts, output_dir=collected_dir, **change)
    assert "Use another output_dir" in str(error.value)


def test_prompt_longer_than_the_context_is_refused_before_any_work(tokenizer, tmp_path):
    model = build_tiny_model("llama")  # 512 positions
    long_prompts = datasets.Dataset.from_dict({"prompt": ["short", "y" * 600]})
    with pytest.raises(ValueError, match=r"1 prompt\(s\) do not fit in the model's context of 512 tokens.*prompt 1"):
        collect(model, tokenizer, long_prompts, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block_size": 0}, "block_size must be an integer >= 1"),
        ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"shard_index": 2, "num_shards": 2}, r"shard_index must be in \[0, num_shards=2\)"),
        ({"shard_index": 0}, "give both shard_index and num_shards"),
        ({"draft_init": "lookup"}, "draft_init='lookup' is not supported"),
    ],
)
def test_bad_arguments_are_refused(model, tokenizer, prompts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        collect(model, tokenizer, prompts, **kwargs)


def test_shards_default_to_accelerate_single_process():
    assert resolve_shard(None, None) == (0, 1)


def test_output_dir_with_other_settings_is_left_untouched(collected_dir, baseline):
    assert load_trajectories(collected_dir).to_list() == baseline.to_list()


def test_collected_trajectories_pack(baseline):
    trajectories = baseline
    packed = build_training_sequences(trajectories, block_size=BLOCK_SIZE, window_size=4)
    row = packed[0]
    prompt = trajectories[0]["prefix_ids"]
    assert row["input_ids"][: len(prompt)] == prompt
    assert len(row["input_ids"]) == len(prompt) + 2 * row["num_blocks"] * BLOCK_SIZE


KILLED_RUN = """
import sys, time
sys.path[:0] = [{tests!r}, {tests_data!r}]
import datasets
from char_tokenizer import build_char_tokenizer
from tiny_models import build_tiny_model
from jacobi_forcing_hf.trajectories import collect_trajectories

model = build_tiny_model("llama")
model.register_forward_hook(lambda *args: time.sleep(0.05))  # slow enough to be killed between batches
prompts = datasets.Dataset.from_dict({{"prompt": {prompts!r}}})
collect_trajectories(model, build_char_tokenizer(), prompts, block_size={block_size}, max_new_tokens=10,
                     batch_size=1, output_dir={output_dir!r}, progress=False)
"""


def test_killed_run_resumes_without_losing_or_duplicating_records(model, tokenizer, prompts, tmp_path):
    tests = Path(__file__).parent
    script = KILLED_RUN.format(
        tests=str(tests),
        tests_data=str(tests / "data"),
        prompts=PROMPTS,
        block_size=BLOCK_SIZE,
        output_dir=str(tmp_path),
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    )
    shards = tmp_path / "shards"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if shards.exists() and len(list(shards.glob("batch-*.parquet"))) >= 2:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    finished = sorted(path.name for path in shards.glob("batch-*.parquet"))
    assert 2 <= len(finished) < len(PROMPTS)
    with pytest.raises(ValueError, match="is incomplete"):
        load_trajectories(tmp_path)

    resumed = collect(model, tokenizer, prompts, batch_size=1, output_dir=tmp_path)
    uninterrupted = collect(model, tokenizer, prompts, batch_size=1)
    assert resumed.to_list() == uninterrupted.to_list()
    keys = list(zip(resumed["prompt_id"], resumed["block_index"]))
    assert len(keys) == len(set(keys)) == len(PROMPTS) * 3
    assert not list(shards.glob(".*.tmp"))


@pytest.mark.slow
def test_embedded_model_fixed_points_equal_greedy_generate(embedded_model):
    model, tokenizer = embedded_model
    chats = [
        [{"role": "user", "content": "Write a Python function that adds two numbers."}],
        [{"role": "user", "content": "What is a list?"}],
    ]
    trajectories = collect_trajectories(
        model,
        tokenizer,
        datasets.Dataset.from_dict({"messages": chats}),
        block_size=8,
        max_new_tokens=24,
        batch_size=2,
        progress=False,
    )
    for prompt_id, chat in enumerate(chats):
        input_ids = tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        with torch.inference_mode():
            expected = model.generate(input_ids, max_new_tokens=24, do_sample=False)[0, input_ids.shape[1] :].tolist()
        rows = rows_of(trajectories, prompt_id)
        assert rows[0]["prefix_ids"] == input_ids[0].tolist()
        fixed_points = [token for row in rows for token in row["output_ids"]]
        assert fixed_points[: len(expected)] == expected


TORCHRUN_WORKER = """
import sys
sys.path[:0] = [{tests!r}, {tests_data!r}]
import datasets
from char_tokenizer import build_char_tokenizer
from tiny_models import build_tiny_model
from jacobi_forcing_hf.trajectories import collect_trajectories

prompts = datasets.Dataset.from_dict({{"prompt": {prompts!r}}})
rows = collect_trajectories(build_tiny_model("llama"), build_char_tokenizer(), prompts, block_size={block_size},
                            max_new_tokens=10, batch_size=2, output_dir={output_dir!r}, progress=False)
print("prompts of this process:", sorted(set(rows["prompt_id"])))
"""


@pytest.mark.slow
def test_processes_started_by_torchrun_take_their_share(model, tokenizer, prompts, tmp_path):
    tests = Path(__file__).parent
    worker = tmp_path / "worker.py"
    worker.write_text(
        TORCHRUN_WORKER.format(
            tests=str(tests),
            tests_data=str(tests / "data"),
            prompts=PROMPTS,
            block_size=BLOCK_SIZE,
            output_dir=str(tmp_path / "out"),
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(worker)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # batch b of 2 prompts goes to process b mod 2
    assert "prompts of this process: [0, 1, 4, 5]" in result.stdout
    assert "prompts of this process: [2, 3]" in result.stdout
    single = collect(model, tokenizer, prompts, batch_size=2)
    assert load_trajectories(tmp_path / "out").to_list() == single.to_list()
