"""Why a cluster request failed, in one line that says what to do: the port speaks the other protocol,
the certificate is not trusted, the password is wrong, the user lacks a permission."""

from __future__ import annotations

import re
import socket
import ssl

from opensearchpy import AuthenticationException, AuthorizationException, TransportError
from opensearchpy import ConnectionError as OpenSearchConnectionError

from ko_sparse.opensearch.client import CA_CERTS_ENV, PASSWORD_ENV, USER_ENV, ClusterConnection, parse_host

PERMISSION = re.compile(r"no permissions for \[([^\]]+)\] and User \[name=([^,\]]+)")


def explain(connection: ClusterConnection, error: Exception) -> str | None:
    """One line on what to do about a connection, auth or transport error; None for any other error."""
    if isinstance(error, OpenSearchConnectionError):
        return connection_failure(connection, error)
    if isinstance(error, AuthenticationException):
        return unauthorized(connection)
    if isinstance(error, AuthorizationException):
        return forbidden(connection, error)
    if isinstance(error, TransportError):
        answer = f"{connection.url} answered {error.status_code}: {error.info or error.error}"
        return heap_full(connection, error) or answer
    return None


def speaks_tls(hostname: str, port: int, timeout: float = 5.0) -> bool | None:
    """Whether ``hostname:port`` completes a TLS handshake; None when nothing answers there."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((hostname, port), timeout=timeout) as raw:
            try:
                with context.wrap_socket(raw, server_hostname=hostname):
                    return True
            except (ssl.SSLError, ConnectionError):
                return False
    except OSError:
        return None


def connection_failure(connection: ClusterConnection, error: Exception) -> str:
    """A connection-level failure: protocol mismatch, untrusted certificate, or nothing listening."""
    hostname, port, use_ssl = parse_host(connection.host)
    url, text = connection.url, str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip() or "not trusted"
        if "match" in reason or "mismatch" in reason:
            return f"the certificate of {url} is not valid for {hostname!r} ({reason}): connect by a name it lists"
        where = (
            f"it is not signed by the CA in --ca-certs {connection.ca_certs}"
            if connection.ca_certs
            else f"give the CA that signed it with --ca-certs FILE.pem (or ${CA_CERTS_ENV})"
        )
        return (
            f"the certificate of {url} is not trusted ({reason}): {where}. --insecure would skip the check; "
            "ko-sparse never does that unless you ask"
        )
    tls = speaks_tls(hostname, port)
    if tls is True and not use_ssl:
        return f"{url} speaks HTTPS, not HTTP: use --host https://{hostname}:{port}"
    if tls is False and use_ssl:
        return f"{url} speaks plain HTTP, not HTTPS: use --host http://{hostname}:{port}"
    return (
        f"cannot reach {url} ({error.__class__.__name__}); is OpenSearch running? "
        "For a local node: opensearch/local.sh start"
    )


def unauthorized(connection: ClusterConnection) -> str:
    if connection.user is None:
        return (
            f"{connection.url} answered 401 Unauthorized: it needs a user; give --user (or ${USER_ENV}) and the "
            f"password in ${PASSWORD_ENV} or at the prompt"
        )
    return (
        f"{connection.url} answered 401 Unauthorized: wrong password for user {connection.user!r} "
        f"(or no such user); check ${PASSWORD_ENV}"
    )


def forbidden(connection: ClusterConnection, error: TransportError) -> str:
    """Name the refused action and the user, as the security plugin reports them."""
    reason = _reason(error)
    found = PERMISSION.search(reason)
    if not found:
        return f"{connection.url} answered 403 Forbidden: {reason}"
    action, user = found.groups()
    if action.startswith("cluster:admin/opensearch/ml/"):
        hint = "it needs ML-Commons permissions (e.g. the ml_full_access role)"
    elif action.startswith("cluster:admin/settings"):
        hint = "changing cluster settings (--configure-cluster) needs a cluster administrator"
    else:
        hint = "ask for a role that grants it"
    return f"{connection.url} answered 403 Forbidden: user {user!r} may not run {action}; {hint}"


def heap_full(connection: ClusterConnection, error: TransportError) -> str | None:
    """A 429 from the parent circuit breaker (the JVM heap is full), said with the settings that govern it."""
    if error.status_code != 429 or "circuit_breaking_exception" not in str(error.info or error.error):
        return None
    return (
        f"{connection.url} answered 429: the node's JVM heap is full ({_reason(error)}). The parent circuit "
        "breaker (indices.breaker.total.limit, 95% of the heap by default) refused the request; uploading "
        "and deploying a large model needs heap while the chunks pass through: give the node a larger heap "
        "(-Xmx in config/jvm.options or OPENSEARCH_JAVA_OPTS; opensearch/local.sh: KO_SPARSE_OPENSEARCH_HEAP), "
        "or re-run when it has collected its garbage"
    )


def _reason(error: TransportError) -> str:
    info = error.info if isinstance(error.info, dict) else {}
    detail = info.get("error", info)
    if isinstance(detail, dict):
        return str(detail.get("reason") or detail)
    return str(detail or error.error)
