"""Where a request comes from: the client and scheme behind trusted proxies, and whether a
state-changing request was sent by a page of another site.

Browsers name the page's origin in `Origin` on every cross-origin POST/PUT/PATCH/DELETE (and
`Referer` when a page sets no stricter policy), so a write naming another site is that site
driving a visitor's browser — with the visitor's cookie, or, without accounts, as the local
owner. Scripts (curl, SDKs) send neither header and keep working with their credentials.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """'HTTP://Example.com:80/page' → 'http://example.com'; None for anything that is not an
    http(s) origin ('null', file:, a bare path)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:  # a port out of range, a broken IPv6 literal
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}")


def own_origins(scheme: str, host: str) -> frozenset[str]:
    """The studio's origin as this request names it (scheme + Host header). When the request came
    in as plain http, the https origin of the same host counts too: that is a share tunnel or a
    proxy ending TLS in front, and only whoever holds the certificate for this host name can
    serve a page there. The reverse (an http page writing to the https studio) never counts."""
    origins = {normalize_origin(f"{scheme}://{host}")}
    if scheme == "http":
        origins.add(normalize_origin(f"https://{host}"))
    return frozenset(o for o in origins if o)


def foreign_origin(method: str, headers: Mapping[str, str], own: Iterable[str],
                   allowed: Iterable[str] = ()) -> str | None:
    """The other site a state-changing request comes from, or None when it may proceed.

    `headers` must answer lower-case names. Reads always proceed; so do writes that carry neither
    Origin nor Referer. `Origin: null` (sandboxed frames, data: and file: pages) is foreign."""
    if method.upper() in SAFE_METHODS:
        return None
    claimed = headers.get("origin")
    if claimed is None:
        claimed = headers.get("referer")
        if claimed is None:
            return None
    source = normalize_origin(claimed)
    if source is not None and (source in own or source in allowed):
        return None
    return claimed[:200]


class TrustedProxies:
    """The peers whose X-Forwarded-* headers are believed (`--forwarded-allow-ips`): addresses or
    networks, or '*' for any peer. Nobody by default: anyone could send those headers."""

    def __init__(self, networks: list, any_peer: bool = False):
        self.networks = networks
        self.any_peer = any_peer

    @classmethod
    def parse(cls, spec: str | Iterable[str]) -> TrustedProxies:
        items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
        networks, any_peer = [], False
        for item in (i.strip() for i in items):
            if not item:
                continue
            if item == "*":
                any_peer = True
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"'{item}' in the forwarded-allow-ips list is not an IP address or network.") from exc
        return cls(networks, any_peer)

    def __bool__(self) -> bool:
        return self.any_peer or bool(self.networks)

    def trusts(self, address: str | None) -> bool:
        if self.any_peer:
            return True
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.networks)


@dataclass(frozen=True)
class Forwarded:
    scheme: str  # http | https, as the browser used it
    host: str  # the Host the browser used (X-Forwarded-Host from a trusted proxy)
    client: str | None  # the browser's address


def forwarded(scheme: str, peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies) -> Forwarded:
    """What the browser used and who it is, believing X-Forwarded-Proto/-Host/-For only from a
    trusted peer. The client is the nearest X-Forwarded-For address that is not itself a trusted
    proxy (the entries further left are whatever the client chose to write)."""
    host = headers.get("host", "")
    if not trusted.trusts(peer):
        return Forwarded(scheme, host, peer)
    proto = _first(headers.get("x-forwarded-proto"))
    if proto in DEFAULT_PORTS:
        scheme = proto
    host = _first(headers.get("x-forwarded-host")) or host
    client = peer
    chain = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
    for address in reversed(chain):
        client = address
        if not trusted.trusts(address):
            break
    return Forwarded(scheme, host, client)


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip().lower()


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return None
