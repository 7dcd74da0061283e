"""Compressed exports (job kind `export`, engines/text/export.py): what the studio checks before the
job starts — the quantisation runs on this device, the sparsity is in range, an adapter's base model
is still here — and the adapter copied into the run folder, so the child never meets a bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from studio.services.errors import Invalid, NotFound

EXPORT_COLUMNS = ["model", "compression", "size MB (original)", "tokens/s bs1 (original)",
                  "perplexity (original)", "held-out", "folder"]


class ExportService:
    def __init__(self, text: Any, data_dir: Path, device: str, jobs: Any = None):
        self.text = text  # the TextService: resolves a model + adapter the way generation does
        self.data_dir = data_dir
        self.device = device
        self.jobs = jobs  # the JobService, for the finished exports' metrics

    def table(self) -> list[list[str]]:
        """One row per completed export, newest first: each figure beside the uncompressed model's."""
        rows = []
        for job in self.jobs.list() if self.jobs is not None else []:
            m = job.get("metrics") or {}
            if job["kind"] != "export" or job["status"] != "completed" or "size_mb" not in m:
                continue
            model = job.get("base_model") or ""
            compression = f"{job['params'].get('quantization', '?')}, {float(job['params'].get('sparsity', 0)):.0%} pruned"
            rows.append([
                model, compression, f"{m['size_mb']:.2f} ({m['size_mb_original']:.2f})",
                f"{m['tokens_per_s']:.1f} ({m['tokens_per_s_original']:.1f})",
                f"{m['perplexity']:.3f} ({m['perplexity_original']:.3f}, {m['perplexity_delta_pct']:+.2f} %)",
                "dataset" if job.get("dataset_id") else "built-in lines", f"models/trained/{job['id']}",
            ])
        return rows

    def prepare(self, base_model: str | None, params: dict[str, Any], run_folder: Path) -> str:
        """The `export` preparer: 422 with the reason for an input the job cannot honour, else the
        base model id (with the adapter, if any, copied to inputs/adapter)."""
        from engines.text.export import quantization_support

        why_not = quantization_support(str(params.get("quantization")), self.device)
        if why_not:
            raise Invalid(f"export: {why_not}", code="unsupported_quantization")
        adapter = params.get("adapter") or None
        if adapter is None:
            spec, _ = self.text.resolve(base_model, None)
            return spec.id
        row = self.text.adapter_row(adapter)  # 404 for an adapter that does not exist at all
        try:
            spec, row = self.text.resolve(base_model, adapter)
        except NotFound as exc:  # the adapter is here, the model it was trained on is not
            raise Invalid(f"export: adapter '{adapter}' was trained on '{row['base_model']}', which is no longer "
                          f"available ({exc}). Restore that model or pick another adapter.",
                          code="missing_base_model") from exc
        folder = self.data_dir / row["path"]
        if not folder.is_dir():
            raise Invalid(f"export: adapter '{adapter}' has no files at {row['path']}.")
        shutil.copytree(folder, run_folder / "inputs" / "adapter")
        return spec.id
