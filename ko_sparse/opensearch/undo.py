"""A journal of what a run changed on a cluster, undone in reverse order when the run fails."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class Undo:
    """Steps record what they created or changed and how to take it back; on any exception leaving the
    ``with`` block (Ctrl-C too) the records are undone, newest first, each line reported through ``report``.
    Undoing is best effort: a step that cannot be undone is reported and the rest still run."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.steps: list[tuple[str, Callable[[], object]]] = []

    def record(self, what: str, undo: Callable[[], object]) -> None:
        """``what`` was done (e.g. "uploaded model X"); ``undo()`` takes it back."""
        self.steps.append((what, undo))

    def roll_back(self) -> None:
        while self.steps:
            what, undo = self.steps.pop()
            try:
                undo()
            except Exception as error:  # the run's own error matters more: say so and go on
                self.report(f"could not undo: {what} ({error})")
            else:
                self.report(f"undone: {what}")

    def __enter__(self) -> Undo:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is not None and self.steps:
            self.report("the run failed; undoing what it changed")
            self.roll_back()
