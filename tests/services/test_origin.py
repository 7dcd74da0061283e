"""Which origin a request comes from, and which writes are refused as cross-site."""

import pytest

from studio.services.origin import TrustedProxies, foreign_origin, forwarded, normalize_origin, own_origins

OWN = own_origins("http", "127.0.0.1:7860")


def test_origins_are_normalized():
    assert normalize_origin("HTTP://Example.COM:80/some/page?x=1") == "http://example.com"
    assert normalize_origin("https://example.com:443") == "https://example.com"
    assert normalize_origin("https://example.com:8443") == "https://example.com:8443"
    assert normalize_origin("http://[::1]:7860") == "http://[::1]:7860"
    for bad in ("null", "", "file:///etc/passwd", "javascript:alert(1)", "http://", "http://h:99999"):
        assert normalize_origin(bad) is None, bad


def test_reads_and_requests_without_origin_or_referer_pass():
    assert foreign_origin("GET", {"origin": "http://evil.example"}, OWN) is None
    assert foreign_origin("HEAD", {"origin": "null"}, OWN) is None
    assert foreign_origin("POST", {}, OWN) is None  # a script: curl, an SDK


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_from_another_origin_are_refused(method):
    assert foreign_origin(method, {"origin": "http://evil.example"}, OWN) == "http://evil.example"
    assert foreign_origin(method, {"origin": "null"}, OWN) == "null"  # sandboxed frames, data: pages
    assert foreign_origin(method, {"origin": "http://127.0.0.1:7861"}, OWN) is not None  # another port
    assert foreign_origin(method, {"origin": "http://127.0.0.1:7860"}, OWN) is None


def test_referer_counts_when_origin_is_absent():
    assert foreign_origin("POST", {"referer": "http://evil.example/page"}, OWN) == "http://evil.example/page"
    assert foreign_origin("POST", {"referer": "http://127.0.0.1:7860/studio/?tab=text"}, OWN) is None
    # Origin wins over Referer when both come
    assert foreign_origin("POST", {"origin": "http://127.0.0.1:7860", "referer": "http://x.example/"}, OWN) is None


def test_allowed_origins_pass():
    allowed = frozenset({"http://ok.example"})
    assert foreign_origin("POST", {"origin": "http://ok.example"}, OWN, allowed) is None
    assert foreign_origin("POST", {"origin": "http://evil.example"}, OWN, allowed) is not None


def test_tls_ended_in_front_still_counts_as_own_origin():
    # A share tunnel or proxy serves https://studio.example and forwards plain http with the same Host
    own = own_origins("http", "studio.example")
    assert foreign_origin("POST", {"origin": "https://studio.example"}, own) is None
    # ... but never the other way round: an http page may not write to the https studio
    own_tls = own_origins("https", "studio.example")
    assert foreign_origin("POST", {"origin": "http://studio.example"}, own_tls) is not None


def test_forwarded_headers_count_only_from_trusted_proxies():
    headers = {"host": "127.0.0.1:7860", "x-forwarded-proto": "https", "x-forwarded-host": "studio.example",
               "x-forwarded-for": "203.0.113.9, 10.0.0.2"}
    untrusted = forwarded("http", "10.0.0.2", headers, TrustedProxies.parse(""))
    assert (untrusted.scheme, untrusted.host, untrusted.client) == ("http", "127.0.0.1:7860", "10.0.0.2")
    trusted = forwarded("http", "10.0.0.2", headers, TrustedProxies.parse("10.0.0.2"))
    assert (trusted.scheme, trusted.host, trusted.client) == ("https", "studio.example", "203.0.113.9")
    anyone = forwarded("http", "192.0.2.1", headers, TrustedProxies.parse("*"))
    assert anyone.scheme == "https"
    # a chain of trusted proxies: the client is the nearest address that is not one of them
    chain = forwarded("http", "10.0.0.2", headers, TrustedProxies.parse("10.0.0.0/8"))
    assert chain.client == "203.0.113.9"


def test_bad_proxy_lists_are_refused():
    with pytest.raises(ValueError, match="not-an-ip"):
        TrustedProxies.parse("127.0.0.1, not-an-ip")
