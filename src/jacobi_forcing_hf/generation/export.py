"""Export the engine as a Hub ``custom_generate/`` folder, for users who have not installed this package.

The folder holds verbatim copies of this package's engine modules (they import only torch, transformers and each
other, by design) and ``hub_entry.py`` renamed to ``generate.py``. It is generated, never edited by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ENGINE_MODULES: tuple[str, ...] = (
    "config",
    "engine",
    "hooks",
    "kv_cache",
    "mixin",
    "multiblock",
    "ngram_table",
    "recycling",
    "stats",
    "tree",
)
_REQUIREMENTS = "torch\ntransformers>=5.0\n"


def write_custom_generate_folder(directory: str | Path) -> Path:
    """Write ``directory/custom_generate/`` (``generate.py`` + engine modules); return that folder.

    Afterwards ``model.generate(**inputs, custom_generate=str(directory), trust_remote_code=True)`` runs Jacobi
    decoding, and so does the same call with a Hub repo that holds the folder.
    """
    source = Path(__file__).parent
    target = Path(directory) / "custom_generate"
    target.mkdir(parents=True, exist_ok=True)
    for name in ENGINE_MODULES:
        shutil.copyfile(source / f"{name}.py", target / f"{name}.py")
    shutil.copyfile(source / "hub_entry.py", target / "generate.py")
    (target / "requirements.txt").write_text(_REQUIREMENTS)
    return target
