"""What to do about a cause: the catalogue of known causes (include/causes/catalogue.yaml) and its matching.

The digest says *what* failed; a guide says *what to do*, once per cause block: a pt-BR action line,
whether one change in the company's configuration clears every invoice of the block (``company``),
each invoice needs its own fix (``invoice``) or the product retries by itself (``none``), and the
product page where it is fixed. The catalogue is data the product team edits without touching
code (docs/cause-guides.md): YAML, checked against ``catalogue.schema.json`` when loaded.

Matching is pure and works on the cause normalisation of :mod:`billing_digest.causes`: the error's
code compared with :func:`~billing_digest.causes.normalise_code`, the message through its
:func:`~billing_digest.causes.message_skeleton` (case, accents and the parts that name one invoice
ignored); the catalogue's phrases go through the same function, so they are written as a person
would. :meth:`Catalogue.match` is called once per cause block and remembers its answer per cause
key: a day L (~11k errors in ~2k blocks) has a few hundred distinct keys.

:class:`Coverage` counts which of the day's errors had a guide and which causes had none, so the
product team knows which guide to write next (the run's summary, note and metrics).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from billing_digest import causes
from billing_digest.payload import CauseGuide

Fix = Literal["company", "invoice", "none"]
# Blocks in a topic: a company-level fix first (one action clears many invoices), then the rest,
# then what the product retries by itself (nothing to do). Blocks without a guide rank with "invoice".
FIX_ORDER: dict[str | None, int] = {"company": 0, "invoice": 1, None: 1, "none": 2}
TOP_UNGUIDED = 5  # causes without a guide named in the run's summary
_LABEL_CHARS = 90


class CatalogueError(ValueError):
    """The catalogue cannot be used: the message says which entry and what is wrong."""


@dataclass(frozen=True)
class Guide:
    """One catalogue entry's advice, as the stored digest keeps it (:meth:`payload`)."""

    id: str
    action: str
    fix: Fix
    path: str | None = None
    page: str | None = None

    def payload(self) -> CauseGuide:
        return CauseGuide(id=self.id, action=self.action, fix=self.fix, path=self.path, page=self.page)


@dataclass(frozen=True)
class Rule:
    """An entry's match: step in ``steps``, ``kind``/``status`` when given; then the code is one of
    ``codes`` or the message skeleton holds one of ``phrases`` (without either, the filters decide)."""

    steps: frozenset[str]
    kind: str | None
    status: str | None
    codes: frozenset[str]
    phrases: tuple[str, ...]

    def score(self, step: str, kind: str, status: str | None, code: str, skeleton: str) -> int:
        """0: no match; otherwise how specific the match is (code and phrase > code > phrase > filters)."""
        if step not in self.steps or (self.kind and kind != self.kind) or (self.status and status != self.status):
            return 0
        by_code = bool(code) and code in self.codes
        by_phrase = any(p in skeleton for p in self.phrases)
        if (self.codes or self.phrases) and not (by_code or by_phrase):
            return 0
        return 1 + 4 * by_code + 2 * by_phrase + (self.kind is not None) + (self.status is not None)


@dataclass
class Catalogue:
    """The entries in file order; :meth:`match` answers per cause, the most specific entry winning."""

    entries: tuple[tuple[Rule, Guide], ...]
    _known: dict[str, Guide | None] = field(default_factory=dict, repr=False)

    def match(self, step: str, kind: str, status: str | None, code: str | None, message: str,
              key: str | None = None) -> Guide | None:
        """The guide of an error's cause, or None. Pure; remembered per :func:`causes.cause_key`
        (``key``: that key when the caller has it already)."""
        key = key or causes.cause_key(step, kind, status, code, message)
        if key in self._known:
            return self._known[key]
        norm, skeleton = causes.normalise_code(code), causes.message_skeleton(message, code)
        best, best_score = None, 0
        for rule, guide in self.entries:
            score = rule.score(step, kind, status, norm, skeleton)
            if score > best_score:  # ties: the first in the file
                best, best_score = guide, score
        self._known[key] = best
        return best

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(guide.id for _, guide in self.entries)


EMPTY = Catalogue(())


def default_path() -> Path:
    from billing_digest.sql import include_dir

    return include_dir() / "causes" / "catalogue.yaml"


@functools.cache
def _schema(path: Path) -> dict[str, Any]:
    import jsonschema  # here, not at the top: the renderer and the transform never need it

    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def parse(data: Any, schema: dict[str, Any]) -> Catalogue:
    """A catalogue from its parsed YAML; :class:`CatalogueError` naming the entry and the problem."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        raise CatalogueError("; ".join(_where(data, e) for e in errors[:5]))
    entries: list[tuple[Rule, Guide]] = []
    seen: set[str] = set()
    for entry in data["causes"]:
        if entry["id"] in seen:
            raise CatalogueError(f"entry {entry['id']!r}: the id is used twice")
        seen.add(entry["id"])
        match = entry["match"]
        phrases = tuple(causes.message_skeleton(p) for p in match.get("message", ()))
        if not all(phrases):
            raise CatalogueError(f"entry {entry['id']!r}: a message phrase has no words")
        rule = Rule(frozenset(match["steps"]), match.get("kind"), match.get("status"),
                    frozenset(causes.normalise_code(c) for c in match.get("codes", ())), phrases)
        entries.append((rule, Guide(entry["id"], entry["action"].strip(), entry["fix"], entry.get("path"),
                                    entry.get("page"))))
    return Catalogue(tuple(entries))


def _where(data: Any, error: Any) -> str:
    """"entry 3 ('nfse-x'), match.codes.0: 48 is not of type 'string'"."""
    path = list(error.absolute_path)
    if len(path) >= 2 and path[0] == "causes" and isinstance(path[1], int):
        entry = data["causes"][path[1]]
        name = entry.get("id") if isinstance(entry, dict) else None
        where = f"entry {path[1] + 1}" + (f" ({name!r})" if name else "")
        rest = ".".join(str(p) for p in path[2:])
        return f"{where}{', ' + rest if rest else ''}: {error.message}"
    return f"{'.'.join(str(p) for p in path) or 'the file'}: {error.message}"


def load(path: Path | None = None) -> Catalogue:
    """The catalogue at ``path`` (default include/causes/catalogue.yaml), checked against the schema
    beside it; :class:`CatalogueError` when the file is missing, not YAML or not valid."""
    import yaml

    path = path or default_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"{path}: {exc}") from exc
    schema_path = path.with_name("catalogue.schema.json")
    if not schema_path.is_file():
        schema_path = default_path().with_name("catalogue.schema.json")
    try:
        return parse(data, _schema(schema_path))
    except CatalogueError as exc:
        raise CatalogueError(f"{path.name}: {exc}") from None


@dataclass(frozen=True)
class Unguided:
    """A cause without a guide, over the day: how many errors (invoice steps) and companies it hit."""

    cause: str          # "boleto 48: banco recusou o registro: cep do pagador invalido" (no personal data)
    invoices: int
    companies: int

    def as_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "invoices": self.invoices, "companies": self.companies}


@dataclass
class Coverage:
    """Filled while blocks are built: every error of the day counts, listed in the e-mail or not."""

    errors: int = 0
    with_guide: int = 0
    unguided: Counter[str] = field(default_factory=Counter)
    _companies: dict[str, set[int]] = field(default_factory=dict)

    def add(self, guide: Guide | None, errors: int, entity_id: int, step: str, code: str | None,
            message: str) -> None:
        self.errors += errors
        if guide is not None:
            self.with_guide += errors
            return
        label = cause_label(step, code, message)
        self.unguided[label] += errors
        self._companies.setdefault(label, set()).add(entity_id)

    @property
    def share(self) -> float | None:
        """Share of the day's errors that had a guide; None when the day had none."""
        return self.with_guide / self.errors if self.errors else None

    def top_unguided(self, n: int = TOP_UNGUIDED) -> tuple[Unguided, ...]:
        ranked = sorted(self.unguided.items(), key=lambda kv: (-kv[1], -len(self._companies[kv[0]]), kv[0]))
        return tuple(Unguided(label, count, len(self._companies[label])) for label, count in ranked[:n])


def cause_label(step: str, code: str | None, message: str) -> str:
    """A cause as the coverage figures name it: step, code, message skeleton (addresses, numbers and
    dates replaced), cut short. The same label across companies is one cause."""
    text = f"{step} {code or '-'}: {causes.message_skeleton(message, code)}"
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def share_text(errors: int, with_guide: int) -> str:
    """"87% (9,876 of 11,234)"; "-" on a day without errors."""
    if not errors:
        return "-"
    return f"{100 * with_guide / errors:.0f}% ({with_guide:,} of {errors:,})"


def unguided_text(top: Iterable[dict[str, Any]]) -> str:
    """"boleto 48: … 120 invoices / 3 companies; …" for logs and the run's note."""
    return "; ".join(f"{u['cause']} ({u['invoices']:,} invoices, {u['companies']:,} companies)" for u in top)
