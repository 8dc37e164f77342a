"""What each tenant got from the whole fleet, counted by the sandboxes: the busiest
window per Airtable base and per HubSpot account, 429s, requests per record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from devkit.fleet import Fleet


def busiest(times: Iterable[float], window_s: float) -> int:
    """The most of `times` within any `window_s` (a sliding window over arrivals)."""
    ordered = sorted(times)
    first, peak = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window_s:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def airtable_peak(f: Fleet, since: float = 0.0) -> int:
    """Most requests one Airtable base got in any 1 s (the limit is 5)."""
    per_base: dict[str, list[float]] = defaultdict(list)
    for hit in f.at.hits:
        if hit.at >= since:
            per_base[hit.base].append(hit.at)
    return max((busiest(times, 1.0) for times in per_base.values()), default=0)


def hubspot_peak(f: Fleet, since: float = 0.0) -> int:
    """Most requests one HubSpot account got in any 10 s (the limit is 190)."""
    per_account: dict[str, list[float]] = defaultdict(list)
    for call in f.hs.calls:
        if call.at >= since:
            per_account[call.token].append(call.at)
    return max((busiest(times, 10.0) for times in per_account.values()), default=0)


def rejected(f: Fleet) -> dict[str, int]:
    """429s answered by each CRM (Salesforce's daily limit is a 403: none here)."""
    return {
        "airtable": sum(1 for h in f.at.hits if h.status == 429),
        "hubspot": f.hs.rejected(),
    }


@dataclass(frozen=True)
class Requests:
    salesforce: int
    hubspot: int
    airtable: int

    @classmethod
    def now(cls, f: Fleet) -> Requests:
        return cls(len(f.sf.calls), len(f.hs.calls), len(f.at.hits))

    def __sub__(self, other: Requests) -> Requests:
        return Requests(
            self.salesforce - other.salesforce,
            self.hubspot - other.hubspot,
            self.airtable - other.airtable,
        )

    def per_record(self, records: int) -> dict[str, float]:
        return {
            "salesforce": self.salesforce / records,
            "hubspot": self.hubspot / records,
            "airtable": self.airtable / records,
        }
