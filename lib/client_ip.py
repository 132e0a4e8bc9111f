"""The address a request really comes from, for per-address limits.

Behind a reverse proxy REMOTE_ADDR is the proxy's address, so every client shares one counter and one
attacker's failures lock out everybody. `TRUSTED_PROXY_COUNT` (settings; 1 when BEHIND_PROXY is set)
says how many proxies of ours stand in front: each appends the address it received the request from
to X-Forwarded-For, so the client is the entry that many places from the right. Entries further left
were written by the client itself and are never trusted.
"""
from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote  # not sent through all our proxies: the header cannot be trusted
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
