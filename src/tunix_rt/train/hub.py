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
