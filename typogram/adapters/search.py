"""The two adapters of the search port (``typogram.ports.Search``), over the SQL port.

* ``Fts5Search`` (SQLite): ``MATCH`` on the index's FTS5 table, ranked by
  ``bm25`` (negated: higher is better), each text column weighted alike.
* ``FulltextSearch`` (MySQL/MariaDB): ``MATCH (columns) AGAINST (… IN BOOLEAN
  MODE)`` on the index's ``FULLTEXT`` index, ranked by its relevance.

Both reduce the user's query to terms first (``typogram.search.terms``), so
what reaches the engine is letters, digits and the engine's own syntax
around them. Table and column names come from ``SearchIndex`` constants,
never from a request.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from typogram.db.database import Database
from typogram.ports import Search
from typogram.search import SearchHit, SearchIndex, boolean_query, fts5_query, terms


class _Counted:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queries = 0
        self._empty = 0
        self._seconds = 0.0

    def statistics(self) -> dict[str, float]:
        return {"queries": self._queries, "no_terms": self._empty, "seconds": self._seconds}


class Fts5Search(_Counted):
    async def search(self, index: SearchIndex, query: str, *, limit: int) -> list[SearchHit]:
        found = terms(query)
        if not found or limit < 1:
            self._empty += 1
            return []
        started = time.perf_counter()
        table = index.fts_table
        statement = text(
            f"SELECT {index.key}, bm25({table}) AS rank FROM {table} "
            f"WHERE {table} MATCH :q ORDER BY rank, {index.key} LIMIT :n"
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement, {"q": fts5_query(found), "n": limit})).all()
        self._queries += 1
        self._seconds += time.perf_counter() - started
        return [SearchHit(str(key), -float(rank)) for key, rank in rows]


class FulltextSearch(_Counted):
    async def search(self, index: SearchIndex, query: str, *, limit: int) -> list[SearchHit]:
        found = terms(query)
        if not found or limit < 1:
            self._empty += 1
            return []
        started = time.perf_counter()
        columns = ", ".join(index.columns)
        match = f"MATCH ({columns}) AGAINST (:q IN BOOLEAN MODE)"
        statement = text(
            f"SELECT {index.key}, {match} AS score FROM {index.table} "
            f"WHERE {match} ORDER BY score DESC, {index.key} LIMIT :n"
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement, {"q": boolean_query(found), "n": limit})).all()
        self._queries += 1
        self._seconds += time.perf_counter() - started
        return [SearchHit(str(key), float(score)) for key, score in rows]


def search_for(db: Database) -> Search:
    """The adapter that fits the database: FTS5 on SQLite, FULLTEXT on MySQL/MariaDB."""
    return FulltextSearch(db) if db.dialect == "mysql" else Fts5Search(db)
