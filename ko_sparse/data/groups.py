"""Groups of texts that mean the same: a text and everything paired with it, directly or through others."""

from __future__ import annotations

from collections import defaultdict


class Groups:
    """Union-find over texts."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, text: str) -> str:
        self.parent.setdefault(text, text)
        while self.parent[text] != text:
            self.parent[text] = self.parent[self.parent[text]]
            text = self.parent[text]
        return text

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def members(self) -> dict[str, set[str]]:
        groups: dict[str, set[str]] = defaultdict(set)
        for text in self.parent:
            groups[self.find(text)].add(text)
        return groups
