"""The connection options of every command that talks to a cluster, declared once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import click

from ko_sparse.opensearch.client import CONNECTION_OPTIONS, ClusterConnection, resolve

CONNECTION = "ko_sparse.connection"  # the click context's meta key for the command's cluster connection


@dataclass(frozen=True)
class ClusterOptions:
    """What the user gave; :meth:`connection` resolves the environment and asks for a password."""

    host: str | None
    user: str | None
    ca_certs: str | None
    insecure: bool

    def connection(self) -> ClusterConnection:
        """The resolved connection, also kept on the click context for the CLI's error messages."""
        try:
            connection = resolve(
                self.host, self.user, self.ca_certs, self.insecure, lambda text: click.prompt(text, hide_input=True)
            )
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        click.get_current_context().meta[CONNECTION] = connection
        return connection


def cluster_options(command: Callable) -> Callable:
    """Add ``--host``, ``--user``, ``--ca-certs`` and ``--insecure``; the command gets ``cluster: ClusterOptions``."""

    @functools.wraps(command)
    def with_cluster(*args, host, user, ca_certs, insecure, **kwargs):
        return command(*args, cluster=ClusterOptions(host, user, ca_certs, insecure), **kwargs)

    for option in reversed(CONNECTION_OPTIONS):
        extra = {"is_flag": True} if option.is_flag else {"metavar": option.flag.strip("-").upper().replace("-", "_")}
        if option.flag == "--ca-certs":
            extra["type"] = click.Path(exists=True, dir_okay=False)
        with_cluster = click.option(option.flag, help=option.help, **extra)(with_cluster)
    return with_cluster
