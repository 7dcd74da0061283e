"""Builds the one server: the REST API at /api/v1 and the Gradio UI at /, over one Studio."""

from __future__ import annotations

import contextlib
import os
import tempfile

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from studio.config import StudioConfig
from studio.services import Studio

API_PREFIX = "/api/v1"


def _keep_files_in_data_dir(config: StudioConfig) -> None:
    """Temp files (uploads, Gradio's cache) go under the data dir, never elsewhere."""
    tmp = config.data_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "gradio")
    tempfile.tempdir = str(tmp)


def build_app(config: StudioConfig, *, ui: bool = True) -> FastAPI:
    """The ASGI app. Nothing heavy happens here: models load on first use."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    _keep_files_in_data_dir(config)
    studio = Studio(config)

    from studio.api.app import create_api

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        studio.start()
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

    app.mount(API_PREFIX, create_api(studio))
    # The dialects the field's clients speak, over the same services.
    from studio.api.openai_compat import create_openai_api

    app.mount("/v1", create_openai_api(studio))
    from studio.api.a1111 import create_a1111_api

    app.mount("/sdapi/v1", create_a1111_api(studio))
    if ui:
        import gradio as gr

        from studio.ui import CSS_PATH, build_ui, session

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
            allowed_paths=[str(config.data_dir / "outputs"), str(config.data_dir / "datasets"),
                           str(config.data_dir / "runs")],
            root_path=config.root_path or None,
            server_name=config.host,
            server_port=config.port,
        )
    return app
