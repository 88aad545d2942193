"""The two adapters of the search port (``typogram.ports.Search``), over the SQL port.

* ``Fts5Search`` (SQLite): ``MATCH`` on the index's FTS5 table, ranked by
  its ``rank`` (``bm25``, negated: higher is better), each text column
  weighted alike.
* ``FulltextSearch`` (MySQL/MariaDB): ``MATCH (columns) AGAINST (… IN BOOLEAN
  MODE)`` on the index's ``FULLTEXT`` index, ranked by its relevance.

Both reduce the user's query to terms first (``typogram.search.terms``), so
what reaches the engine is letters, digits and the engine's own syntax
around them. Asked for public documents only (rule 5 of ``typogram.search``),
both filter in the same statement: FTS5 keeps the matches whose key is in
the public keys, MySQL adds the condition beside ``MATCH``. Table and column
names come from ``SearchIndex`` constants, never from a request.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from typogram.db.database import Database
from typogram.ports import Search
from typogram.search import SearchHit, SearchIndex, boolean_query, fts5_query, terms


def _public_only(index: SearchIndex, public_at: int | None) -> str:
    """The condition of rule 5 over the indexed table's columns, or ``""``."""
    if public_at is None:
        return ""
    if index.visibility is None:
        raise ValueError(f"the {index.name} index declares no visibility")
    flag, since = index.visibility.flag, index.visibility.since
    return f"{flag} = 1 AND {since} <= :at"


class _Counted:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queries = 0
        self._empty = 0
        self._seconds = 0.0

    def statistics(self) -> dict[str, float]:
        return {"queries": self._queries, "no_terms": self._empty, "seconds": self._seconds}


class Fts5Search(_Counted):
    async def search(
        self, index: SearchIndex, query: str, *, limit: int, public_at: int | None = None
    ) -> list[SearchHit]:
        found = terms(query)
        if not found or limit < 1:
            self._empty += 1
            return []
        started = time.perf_counter()
        table, key = index.fts_table, index.key
        public = _public_only(index, public_at)
        if public:
            # Rule 5 as a list of public keys (the index on the visibility columns
            # answers it): half the time of joining the documents' table to every match.
            public = f" AND {key} IN (SELECT {key} FROM {index.table} WHERE {public})"
        statement = text(
            f"SELECT {key}, rank FROM {table} "
            f"WHERE {table} MATCH :q{public} ORDER BY rank, {key} LIMIT :n"
        )
        params = {"q": fts5_query(found), "n": limit, "at": public_at}
        async with self._db.read() as conn:
            rows = (await conn.execute(statement, params)).all()
        self._queries += 1
        self._seconds += time.perf_counter() - started
        return [SearchHit(str(key), -float(rank)) for key, rank in rows]


class FulltextSearch(_Counted):
    async def search(
        self, index: SearchIndex, query: str, *, limit: int, public_at: int | None = None
    ) -> list[SearchHit]:
        found = terms(query)
        if not found or limit < 1:
            self._empty += 1
            return []
        started = time.perf_counter()
        columns = ", ".join(index.columns)
        match = f"MATCH ({columns}) AGAINST (:q IN BOOLEAN MODE)"
        public = _public_only(index, public_at)
        public = f" AND {public}" if public else ""
        statement = text(
            f"SELECT {index.key}, {match} AS score FROM {index.table} "
            f"WHERE {match}{public} ORDER BY score DESC, {index.key} LIMIT :n"
        )
        params = {"q": boolean_query(found), "n": limit, "at": public_at}
        async with self._db.read() as conn:
            rows = (await conn.execute(statement, params)).all()
        self._queries += 1
        self._seconds += time.perf_counter() - started
        return [SearchHit(str(key), float(score)) for key, score in rows]


def search_for(db: Database) -> Search:
    """The adapter that fits the database: FTS5 on SQLite, FULLTEXT on MySQL/MariaDB."""
    return FulltextSearch(db) if db.dialect == "mysql" else Fts5Search(db)
