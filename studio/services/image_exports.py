"""One-file Stable Diffusion checkpoints (job kind `image-export`, engines/image/export.py): the finished
exports as the Models tab lists them, and the file a download hands out — only ever the one file a
completed export job wrote, found through the job's metrics, never a path from the request."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from studio.services.errors import Invalid, NotFound

IMAGE_EXPORT_COLUMNS = ["job", "model", "precision", "size MB (original folder)", "max pixel diff (0-255)",
                        "file", "download"]


class ImageExportService:
    def __init__(self, jobs: Any, data_dir: Path, image: Any = None):
        self.jobs = jobs  # the JobService: the exports are its completed `image-export` jobs
        self.data_dir = Path(data_dir)
        self.image = image  # the ImageService: resolves a model + LoRA the way generation does

    def prepare(self, base_model: str | None, params: dict[str, Any], run_folder: Path) -> str | None:
        """The `image-export` preparer: with a `lora`, 404/422 unless it is an image LoRA of the base model
        (whose files are here), then the LoRA copied to inputs/lora and the base model id it was trained on."""
        lora = params.get("lora") or None
        if lora is None:
            return base_model
        row = self.image.lora_row(lora)  # 404 listing the image LoRAs
        spec, row = self.image.resolve(base_model, row["id"])  # 422 when it was trained on another model
        folder = self.data_dir / row["path"]
        if not folder.is_dir():
            raise Invalid(f"image-export: LoRA '{lora}' has no files at {row['path']}; import it again or pick another.")
        shutil.copytree(folder, run_folder / "inputs" / "lora")
        params["lora"] = row["id"]
        return spec.id

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
