"""Full-text search: what is indexed, and a user's query made safe for either engine. Pure.

The port (``typogram.ports.Search``) has two adapters over the SQL port:
SQLite FTS5 (embedded) and MySQL/MariaDB ``FULLTEXT`` in boolean mode
(``typogram.adapters.search``). Both take the same terms from ``terms``, so
they find the same documents for the same query.

Rules:

1. A query is never passed through: it is cut to ``MAX_QUERY_CHARS``, split
   into runs of letters and digits (any script), lower-cased, and only
   those runs become terms. Quotes, operators (``+ - < > ( ) ~ * @ "``),
   ``%``, ``_`` and anything else are separators, so no input can be a
   syntax error or a wildcard in either engine.
2. A term is kept when it has ``MIN_TERM_CHARS`` to ``MAX_TERM_CHARS``
   characters (InnoDB's ``innodb_ft_min_token_size`` and
   ``innodb_ft_max_token_size`` defaults) and is not one of InnoDB's default
   stopwords: MySQL ignores those, so FTS5 must too, or the two engines would
   disagree. At most ``MAX_TERMS`` terms, first ones first, each once.
3. A document matches when it holds any term as a word or the start of a
   word (``term*``); more terms matched, and rarer ones, rank higher.
4. No terms left (an empty query, only punctuation or stopwords) means no
   search: callers answer with nothing found, not with everything.
5. An index may declare when a document is public (``Visibility``: a flag
   column and a time column). Asked with ``public_at``, the engine itself
   keeps only documents whose flag is set and whose time has come, so
   ``limit`` counts public documents only and drafts never crowd them out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_QUERY_CHARS: Final = 200
MIN_TERM_CHARS: Final = 3
MAX_TERM_CHARS: Final = 84
MAX_TERMS: Final = 8

# InnoDB's INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD (MySQL 8 and MariaDB 10.x).
# fmt: off
STOPWORDS: Final = frozenset({
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how",
    "i", "in", "is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "was", "what",
    "when", "where", "who", "will", "with", "und", "www",
})
# fmt: on
_RUN = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Visibility:
    """Rule 5: a document is public when ``flag`` is 1 and ``since`` (epoch ms, NULL:
    never) is at or before the time asked about."""

    flag: str
    since: str


@dataclass(frozen=True, slots=True)
class SearchIndex:
    """A searchable table: its key column and the text columns indexed.

    MySQL: a ``FULLTEXT`` index over exactly ``columns`` (created by a
    migration). SQLite: an FTS5 table ``fts_table`` with the key (unindexed)
    and ``columns``, kept in step by triggers (created by the same migration).
    """

    name: str
    table: str
    key: str
    columns: tuple[str, ...]
    visibility: Visibility | None = None

    @property
    def fts_table(self) -> str:
        return f"{self.table}_fts"


COURSES: Final = SearchIndex("courses", "courses", "id", ("title", "description"))
POSTS: Final = SearchIndex(
    "posts",
    "blog_posts",
    "id",
    ("title", "body_text"),
    Visibility(flag="is_published", since="published_at"),
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A matching document's key and its relevance (higher is better; comparable only
    within one answer)."""

    key: str
    score: float


def terms(query: str) -> tuple[str, ...]:
    """Rules 1-2: the usable terms of a user's query, in order, each once."""
    out: list[str] = []
    for run in _RUN.findall(query[:MAX_QUERY_CHARS].lower()):
        term = run[:MAX_TERM_CHARS]
        if len(term) >= MIN_TERM_CHARS and term not in STOPWORDS and term not in out:
            out.append(term)
            if len(out) == MAX_TERMS:
                break
    return tuple(out)


def boolean_query(found: tuple[str, ...]) -> str:
    """Rule 3 for MySQL ``MATCH … AGAINST (… IN BOOLEAN MODE)``: optional prefix terms."""
    return " ".join(f"{term}*" for term in found)


def fts5_query(found: tuple[str, ...]) -> str:
    """Rule 3 for FTS5 ``MATCH``: quoted prefix terms joined by OR (quotes make any
    character a literal)."""
    return " OR ".join('"' + term.replace('"', '""') + '"*' for term in found)
