"""rosterbot's knowledge base: resolution documents and fuzzy lookup.

The bot and the CLI only call this API:

* ``lookup(question, limit=3) -> LookupResult`` — ranked matches and the best document;
* ``get_document(id)`` / ``documents()`` — the documents (code documents carry the catalog fix);
* ``ask_json(question)`` — the ``rosterbot ask --json`` object;
* ``answer_text(result)`` — the answer as plain terminal text.
"""

from faq.answer import answer_text, ask_json
from faq.documents import Document, DocumentError, Kind, documents, get_document
from faq.lookup import LookupResult, Match, lookup

__all__ = [
    "Document",
    "DocumentError",
    "Kind",
    "LookupResult",
    "Match",
    "answer_text",
    "ask_json",
    "documents",
    "get_document",
    "lookup",
]
