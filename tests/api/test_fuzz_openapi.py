"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis).

Two passes with a fixed budget: a visitor hammering the generation routes (held to small
per-request limits so the budget goes into variety, not into big images), and an admin
hammering everything else. No request may produce a 5xx or a response that breaks the
documented schema."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from studio.config import RequestLimits, StudioConfig

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
ADMIN = ("admin", "fuzz-admin-pass")
SMALL = RequestLimits(max_new_tokens=8, text_outputs=2, image_steps=2, image_pixels=64 * 64, image_outputs=2,
                      speech_chars=200, gan_outputs=2)


def _app():
    from studio.app import build_app

    data = Path(tempfile.mkdtemp(prefix="studio-fuzz-")) / "data"
    config = StudioConfig(data_dir=data, offline=True, accounts=[ADMIN], guest_access="generate", limits=SMALL)
    return build_app(config, ui=False)


APP = _app()  # built at collection (cheap: no model loads); its lifespan runs in the fixture below
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def running_studio():
    from fastapi.testclient import TestClient

    with TestClient(APP) as client:  # job monitor and hub state around the fuzzing; shut down after
        # Build and load the starter models once, so the fuzzing budget goes to requests.
        client.post("/api/v1/text/generate", json={"prompt": "warm", "max_new_tokens": 1})
        client.post("/api/v1/image/generate", json={"prompt": "warm", "steps": 1})
        client.post("/api/v1/speech/generate", json={"text": "warm"})
        yield


FUZZ = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
ADMIN_HEADERS = {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}


@pytest.mark.slow
@schema.include(path_regex=r"/(text|image|speech|gan)/|/compare$|/feedback$").parametrize()
@FUZZ
def test_visitor_generation_routes(case):
    case.call_and_validate(checks=CHECKS, timeout=120)


@pytest.mark.slow
@schema.exclude(path_regex=r"/(text|image|speech|gan)/|/compare$").parametrize()
@FUZZ
def test_admin_routes(case):
    case.call_and_validate(checks=CHECKS, headers=ADMIN_HEADERS, timeout=120)


# The dialects the field's clients speak: fuzzed as a visitor (an admin's checkpoint switch is a 403).
openai_schema = schemathesis.openapi.from_asgi("/v1/openapi.json", APP)
a1111_schema = schemathesis.openapi.from_asgi("/sdapi/v1/openapi.json", APP)


@pytest.mark.slow
@openai_schema.parametrize()
@FUZZ
def test_openai_dialect(case):
    case.call_and_validate(checks=CHECKS, timeout=120)


@pytest.mark.slow
@a1111_schema.parametrize()
@FUZZ
def test_a1111_dialect(case):
    case.call_and_validate(checks=CHECKS, timeout=120)
