"""The public share link, when the internet allows one; never a crash or a hang when it does not."""

from __future__ import annotations

import logging
import threading

from studio.config import StudioConfig

log = logging.getLogger("studio.share")


def start_share_link(config: StudioConfig, timeout_s: float = 15.0) -> threading.Thread:
    """Open Gradio's share tunnel to the local server in the background and print the link."""

    def run() -> None:
        try:
            from gradio import networking

            url = networking.setup_tunnel(
                local_host="127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host,
                local_port=config.port,
                share_token=__import__("secrets").token_urlsafe(32),
                share_server_address=None,
                share_server_tls_certificate=None,
            )
            print(f"Public share link: {url}", flush=True)
        except Exception as exc:  # no internet, blocked, or the tunnel binary is missing
            print(
                f"Share link unavailable ({type(exc).__name__}: {exc}). The studio keeps serving locally.",
                flush=True,
            )

    thread = threading.Thread(target=run, name="share-link", daemon=True)
    thread.start()
    return thread
