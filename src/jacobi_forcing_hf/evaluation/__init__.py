"""Evaluation harness: quality (pass@1, accuracy) and speed (TPF, tokens/s, speed-up) of decoding methods,
measured on the same prompts with the same definitions, as JSON, Markdown and PNG.

Modules, one job each: ``tasks`` (task registry, loaders, prompt formats), ``extraction`` (answers from text),
``execution`` (sandboxed code runs), ``speed`` (methods, forward counting, timing), ``quality`` / ``bench`` /
``sweep`` (the three runners), ``results_store`` (resumable JSONL), ``report`` and ``plots`` (outputs).
"""
