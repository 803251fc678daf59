"""Fixtures of the Hub tests: the in-memory Hub double plugged into the real ``huggingface_hub`` client."""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
import huggingface_hub
import pytest
from huggingface_hub import constants
from huggingface_hub.utils._http import default_client_factory

sys.path.insert(0, str(Path(__file__).parent))

from fake_hub import FakeHub
from sample_data import make_training_data, make_trajectories


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """A fresh in-memory Hub behind huggingface_hub's shared HTTP client, a valid token, private caches.

    ``HF_HUB_DISABLE_XET`` and the cache locations are read by huggingface_hub when it is imported, so the
    fixture sets the resulting module constants (as the environment variables would have).
    """
    hub = FakeHub()
    monkeypatch.setenv("HF_TOKEN", hub.token)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    huggingface_hub.set_client_factory(hub.client_factory)
    yield hub
    huggingface_hub.set_client_factory(default_client_factory)


@pytest.fixture
def no_token(fake_hub, monkeypatch):
    """The same Hub, but the user never logged in: no HF_TOKEN and no token file."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    return fake_hub


@pytest.fixture
def trajectories():
    return make_trajectories()


@pytest.fixture
def training_data(trajectories):
    return make_training_data(trajectories)
