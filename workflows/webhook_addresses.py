"""Where webhooks may be sent: https (http only where ALLOW_HTTP_CALLBACKS says so, for
development) to public addresses only, so that a callback URL cannot make the worker
reach this machine, the private network or the cloud's metadata service (SSRF).

Checked twice: when a callback URL is saved (``validate_callback_url``) and again at
each delivery (``CheckedTransport``), since a name that resolved to a public address at
save time may resolve to 127.0.0.1 later (DNS rebinding). At delivery the name is
resolved once, every address is checked, and the connection goes to a checked address;
the Host header and TLS's server name stay the URL's name.

``WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` lifts the address checks (not the scheme's): for a
receiver on this machine in development and in tests, never in production.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ValidationError

# Cloud metadata services: AWS/GCP/Azure/OpenStack, AWS's IPv6 one, Alibaba's.
METADATA_ADDRESSES = frozenset(map(ipaddress.ip_address, (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200")))
# Names that mean this machine or the metadata service whatever DNS says.
LOCAL_NAMES = ("localhost", "metadata.google.internal", "metadata")


class AddressRefused(Exception):
    """The callback URL would reach an address webhooks may not go to."""


def _http_allowed() -> bool:
    return getattr(settings, "ALLOW_HTTP_CALLBACKS", False)


def _private_allowed() -> bool:
    return getattr(settings, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)


def address_problem(address: str) -> str | None:
    """Why a webhook may not go to ``address`` (an IP, v4 or v6), or None if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for wrong, words in (("is_loopback", "a loopback address (this machine)"),
                         ("is_unspecified", "an unspecified address (this machine)"),
                         ("is_link_local", "a link-local address"),
                         ("is_multicast", "a multicast address"),
                         ("is_reserved", "a reserved address"),
                         ("is_private", "a private network address")):
        if getattr(ip, wrong):
            return words
    if not ip.is_global:
        return "not a public address"
    return None


def scheme_problem(url: str) -> str | None:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and _http_allowed()):
        return None
    if scheme == "http":
        return ("Callback URLs must use https: the resolution is sent to them. "
                "(Plain http is for development only: ALLOW_HTTP_CALLBACKS.)")
    return f"Callback URLs must use https, not {scheme or 'no scheme'}."


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def checked_addresses(host: str, port: int) -> list[str]:
    """The addresses to connect to for ``host``; AddressRefused if any one is refused
    (a name with one private address among public ones is refused as a whole)."""
    host = host.strip("[]")
    if not _private_allowed() and _is_local_name(host):
        raise AddressRefused(f"{host} names this machine or a metadata service: webhooks "
                             "go to public addresses only.")
    addresses = resolve(host, port)
    if not _private_allowed():
        for address in addresses:
            if problem := address_problem(address):
                shown = f"{host} is" if host == address else f"{host} resolves to {address},"
                raise AddressRefused(f"{shown} {problem}: webhooks go to public "
                                     "addresses only.")
    return addresses


def _is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host in LOCAL_NAMES or host.endswith(".localhost")


def validate_callback_url(url: str) -> None:
    """At save: refuse a callback URL a webhook may not be sent to, saying why.

    A name that does not resolve now is let through (its receiver may not exist yet):
    each delivery checks again.
    """
    if not url:
        return
    if problem := scheme_problem(url):
        raise ValidationError(problem, code="callback_scheme")
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValidationError("The callback URL names no host.", code="callback_host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        checked_addresses(parts.hostname, port)
    except AddressRefused as exc:
        raise ValidationError(f"The callback URL is refused: {exc}",
                              code="callback_address") from None
    except (OSError, ValueError, UnicodeError):
        return  # does not resolve (now): checked again when a webhook is sent


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves the name itself, checks every address, and connects to a checked one:
    what was checked is what is connected to (no second lookup to rebind)."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        failure: Exception | None = None
        for address in checked_addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout=timeout,
                                           local_address=local_address,
                                           socket_options=socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} resolves to no address")


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting only to checked addresses (see the module)."""

    def __init__(self):
        super().__init__()
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                             network_backend=_CheckedBackend())
