"""The blog's public pages for people and search engines: ``/blog``, ``/blog/{slug}``,
``/blog/feed.xml`` (Atom), ``/sitemap.xml`` and the pages' stylesheet.

Server-rendered with Jinja2 (autoescaping on: a title or excerpt is always
text; a post's body is the HTML sanitised when it was written,
``typogram.blog.markdown``). Every answer carries the web client's security
headers (the same Content-Security-Policy: no inline script or style), an
``ETag`` from its bytes and ``Cache-Control: public, max-age=…``
(``blog_page_max_age_s``); a request whose ``If-None-Match`` names the
current ETag gets ``304`` and no body. The stylesheet's name carries a
digest of its bytes, so it is cached for a year and a new version gets a new
name. Links are absolute on ``public_url`` (or the address the request came
to when it is not set): canonical links, Open Graph tags, the feed and the
sitemap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import feedgenerator
import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rest.blog import reader
from rest.context import platform_of
from rest.web import SECURITY_HEADERS
from typogram.errors import AppError
from typogram.slugs import TAG

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
)
_CSS = (TEMPLATES / "blog.css").read_bytes()
STYLESHEET = f"blog-{hashlib.sha256(_CSS).hexdigest()[:12]}.css"
IMMUTABLE = "public, max-age=31536000, immutable"
PAGE_SIZE = 10


def site_url(request: Request) -> str:
    """Where links point: ``public_url``, or the scheme and host of this request."""
    configured = platform_of(request).settings.public_url
    return configured or f"{request.url.scheme}://{request.url.netloc}"


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _not_modified(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match", "")
    tags = {part.strip().removeprefix("W/") for part in wanted.split(",")}
    return etag in tags or "*" in tags


def cacheable(
    request: Request, body: bytes, media_type: str, *, status: int = 200, max_age: int | None = None
) -> Response:
    """``body`` with its ETag, cache and security headers; 304 when the client has it."""
    age = platform_of(request).settings.blog_page_max_age_s if max_age is None else max_age
    headers = {"ETag": _etag(body), "Cache-Control": f"public, max-age={age}", **SECURITY_HEADERS}
    if status == 200 and _not_modified(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(body, status, headers, media_type=media_type)


def _when(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _dated(post: dict[str, Any]) -> dict[str, Any]:
    published, updated = _when(post["published_at"]), _when(post["updated_at"])
    return post | {
        "published_iso": published.isoformat(timespec="seconds"),
        "published_human": f"{published.day} {published:%B %Y}",
        "updated_iso": updated.isoformat(timespec="seconds"),
        "updated_human": f"{updated.day} {updated:%B %Y}",
    }


def _page(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    settings = platform_of(request).settings
    base = site_url(request)
    values = {
        "base": base,
        "blog_title": settings.blog_title,
        "stylesheet": f"/blog/assets/{STYLESHEET}",
        "lang": "en",
        "og_type": "website",
        "section": "",
        **context,
    }
    values.setdefault("og_title", values["title"])
    body = _ENV.get_template(template).render(values).encode()
    return cacheable(request, body, "text/html; charset=utf-8", status=status)


def _refused(request: Request, status: int, title: str, description: str) -> Response:
    return _page(
        request,
        "blog_missing.html",
        status=status,
        title=title,
        description=description,
        canonical=f"{site_url(request)}/blog",
    )


async def list_page(request: Request) -> Response:
    tag = request.query_params.get("tag") or None
    cursor = request.query_params.get("cursor") or None
    if (tag is not None and not TAG.match(tag)) or (cursor is not None and len(cursor) > 200):
        return _refused(request, 400, "Bad request", "That tag or page does not exist.")
    try:
        page = await reader(request).page(tag=tag, cursor=cursor, limit=PAGE_SIZE)
    except AppError as exc:
        return _refused(request, exc.http_status, "Bad request", exc.message)
    settings = platform_of(request).settings
    here = {name: value for name, value in (("tag", tag), ("cursor", cursor)) if value}
    canonical = f"{site_url(request)}/blog" + (f"?{urlencode(here)}" if here else "")
    following = page["next_cursor"]
    next_href = None
    if following:
        next_href = "/blog?" + urlencode({**({"tag": tag} if tag else {}), "cursor": following})
    return _page(
        request,
        "blog_list.html",
        title=f"{settings.blog_title} · {tag}" if tag else settings.blog_title,
        description=f"Posts tagged {tag}" if tag else f"News and guides from {settings.blog_title}",
        canonical=canonical,
        section="list",
        tag=tag,
        posts=[_dated(post) for post in page["posts"]],
        next_href=next_href,
    )


async def post_page(request: Request) -> Response:
    slug = request.path_params["slug"]
    found = await reader(request).post(slug)
    if "redirect" in found:
        return RedirectResponse(f"/blog/{found['redirect']}", status_code=301,
                                headers=SECURITY_HEADERS)  # fmt: skip
    post = found["post"]
    if post is None:
        return _refused(request, 404, "Not found", "There is no post here.")
    settings = platform_of(request).settings
    return _page(
        request,
        "blog_post.html",
        title=f"{post['title']} · {settings.blog_title}",
        og_title=post["title"],
        description=post["excerpt"],
        canonical=f"{site_url(request)}/blog/{post['slug']}",
        og_type="article",
        lang=post["language"],
        post=_dated(post),
    )


async def feed(request: Request) -> Response:
    settings = platform_of(request).settings
    base = site_url(request)
    entries = await reader(request).feed()
    atom = feedgenerator.Atom1Feed(
        title=settings.blog_title,
        link=f"{base}/blog",
        description=f"News and guides from {settings.blog_title}",
        feed_url=f"{base}/blog/feed.xml",
        feed_guid=f"{base}/blog",
        language="en",
    )
    for post in entries:
        atom.add_item(
            title=post["title"],
            link=f"{base}/blog/{post['slug']}",
            description=post["excerpt"],
            content=post["html"],
            # Stable across slug changes: readers never see a renamed post as new.
            unique_id=uuid.UUID(hex=post["id"]).urn,
            pubdate=_when(post["published_at"]),
            updateddate=_when(post["updated_at"]),
            author_name=post["author"]["name"],
            categories=post["tags"],
        )
    return cacheable(request, atom.writeString("utf-8").encode(), "application/atom+xml")


async def sitemap(request: Request) -> Response:
    base = escape(site_url(request))
    entries = await reader(request).sitemap()
    newest = max((entry["updated_at"] for entry in entries), default=None)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
             f"<url><loc>{base}/</loc></url>"]  # fmt: skip
    lastmod = f"<lastmod>{_when(newest).date().isoformat()}</lastmod>" if newest else ""
    lines.append(f"<url><loc>{base}/blog</loc>{lastmod}</url>")
    for entry in entries:
        day = _when(entry["updated_at"]).date().isoformat()
        lines.append(f"<url><loc>{base}/blog/{entry['slug']}</loc><lastmod>{day}</lastmod></url>")
    lines.append("</urlset>")
    return cacheable(request, "\n".join(lines).encode(), "application/xml")


async def asset(request: Request) -> Response:
    if request.path_params["name"] != STYLESHEET:
        return Response(b"not found", 404, SECURITY_HEADERS, media_type="text/plain")
    response = cacheable(request, _CSS, "text/css; charset=utf-8", max_age=0)
    response.headers["Cache-Control"] = IMMUTABLE
    return response


def routes() -> list[BaseRoute]:
    """The pages, before the web client's mount (which would answer any path)."""
    return [
        Route("/blog", list_page, methods=["GET"]),
        Route("/blog/feed.xml", feed, methods=["GET"]),
        Route("/blog/assets/{name}", asset, methods=["GET"]),
        Route("/blog/{slug}", post_page, methods=["GET"]),
        Route("/sitemap.xml", sitemap, methods=["GET"]),
    ]
