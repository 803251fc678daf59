"""The Hub double is faithful: real huggingface_hub and datasets client code runs against it end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import huggingface_hub
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


def test_create_repo_then_conflict_unless_exist_ok(fake_hub):
    api = HfApi()
    url = api.create_repo("tester/model-a")
    assert url.repo_id == "tester/model-a"
    assert api.list_repo_files("tester/model-a") == [".gitattributes"]
    with pytest.raises(HfHubHTTPError) as error:
        api.create_repo("tester/model-a")
    assert error.value.response.status_code == 409
    assert api.create_repo("tester/model-a", exist_ok=True).repo_id == "tester/model-a"
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("tester/missing")


def test_commit_with_regular_and_lfs_files_round_trips_through_download(fake_hub, tmp_path):
    api = HfApi()
    api.create_repo("tester/model-b")
    weights = os.urandom(4096)
    info = api.create_commit(
        "tester/model-b",
        operations=[
            CommitOperationAdd("notes/readme.txt", b"plain text"),
            CommitOperationAdd("model.safetensors", weights),
        ],
        commit_message="two files",
    )
    assert fake_hub.commit_count("tester/model-b") == 2  # the initial commit and ours
    assert info.oid == api.repo_info("tester/model-b").sha
    # the weights went through the LFS batch API and a PUT to storage, the text file inline in the commit
    assert list(fake_hub.lfs_objects.values()) == [weights]
    assert any(method == "PUT" and path.startswith("/lfs-objects/") for method, path in fake_hub.requests)
    cache = tmp_path / "cache"
    text = huggingface_hub.hf_hub_download("tester/model-b", "notes/readme.txt", cache_dir=cache)
    blob = huggingface_hub.hf_hub_download("tester/model-b", "model.safetensors", cache_dir=cache)
    assert Path(text).read_bytes() == b"plain text"
    assert Path(blob).read_bytes() == weights
    lfs_file = next(f for f in api.list_repo_tree("tester/model-b", recursive=True) if f.path == "model.safetensors")
    assert lfs_file.lfs is not None and lfs_file.lfs.size == len(weights)


def test_commit_against_a_stale_parent_is_refused(fake_hub):
    api = HfApi()
    api.create_repo("tester/model-c")
    parent = api.repo_info("tester/model-c").sha
    api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id="tester/model-c")
    with pytest.raises(HfHubHTTPError) as error:
        api.create_commit(
            "tester/model-c", [CommitOperationAdd("b.txt", b"2")], commit_message="late", parent_commit=parent
        )
    assert error.value.response.status_code == 412
    assert api.list_repo_files("tester/model-c") == [".gitattributes", "a.txt"]


def test_writes_need_a_valid_token(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HfHubHTTPError) as error:
        HfApi().create_repo("tester/model-d")
    assert error.value.response.status_code == 401


def test_dataset_push_to_hub_then_load_dataset_round_trips_two_configs(fake_hub, tmp_path):
    first = datasets.Dataset.from_dict({"ids": [[1, 2], [3]], "text": ["a", "b"]})
    second = datasets.Dataset.from_dict({"value": [1.5, 2.5, 3.5]})
    first.push_to_hub("tester/data", config_name="first")
    second.push_to_hub("tester/data", config_name="second")
    loaded_first = datasets.load_dataset("tester/data", "first", split="train", cache_dir=str(tmp_path / "ds"))
    loaded_second = datasets.load_dataset("tester/data", "second", split="train", cache_dir=str(tmp_path / "ds"))
    assert loaded_first.to_dict() == first.to_dict()
    assert loaded_first.features == first.features
    assert loaded_second.to_dict() == second.to_dict()
    # parquet shards are LFS files on the Hub
    repo_files = HfApi().list_repo_tree("tester/data", repo_type="dataset", recursive=True)
    shards = [f for f in repo_files if f.path.endswith(".parquet")]
    assert len(shards) == 2 and all(f.lfs is not None for f in shards)


def test_unchanged_files_are_not_committed_again(fake_hub):
    api = HfApi()
    api.create_repo("tester/model-e")
    operations = [CommitOperationAdd("a.txt", b"same"), CommitOperationAdd("w.safetensors", b"\0" * 64)]
    api.create_commit("tester/model-e", operations=operations, commit_message="first")
    operations = [CommitOperationAdd("a.txt", b"same"), CommitOperationAdd("w.safetensors", b"\0" * 64)]
    api.create_commit("tester/model-e", operations=operations, commit_message="again")
    # preupload reported the remote oids, so the client skipped the empty commit
    assert fake_hub.commit_count("tester/model-e") == 2


def test_a_commit_pointing_to_a_missing_lfs_object_is_rejected(fake_hub):
    HfApi().create_repo("tester/model-f")
    lines = [
        {"key": "header", "value": {"summary": "sneaky", "description": ""}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 10}},
    ]
    response = huggingface_hub.get_session().post(
        f"{huggingface_hub.constants.ENDPOINT}/api/models/tester/model-f/commit/main",
        content=b"".join(json.dumps(line).encode() + b"\n" for line in lines),
        headers={"Authorization": f"Bearer {fake_hub.token}", "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 422
    assert fake_hub.commit_count("tester/model-f") == 1
