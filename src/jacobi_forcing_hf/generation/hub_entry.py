"""Entry point of the exported ``custom_generate/`` folder (shipped there as ``generate.py``).

``model.generate(**inputs, custom_generate="<repo or folder>", trust_remote_code=True, decoding="jacobi_mr")`` loads
this file and calls ``generate(model=model, ...)`` with every argument of the original call; it re-enters
transformers' ``generate`` with the engine's :func:`jacobi_generate` as the decoding method. Knobs default to the
repo's ``generation_config.json`` (``decoding``, ``block_size``, ...).
"""

from transformers import GenerationMixin

from .mixin import jacobi_generate


def generate(model, *args, streamer=None, **kwargs):
    """Jacobi decoding (``decoding="jacobi_mr"`` by default) through transformers' ``custom_generate`` hook."""
    return GenerationMixin.generate(model, *args, custom_generate=jacobi_generate, jacobi_streamer=streamer, **kwargs)
