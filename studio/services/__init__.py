"""The service layer: the one place each behaviour lives, used by both the UI and the REST API."""

from studio.services.studio import Studio

__all__ = ["Studio"]
