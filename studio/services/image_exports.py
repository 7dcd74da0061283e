"""One-file Stable Diffusion checkpoints (job kind `image-export`, engines/image/export.py): the finished
exports as the Models tab lists them, and the file a download hands out — only ever the one file a
completed export job wrote, found through the job's metrics, never a path from the request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.services.errors import NotFound

IMAGE_EXPORT_COLUMNS = ["job", "model", "precision", "size MB (original folder)", "max pixel diff (0-255)",
                        "file", "download"]


class ImageExportService:
    def __init__(self, jobs: Any, data_dir: Path):
        self.jobs = jobs  # the JobService: the exports are its completed `image-export` jobs
        self.data_dir = Path(data_dir)

    def list(self) -> list[dict[str, Any]]:
        """The completed exports, newest first: job id, model, precision, sizes, the check's result."""
        out = []
        for job in self.jobs.list():
            m = job.get("metrics") or {}
            if job["kind"] == "image-export" and job["status"] == "completed" and "file" in m:
                out.append({"job_id": job["id"], "download": f"/api/v1/image-exports/{job['id']}/file", **m})
        return out

    def table(self) -> list[list[str]]:
        return [[e["job_id"], e["base_model"], e["precision"], f"{e['size_mb']:.2f} ({e['size_mb_original']:.2f})",
                 f"{e['max_pixel_diff']:.2f}", e["file"], e["download"]] for e in self.list()]

    def file(self, job_id: str) -> Path:
        """The checkpoint of a completed `image-export` job; 404 for anything else."""
        job = self.jobs.get(job_id)  # 404 for an unknown id
        m = job.get("metrics") or {}
        if job["kind"] != "image-export" or job["status"] != "completed" or "file" not in m:
            raise NotFound(f"Job '{job_id}' is not a completed image-export job; start one with "
                           "POST /api/v1/jobs {\"kind\": \"image-export\"} and wait for it to complete.")
        path = (self.data_dir / "models" / "trained" / job["id"] / Path(m["file"]).name)
        if not path.is_file():
            raise NotFound(f"The file of export '{job_id}' is gone (was its folder deleted?). Run the export again.")
        return path
