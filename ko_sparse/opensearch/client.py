"""Connections to an OpenSearch cluster with opensearch-py, from one set of options for every command.

Credentials come from ``--user`` (or ``OPENSEARCH_USER``) and ``OPENSEARCH_PASSWORD`` (or a prompt),
never from ``--host``: a host with ``user:password@`` is refused, and only :attr:`ClusterConnection.url`
(no credentials) is ever printed or saved.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from opensearchpy import OpenSearch

URL_ENV = "KO_SPARSE_OPENSEARCH_URL"
USER_ENV = "OPENSEARCH_USER"
PASSWORD_ENV = "OPENSEARCH_PASSWORD"
CA_CERTS_ENV = "OPENSEARCH_CA_CERTS"
DEFAULT_HOST = "localhost:9200"


@dataclass(frozen=True)
class ConnectionOption:
    """A connection setting as every command spells it (click options and the benchmarks' argparse)."""

    flag: str
    env: str | None
    help: str
    is_flag: bool = False


CONNECTION_OPTIONS = (
    ConnectionOption(
        "--host",
        URL_ENV,
        f"Cluster address: HOST:PORT or http(s)://HOST:PORT (default {DEFAULT_HOST}, or ${URL_ENV}). "
        "Never put credentials here.",
    ),
    ConnectionOption(
        "--user", USER_ENV, f"Basic-auth user (or ${USER_ENV}); the password comes from ${PASSWORD_ENV} or a prompt."
    ),
    ConnectionOption(
        "--ca-certs", CA_CERTS_ENV, f"PEM file of the CA that signed the cluster's certificate (or ${CA_CERTS_ENV})."
    ),
    ConnectionOption(
        "--insecure", None, "Do not verify the cluster's certificate (only when you ask for it).", is_flag=True
    ),
)


def parse_host(host: str) -> tuple[str, int, bool]:
    """``localhost:9200``, ``http://h:9200`` or ``https://h`` -> (hostname, port, use_ssl).

    A host with credentials (``https://user:pass@h``) is refused without repeating them.
    """
    parsed = urlparse(host if "://" in host else f"http://{host}")
    if "@" in parsed.netloc:
        raise ValueError(
            f"--host must not contain credentials (user:password@): give --user (or {USER_ENV}) and the password "
            f"in {PASSWORD_ENV} or at the prompt; nothing was sent, printed or saved"
        )
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1:
        raise ValueError(f"--host {host!r}: expected HOST:PORT or http(s)://HOST:PORT")
    use_ssl = parsed.scheme == "https"
    return parsed.hostname, port or (443 if use_ssl else 9200), use_ssl


@dataclass(frozen=True)
class ClusterConnection:
    """Where and how to connect; ``password`` is never part of ``repr`` or :attr:`url`."""

    host: str = DEFAULT_HOST
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    insecure: bool = False
    timeout: int = 120

    def __post_init__(self) -> None:
        parse_host(self.host)
        if self.user is not None and self.password is None:
            raise ValueError(f"--user {self.user!r} needs a password: set {PASSWORD_ENV} or answer the prompt")

    @property
    def url(self) -> str:
        """``scheme://host:port``: safe to print and to save."""
        hostname, port, use_ssl = parse_host(self.host)
        return f"{'https' if use_ssl else 'http'}://{hostname}:{port}"

    def client(self) -> OpenSearch:
        hostname, port, use_ssl = parse_host(self.host)
        return OpenSearch(
            hosts=[{"host": hostname, "port": port}],
            http_auth=(self.user, self.password) if self.user is not None else None,
            use_ssl=use_ssl,
            verify_certs=use_ssl and not self.insecure,
            ssl_show_warn=not self.insecure,
            ca_certs=self.ca_certs,
            timeout=self.timeout,
            http_compress=False,
        )


def resolve(
    host: str | None = None,
    user: str | None = None,
    ca_certs: str | None = None,
    insecure: bool = False,
    prompt: Callable[[str], str] | None = None,
) -> ClusterConnection:
    """The connection every command uses: options first, then ``$KO_SPARSE_OPENSEARCH_URL``,
    ``$OPENSEARCH_USER``, ``$OPENSEARCH_PASSWORD`` (else ``prompt`` asks) and ``$OPENSEARCH_CA_CERTS``."""
    user = user or os.environ.get(USER_ENV) or None
    password = os.environ.get(PASSWORD_ENV) if user else None
    if user and password is None and prompt is not None:
        password = prompt(f"Password for {user}")
    return ClusterConnection(
        host=host or os.environ.get(URL_ENV) or DEFAULT_HOST,
        user=user,
        password=password,
        ca_certs=ca_certs or os.environ.get(CA_CERTS_ENV) or None,
        insecure=insecure,
    )


def connect(host: str | None = None, **options) -> OpenSearch:
    """A client for ``host`` with the credentials of the environment (see :func:`resolve`)."""
    return resolve(host, **options).client()
