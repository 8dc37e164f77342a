"""Contract §4a at fleet scale (issue 22): 50 orgs on the real `python -m service`
process, the real broker and the three HTTPS sandboxes; the even orgs map their score
through a values map and write the reasoning only while it is empty. Two passes over
the same leads (the second with the record cache warm, so records are named by id).
Every pair is delivered, the mapped orgs hold mapped scores and their first reasoning,
and the reads if_empty costs happen for those orgs only (bench section 2 measures
their cost per record)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devkit.factories import DEFAULT_TARGETS, make_event
from devkit.fleet import LEAD, Fleet, base_id, org_id
from devkit.sandboxes.airtable import Column

pytestmark = pytest.mark.slow  # about 12 s: not `load` (that is for runs over 30 s)

ORGS, LEADS = 50, 12
MAP = {"hot": "Hot", "warm": "Warm", "cold": "Cold"}
OPTIONS = {"score": {"values": MAP}, "reasoning": {"write": "if_empty"}}
SCORES = ("hot", "warm", "cold")


def options(i: int, destination: str) -> dict[str, Any]:
    if i % 2:
        return {}
    target = LEAD if destination == "salesforce" else DEFAULT_TARGETS[destination][0]
    return {"targets": [{**target, "field_options": OPTIONS}]}


def events(reasoning: str, n: int) -> list[dict[str, Any]]:
    return [
        make_event(org_id(i % ORGS), f"L{i}", score=SCORES[i % 3], reasoning=reasoning)
        for i in range(n)
    ]


def optioned(org: str) -> bool:
    return int(org.removeprefix("org")) % 2 == 0


async def test_50_orgs_half_with_values_maps_and_if_empty(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    fleet = Fleet(kafka_bootstrap, tmp_path, orgs=ORGS, per_org=options)
    fleet.at.schema["Contacts"]["TS Score"] = Column("singleSelect", (*SCORES, *MAP.values()))
    n = ORGS * LEADS
    async with fleet as f:
        first = events("first pass", n)
        await f.produce(first)
        await f.wait_terminal(3 * n, timeout=300)
        second = events("second pass", n)  # the same leads, newer evaluations
        await f.produce(second)
        await f.wait_terminal(6 * n, timeout=300)
        reads = {d: await f.metric("if_empty_reads_total", destination=d) for d in
                 ("salesforce", "hubspot", "airtable")}  # fmt: skip
        assert {s["status"] for s in f.terminal.values()} == {"delivered"}
        assert f.log_lines("error") == []

    org_of = {e["lead"]["email"]: e["org_id"] for e in first}
    # Salesforce: values and kept reasoning; reads by id (cache warm) for mapped orgs only.
    leads = f.sf.records("Lead")
    for lead in leads.values():
        mapped = optioned(org_of[lead["Email"]])
        assert (lead["TS_Score__c"] in MAP.values()) is mapped
        assert lead["TS_Reasoning__c"] == ("first pass" if mapped else "second pass")
    id_reads = [c.soql for c in f.sf.calls if c.soql and " WHERE Id IN (" in c.soql]
    read_ids = {i for q in id_reads for i in re.findall(r"'([^']+)'", q)}
    assert id_reads and {optioned(org_of[leads[i]["Email"]]) for i in read_ids} == {True}
    # HubSpot: batch reads only with the mapped orgs' tokens.
    hs_reads = [c for c in f.hs.calls if c.path.endswith("/batch/read")]
    assert hs_reads and {optioned(c.token.rsplit("-", 1)[1]) for c in hs_reads} == {True}
    # Airtable: no lookups here (upserts), so every read is a mapped org's if_empty read.
    at_reads = {h.base for h in f.at.calls("GET")}
    assert at_reads and at_reads <= {base_id(i) for i in range(0, ORGS, 2)}
    assert all(v > 0 for v in reads.values()), reads
    calls = {"salesforce": len(f.sf.calls), "hubspot": len(f.hs.calls), "airtable": len(f.at.hits)}
    print(f"\n{ORGS} orgs x {LEADS} leads x 2 passes: requests {calls}, if_empty reads {reads}")
