"""Offline fallback: an unreachable hub is detected within seconds and starter models are used."""

import socket
import threading
import time

from engines import hub
from studio.config import StudioConfig
from studio.services.models import ModelService
from studio.store import Store


def silent_server():
    """A loopback server that accepts connections and never answers (a hung hub)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    return srv, stop, f"http://127.0.0.1:{srv.getsockname()[1]}"


def test_probe_gives_up_quickly_on_a_hung_hub(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    srv, stop, url = silent_server()
    try:
        t0 = time.monotonic()
        assert hub.probe_hub(timeout_s=1.0, endpoint=url) is False
        assert time.monotonic() - t0 < 3
    finally:
        stop.set()
        srv.close()


def test_probe_fails_fast_on_a_closed_port(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    assert hub.probe_hub(timeout_s=2.0, endpoint=f"http://127.0.0.1:{port}") is False
    assert time.monotonic() - t0 < 2


def test_unreachable_hub_falls_back_to_starter_models(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: nothing cached
    srv, stop, url = silent_server()
    monkeypatch.setenv("HF_ENDPOINT", url)
    try:
        config = StudioConfig(data_dir=tmp_path / "data", hub_probe_timeout_s=1.0)
        service = ModelService(config, Store(config.data_dir / "studio.db"))
        t0 = time.monotonic()
        service.start_hub_probe()
        spec = service.resolve(None, "text")
        assert time.monotonic() - t0 < 5
        assert spec.source == "starter" and spec.id == "starter/gpt2-tiny"
        assert service.offline is True
        assert "cannot be reached" in service.offline_banner()
        listing = service.list_models()
        assert [m["id"] for m in listing["image"]] == ["starter/sd-tiny", "starter/sd-shapes"]
    finally:
        stop.set()
        srv.close()


def test_online_lists_hub_defaults(tmp_path, monkeypatch):
    """When the hub answers, the real models are the defaults (nothing is downloaded by listing)."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(401)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        config = StudioConfig(data_dir=tmp_path / "data", hub_probe_timeout_s=2.0)
        service = ModelService(config, Store(config.data_dir / "studio.db"))
        assert service.offline is False
        assert service.resolve(None, "text").id == "openai-community/gpt2"
        assert service.resolve(None, "speech").id == "facebook/mms-tts-eng"
        assert service.offline_banner() is None
    finally:
        server.shutdown()


def test_offline_a_cached_hub_model_loads_from_its_cached_folder(tmp_path, monkeypatch):
    """Offline is an argument: the registry hands loaders the cached folder, not the hub id, so no
    loader asks the hub — and nothing sets HF_HUB_OFFLINE for the whole process."""
    import huggingface_hub.constants

    from engines.registry import ModelRegistry

    snapshot = tmp_path / "hub" / "models--openai-community--gpt2" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--openai-community--gpt2" / "refs").mkdir()
    (tmp_path / "hub" / "models--openai-community--gpt2" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    offline = ModelRegistry(tmp_path / "models", offline=True)
    spec = offline.resolve("openai-community/gpt2", "text")
    assert offline.location(spec) == str(snapshot)
    online = ModelRegistry(tmp_path / "models", offline=False)
    assert online.location(online.resolve("openai-community/gpt2", "text")) == "openai-community/gpt2"
