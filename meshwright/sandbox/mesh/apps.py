"""Bookinfo's four applications, answering as their sources do (samples/bookinfo/src). Pure.

Which application and version a pod runs is read from the pod itself (labels `app`/`version`, the
container's env: `CLUSTER_NAME`, `ENABLE_RATINGS`, `STAR_COLOR`), `podname` is the pod's name (its
HOSTNAME). Calls to other services go through `Call`, which the data plane answers from the calling
pod, so a backend that cannot be reached gives the caller's own error: productpage tries reviews
twice and then answers with the last status (500 without one) and its error JSON, as productpage.py
does; reviews v2/v3 show `"rating": {"error": "Ratings service is currently unavailable"}`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

from meshwright.sandbox import dotted

Call = Callable[[str, str], tuple[int, bytes]]  # (host, path) -> (status, body); status 0: no connection
Answer = tuple[int, bytes, str]
JSON, HTML, TEXT = "application/json", "text/html; charset=utf-8", "text/plain; charset=utf-8"
PORT = 9080
PRODUCT = {
    "id": 0,
    "title": "The Comedy of Errors",
    "descriptionHtml": '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
    "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of "
    "his most farcical comedies, with a major part of the humour coming from slapstick and mistaken "
    "identity, in addition to puns and word play.",
}
REVIEWS = (
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
    ),
)
RATINGS = {"Reviewer1": 5, "Reviewer2": 4}
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
RATINGS_ERROR = "Sorry, product ratings are currently unavailable for this book."
GUNICORN_MAX_REQUEST_LINE = 4094  # productpage runs under gunicorn (its Dockerfile): limit_request_line
WEBRICK_MAX_URI = 2083  # details runs on Ruby's WEBrick: MAX_URI_LENGTH, answered 414
NOT_FOUND = (
    b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    b"<p>The requested URL was not found on the server. If you entered the URL manually please check "
    b"your spelling and try again.</p>\n"
)


def _env(pod: dict[str, Any]) -> dict[str, str]:
    app = dotted.get(pod, "metadata.labels.app")
    containers = dotted.get(pod, "spec.containers", []) or []
    chosen = next((c for c in containers if c.get("name") == app), containers[0] if containers else {})
    return {e["name"]: str(e.get("value", "")) for e in chosen.get("env") or [] if "name" in e}


def _json(status: int, value: Any) -> Answer:
    return status, json.dumps(value).encode(), JSON


def _too_long_for_gunicorn(path: str) -> Answer | None:
    """gunicorn's own 400 for a request line over limit_request_line (before Flask sees it)."""
    line = len(f"GET {path} HTTP/1.1")
    if line <= GUNICORN_MAX_REQUEST_LINE:
        return None
    reason, mesg = "Bad Request", f"Request Line is too large ({line} &gt; {GUNICORN_MAX_REQUEST_LINE})"
    page = f"<html>\n  <head>\n    <title>{reason}</title>\n  </head>\n  <body>\n    <h1><p>{reason}</p></h1>\n    {mesg}\n  </body>\n</html>\n"
    return 400, page.encode(), "text/html"


def details(pod: dict[str, Any], path: str, call: Call) -> Answer:
    if len(path) > WEBRICK_MAX_URI:
        return 414, b"Request-URI Too Large", HTML
    if path == "/health":
        return _json(200, {"status": "Details is healthy"})
    if m := re.fullmatch(r"/details/(\d+)", path):
        return _json(
            200,
            {"id": int(m[1]), "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
             "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"},
        )  # fmt: skip
    return 404, NOT_FOUND, HTML


def ratings(pod: dict[str, Any], path: str, call: Call) -> Answer:
    if path == "/health":
        return _json(200, {"status": "Ratings is healthy"})
    if m := re.fullmatch(r"/ratings/(\d+)", path):  # Node's parseInt: past 1e308 it is Infinity, JSON null
        return _json(200, {"id": int(m[1]) if len(m[1]) <= 308 else None, "ratings": RATINGS})
    return _json(400, {"error": "unsupported ratings id"})


def reviews(pod: dict[str, Any], path: str, call: Call) -> Answer:
    if path == "/health":
        return _json(200, {"status": "Reviews is healthy"})
    m = re.fullmatch(r"/reviews/(\d+)", path)
    if not m:
        return 404, b"", TEXT
    env = _env(pod)
    version = dotted.get(pod, "metadata.labels.version", "v1")
    with_ratings = env.get("ENABLE_RATINGS", "true" if version in ("v2", "v3") else "false") == "true"
    color = env.get("STAR_COLOR", "red" if version == "v3" else "black")
    stars: dict[str, Any] | None = None
    if with_ratings:
        status, body = call("ratings", f"/ratings/{m[1]}")
        stars = json.loads(body).get("ratings") if status == 200 else None
    entries = []
    for reviewer, text in REVIEWS:
        entry: dict[str, Any] = {"reviewer": reviewer, "text": text}
        if with_ratings:
            entry["rating"] = (
                {"stars": stars[reviewer], "color": color} if stars and reviewer in stars
                else {"error": "Ratings service is currently unavailable"}
            )  # fmt: skip
        entries.append(entry)
    podname = pod["metadata"]["name"]
    return _json(
        200,
        {"id": m[1], "podname": podname, "clustername": env.get("CLUSTER_NAME", "null"), "reviews": entries},
    )


def _backend(call: Call, host: str, path: str, error: str, *, tries: int = 1) -> tuple[int, Any]:
    status = 0
    for _ in range(tries):
        status, body = call(host, path)
        if status == 200:
            return 200, json.loads(body)
    return status or 500, {"error": error}


def _page(details_status: int, details_body: Any, reviews_status: int, reviews_body: Any) -> bytes:
    parts = [f"<html><head><title>Simple Bookstore App</title></head><body><h3>{PRODUCT['title']}</h3>",
             f"<p>{PRODUCT['descriptionHtml']}</p>"]  # fmt: skip
    if details_status == 200:
        parts.append("<h4>Book Details</h4><dl>" + "".join(
            f"<dt>{html.escape(str(k))}:</dt>{html.escape(str(v))}" for k, v in details_body.items() if k != "id") + "</dl>")  # fmt: skip
    else:
        parts.append(f"<h4>Error fetching product details!</h4><p><h4>{DETAILS_ERROR}</h4></p>")
    if reviews_status == 200:
        parts.append("<h4>Book Reviews</h4>")
        for r in reviews_body.get("reviews", []):
            parts.append(f"<blockquote><p>{html.escape(r['text'])}</p><small>{r['reviewer']}</small>")
            rating = r.get("rating") or {}
            if "stars" in rating:
                parts.append(f'<font color="{rating["color"]}">' + "&#9733;" * rating["stars"] + "</font>")
            elif "error" in rating:
                parts.append(f"<p><i>{rating['error']}</i></p>")
            parts.append("</blockquote>")
        parts.append(f"<p><em>Reviews served by:</em> <u>{reviews_body.get('podname')}</u>")
        if reviews_body.get("clustername") not in (None, "null"):
            parts.append(f" on cluster <u>{reviews_body['clustername']}</u>")
        parts.append("</p>")
    else:
        parts.append(f"<h4>Error fetching product reviews!</h4><p><h4>{REVIEWS_ERROR}</h4></p>")
    return ("".join(parts) + "</body></html>").encode()


def productpage(pod: dict[str, Any], path: str, call: Call) -> Answer:
    if refused := _too_long_for_gunicorn(path):
        return refused
    if path == "/health":
        return 200, b"Product page is healthy", HTML
    if path == "/api/v1/products":
        return _json(200, [PRODUCT])
    if m := re.fullmatch(r"/api/v1/products/(\d+)", path):
        return _json(*_backend(call, "details", f"/details/{m[1]}", DETAILS_ERROR))
    if m := re.fullmatch(r"/api/v1/products/(\d+)/reviews", path):
        return _json(*_backend(call, "reviews", f"/reviews/{m[1]}", REVIEWS_ERROR, tries=2))
    if m := re.fullmatch(r"/api/v1/products/(\d+)/ratings", path):
        return _json(*_backend(call, "ratings", f"/ratings/{m[1]}", RATINGS_ERROR))
    if path == "/productpage":
        d = _backend(call, "details", "/details/0", DETAILS_ERROR)
        r = _backend(call, "reviews", "/reviews/0", REVIEWS_ERROR, tries=2)
        return 200, _page(*d, *r), HTML
    return 404, NOT_FOUND, HTML


APPS: dict[str, Callable[[dict[str, Any], str, Call], Answer]] = {
    "productpage": productpage,
    "details": details,
    "reviews": reviews,
    "ratings": ratings,
}


def answer(pod: dict[str, Any], path: str, call: Call) -> Answer:
    """What the application in `pod` answers to GET `path` (query string already removed)."""
    app = APPS.get(str(dotted.get(pod, "metadata.labels.app", "")))
    if app is None:
        return (
            503,
            b"upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            TEXT,
        )
    return app(pod, path, call)
