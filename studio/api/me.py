"""Who the caller is, for whatever credential came: HTTP Basic, an API token or the sign-in cookie."""

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from studio.api.deps import current_user
from studio.services.auth import User

router = APIRouter(tags=["account"])


class Me(BaseModel):
    user: str
    role: Literal["admin", "user", "guest"]


@router.get("/me", response_model=Me)
def me(user: User = Depends(current_user)) -> dict:
    """The account the request is made as ("local" admin when the studio has no accounts)."""
    role = "admin" if user.is_admin else "guest" if user.is_guest else "user"
    return {"user": user.name, "role": role}
