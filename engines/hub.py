"""Is the model hub reachable, and which hub models are already in the local cache?"""

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


def go_offline() -> None:
    """Make every library in this process (and its children) skip the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:  # huggingface_hub reads the variable at import; update its constant too
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except Exception:  # pragma: no cover
        pass
