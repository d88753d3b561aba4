"""Outbound HTTP from the service (webhooks, model endpoints), guarded against SSRF.

A URL a project owner types in is fetched by the server, so it must not reach what only the
server can reach: link-local addresses (169.254.0.0/16, fe80::/10) where cloud providers serve
instance metadata and credentials, and the named metadata hosts. Loopback and private networks
stay allowed: a model endpoint or a webhook receiver on the same host or LAN is the common case.
``Settings.outbound_allow`` lists hosts or networks that may be reached regardless (an
internal service that happens to sit on a link-local address).

The host is resolved and *every* address it resolves to is checked, so a DNS name pointing at
169.254.169.254 is refused like the literal address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from labelwise.errors import LabelwiseError

__all__ = ["BLOCKED_HOSTS", "OutboundURLError", "check_outbound_url"]

BLOCKED_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_BLOCKED_NETS = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, AWS/GCP/Azure metadata
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::/32"),  # AWS IPv6 metadata (fd00:ec2::254)
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("0.0.0.0/32"),
)


class OutboundURLError(LabelwiseError):
    """A URL the service will not send requests to (scheme, host or resolved address)."""


def _allowed(host: str, addrs: Sequence[str], allow: Sequence[str]) -> bool:
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host:
            return True
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addrs and all(ipaddress.ip_address(a) in net for a in addrs):
            return True
    return False


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OutboundURLError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    except UnicodeError as exc:  # the idna codec: an empty or too long label ("a..b")
        raise OutboundURLError(f"host {host!r} is not a valid host name ({exc})") from None
    return sorted({info[4][0].split("%")[0] for info in infos})


def check_outbound_url(url: str, allow: Sequence[str] = (), *, resolve: bool = True) -> str:
    """Check that the service may send requests to ``url``; return it unchanged.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL with a host.
    allow : sequence of str
        Host names or networks (``"169.254.10.0/24"``) reachable even if blocked by default.
    resolve : bool
        Resolve the host and check every address (default). ``False`` checks only the literal
        host, for validating a URL whose host is not resolvable yet.

    Raises
    ------
    OutboundURLError
        If the scheme is not http(s), the host is missing, a cloud metadata name, or resolves to
        a link-local or metadata address not in ``allow``.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # "http://[::1", "http://[zz]/"
        raise OutboundURLError(f"URL {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundURLError(f"URL {url!r} must start with http:// or https://")
    host = (hostname or "").lower().rstrip(".")
    if not host:
        raise OutboundURLError(f"URL {url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundURLError(f"URL {url!r} has an invalid port") from None
    try:
        literal = [str(ipaddress.ip_address(host))]
    except ValueError:
        literal = []
    if host in BLOCKED_HOSTS:
        if _allowed(host, [], allow):
            return url
        raise OutboundURLError(
            f"URL host {host!r} is a cloud metadata service; requests to it are refused "
            "(add it to LABELWISE_OUTBOUND_ALLOW to allow it)"
        )
    addrs = literal or (_resolve(host, port) if resolve else [])
    if _allowed(host, addrs, allow):
        return url
    for a in addrs:
        ip = ipaddress.ip_address(a)
        mapped = getattr(ip, "ipv4_mapped", None)
        for candidate in (ip, mapped) if mapped else (ip,):
            if any(candidate in net for net in _BLOCKED_NETS if net.version == candidate.version):
                raise OutboundURLError(
                    f"URL host {host!r} resolves to {a}, a link-local or cloud metadata "
                    "address; requests to it are refused (add it to LABELWISE_OUTBOUND_ALLOW "
                    "to allow it)"
                )
    return url
