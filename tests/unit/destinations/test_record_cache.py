"""The bounded record-id cache (service/destinations/cache.py): LRU order, the bound,
dropping by key and by record id, and its metric."""

from __future__ import annotations

from service.destinations.cache import RecordCache, cache_key
from service.metrics import Metrics


def sample(metrics: Metrics, outcome: str) -> float:
    labels = {"destination": "salesforce", "outcome": outcome}
    value = metrics.registry.get_sample_value("trailspark_destinations_record_cache_total", labels)
    return value or 0.0


def test_least_recently_used_goes_first_and_the_bound_holds() -> None:
    metrics = Metrics()
    cache = RecordCache("salesforce", metrics, max_entries=2)
    a, b, c = (cache_key("org", "salesforce", "Lead", v) for v in ("A@x", "b@x", "c@x"))
    cache.put(a, "1")
    cache.put(b, "2")
    assert cache.get(cache_key("org", "salesforce", "Lead", "a@X")) == "1"  # case-folded
    cache.put(c, "3")  # b was used least recently
    assert (cache.get(b), cache.get(a), cache.get(c), len(cache)) == (None, "1", "3", 2)
    assert (sample(metrics, "hit"), sample(metrics, "miss")) == (3, 1)


def test_a_gone_record_is_forgotten_under_every_value() -> None:
    metrics = Metrics()
    cache = RecordCache("salesforce", metrics)
    one, two = (
        cache_key("org", "salesforce", "Lead", "a"),
        cache_key("org", "salesforce", "Lead", "b"),
    )
    other_org = cache_key("org2", "salesforce", "Lead", "a")
    cache.put(one, "00Q1")
    cache.put(two, "00Q1")
    cache.put(other_org, "00Q1")
    cache.put(two, "00Q2")  # re-pointed: no longer held under 00Q1
    cache.drop_id("org", "salesforce", "Lead", "00Q1")
    assert (cache.get(one), cache.get(two), cache.get(other_org)) == (None, "00Q2", "00Q1")
    assert sample(metrics, "dropped") == 1


def test_size_zero_turns_it_off() -> None:
    cache = RecordCache("salesforce", Metrics(), max_entries=0)
    key = cache_key("org", "salesforce", "Lead", "a")
    cache.put(key, "1")
    assert cache.get(key) is None and len(cache) == 0


def test_airtable_keys_keep_their_case() -> None:
    assert cache_key("o", "airtable", "T", "Ada", fold=False) != cache_key(
        "o", "airtable", "T", "ada"
    )
