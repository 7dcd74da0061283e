"""Builds the one server: the REST API at /api/v1 and the Gradio UI at /, over one Studio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware

from studio.config import StudioConfig
from studio.services import Studio
from studio.services.origin import TrustedProxies, foreign_origin, forwarded, normalize_origin, own_origins

API_PREFIX = "/api/v1"


class SameOriginWrites:
    """The outermost layer, so it covers the API mount, the Gradio page's own POSTs (queue/join,
    upload, run) and the sign-in forms alike: X-Forwarded-* are believed only from trusted proxies
    (the rest of the app then sees the browser's scheme and address), and a state-changing request
    sent by a page of another site is refused, with accounts or without."""

    def __init__(self, app, proxies: TrustedProxies, allowed: frozenset[str]):
        self.app, self.proxies, self.allowed = app, proxies, allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client = scope.get("client")
        peer = client[0] if client else None
        seen = forwarded(scope.get("scheme", "http"), peer, headers, self.proxies)
        if seen.client != peer or seen.scheme != scope.get("scheme"):
            scope = dict(scope, scheme=seen.scheme, client=(seen.client, client[1] if client else 0))
        foreign = foreign_origin(scope["method"], headers, own_origins(seen.scheme, seen.host), self.allowed)
        if foreign is None:
            await self.app(scope, receive, send)
            return
        message = (f"This {scope['method']} request was sent by a page at {foreign}, not by the studio's own "
                   "page, so it was refused. Use the studio at its own address; to let a front end of "
                   "your own write to it, start the studio with --allowed-origins ORIGIN.")
        response = JSONResponse({"error": {"code": "cross_origin", "message": message}}, status_code=403)
        await response(scope, receive, send)


def build_app(config: StudioConfig, *, ui: bool = True, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """The ASGI app. Nothing heavy happens here: models load on first use (the shipped trained
    starters that are the defaults: at startup, before the server takes its first request,
    `Studio.start`; `on_ready` runs then). The process is left as it
    was — no environment variable, no `tempfile` folder: the studio's own temporary files go through
    `studio.scratch`, and Gradio's cache folder is the one setting Gradio reads from the environment
    only, which `studio.cli` sets (`gradio_cache_dir`)."""
    studio = Studio(config)

    from studio.api.app import create_api

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        studio.start()
        await asyncio.to_thread(studio.wait_warm)  # uvicorn opens its socket after this
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            studio.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio
    max_body = config.uploads.max_total_bytes + 1024 * 1024

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body:
            return JSONResponse(
                {"error": {"code": "too_large", "message": f"The request is larger than {max_body // 1024**2} MB."}},
                status_code=413,
            )
        return await call_next(request)

    allowed = frozenset(o for o in map(normalize_origin, config.allowed_origins) if o)
    api = create_api(studio)
    if allowed:  # a deliberate front end elsewhere also needs CORS to read the answers
        api = CORSMiddleware(api, allow_origins=sorted(allowed), allow_credentials=True, allow_methods=["*"],
                             allow_headers=["*"])
    app.mount(API_PREFIX, api)
    # The dialects the field's clients speak, over the same services.
    from studio.api.a1111 import create_a1111_api
    from studio.api.openai_compat import create_openai_api

    app.mount("/v1", create_openai_api(studio))
    app.mount("/sdapi/v1", create_a1111_api(studio))
    if ui:
        import gradio as gr

        from studio.ui import CSS_PATH, build_ui, session
        from studio.ui.live import LIVE_JS

        blocks = build_ui(studio)
        blocks.queue(default_concurrency_limit=1, max_size=config.max_queue)
        auth_dependency = None
        if config.auth_enabled:
            session.install(app, studio)
            auth_dependency = lambda request: session.user_id(studio, request)  # noqa: E731
        gr.mount_gradio_app(
            app,
            blocks,
            path="/",
            auth_dependency=auth_dependency,
            ssr_mode=False,
            footer_links=["api"],
            css_paths=[CSS_PATH],
            js=LIVE_JS,
            allowed_paths=[str(config.data_dir / "outputs"), str(config.data_dir / "datasets"),
                           str(config.data_dir / "runs")],
            root_path=config.root_path or None,
            server_name=config.host,
            server_port=config.port,
        )
    app.add_middleware(SameOriginWrites, proxies=TrustedProxies.parse(config.forwarded_allow_ips), allowed=allowed)
    return app
