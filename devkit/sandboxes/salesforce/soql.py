"""A small SOQL reader for the sandbox: SELECT fields FROM Obj [WHERE ...] [LIMIT n].

String literals follow Salesforce's escape rules exactly (a bad escape or an
unterminated literal is MALFORMED_QUERY), so a client that forgets to escape a
quote is caught, and one that escapes correctly gets its literal back intact.
WHERE takes `field = | != value` and `field [NOT] IN (values)`, joined by AND or
OR (not both without parentheses, as in SOQL). Strings compare case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Indexed = Callable[[str, str, frozenset[Any]], list[str] | None]


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # "=", "!=", "IN", "NOT IN"
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_folded", frozenset(fold(v) for v in self.values))

    def test(self, record: dict[str, Any]) -> bool:
        hit = fold(record.get(self.field)) in self._folded  # type: ignore[attr-defined]
        return hit if self.op in ("=", "IN") else not hit


@dataclass
class Query:
    fields: list[str]
    obj: str
    conditions: list[Condition] = field(default_factory=list)
    connector: str = "AND"
    limit: int | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        tests = (c.test(record) for c in self.conditions)
        return any(tests) if self.connector == "OR" else all(tests)

    def select(
        self, records: dict[str, dict[str, Any]], indexed: Indexed | None = None
    ) -> list[str]:
        """Ids of the matching records in store order, as `matches({"Id": rid, **rec})`.

        A lookup (`Email IN (...) AND ...`) takes its candidates from `indexed` (the
        store's opt-in index) or tests its IN condition in place, so only the few
        records that pass it are copied and tested in full.
        """
        key = next(
            (
                c
                for c in self.conditions
                if c.op in ("=", "IN") and c.field != "Id"
                and (self.connector != "OR" or len(self.conditions) == 1)
            ),
            None,
        )  # fmt: skip
        if key is None:
            return [rid for rid, rec in records.items() if self.matches({"Id": rid, **rec})]
        name, folded = key.field, key._folded  # type: ignore[attr-defined]
        found = indexed(self.obj, name, folded) if indexed is not None else None
        if found is not None:  # an index gave the candidates: test only those
            return [r for r in found if r in records and self.matches({"Id": r, **records[r]})]
        return [
            rid
            for rid, rec in records.items()
            if (v.casefold() if isinstance(v := rec.get(name), str) else v) in folded
            and self.matches({"Id": rid, **rec})
        ]


def fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _string(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt.lower() in ESCAPES or nxt in ESCAPES:
                out.append(ESCAPES.get(nxt, ESCAPES.get(nxt.lower(), "")))
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise SoqlError(
                "MALFORMED_QUERY",
                f"Invalid string literal '{text[start : i + 2]}'. Illegal character sequence",
            )
        out.append(ch)
        i += 1
    raise SoqlError("MALFORMED_QUERY", "unexpected token: unterminated string literal")


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "'":
            value, i = _string(text, i)
            tokens.append(("str", value))
        elif text.startswith("!=", i):
            tokens.append(("op", "!="))
            i += 2
        elif ch in "(),=":
            tokens.append(("op", ch))
            i += 1
        elif m := _WORD.match(text, i):
            tokens.append(("word", m.group()))
            i = m.end()
        elif m := _NUMBER.match(text, i):
            tokens.append(("num", float(m.group()) if m.group(1) else int(m.group())))
            i = m.end()
        else:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{ch}'")
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None, value: str | None = None) -> Any:
        tok = self.peek()
        ok = tok is not None and (kind is None or tok[0] == kind)
        if ok and value is not None:
            ok = str(tok[1]).upper() == value  # type: ignore[index]
        if not ok:
            found = tok[1] if tok else "<EOF>"
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{found}'")
        self.pos += 1
        return tok[1]  # type: ignore[index]

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "word" and str(tok[1]).upper() == word:
            self.pos += 1
            return True
        return False

    def literal(self) -> Any:
        kind, value = self.peek() or ("eof", None)
        if kind in ("str", "num"):
            return self.take()
        if kind == "word" and str(value).lower() in ("null", "true", "false"):
            self.take()
            return {"null": None, "true": True, "false": False}[str(value).lower()]
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value}'")

    def condition(self) -> Condition:
        name = self.take("word")
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            self.take("op", "(")
            values = [self.literal()]
            while self.peek() == ("op", ","):
                self.take()
                values.append(self.literal())
            self.take("op", ")")
            return Condition(name, "NOT IN" if negate else "IN", tuple(values))
        if negate:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: 'NOT'")
        op = self.take("op")
        if op not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}'")
        return Condition(name, op, (self.literal(),))

    def query(self) -> Query:
        self.take("word", "SELECT")
        fields = [self.take("word")]
        while self.peek() == ("op", ","):
            self.take()
            fields.append(self.take("word"))
        self.take("word", "FROM")
        query = Query(fields, self.take("word"))
        if self.keyword("WHERE"):
            query.conditions.append(self.condition())
            joins = set()
            while (
                (tok := self.peek()) and tok[0] == "word" and str(tok[1]).upper() in ("AND", "OR")
            ):
                joins.add(str(self.take()).upper())
                query.conditions.append(self.condition())
            if len(joins) > 1:
                raise SoqlError("MALFORMED_QUERY", "unexpected token: 'OR' (use parentheses)")
            query.connector = joins.pop() if joins else "AND"
        if self.keyword("LIMIT"):
            query.limit = int(self.take("num"))
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek()[1]}'")  # type: ignore[index]
        return query


def parse(text: str) -> Query:
    return _Parser(text).query()
