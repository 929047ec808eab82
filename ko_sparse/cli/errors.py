"""Turn ko-sparse's input errors into one-line CLI errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from ko_sparse.errors import DataError, ModelLoadError
from ko_sparse.opensearch.client import DEFAULT_HOST, ClusterConnection
from ko_sparse.train.config import ConfigError

USER_ERRORS = (ConfigError, DataError, ModelLoadError)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report configuration, data and model errors as ``Error: ...`` with exit code 2."""
    try:
        yield
    except USER_ERRORS as error:
        raise click.UsageError(str(error)) from error


@contextmanager
def cluster_errors(connection: ClusterConnection | str) -> Iterator[None]:
    """Cluster failures as one-line errors that say what to do (exit code 1, no traceback)."""
    from opensearchpy import AuthenticationException, AuthorizationException, TransportError
    from opensearchpy import ConnectionError as OpenSearchConnectionError

    from ko_sparse.bench.opensearch_systems import BulkIndexError
    from ko_sparse.export.package import PackagingError
    from ko_sparse.opensearch.diagnosis import connection_failure, forbidden, heap_full, unauthorized
    from ko_sparse.opensearch.preflight import ClusterNotReady
    from ko_sparse.opensearch.register import RegistrationError

    if isinstance(connection, str):
        connection = ClusterConnection(connection or DEFAULT_HOST)
    try:
        yield
    except OpenSearchConnectionError as error:
        raise click.ClickException(connection_failure(connection, error)) from error
    except AuthenticationException as error:
        raise click.ClickException(unauthorized(connection)) from error
    except AuthorizationException as error:
        raise click.ClickException(forbidden(connection, error)) from error
    except TransportError as error:
        answer = f"{connection.url} answered {error.status_code}: {error.info or error.error}"
        raise click.ClickException(heap_full(connection, error) or answer) from error
    except (RegistrationError, ClusterNotReady, PackagingError, BulkIndexError) as error:
        raise click.ClickException(str(error)) from error
