"""Bad rows skipped in training (`on_bad_row: skip`): each named once, in one line, and counted by kind.

Rows are found bad at two moments: when a dataset is read (the row's structure, and each image being a regular,
non-empty file within the size limit: one `stat` per distinct image) and when a batch is encoded (rendering,
tokenizing, decoding pixels), where a bad row leaves its batch and the batch trains on the rest. The first
`LISTED` bad rows of each dataset are logged one line each, the rest are counted, not listed: a run over a
dataset with 100k missing images should not print 100k lines.

What is kept is bounded by the data: at most one key per item of a dataset. A dataset whose every item turns
out bad raises instead of skipping on: a stream that finds no good row would otherwise spin forever, and
look like a hang.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from vlit.errors import VlitError

log = logging.getLogger(__name__)

LISTED = 20
"""Bad rows of one dataset logged one line each; later ones are counted."""


@dataclass
class SkippedRows:
    """The bad rows of one dataset: how many of each kind, and the first `LISTED` messages."""

    name: str
    count: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    first: list[str] = field(default_factory=list)

    def add(self, message: str, kind: str) -> None:
        """Count one bad row and log it (one line), or say once that the rest are only counted."""
        self.count += 1
        self.by_kind[kind] += 1
        if self.count <= LISTED:
            self.first.append(message)
            log.warning("%s: %s (row skipped)", self.name, message)
        elif self.count == LISTED + 1:
            log.warning("%s: more than %d bad rows; the rest are skipped and counted, not listed", self.name,
                        LISTED)

    def summary(self) -> str:
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.by_kind.items()))
        return f"{self.name}: skipped {self.count} bad row(s) ({kinds})"


class BatchSkips:
    """The items found bad while encoding batches, per dataset; each is named once however often it is drawn
    again (every epoch draws it again)."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = dict(sizes)
        self.rows = {name: SkippedRows(name) for name in sizes}
        self._bad: dict[str, set[int]] = {name: set() for name in sizes}

    def add(self, dataset: str, index: int, message: str, kind: str) -> None:
        """A bad item; raises once every item of its dataset is bad (nothing left to train on)."""
        bad = self._bad[dataset]
        if index in bad:
            return
        bad.add(index)
        self.rows[dataset].add(message, kind)
        if len(bad) == self.sizes[dataset]:
            first = self.rows[dataset].first[0]
            raise VlitError(f"dataset {dataset!r}: all {len(bad)} item(s) are bad (on_bad_row: skip has nothing "
                            f"left to train on); the first: {first}")

    @property
    def count(self) -> int:
        return sum(len(bad) for bad in self._bad.values())
