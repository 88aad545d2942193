"""Blog benchmark: the post list, a post, its page and search at fixed rates against one
REST process, on a few thousand seeded posts.

Seeds ``--posts`` posts (Markdown bodies of 300-900 words of everyday
English by word frequency with the words of their 1-3 topics, headings,
lists, links and code, rendered and sanitised as staff writes would be; the
12 topics are the tags; 88 % published over the last two years, 7 % drafts,
5 % scheduled)
into a fresh database, starts one ``typogram rest`` (``--backend embedded``:
SQLite and the in-memory cache; ``distributed``: MariaDB and Redis), then
per mix and rate in ``--rates`` sends ``--seconds`` of GET requests, open
loop, from ``--procs`` client processes (``bench.courses``' client):

* ``list``: ``/api/v1/blog/posts`` with one of 13 tag filters and one of the
  first five pages of each (keyset cursors collected first): cached after
  the first of each.
* ``view``: ``/api/v1/blog/posts/{slug}`` of a random public post: with
  thousands of posts most requests of a short run are cache misses.
* ``page``: ``/blog/{slug}``, the server-rendered page (Jinja2, ETag).
* ``search``: ``/api/v1/blog/search?q=`` one of 24 queries (cached after the
  first); ``search-miss``: every query unique (a topic's word and a token
  nobody wrote), so every request ranks in FTS5 or FULLTEXT.

Targets (p95): list < 100 ms, view and page < 150 ms, search < 300 ms.

Run::

    python -m bench.blog --backend embedded --rates 100,250,500
    python -m bench.blog --backend distributed --rates 100,250,500 \\
        --database-url mysql://root@127.0.0.1:3306/typogram_bench_blog \\
        --redis-url redis://127.0.0.1:6379/14
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from bench.common import SECRET, base_env, free_port
from bench.courses import clients, run_paths

TARGETS_P95_MS = {"list": 100.0, "view": 150.0, "page": 150.0, "search": 300.0,
                  "search-miss": 300.0}  # fmt: skip
# Each tag is a topic with its own words; a post mixes everyday English (the 5,000
# commonest words by their frequency, ``wordfreq``) with the words of its topics, so a
# query about a topic finds the posts about it, as on a real blog.
TOPICS = {
    "speed": "speed wpm faster sprint burst pace quick velocity",
    "accuracy": "accuracy mistakes errors precise backspace correct careful typo",
    "layouts": "layout qwerty dvorak colemak workman azerty remap keymap",
    "keyboards": "keyboard mechanical switches keycaps tactile linear membrane wireless",
    "ergonomics": "posture wrist chair desk strain break stretch ergonomic",
    "races": "race racing opponents matchmaking rating podium finish countdown",
    "courses": "course lesson lessons curriculum beginner intermediate drills exercises",
    "news": "release announcement launch update version changelog roadmap feature",
    "guides": "guide tutorial steps beginners tips practice routine habits",
    "events": "tournament event championship bracket prize season qualifier finals",
    "languages": "spanish german french polish portuguese italian russian turkish",
    "community": "community forum discord friends club members stories interview",
}
TAGS = list(TOPICS)
TOPICAL = [word for words in TOPICS.values() for word in words.split()]
QUERIES = [
    "typing speed", "accuracy", "home row", "keyboard layout", "dvorak", "colemak", "posture",
    "mechanical keyboard", "tournament finals", "wpm sprint", "warmup drills", "wrist strain",
    "beginner lessons", "tactile switches", "spanish", "release roadmap", "rating podium",
    "ergonomic chair", "typo correct", "community stories", "keymap remap", "club members",
    "\"home row\" -speed", "errors +fix",
]  # fmt: skip


def vocabulary() -> tuple[list[str], list[float]]:
    """The commonest English words and their frequencies."""
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list("en", 5000) if w.isalpha()]
    return words, [word_frequency(w, "en") for w in words]


def body(rng: random.Random, topics: list[str], common: tuple[list[str], list[float]]) -> str:
    words, weights = common
    topical = [word for topic in topics for word in TOPICS[topic].split()]

    def sentence(n: int) -> str:
        picked = rng.choices(words, weights, k=n)
        for i in range(n):
            if rng.random() < 0.06:
                picked[i] = rng.choice(topical)
        return " ".join(picked).capitalize()

    parts = []
    for section in range(rng.randint(3, 6)):
        parts.append(f"## {sentence(3)} {section + 1}")
        for _ in range(rng.randint(2, 4)):
            parts.append(
                sentence(rng.randint(40, 70)) + ", see [the guide](https://example.com/g)."
            )
        parts.append("\n".join(f"- **{rng.choice(topical)}** {sentence(6)}" for _ in range(4)))
        if rng.random() < 0.3:
            parts.append("```\n" + sentence(12) + "\n```")
    return "\n\n".join(parts)


async def seed(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """The posts, written straight to the database in batches; the public slugs."""
    from typogram.blog.markdown import excerpt_of, render
    from typogram.blog.model import EXCERPT_CHARS
    from typogram.db.schema import blog_post_tags, blog_posts
    from typogram.platform import open_platform
    from typogram.settings import load
    from typogram.slugs import encode_tags

    settings = load(env=env)
    rng = random.Random(19)
    now = int(time.time() * 1000)
    public: list[str] = []
    common = vocabulary()
    async with open_platform(settings, migrate=True) as platform:
        author = uuid.uuid4().hex
        rows: list[dict[str, Any]] = []
        tags: list[dict[str, str]] = []
        for n in range(args.posts):
            chosen = rng.sample(TAGS, rng.randint(1, 3))
            rendered = render(body(rng, chosen, common))
            slug = f"{'-'.join(rng.choices(common[0][200:2000], k=3))}-{n}"
            kind = rng.random()
            at: int | None = now - rng.randint(60_000, 2 * 365 * 86_400_000)
            if kind > 0.95:
                at = now + rng.randint(86_400_000, 30 * 86_400_000)
            elif kind > 0.88:
                at = None
            else:
                public.append(slug)
            rows.append({
                "id": uuid.uuid4().hex, "slug": slug,
                "title": " ".join(rng.choices(common[0][100:3000], k=rng.randint(3, 6))
                                  + rng.sample(TOPICS[chosen[0]].split(), 2)).capitalize(),
                "excerpt": excerpt_of(rendered.text, EXCERPT_CHARS), "excerpt_given": 0,
                "body_markdown": "", "body_html": rendered.html, "body_text": rendered.text,
                "cover_url": "", "tags": encode_tags(chosen), "language": "en",
                "author_id": author, "is_published": int(at is not None), "published_at": at,
                "created_at": now, "updated_at": now,
            })  # fmt: skip
            tags += [{"tag": tag, "post_id": rows[-1]["id"]} for tag in chosen]
            if len(rows) == 250 or n == args.posts - 1:
                async with platform.db.write() as conn:
                    await conn.execute(blog_posts.insert(), rows)
                    await conn.execute(blog_post_tags.insert(), tags)
                rows, tags = [], []
    return public


def start_rest(env: dict[str, str], data_dir: str, port: int) -> subprocess.Popen[bytes]:
    log = (Path(data_dir) / "rest.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roles", "rest"], env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("typogram rest did not start")


def list_paths(port: int) -> list[str]:
    """The first five pages of every tag filter (cursors walked once, before timing)."""
    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for tag in ["", *TAGS]:
            query = f"tag={tag}&" if tag else ""
            cursor = None
            for _ in range(5):
                path = f"/api/v1/blog/posts?{query}limit=10" + (
                    f"&cursor={cursor}" if cursor else ""
                )
                out.append(path)
                cursor = client.get(path).json()["next_cursor"]
                if cursor is None:
                    break
    return out


def targets(mix: str, count: int, rng: random.Random, public: list[str],
            listed: list[str]) -> list[str]:  # fmt: skip
    if mix == "list":
        return [rng.choice(listed) for _ in range(count)]
    if mix == "view":
        return [f"/api/v1/blog/posts/{rng.choice(public)}" for _ in range(count)]
    if mix == "page":
        return [f"/blog/{rng.choice(public)}" for _ in range(count)]
    if mix == "search":
        return [f"/api/v1/blog/search?q={quote(rng.choice(QUERIES))}" for _ in range(count)]
    unique = (f"{rng.choice(TOPICAL)} z{uuid.uuid4().hex[:10]}" for _ in range(count))
    return [f"/api/v1/blog/search?q={quote(q)}" for q in unique]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument("--database-url", default="mysql://root@127.0.0.1:3306/typogram_bench_blog")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--rates", default="100,250,500")
    parser.add_argument("--mixes", default="list,view,page,search,search-miss")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    port = free_port()
    settings: dict[str, object] = {"http_port": port, "rate_limit_ip_per_min": 100_000_000,
                                   "rate_limit_user_per_min": 100_000_000}  # fmt: skip
    if args.backend == "distributed":
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(args.database_url.replace("mysql://", "mysql+pymysql://", 1))
        engine = create_engine(url.set(database=""))
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
        engine.dispose()
        settings |= {"database_url": args.database_url, "redis_url": args.redis_url,
                     "redis_prefix": f"bench{uuid.uuid4().hex[:6]}:"}  # fmt: skip
    data_dir = tempfile.mkdtemp(prefix="typogram-bench-blog-")
    env = base_env(data_dir, **settings)
    assert env["TYPOGRAM_JWT_SECRET"] == SECRET
    began = time.monotonic()
    public = asyncio.run(seed(args, env))
    seeded = {"seeded": args.posts, "public": len(public),
              "seconds": round(time.monotonic() - began, 1)}  # fmt: skip
    print(orjson.dumps(seeded).decode(), flush=True)
    proc = start_rest(env, data_dir, port)
    rng = random.Random(19)
    try:
        listed = list_paths(port)
        with clients(port, args.procs, args.connections) as pipes:
            for mix in args.mixes.split(","):
                for rate in (int(r) for r in args.rates.split(",")):
                    paths = targets(mix, int(rate * args.seconds), rng, public, listed)
                    row = run_paths(pipes, proc.pid, mix, paths, rate)
                    row["target_p95_ms"] = TARGETS_P95_MS[mix]
                    print(orjson.dumps(row).decode(), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
