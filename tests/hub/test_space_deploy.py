"""The Space folder deploys with the two ``hf`` commands of docs/hub.md (against the double on 127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_hub import serve
from huggingface_hub import SpaceCard

SPACE_FOLDER = Path(__file__).resolve().parents[2] / "examples" / "space"
HF = Path(sys.executable).parent / "hf"


def test_space_folder_deploys_with_the_documented_commands(fake_hub, tmp_path):
    card = SpaceCard.load(SPACE_FOLDER / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    commands = (
        ["repos", "create", "tester/jacobi-demo", "--repo-type", "space", "--space-sdk", "gradio"],
        ["upload", "tester/jacobi-demo", str(SPACE_FOLDER), ".", "--repo-type", "space"],
    )
    with serve(fake_hub, max_lifetime_s=300) as endpoint:
        env = {
            **os.environ,
            "HF_ENDPOINT": endpoint,
            "HF_TOKEN": fake_hub.token,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(tmp_path / "home"),
        }
        for command in commands:
            result = subprocess.run([str(HF), *command], env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
    files = fake_hub.repo("tester/jacobi-demo", "space").head("main").files
    assert {"README.md", "app.py", "requirements.txt"} <= set(files)
    assert fake_hub.file_content("tester/jacobi-demo", "app.py", "space") == (SPACE_FOLDER / "app.py").read_bytes()
