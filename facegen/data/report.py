"""What a user is told about a dataset: the report of what was used and skipped, and the error when none can be."""

from __future__ import annotations

from dataclasses import dataclass, field

from facegen.errors import FacegenError


class DatasetError(FacegenError):
    """A dataset that cannot be opened: missing, empty, malformed, or with no usable image."""


@dataclass
class DatasetReport:
    """What happened to a source's images: how many were found, used, skipped (why) and converted (from what)."""

    source: str
    found: int
    used: int
    skipped: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    # a few file names per skip reason, so the user can look at what went wrong
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    enlarged: int = 0  # images whose shorter side was below the resolution, enlarged to it (the demo sets allow it)

    def summary(self) -> str:
        notes = [f"{count:,} {reason} skipped" for reason, count in self.skipped.items()]
        notes += [f"{count:,} {kind} converted" for kind, count in self.converted.items()]
        text = f"{self.used:,} image{'' if self.used == 1 else 's'} from {self.source}"
        return f"{text} ({', '.join(notes)})" if notes else text
