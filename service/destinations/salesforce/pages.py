"""Reading SOQL query answers, page by page, without trusting them.

A page is `{"totalSize", "done", "records": [...], "nextRecordsUrl"?}`. Anything
else (null, wrong types, a record without a string `Id`, `done: false` with no
usable cursor) is `bad_response`: a page we cannot read is never "no record".

`nextRecordsUrl` is followed only as a query-locator path on the instance the
token belongs to (an absolute URL or another host would receive the bearer
token), each cursor once, and at most MAX_PAGES pages per query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from service.destinations.answers import unreadable

NAME = "salesforce"
MAX_PAGES = 100  # 2,000 records a page: far beyond any batch's IN-list lookup
# "/services/data/v62.0/query/01gRO0000016PIAYA2-2000": a path, never a URL.
_NEXT = re.compile(r"/services/data/v\d{2,3}\.\d/query/[A-Za-z0-9_-]{1,100}")


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_path: str | None  # None: the last page
    total: int | None


def read_page(body: Any) -> Page:
    if not isinstance(body, dict):
        raise unreadable(NAME, "a query page that is not an object")
    records = body.get("records")
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("Id"), str) and r["Id"] for r in records
    ):  # never read as "no record": that could create a duplicate
        raise unreadable(NAME, "a query without a records list with ids")
    done, total = body.get("done", True), body.get("totalSize")
    if not isinstance(done, bool):
        raise unreadable(NAME, "a query page whose done is not true or false")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        raise unreadable(NAME, "a query whose totalSize is not a count")
    if done:
        return Page(records, None, total)
    path = body.get("nextRecordsUrl")
    if not isinstance(path, str) or not _NEXT.fullmatch(path):
        raise unreadable(NAME, "an unfinished query without a query-locator path to follow")
    return Page(records, path, total)


@dataclass
class Pager:
    """One query's pages: the records so far, and the cursors already followed."""

    records: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add(self, body: Any) -> str | None:
        """Take one page; the path of the next one, or None when the query is complete."""
        page = read_page(body)
        self.records.extend(page.records)
        if page.next_path is None:
            if page.total is not None and page.total != len(self.records):
                raise unreadable(
                    NAME, f"a query of {page.total} records that listed {len(self.records)}"
                )
            return None
        if page.next_path in self.seen:
            raise unreadable(NAME, "a query that pages back to a page it gave before")
        if len(self.seen) + 1 >= MAX_PAGES:
            raise unreadable(NAME, f"a query of more than {MAX_PAGES} pages")
        self.seen.add(page.next_path)
        return page.next_path


def field_value(record: dict[str, Any], name: str) -> Any:
    """A selected field of a record. Salesforce spells names its own way (`Email`
    for `email`), so a name is found whatever its case; missing -> bad_response."""
    if name in record:
        return record[name]
    folded = name.casefold()
    for key, value in record.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    raise unreadable(NAME, f"a query record without the field {name} it selected")
