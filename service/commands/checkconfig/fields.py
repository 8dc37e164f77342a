"""A CRM field as check-config sees it, whatever the CRM: what it can hold, and
whether the service may write it. Each CRM module maps its own types onto `Kind`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"  # any text: string, textarea, url, phone, an unrestricted picklist...
    CHOICE = "choice"  # fixed values: a restricted picklist, an enumeration, a select
    DATE = "date"
    DATETIME = "datetime"
    NUMBER = "number"
    EMAIL = "email"
    OTHER = "other"  # boolean, reference, id, attachment: no value of ours fits


@dataclass(frozen=True)
class FieldInfo:
    name: str
    crm_type: str  # the CRM's own word, for messages ("picklist", "enumeration", ...)
    kind: Kind
    updateable: bool = True
    createable: bool = True
    choices: tuple[str, ...] = ()  # the allowed values of a CHOICE field
    filterable: bool = True  # can be used to find a record (Salesforce WHERE)
    takes_list: bool = False  # Airtable multipleSelects: a list, never one text


# Object (Salesforce sObject, HubSpot object type, Airtable table) -> its fields;
# None when the CRM has no such object.
ObjectFields = dict[str, FieldInfo]
Schemas = dict[str, ObjectFields | None]
