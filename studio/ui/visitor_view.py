"""A page fitted to who opens it: admin-only controls shown to admins only, sliders capped at a
non-admin's request limits. The tabs mark their controls (`common.admin_only`, `common.visitor_cap`);
this finds the marks once, when the page is built."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from studio.services import Studio
from studio.services.auth import User


def cap_value(studio: Studio, limit: str, step: float | None) -> float:
    """The most a non-admin may ask for; image sides come from the pixel limit (a square image)."""
    limits = studio.config.limits
    if limit == "image_side":
        side = int(limits.image_pixels ** 0.5)
        return side - side % int(step or 1)
    return getattr(limits, limit)


def role_updates(studio: Studio, demo: gr.Blocks) -> tuple[list, Callable[[User], list]]:
    """(the marked blocks, user → their updates): visibility for admin-only controls, the maximum
    (and a value within it) for capped sliders."""
    blocks = list(demo.blocks.values())
    admin_only = [b for b in blocks if getattr(b, "studio_admin_only", False)]
    capped = [b for b in blocks if getattr(b, "studio_visitor_cap", None)]

    def for_user(user: User) -> list:
        updates = [gr.update(visible=user.is_admin) for _ in admin_only]
        for slider in capped:
            if user.is_admin:
                updates.append(gr.update(maximum=slider.maximum))
                continue
            top = cap_value(studio, slider.studio_visitor_cap, slider.step)
            updates.append(gr.update(maximum=min(slider.maximum, top), value=min(slider.value, top)))
        return updates

    return [*admin_only, *capped], for_user
