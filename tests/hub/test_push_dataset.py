"""Pushing trajectories and training data: one commit per push, a card for both configs, exact round trip."""

from __future__ import annotations

import datasets
import pytest
from huggingface_hub import DatasetCard
from huggingface_hub.errors import HfHubHTTPError
from sample_data import make_training_data, make_trajectories

from jacobi_forcing_hf.hub import HubPushError, push_dataset, push_training_data, push_trajectories

REPO = "tester/jacobi-data"


def _load(repo_id, config, tmp_path):
    return datasets.load_dataset(repo_id, config, split="train", cache_dir=str(tmp_path / "load-cache"))


def test_both_stages_share_one_repo_and_load_back_exactly(fake_hub, trajectories, training_data, tmp_path):
    push_trajectories(
        trajectories,
        REPO,
        source_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        prompt_source="openai/openai_humaneval",
        prompt_license="mit",
        recipe={"draft_init": "random_context", "seed": 0},
    )
    assert fake_hub.commit_count(REPO, "dataset") == 2  # the repo's initial commit and the push
    push_training_data(training_data, REPO, window=16, noise_schedule="progressive", license="mit")
    assert fake_hub.commit_count(REPO, "dataset") == 3

    loaded_trajectories = _load(REPO, "trajectories", tmp_path)
    loaded_training = _load(REPO, "training_data", tmp_path)
    assert loaded_trajectories.to_dict() == trajectories.to_dict()
    assert loaded_trajectories.features == trajectories.features
    assert loaded_training.to_dict() == training_data.to_dict()
    assert loaded_training.features == training_data.features


def test_card_records_schema_facts_and_loading_of_every_config(fake_hub, trajectories, training_data):
    push_trajectories(
        trajectories, REPO, source_model="HuggingFaceTB/SmolLM2-135M-Instruct", prompt_license="apache-2.0"
    )
    push_training_data(training_data, REPO, window=16, noise_schedule="progressive")
    card = DatasetCard(fake_hub.file_content(REPO, "README.md", "dataset").decode())

    facts = card.data["jacobi_forcing"]
    assert facts["trajectories"]["block_size"] == 4
    assert facts["trajectories"]["rows"] == len(trajectories) == 6
    assert facts["trajectories"]["prompts"] == 3
    assert facts["trajectories"]["source_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert facts["training_data"]["tokens"] == sum(len(ids) for ids in training_data["input_ids"])
    assert facts["training_data"]["noise_schedule"] == "progressive"
    assert facts["training_data"]["window"] == 16
    assert [config["config_name"] for config in card.data["configs"]] == ["training_data", "trajectories"]
    assert "jacobi-forcing" in card.data["tags"]
    text = card.text
    for expected in (
        f'load_dataset("{REPO}", "trajectories", split="train")',
        f'load_dataset("{REPO}", "training_data", split="train")',
        "| `states` | `list<list<int64>>` |",
        "| `input_ids` | `list<int",
        "[`HuggingFaceTB/SmolLM2-135M-Instruct`](https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct)",
        "| noise schedule | progressive |",
        "apache-2.0",
    ):
        assert expected in text


def test_repush_replaces_old_shards_of_the_same_config(fake_hub, trajectories, tmp_path):
    push_trajectories(trajectories, REPO, max_shard_bytes=200)
    repo_files = fake_hub.repo(REPO, "dataset").head("main").files
    old_shards = sorted(path for path in repo_files if path.startswith("trajectories/"))
    assert len(old_shards) > 1
    smaller = make_trajectories(num_prompts=2, seed=5).select([3, 0, 1])  # an indices mapping, not a table
    push_trajectories(smaller, REPO)
    files = fake_hub.repo(REPO, "dataset").head("main").files
    assert sorted(path for path in files if path.startswith("trajectories/")) == [
        "trajectories/train-00000-of-00001.parquet"
    ]
    assert _load(REPO, "trajectories", tmp_path).to_dict() == smaller.to_dict()


def test_failed_commit_leaves_the_repo_untouched_and_raises(fake_hub, trajectories, training_data):
    push_trajectories(trajectories, REPO)
    before = dict(fake_hub.repo(REPO, "dataset").head("main").files)
    fake_hub.fail_commits_with = 500
    with pytest.raises(HfHubHTTPError):
        push_training_data(training_data, REPO)
    assert fake_hub.repo(REPO, "dataset").head("main").files == before


def test_a_dataset_that_is_not_ours_is_refused_naming_the_missing_columns(fake_hub):
    foreign = datasets.Dataset.from_dict({"prompt_id": [0], "text": ["hello"]})
    with pytest.raises(HubPushError, match=r"lacks columns \['block_index', 'prefix_ids', 'states', 'output_ids'\]"):
        push_trajectories(foreign, REPO)
    with pytest.raises(HubPushError, match="as training_data it lacks columns"):
        push_dataset(foreign, REPO)
    assert fake_hub.requests == []


def test_kind_is_detected_and_checked(fake_hub, trajectories, training_data):
    with pytest.raises(HubPushError, match=r"kind must be one of \['training_data', 'trajectories'\]"):
        push_dataset(trajectories, REPO, kind="trajectory")
    with pytest.raises(HubPushError, match="as training_data it lacks"):
        push_dataset(trajectories, REPO, kind="training_data")
    push_dataset(training_data, REPO)
    assert "training_data/train-00000-of-00001.parquet" in fake_hub.repo(REPO, "dataset").head("main").files


def test_block_size_must_match_the_rows(fake_hub, trajectories):
    with pytest.raises(HubPushError, match="block_size=8 was given but the rows hold blocks of 4"):
        push_trajectories(trajectories, REPO, block_size=8)
    mixed = datasets.concatenate_datasets([trajectories, make_trajectories(block_size=5)])
    with pytest.raises(HubPushError, match="do not share one whole block size"):
        push_trajectories(mixed, REPO)
    broken = make_training_data(trajectories).map(lambda row: {"prompt_length": row["prompt_length"] + 1})
    with pytest.raises(HubPushError, match="do not share one whole block size"):
        push_training_data(broken, REPO)
    assert fake_hub.requests == []


def test_no_token_is_refused_with_login_instructions(no_token, trajectories):
    with pytest.raises(HubPushError, match="hf auth login"):
        push_trajectories(trajectories, REPO)
    assert no_token.requests == []


@pytest.mark.parametrize("repo_id", ["a/b/c", "tester/bad name", "", "tester/..x", None])
def test_malformed_repo_id_is_refused(fake_hub, trajectories, repo_id):
    with pytest.raises(HubPushError, match="repo_id"):
        push_trajectories(trajectories, repo_id)
    assert fake_hub.requests == []


def test_empty_dataset_and_bad_split_are_refused(fake_hub, trajectories):
    with pytest.raises(HubPushError, match="empty"):
        push_trajectories(trajectories.select([]), REPO)
    with pytest.raises(HubPushError, match="split must be a name like 'train'"):
        push_trajectories(trajectories, REPO, split="train/extra")
    assert fake_hub.requests == []


def test_a_bare_repo_name_goes_to_the_token_owner_namespace(fake_hub, trajectories):
    push_trajectories(trajectories, "bare-data")
    card = DatasetCard(fake_hub.file_content("tester/bare-data", "README.md", "dataset").decode())
    assert 'load_dataset("tester/bare-data", "trajectories", split="train")' in card.text
