"""SOQL building: every value is escaped per Salesforce's rules, names are API names,
and IN lists are split only when one request line would be too long."""

from __future__ import annotations

from urllib.parse import quote as url_quote

import pytest

from devkit.sandboxes.salesforce.soql import SoqlError, parse, tokenize
from service.destinations.salesforce.soql import MAX_LITERAL, check_name, in_queries, quote

NASTY = [
    "x' OR Name != '",
    "back\\slash",
    "trailing\\",
    "\\' OR Id != null OR Email = \\'",
    'double"quote',
    "line\nbreak\r\ttab\b\f",
    "o'brien@example.com",
    "%_like_wildcards%",
    "unicode é ✓ 🚀",
]


@pytest.mark.parametrize("value", NASTY)
def test_quote_round_trips_through_a_soql_reader(value: str) -> None:
    # The sandbox reads literals exactly as Salesforce documents; the value comes back intact
    # and as a single string token, so nothing leaks into the query structure.
    assert tokenize(quote(value)) == [("str", value)]


def test_injection_stays_inside_the_literal() -> None:
    soql = in_queries("Lead", "Email", ["x' OR Name != '"])[0]
    assert soql == "SELECT Id, Email FROM Lead WHERE Email IN ('x\\' OR Name != \\'')"
    query = parse(soql)
    assert [(c.field, c.op, c.values) for c in query.conditions] == [
        ("Email", "IN", ("x' OR Name != '",))
    ]


def test_unescaped_quote_would_have_changed_the_query() -> None:
    # The control case: splicing the raw value in yields a different (broader) query.
    raw = "SELECT Id FROM Lead WHERE Email = 'x' OR Name != ''"
    assert len(parse(raw).conditions) == 2
    with pytest.raises(SoqlError):
        tokenize("'bad \\q escape'")


@pytest.mark.parametrize("name", ["Email", "TS_Score__c", "ns__Field__c", "Id"])
def test_api_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["Email) OR (Name", "Email'", "1Field", "", "a b", "Account.Name"])
def test_non_api_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def test_in_queries_split_by_encoded_length_and_keep_every_value() -> None:
    values = [f"person{i}@example.com" for i in range(500)]
    budget = 4_000
    queries = in_queries("Contact", "Email", values, budget=budget)
    assert len(queries) > 1
    assert all(len(url_quote(q, safe="")) <= budget for q in queries)
    seen = [v for q in queries for c in parse(q).conditions for v in c.values]
    assert seen == values


def test_one_query_for_a_normal_batch_and_duplicates_removed() -> None:
    values = [f"lead_{i}@example.com" for i in range(200)] * 2
    queries = in_queries("Lead", "Email", values)
    assert len(queries) == 1
    assert len(parse(queries[0]).conditions[0].values) == 200


def test_overlong_values_cannot_match_and_are_left_out() -> None:
    assert in_queries("Lead", "Email", ["a" * (MAX_LITERAL + 1)]) == []
    assert in_queries("Lead", "Id", ["00Q000000000001"]) == [
        "SELECT Id FROM Lead WHERE Id IN ('00Q000000000001')"
    ]
