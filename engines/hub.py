"""Is the model hub reachable, and which hub models are already in the local cache?

Offline is an argument, never a process setting: loaders are handed the cached folder of a hub model
(`cached_folder`) or told `local_files_only`, so nothing here writes `HF_HUB_OFFLINE`."""

from __future__ import annotations

import os
import urllib.error
import urllib.request


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def probe_hub(timeout_s: float = 3.0, endpoint: str | None = None) -> bool:
    """True when the hub answers HTTP at all within `timeout_s` (any status); never hangs longer."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = (endpoint or hub_endpoint()) + "/api/whoami-v2"
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "aigc-studio"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):  # noqa: S310 - fixed https endpoint
            return True
    except urllib.error.HTTPError:
        return True  # it answered (401/404 …): reachable
    except (OSError, ValueError):
        return False


def is_cached(repo_id: str, filename: str) -> bool:
    """Whether `filename` of `repo_id` is in the local hub cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:
        return False
    return isinstance(found, str)


def cached_folder(repo_id: str, filename: str) -> str | None:
    """The local snapshot folder of `repo_id` in the hub cache (the folder that holds `filename`, a
    file at the repository's root), or None when it is not cached. Loading from it never touches
    the network."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:
        return None
    return os.path.dirname(found) if isinstance(found, str) else None
