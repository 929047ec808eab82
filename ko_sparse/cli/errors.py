"""Turn ko-sparse's input errors into one-line CLI errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from ko_sparse.errors import DataError, ModelLoadError
from ko_sparse.opensearch.client import PASSWORD_ENV
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
def cluster_errors(host: str) -> Iterator[None]:
    """Cluster failures as one-line errors that say what to do."""
    from opensearchpy import AuthenticationException, AuthorizationException, TransportError
    from opensearchpy import ConnectionError as OpenSearchConnectionError

    from ko_sparse.bench.opensearch_systems import BulkIndexError
    from ko_sparse.export.package import PackagingError
    from ko_sparse.opensearch.register import RegistrationError

    try:
        yield
    except OpenSearchConnectionError as error:
        raise click.ClickException(
            f"cannot reach {host} ({error.__class__.__name__}); is OpenSearch running? "
            "For a local node: opensearch/local.sh start"
        ) from error
    except AuthenticationException as error:
        raise click.ClickException(f"{host} answered 401 Unauthorized: check --user and {PASSWORD_ENV}") from error
    except AuthorizationException as error:
        raise click.ClickException(
            f"{host} answered 403 Forbidden: the user needs ML-Commons permissions (ml_full_access) "
            f"and cluster-settings rights for --configure-cluster ({error.info})"
        ) from error
    except TransportError as error:
        raise click.ClickException(f"{host} answered {error.status_code}: {error.info or error.error}") from error
    except (RegistrationError, PackagingError, BulkIndexError) as error:
        raise click.ClickException(str(error)) from error
