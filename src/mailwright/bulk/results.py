"""What a bulk send reports: ``BulkResult`` with its ``Refusal`` and ``Failure`` entries."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BulkResult", "Failure", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A recipient the server refused for good (5xx, or 4xx until attempts ran out),
    with the last reply (or error) it got."""

    index: int
    address: str
    code: int
    text: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A message that reached nobody, and why."""

    index: int
    reason: str
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class BulkResult:
    """What ``send_bulk`` did. Every message is either ``sent`` (accepted for at least
    one recipient) or in ``failed`` (it reached nobody), never both: ``sent +
    len(failed) == total``. ``refused`` lists every recipient refused for good, of
    sent and failed messages alike."""

    total: int
    sent: int = 0
    refused: list[Refusal] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        """Messages sent per second."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.refused and not self.failed and self.sent == self.total
