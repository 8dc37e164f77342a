"""What a test sets on the Salesforce sandbox's schema: field types, picklists,
read-only fields and duplicate rules (mixed into SalesforceSandbox)."""

from __future__ import annotations

from collections.abc import Mapping

from devkit.sandboxes.salesforce.duplicates import DuplicateRule
from devkit.sandboxes.salesforce.schema import SfField
from devkit.sandboxes.salesforce.store import Store


class SchemaControls:
    store: Store

    def define(self, obj: str, fields: Mapping[str, SfField]) -> None:
        """Declare (or add) fields of `obj` with their types; only declared fields
        are type-checked, picklist-checked and shown as declared by describe."""
        known = self.store.object_fields(obj)
        for name, spec in fields.items():
            known[name] = spec.max_length()
            self.store.types.setdefault(obj, {})[name] = spec

    def duplicate_rule(
        self,
        obj: str,
        *fields: str,
        action: str = "block",
        message: str = "Use one of these records?",
        name: str = "TS_Sandbox_Duplicate_Rule",
    ) -> DuplicateRule:
        """An active duplicate rule on `obj` matching records whose `fields` are equal."""
        if action not in ("block", "allow"):
            raise ValueError("action is 'block' or 'allow' (allow with an alert)")
        rule = DuplicateRule(obj, tuple(fields), action, name, message)
        self.store.duplicate_rules.append(rule)
        return rule
