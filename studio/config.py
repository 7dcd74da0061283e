"""The studio's settings: one dataclass built from the command line (or by tests directly)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]
GuestAccess = Literal["none", "generate"]


@dataclass
class UploadLimits:
    """Limits on dataset uploads; each is configurable (tests shrink them)."""

    max_total_bytes: int = 512 * 1024 * 1024  # all files of one upload, compressed
    max_files: int = 10_000  # files per upload, zip entries included
    max_uncompressed_bytes: int = 2 * 1024 * 1024 * 1024  # a zip's declared total, before extraction
    max_compression_ratio: float = 200.0  # zip-bomb guard: uncompressed / compressed per entry
    max_image_pixels: int = 64 * 1024 * 1024  # width × height, decompression-bomb guard
    max_text_chars: int = 200_000  # characters in one text row / document
    max_audio_seconds: float = 600.0  # one clip


@dataclass
class RequestLimits:
    """What a non-admin may ask for in one request on a shared studio (admins are not limited)."""

    max_new_tokens: int = 256
    text_outputs: int = 4
    image_steps: int = 30
    image_pixels: int = 768 * 768
    image_outputs: int = 4
    image_grid_cells: int = 16  # images of one X/Y/Z plot
    speech_chars: int = 5_000
    score_chars: int = 20_000  # text scored for perplexity (POST /text/perplexity)
    gan_outputs: int = 16
    gan_frames: int = 16  # frames of one latent walk


@dataclass
class StudioConfig:
    host: str = "127.0.0.1"  # loopback unless accounts are set
    port: int = 7860
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("STUDIO_DATA_DIR", "studio-data")))
    offline: bool = False  # never contact a hub; auto-set when the hub is unreachable
    device: DeviceChoice = "auto"
    share: bool = False
    accounts: list[tuple[str, str]] = field(default_factory=list)  # (user, password or hash); first is admin
    guest_access: GuestAccess = "none"
    insecure: bool = False
    root_path: str = ""  # URL prefix behind a reverse proxy ("" = served at /)
    # proxies whose X-Forwarded-Proto/-Host/-For are believed (IPs or networks, "*" = any); none by default
    forwarded_allow_ips: list[str] = field(default_factory=list)
    # other origins (scheme://host[:port]) allowed to send state-changing requests, e.g. a separate front end
    allowed_origins: list[str] = field(default_factory=list)
    memory_budget_gb: float | None = None  # None: derived from the device
    hub_probe_timeout_s: float = 3.0
    uploads: UploadLimits = field(default_factory=UploadLimits)
    limits: RequestLimits = field(default_factory=RequestLimits)
    max_running: int = 2  # generation requests processed at once
    max_per_user: int = 2  # requests one non-admin may have running or waiting
    max_queue: int = 32  # requests waiting before new ones are told the studio is busy
    image_content_filter: bool = True  # run the safety checker where a model ships one
    max_concurrent_jobs: int = 1  # training jobs this process runs at a time (0: none, a serving replica)
    database_url: str | None = None  # None: SQLite in the data dir; postgresql://… for replicas
    job_grace_s: float = 10.0  # SIGTERM → SIGKILL grace period on cancel
    job_lease_s: float = 30.0  # a replica renews its jobs' leases; another settles them once one lapses
    # numeric precision per engine kind: auto | fp32 | bf16 | fp16 (see engines/precision.py);
    # auto = reduced precision where the device runs it fast (bf16-capable CPUs, any CUDA GPU)
    # kind → the model an admin picked as the default (A1111's checkpoint switch); unlisted → the usual default
    default_models: dict[str, str] = field(default_factory=dict)
    # name → (OpenAI API root, the server's model name): text models served elsewhere, listed as
    # `remote/<name>`; the key, if the server wants one, comes from STUDIO_REMOTE_KEY_<NAME>
    remote_text: dict[str, tuple[str, str]] = field(default_factory=dict)
    precision: dict[str, str] = field(
        default_factory=lambda: {"text": "auto", "image": "auto", "speech": "fp32"}
    )

    def __post_init__(self) -> None:
        from engines.precision import normalize

        self.data_dir = Path(self.data_dir).resolve()
        self.precision = {"text": "auto", "image": "auto", "speech": "fp32"} | {
            kind: normalize(choice) for kind, choice in self.precision.items()
        }

    @property
    def shared_data_dir(self) -> bool:
        """Whether other replicas may use this data dir too (they share a PostgreSQL database)."""
        return bool(self.database_url) and self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def auth_enabled(self) -> bool:
        return bool(self.accounts)
