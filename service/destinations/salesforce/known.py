"""What an item knows before any lookup, and what a second round does for records
that moved: the record cache's side of the Salesforce destination.

Round one writes known ids (crm_ids, the cache) directly. A known id whose record
is gone is matched by field in round two; a converted Lead is followed to its
`ConvertedContactId` when a Contact target is mapped, else the item is
`lead_converted`. Cache keys: (org, "salesforce", object, match value).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from service.destinations.cache import RecordCache, cache_key
from service.destinations.mapping import crm_id, lead_value
from service.destinations.salesforce.outcomes import ItemResult, Result
from service.destinations.salesforce.plan import NAME, Plan, View, pairs
from service.models import DestinationConfig, EvaluationCompleted, RecordRef


def view_of(config: DestinationConfig, event: EvaluationCompleted, cache: RecordCache) -> View:
    """Ids the item knows: crm_ids, else the cache. A target's crm id is learned (it
    names the lead's own record); a propensity account's is not, since one account
    serves every lead of its domain."""
    view = View()
    targets = {t.object for t in config.targets}
    for obj, match in pairs(config, event):
        value = lead_value(event, match.event_field) if match is not None else None
        if value is None:
            continue
        key = cache_key(event.org_id, NAME, obj, value)
        known = crm_id(event, NAME, obj)
        if known:
            if obj in targets:
                cache.put(key, known)
        elif (hit := cache.get(key)) is not None:
            view.ids[obj] = hit
    return view


def learn(cache: RecordCache, org: str, plan: Plan, results: Sequence[Result]) -> None:
    """Ids of records found or created; a value that matched duplicates is not learned
    (every duplicate gets the score, so each is looked up again)."""
    seen = Counter((w.object, w.match.casefold()) for w in plan.writes if w.match)
    for write, result in zip(plan.writes, results, strict=True):
        if not write.match or seen[(write.object, write.match.casefold())] > 1:
            continue
        if isinstance(result, RecordRef):
            cache.put(cache_key(org, NAME, write.object, write.match), result.id)


def converted_leads(items: Sequence[ItemResult]) -> set[str]:
    return {old for item in items for kind, old in item.moved.values() if kind == "converted"}


def second_round(
    config: DestinationConfig,
    org: str,
    items: Sequence[ItemResult],
    contacts: Mapping[str, str],
    cache: RecordCache,
) -> list[View | None]:
    """Per item, what round two writes (None: nothing). `contacts`: 15-character
    Lead id -> ConvertedContactId. Marks items whose Lead was converted with no
    Contact to follow; forgets the cached ids of records that moved."""
    has_contact = any(t.object == "Contact" for t in config.targets)
    views: list[View | None] = []
    for item in items:
        objects: set[str] = set()
        view = View(objects=objects)
        for obj, (kind, old) in item.moved.items():
            cache.drop_id(org, NAME, obj, old)
            if kind == "gone":
                view.ids[obj] = None  # ignore crm_ids and the cache: match by field
                objects.add(obj)
                continue
            contact = contacts.get(old[:15])
            wrote_contact = any(r.object == "Contact" for r in item.targets)
            if has_contact and contact and not wrote_contact:
                view.ids["Contact"] = contact
                objects.add("Contact")
            elif not wrote_contact:
                item.converted = True
        views.append(view if objects else None)
    return views
