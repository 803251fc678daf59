"""Pushing checkpoints: weights, tokenizer, Jacobi defaults and custom_generate survive the trip, in one commit."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError
from sample_models import tiny_tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

import jacobi_forcing_hf as jf
from jacobi_forcing_hf.generation.export import ENGINE_MODULES
from jacobi_forcing_hf.hub import HubPushError, prepare_checkpoint_folder, push_checkpoint
from tiny_models import build_tiny_model, random_prompts

REPO = "tester/tiny-jacobi"
KNOBS = {"decoding": "jacobi_mr", "block_size": 8, "num_blocks": 3, "pool_size": 2, "activation_ratio": 0.5}
NEW_TOKENS = 24


@pytest.fixture
def model():
    return build_tiny_model("llama")


@pytest.fixture
def prompt():
    input_ids = random_prompts(2, 6)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def _greedy(model, prompt):
    return model.generate(**prompt, max_new_tokens=NEW_TOKENS, do_sample=False)


def _jacobi_stats_with(model, prompt, **knobs):
    jf.enable_jacobi(model).generate(**prompt, max_new_tokens=NEW_TOKENS, **knobs)
    return model.jacobi_stats


def _reload(repo_id, tmp_path):
    return AutoModelForCausalLM.from_pretrained(repo_id, cache_dir=tmp_path / "reload")


def test_checkpoint_round_trip_keeps_weights_tokenizer_and_decoding_defaults(fake_hub, model, prompt, tmp_path):
    push_checkpoint(model, tiny_tokenizer(), REPO, generation_defaults=KNOBS)
    assert fake_hub.commit_count(REPO) == 2  # the repo's initial commit and the push
    files = fake_hub.repo(REPO).head("main").files
    assert files["model.safetensors"].lfs_oid is not None  # weights went through LFS
    assert {f"custom_generate/{name}.py" for name in ENGINE_MODULES} | {"custom_generate/generate.py"} <= set(files)

    reloaded = _reload(REPO, tmp_path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor)
    assert {knob: getattr(reloaded.generation_config, knob) for knob in KNOBS} == KNOBS
    tokenizer = AutoTokenizer.from_pretrained(REPO, cache_dir=tmp_path / "reload")
    assert tokenizer("t5 t9 t64")["input_ids"] == [5, 9, 64]
    assert tokenizer.eos_token_id == 1 and tokenizer.pad_token_id == 0

    reference = _greedy(model, prompt)
    assert torch.equal(_greedy(reloaded, prompt), reference)  # plain transformers ignores the extra knobs
    by_default = jf.enable_jacobi(reloaded).generate(**prompt, max_new_tokens=NEW_TOKENS)
    assert torch.equal(by_default, reference)
    # the reloaded defaults are exactly KNOBS: same forwards and acceptance as passing them explicitly
    assert reloaded.jacobi_stats == _jacobi_stats_with(build_tiny_model("llama"), prompt, **KNOBS)
    assert reloaded.jacobi_stats != _jacobi_stats_with(build_tiny_model("llama"), prompt, decoding="jacobi_mr")


def test_a_local_ngram_table_is_left_out_of_the_pushed_defaults(fake_hub, model, prompt, tmp_path):
    table = jf.NgramTable.from_sequences(random_prompts(2, 20).tolist(), min_count=1).save(tmp_path / "table.json")
    model.generation_config.ngram_table = str(table)
    push_checkpoint(model, tiny_tokenizer(), REPO, generation_defaults=KNOBS)
    reloaded = _reload(REPO, tmp_path)
    assert getattr(reloaded.generation_config, "ngram_table", None) is None
    assert torch.equal(jf.enable_jacobi(reloaded).generate(**prompt, max_new_tokens=NEW_TOKENS), _greedy(model, prompt))


def test_custom_generate_from_the_repo_decodes_without_enable_jacobi(fake_hub, model, prompt, tmp_path):
    push_checkpoint(model, tiny_tokenizer(), REPO, generation_defaults=KNOBS)
    reloaded = _reload(REPO, tmp_path)
    output = reloaded.generate(**prompt, max_new_tokens=NEW_TOKENS, custom_generate=REPO, trust_remote_code=True)
    assert torch.equal(output, _greedy(model, prompt))
    # the repo's engine copy has its own JacobiStats class: compare the recorded values
    assert vars(reloaded.jacobi_stats) == vars(_jacobi_stats_with(build_tiny_model("llama"), prompt, **KNOBS))


def test_model_card_carries_base_model_recipe_results_and_usage(fake_hub, model, tmp_path):
    from trl import SFTConfig

    training_config = SFTConfig(output_dir=str(tmp_path / "run"), learning_rate=3e-5, num_train_epochs=2, use_cpu=True)
    results = {"humaneval": {"pass@1": 0.25, "tpf": 2.5, "tokens_per_second": 40.0}}
    push_checkpoint(
        model,
        tiny_tokenizer(),
        REPO,
        results=results,
        training_config=training_config,
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        hardware="1x H100",
        datasets="tester/jacobi-data",  # one id as a plain string is fine too
        generation_defaults=KNOBS,
        license="apache-2.0",
    )
    card = ModelCard(fake_hub.file_content(REPO, "README.md").decode())
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {"jacobi-forcing", "trl", "custom_generate"} <= set(card.data.tags)
    assert card.data.datasets == ["tester/jacobi-data"]
    assert card.data["jacobi_forcing"]["generation"] == KNOBS
    recipe = card.data["jacobi_forcing"]["training"]
    assert recipe["learning_rate"] == 3e-5 and recipe["num_train_epochs"] == 2
    assert not {"output_dir", "accelerator_config", "debug", "logging_dir"} & set(recipe)
    metrics = {(r.dataset_name, r.metric_type): r for r in card.data.eval_results}
    assert metrics[("HumanEval", "tpf")].metric_value == 2.5
    assert metrics[("HumanEval", "pass@1")].dataset_type == "openai/openai_humaneval"
    assert metrics[("HumanEval", "tokens_per_second")].metric_config == "1x H100"
    assert f'custom_generate="{REPO}", trust_remote_code=True' in card.text
    assert "model = jf.enable_jacobi(model)" in card.text
    assert "| `block_size` | `8` |" in card.text
    assert "| HumanEval | tokens per forward (TPF) | 2.5 |" in card.text


def test_peft_adapter_push_and_reload_with_its_decoding_defaults(fake_hub, prompt, tmp_path):
    from peft import LoraConfig, get_peft_model

    push_checkpoint(build_tiny_model("llama"), tiny_tokenizer(), "tester/tiny-base")
    base = _reload("tester/tiny-base", tmp_path)
    adapted = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    push_checkpoint(adapted, tiny_tokenizer(), "tester/tiny-lora", generation_defaults={"block_size": 6})
    files = set(fake_hub.repo("tester/tiny-lora").head("main").files)
    assert {"adapter_model.safetensors", "adapter_config.json", "generation_config.json"} <= files
    assert "model.safetensors" not in files
    card = ModelCard(fake_hub.file_content("tester/tiny-lora", "README.md").decode())
    assert card.data.library_name == "peft" and card.data.base_model == "tester/tiny-base"
    assert 'GenerationConfig.from_pretrained("tester/tiny-lora")' in card.text

    # as the card's snippet does: transformers loads base + adapter, then this repo's generation config
    reloaded = _reload("tester/tiny-lora", tmp_path)
    reloaded.generation_config = GenerationConfig.from_pretrained("tester/tiny-lora", cache_dir=tmp_path / "g")
    assert reloaded.generation_config.block_size == 6
    reference = adapted.generate(**prompt, max_new_tokens=NEW_TOKENS, do_sample=False)
    remote = reloaded.generate(
        **prompt, max_new_tokens=NEW_TOKENS, custom_generate="tester/tiny-lora", trust_remote_code=True
    )
    assert torch.equal(remote, reference)
    assert torch.equal(jf.enable_jacobi(reloaded).generate(**prompt, max_new_tokens=NEW_TOKENS), reference)


def test_folder_push_skips_scratch_files_and_a_repush_removes_stale_shards(fake_hub, model, tmp_path):
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, max_shard_size="40KB")
    tiny_tokenizer().save_pretrained(sharded)
    for scratch in (".hidden", "checkpoint-5/optimizer.pt", "runs/events.out", "_tmp.json"):
        (sharded / scratch).parent.mkdir(parents=True, exist_ok=True)
        (sharded / scratch).write_text("scratch")
    push_checkpoint(sharded, None, REPO)
    files = set(fake_hub.repo(REPO).head("main").files)
    shards = {path for path in files if path.startswith("model-0")}
    assert len(shards) > 1 and "model.safetensors.index.json" in files
    assert not files & {".hidden", "checkpoint-5/optimizer.pt", "runs/events.out", "_tmp.json"}

    single = tmp_path / "single"
    model.save_pretrained(single)
    push_checkpoint(single, tiny_tokenizer(), REPO)
    files = set(fake_hub.repo(REPO).head("main").files)
    assert "model.safetensors" in files and not files & (shards | {"model.safetensors.index.json"})
    reloaded = _reload(REPO, tmp_path)
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_prepare_checkpoint_folder_serves_a_trainer_output_dir(fake_hub, model, tmp_path):
    output_dir = tmp_path / "output"
    model.save_pretrained(output_dir)
    tiny_tokenizer().save_pretrained(output_dir)
    card = prepare_checkpoint_folder(
        output_dir, REPO, model=model, training_config={"learning_rate": 1e-4}, generation_defaults={"block_size": 4}
    )
    assert (output_dir / "README.md").read_text() == str(card)
    assert (output_dir / "custom_generate" / "generate.py").is_file()
    assert GenerationConfig.from_pretrained(output_dir).block_size == 4
    # what Trainer.push_to_hub then does: upload the output folder in one commit
    HfApi().create_repo(REPO)
    HfApi().upload_folder(folder_path=output_dir, repo_id=REPO)
    assert _reload(REPO, tmp_path).generation_config.block_size == 4


def test_failed_commit_leaves_the_repo_untouched_and_raises(fake_hub, model):
    HfApi().create_repo(REPO)
    fake_hub.fail_commits_with = 503
    with pytest.raises(HfHubHTTPError):
        push_checkpoint(model, tiny_tokenizer(), REPO)
    assert list(fake_hub.repo(REPO).head("main").files) == [".gitattributes"]


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda folder, model: model.save_pretrained(folder) or (folder / "generation_config.json").unlink(),
         "has no generation_config.json"),
        (lambda folder, model: folder.mkdir(), "neither config.json nor adapter_config.json"),
        (lambda folder, model: None, "does not exist"),
    ],
)  # fmt: skip
def test_incomplete_checkpoint_folders_are_refused_before_uploading(fake_hub, model, tmp_path, prepare, message):
    folder = tmp_path / "checkpoint"
    prepare(folder, model)
    with pytest.raises(HubPushError, match=message):
        push_checkpoint(folder, tiny_tokenizer(), REPO)
    assert fake_hub.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokenizer": None}, "No tokenizer to push"),
        ({"generation_defaults": {"block_size": 0}}, "block_size must be an integer >= 1"),
        ({"generation_defaults": {"blocksize": 4}}, "unknown Jacobi decoding arguments"),
        ({"generation_defaults": {"decoding": "lookahead"}}, "decoding='lookahead' is not supported"),
        ({"results": {"humaneval": {"tpf": "fast"}}}, r"results\['humaneval'\]\['tpf'\] must be a number"),
        ({"results": [0.5]}, "results must map a benchmark to its metrics"),
        ({"training_config": 3}, "training_config must be a mapping or a config dataclass"),
        ({"repo_id": "tester/a/b"}, "is not a valid Hub repo id"),
        ({"model_or_folder": 42}, "must be a transformers/PEFT model or the path"),
    ],
)
def test_bad_arguments_are_refused_before_uploading(fake_hub, model, kwargs, message):
    arguments = {"model_or_folder": model, "tokenizer": tiny_tokenizer(), "repo_id": REPO, **kwargs}
    with pytest.raises(HubPushError, match=message):
        push_checkpoint(**arguments)
    assert fake_hub.requests == []


def test_no_token_is_refused_with_login_instructions(no_token, model):
    with pytest.raises(HubPushError, match="hf auth login"):
        push_checkpoint(model, tiny_tokenizer(), REPO)
    assert no_token.requests == []


def test_a_bare_repo_name_goes_to_the_token_owner_namespace(fake_hub, model):
    push_checkpoint(model, tiny_tokenizer(), "bare-name")
    card = ModelCard(fake_hub.file_content("tester/bare-name", "README.md").decode())
    assert 'custom_generate="tester/bare-name"' in card.text  # the snippet names the full repo id
