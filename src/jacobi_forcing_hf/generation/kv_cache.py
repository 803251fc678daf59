"""KV-cache operations of the engine: keep the winning branch's entries, crop the rest, drop finished rows.

Only ``DynamicCache`` with full-attention ``DynamicLayer`` layers is supported: its entries can be cropped and moved.
Sliding-window, static, quantized or offloaded caches are refused up front with a clear error.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class UnsupportedCacheError(ValueError):
    """The model's cache cannot be cropped and rearranged, so Jacobi decoding cannot run on it."""


def check_cache_supported(cache: object) -> DynamicCache:
    """Return ``cache`` if Jacobi decoding can use it, else raise ``UnsupportedCacheError`` saying why."""
    if not isinstance(cache, DynamicCache):
        raise UnsupportedCacheError(
            f"Jacobi decoding needs a DynamicCache it can crop, got {type(cache).__name__}. "
            "Call generate without cache_implementation (the default DynamicCache) and with use_cache=True."
        )
    for index, layer in enumerate(cache.layers):
        if type(layer) is not DynamicLayer:
            raise UnsupportedCacheError(
                f"Jacobi decoding needs full-attention cache layers; layer {index} is {type(layer).__name__} "
                "(sliding-window and other layer caches cannot be cropped and rearranged)."
            )
    if getattr(cache, "offloading", False):
        raise UnsupportedCacheError("Jacobi decoding does not support an offloaded cache.")
    return cache


def keep_verified_entries(
    cache: DynamicCache, start: int, *, added: int, kept: int, keep_index: torch.Tensor | None = None
) -> None:
    """After a forward appended ``added`` entries at ``start``, keep ``kept`` verified ones from ``start`` on.

    ``keep_index`` (B, kept) holds, for each row, the query positions whose entries survive, in order; None means
    they already are the first ``kept`` ones (the draft chain won). Only the kept entries are moved (a gather of
    ``kept`` tokens per layer), never the whole cache; everything after them is cropped.
    """
    if keep_index is not None:
        for layer in cache.layers:
            for name in ("keys", "values"):
                tensor = getattr(layer, name)
                heads, dim = tensor.shape[1], tensor.shape[3]
                index = keep_index[:, None, :, None].expand(-1, heads, -1, dim)
                tensor[:, :, start : start + kept] = tensor[:, :, start : start + added].gather(2, index)
    if added > kept:
        cache.crop(-(added - kept))


def select_rows(cache: DynamicCache, rows: torch.Tensor) -> None:
    """Keep only ``rows`` of the batch (finished rows stop costing compute)."""
    cache.batch_select_indices(rows)
