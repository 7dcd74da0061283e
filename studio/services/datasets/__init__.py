"""Datasets: uploads checked at the door, stored as a normalised copy the `datasets` library reads.

- ``uploads``  — the upload's limits, zip safety, sniffing each file's real type
- ``text``, ``images``, ``audio`` — one module per kind: parse, normalise, stats and warnings
- ``service``  — ``DatasetService``: create (atomically), list, get, delete, paths for trainers
"""

from studio.services.datasets.service import DatasetService
from studio.services.datasets.uploads import IncomingFile

__all__ = ["DatasetService", "IncomingFile"]
