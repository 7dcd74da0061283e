"""Errors the services raise. Each carries the HTTP status and snake_case code the API answers
with, and a message that tells the user what to do. The UI shows the same message."""

from __future__ import annotations


class StudioError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(StudioError):
    status, code = 400, "bad_request"


class Unauthorized(StudioError):
    status, code = 401, "unauthorized"


class Forbidden(StudioError):
    status, code = 403, "forbidden"


def only_admins(user: object, what: str) -> Forbidden:
    """The refusal of an admin's action, in plain words and without the asker's internal id (a
    visitor's is a per-browser token)."""
    if getattr(user, "is_guest", False):
        return Forbidden(f"Only admins can {what}. Sign in with an admin account to do it.")
    return Forbidden(f"Only admins can {what}; your account is not an admin's.")


class NotFound(StudioError):
    status, code = 404, "not_found"


class Conflict(StudioError):
    status, code = 409, "conflict"


class TooLarge(StudioError):
    status, code = 413, "too_large"


class UnsupportedType(StudioError):
    status, code = 415, "unsupported_file_type"


class Invalid(StudioError):
    status, code = 422, "invalid_field"


class Busy(StudioError):
    status, code = 429, "busy"  # a full queue is not a server error: try again shortly
