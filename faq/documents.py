"""Knowledge-base documents: read ``faq/docs/*.md`` and compose them with the catalog.

A document file is Markdown with a YAML front-matter block (``id``, ``title``, ``aliases``,
``keywords``, ``related``).  Three kinds exist:

* code documents (id = a catalog code): the "how to fix" text is NOT in the file; it is
  taken from ``validation.catalog.CATALOG[code].fix`` so the error report, the Slack summary
  and the answers can never disagree.  The title defaults to the catalog title.
* group documents (``errors.<group>``): the list of codes is composed from
  ``validation.catalog.codes_in_group`` rather than typed into the file.
* topic documents (``faq.*``): plain articles.
* column documents (``columns.<header>``): generated from ``validation.dictionary`` (required or
  not, accepted values, example, codes) plus a short hand-written explanation from
  ``faq/columns.yaml``, so the accepted values shown can never drift from the validator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources

import yaml

from validation.catalog import CATALOG, ERROR_GROUPS, codes_in_group
from validation.dictionary import DEMOGRAPHICS_COLUMNS, USERS_COLUMNS, Column
from validation.dictionary import Kind as ColumnKind

GROUP_PREFIX = "errors."
TOPIC_PREFIX = "faq."
COLUMN_PREFIX = "columns."

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)
# A code document that carries its own fix would fork the single source of fix text.
_OWN_FIX_HEADING = re.compile(r"^#+\s*how to fix", re.IGNORECASE | re.MULTILINE)


class DocumentError(ValueError):
    """A document file is malformed or breaks the single-source rule."""


class Kind(StrEnum):
    CODE = "code"
    GROUP = "group"
    TOPIC = "topic"
    COLUMN = "column"


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    body: str
    aliases: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    #: The catalog's fix text (code documents only), verbatim, placeholders included.
    fix: str | None = None
    kind: Kind = Kind.TOPIC
    #: Codes of an error group (group documents only), from the catalog.
    codes: tuple[str, ...] = field(default=())

    def readable_fix(self) -> str | None:
        """The fix with catalog placeholders (``{column}``...) shown as readable blanks."""
        if self.fix is None:
            return None
        return self.fix.format(
            column="<column>", value="<value>", detail="<value shown in the report>"
        )


def kind_of(doc_id: str) -> Kind:
    if doc_id in CATALOG:
        return Kind.CODE
    if doc_id.startswith(GROUP_PREFIX):
        return Kind.GROUP
    if doc_id.startswith(COLUMN_PREFIX):
        return Kind.COLUMN
    return Kind.TOPIC


def parse_document(text: str, source: str = "<string>") -> Document:
    """Parse one document file and compose it with the catalog."""
    found = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if not found:
        raise DocumentError(f"{source}: no YAML front-matter block")
    meta = yaml.safe_load(found.group(1)) or {}
    body = found.group(2).strip()
    doc_id = str(meta.get("id") or "")
    if not doc_id:
        raise DocumentError(f"{source}: front matter has no id")
    kind = kind_of(doc_id)
    fix: str | None = None
    codes: tuple[str, ...] = ()
    title = str(meta.get("title") or "")
    related = _strings(meta.get("related"), source, "related")

    if kind is Kind.CODE:
        entry = CATALOG[doc_id]
        if "fix" in meta or _OWN_FIX_HEADING.search(body) or entry.fix in body:
            raise DocumentError(f"{source}: a code document must not carry its own fix text")
        fix = entry.fix
        title = title or entry.title
        group_id = GROUP_PREFIX + entry.group
        related = (group_id, *[r for r in related if r != group_id])
    elif kind is Kind.GROUP:
        group = doc_id.removeprefix(GROUP_PREFIX)
        if group not in ERROR_GROUPS:
            raise DocumentError(f"{source}: {group!r} is not an error group of the catalog")
        codes = tuple(codes_in_group(group))
        body = f"{body}\n\n{_code_list(codes)}"
    if not title:
        raise DocumentError(f"{source}: front matter has no title")

    return Document(
        id=doc_id,
        title=title,
        body=body,
        aliases=_strings(meta.get("aliases"), source, "aliases"),
        keywords=_strings(meta.get("keywords"), source, "keywords"),
        related=related,
        fix=fix,
        kind=kind,
        codes=codes,
    )


def _strings(value: object, source: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise DocumentError(f"{source}: {key} must be a list of strings")
    return tuple(str(v) for v in value)


def _code_list(codes: tuple[str, ...]) -> str:
    lines = ["Codes in this group:"]
    for name in codes:
        entry = CATALOG[name]
        lines.append(f"- {name} ({entry.severity}): {entry.title}")
    return "\n".join(lines)


def dictionary_headers() -> list[str]:
    """Every header of both dictionaries, users.csv first, each once (userId is in both)."""
    return list(dict.fromkeys(c.name for c in (*USERS_COLUMNS, *DEMOGRAPHICS_COLUMNS)))


def column_documents(explained: dict[str, dict]) -> list[Document]:
    """One ``columns.<header>`` document per dictionary header; ``explained`` is columns.yaml."""
    unknown = set(explained) - set(dictionary_headers())
    if unknown:
        raise DocumentError(f"columns.yaml: not a dictionary header: {sorted(unknown)}")
    out = []
    for header in dictionary_headers():
        entry = explained.get(header)
        if not entry or not str(entry.get("explain") or "").strip():
            raise DocumentError(f"columns.yaml: no explanation for the column {header}")
        specs = [
            (file, c)
            for file, table in (
                ("users.csv", USERS_COLUMNS),
                ("demographics.csv", DEMOGRAPHICS_COLUMNS),
            )
            for c in table
            if c.name == header
        ]
        first = specs[0][1]
        codes = tuple(dict.fromkeys(code for _, c in specs for code in c.codes))
        group = GROUP_PREFIX + header
        related = _strings(entry.get("related"), "columns.yaml", "related")
        if header in ERROR_GROUPS and group not in related:
            related = (group, *related)
        body = "\n\n".join(
            [str(entry["explain"]).strip(), *(_column_facts(file, c) for file, c in specs)]
        )
        if codes:
            body += "\n\n" + _code_list(codes).replace("Codes in this group", "Issues it can get")
        out.append(
            Document(
                id=COLUMN_PREFIX + header,
                title=f"The {header} column: {_lower_first(first.meaning.rstrip('.'))}",
                body=body,
                aliases=(header, *_strings(entry.get("aliases"), "columns.yaml", "aliases")),
                keywords=_strings(entry.get("keywords"), "columns.yaml", "keywords"),
                related=related,
                kind=Kind.COLUMN,
                codes=codes,
            )
        )
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _column_facts(file: str, col: Column) -> str:
    need = {
        ColumnKind.REQUIRED: "required",
        ColumnKind.CONDITIONAL: f"required in some files ({col.condition})",
        ColumnKind.OPTIONAL: "optional",
    }[col.kind]
    lines = [f"**In {file}:** {col.meaning}", f"- Required: {need}"]
    if col.accepted:
        lines.append(f"- Accepted values: {col.accepted}")
    if col.example:
        lines.append(f"- Example: `{col.example}`")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _load() -> dict[str, Document]:
    found: dict[str, Document] = {}
    base = resources.files("faq")
    explained = yaml.safe_load(base.joinpath("columns.yaml").read_text(encoding="utf-8")) or {}
    for doc in column_documents(explained):
        found[doc.id] = doc
    folder = base.joinpath("docs")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".md"):
            continue
        doc = parse_document(item.read_text(encoding="utf-8"), item.name)
        if doc.id in found:
            raise DocumentError(f"{item.name}: duplicate document id {doc.id}")
        found[doc.id] = doc
    unknown = {r for d in found.values() for r in d.related} - found.keys()
    if unknown:
        raise DocumentError(f"related ids without a document: {sorted(unknown)}")
    return found


def documents() -> list[Document]:
    """Every document, sorted by id."""
    return list(_load().values())


def get_document(doc_id: str) -> Document:
    """One document by id; raises KeyError for an unknown id."""
    return _load()[doc_id]
