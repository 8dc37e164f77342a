"""Sample leads and destination configs for `make run` (two orgs, three CRMs)."""

from __future__ import annotations

from typing import Any

LEADS: list[dict[str, str]] = [
    {
        "lead_id": "lead_ada",
        "email": "ada@analytical.example",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines Ltd",
        "domain": "analytical.example",
    },
    {
        "lead_id": "lead_grace",
        "email": "grace@cobol.example",
        "first_name": "Grace",
        "last_name": "Hopper",
        "company": "COBOL Inc",
        "domain": "cobol.example",
    },
    {
        "lead_id": "lead_alan",
        "email": "alan@bombe.example",
        "first_name": "Alan",
        "last_name": "Turing",
        "company": "Bombe Works",
        "domain": "bombe.example",
    },
    {
        "lead_id": "lead_edsger",
        "email": "edsger@paths.example",
        "first_name": "Edsger",
        "last_name": "Dijkstra",
        "company": "Shortest Paths BV",
        "domain": "paths.example",
    },
    {
        "lead_id": "lead_barbara",
        "email": "barbara@clu.example",
        "first_name": "Barbara",
        "last_name": "Liskov",
        "company": "Substitution Ltd",
        "domain": "clu.example",
    },
]
ACME_LEADS: list[dict[str, str]] = [
    {
        "lead_id": "lead_margaret",
        "email": "margaret@apollo.example",
        "first_name": "Margaret",
        "last_name": "Hamilton",
        "company": "Apollo Guidance",
        "domain": "apollo.example",
    },
    {
        "lead_id": "lead_katherine",
        "email": "katherine@orbits.example",
        "first_name": "Katherine",
        "last_name": "Johnson",
        "company": "Orbit Computations",
        "domain": "orbits.example",
    },
]


def burst_leads(n: int) -> list[dict[str, str]]:
    """`n` distinct new leads of one company (records get created)."""
    return [
        {
            "lead_id": f"lead_burst_{i:03d}",
            "email": f"burst{i:03d}@rockets.example",
            "first_name": "Test",
            "last_name": f"Pilot {i}",
            "company": "Rockets Inc",
            "domain": "rockets.example",
        }
        for i in range(n)
    ]


REASONS = [
    "Visited pricing 4x this week; ICP match: fintech, 200 staff.",
    "Opened three onboarding emails; company hiring data engineers.",
    "No activity in 30 days; outside target industries.",
    "Requested a demo; tech stack overlaps with our integrations.",
]
FIELDS = ("score", "reasoning", "evaluated_at")


def _config(
    org: str, destination: str, targets: list[dict[str, Any]], propensity: Any
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "org_id": org,
        "destination": destination,
        "version": 1,
        "integration": {
            "id": f"int_{destination}",
            "status": "connected",
            "credentials_ref": f"{org}-{destination}",
        },
        "send_evaluations": True,
        "targets": targets,
        "propensity": propensity,
        "updated_by": {"user_id": "u_demo", "role": "owner"},
    }


def demo_configs(
    org: str, destinations: tuple[str, ...] = ("salesforce", "hubspot", "airtable")
) -> list[dict[str, Any]]:
    salesforce = _config(
        org,
        "salesforce",
        [
            {
                "object": "Lead",
                "match": {"crm_field": "Email", "event_field": "lead.email"},
                "fields": dict(
                    zip(
                        FIELDS,
                        ("TS_Score__c", "TS_Reasoning__c", "TS_Evaluated_At__c"),
                        strict=True,
                    )
                ),
                "create_if_missing": True,
            }
        ],
        {
            "enabled": True,
            "object": "Account",
            "field": "TS_Propensity__c",
            "match": {"crm_field": "Website", "event_field": "lead.domain"},
        },
    )
    hubspot = _config(
        org,
        "hubspot",
        [
            {
                "object": "contacts",
                "match": {"crm_field": "email", "event_field": "lead.email"},
                "fields": dict(
                    zip(FIELDS, ("ts_score", "ts_reasoning", "ts_evaluated_at"), strict=True)
                ),
                "create_if_missing": True,
            }
        ],
        {
            "enabled": True,
            "object": "companies",
            "field": "ts_propensity",
            "match": {"crm_field": "domain", "event_field": "lead.domain"},
        },
    )
    airtable = _config(
        org,
        "airtable",
        [
            {
                "object": "Contacts",
                "match": {"crm_field": "Email", "event_field": "lead.email"},
                "fields": dict(
                    zip(FIELDS, ("TS Score", "TS Reasoning", "TS Evaluated At"), strict=True)
                ),
                "create_if_missing": True,
                "create_fields": {
                    "email": "Email",
                    "first_name": "First Name",
                    "last_name": "Last Name",
                    "company": "Company",
                },
            }
        ],
        None,
    )
    made = {"salesforce": salesforce, "hubspot": hubspot, "airtable": airtable}
    return [made[name] for name in destinations]
