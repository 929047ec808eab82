"""Connections to an OpenSearch cluster with opensearch-py; credentials never come from arguments."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from opensearchpy import OpenSearch

PASSWORD_ENV = "OPENSEARCH_PASSWORD"


def parse_host(host: str) -> tuple[str, int, bool]:
    """``localhost:9200``, ``http://h:9200`` or ``https://h`` -> (hostname, port, use_ssl)."""
    parsed = urlparse(host if "://" in host else f"http://{host}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"--host {host!r}: expected HOST:PORT or http(s)://HOST:PORT")
    use_ssl = parsed.scheme == "https"
    return parsed.hostname, parsed.port or (443 if use_ssl else 9200), use_ssl


def connect(
    host: str,
    user: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
    insecure: bool = False,
    timeout: int = 120,
) -> OpenSearch:
    """A client for ``host``; with ``user``, the password comes from the caller (env or prompt)."""
    hostname, port, use_ssl = parse_host(host)
    auth = None
    if user is not None:
        password = password if password is not None else os.environ.get(PASSWORD_ENV)
        if password is None:
            raise ValueError(f"--user {user!r} needs a password: set {PASSWORD_ENV} or answer the prompt")
        auth = (user, password)
    return OpenSearch(
        hosts=[{"host": hostname, "port": port}],
        http_auth=auth,
        use_ssl=use_ssl,
        verify_certs=use_ssl and not insecure,
        ssl_show_warn=not insecure,
        ca_certs=ca_certs,
        timeout=timeout,
        http_compress=False,
    )
