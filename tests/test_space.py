"""The Space demo (examples/space/app.py): greedy and jacobi_mr side by side, identical texts, honest counts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio")

sys.path.insert(0, str(Path(__file__).parent / "hub"))

from sample_models import tiny_tokenizer

from tiny_models import build_tiny_model

APP = Path(__file__).resolve().parents[1] / "examples" / "space" / "app.py"


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("space_app", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_compare_decodes_identically_and_counts_forwards_one_way(app):
    import jacobi_forcing_hf as jf

    model = jf.enable_jacobi(build_tiny_model("llama"))
    model.generation_config.decoding = "jacobi_mr"  # like a pushed Jacobi model: the baseline must stay greedy
    tokenizer = tiny_tokenizer()
    greedy, jacobi, verdict, stats = app.compare(model, tokenizer, "t5 t9 t17 t33", 8, 2, 4, 0.85, 20)
    assert greedy == jacobi and len(greedy.split()) == 20
    assert verdict.startswith("✅ **Identical**")
    greedy_row, jacobi_row = (dict(zip(stats["headers"], row)) for row in stats["data"])
    assert greedy_row["method"] == "greedy" and greedy_row["forwards"] == greedy_row["new tokens"] == 20
    assert greedy_row["tokens per forward"] == 1.0
    # the forward hook counts exactly the engine's own forward count
    assert jacobi_row["forwards"] == model.jacobi_stats.forwards
    assert jacobi_row["new tokens"] == 20


def test_on_a_cpu_the_app_uses_onednn_and_the_cpu_knobs_unless_the_model_has_its_own(app):
    import torch

    import jacobi_forcing_hf as jf
    from jacobi_forcing_hf.generation.config import CPU_KNOBS
    from jacobi_forcing_hf.onednn import uses_onednn_linear

    untrained = app.prepare_for_cpu(jf.enable_jacobi(build_tiny_model("llama")))
    assert uses_onednn_linear(untrained) == torch.backends.mkldnn.is_available()
    assert {knob: getattr(untrained.generation_config, knob) for knob in CPU_KNOBS} == CPU_KNOBS
    trained = jf.enable_jacobi(build_tiny_model("llama"))
    trained.generation_config.block_size = 16  # a Jacobi Forcing checkpoint keeps the block size it was trained at
    assert app.prepare_for_cpu(trained).generation_config.block_size == 16
    greedy, jacobi, verdict, _ = app.compare(untrained, tiny_tokenizer(), "t5 t9 t17 t33", 4, 2, 8, 0.85, 20)
    assert greedy == jacobi and verdict.startswith("✅ **Identical**")


@pytest.mark.slow
def test_space_answers_through_gradio_client(app):
    from gradio_client import Client

    demo = app.build_demo(*app.load_model())  # the embedded SmolLM2-135M-Instruct, Jacobi Forcing adapter merged
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        greedy, jacobi, verdict, stats = client.predict(
            "Write a haiku about the sea.", 8, 2, 4, 0.85, 16, api_name="/compare"
        )
    finally:
        demo.close()
    assert greedy.strip() and greedy == jacobi
    assert "Identical" in verdict
    rows = {row[0]: dict(zip(stats["headers"], row)) for row in stats["data"]}
    assert set(rows) == {"greedy", "jacobi_mr"}
    assert rows["greedy"]["new tokens"] == rows["jacobi_mr"]["new tokens"] > 0
    assert rows["greedy"]["forwards"] == rows["greedy"]["new tokens"]
    assert 0 < rows["jacobi_mr"]["forwards"] <= rows["greedy"]["forwards"]
    assert rows["greedy"]["tokens/s"] > 0 and rows["jacobi_mr"]["tokens/s"] > 0
