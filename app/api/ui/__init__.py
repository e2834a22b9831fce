"""``GET /ui``: the admin page, a static shell (HTML, one ES module, one stylesheet) shipped in the package.

The page holds no data and no secret: it signs in with a key typed into a password field, keeps it in
the tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` on each call to the admin API,
which authorises every call as it does for curl (a team admin's key sees its own team only). The key
never travels as a cookie, so a forged cross-site request carries nothing (CSRF-safe by construction).

Every answer here carries a strict policy: scripts and styles from this origin only and no inline
script (``default-src 'self'``), no framing (``frame-ancestors 'none'`` and ``X-Frame-Options``), no
referrer, and the shell is never cached (``no-store``), so a sign-out leaves nothing behind.
"""

from __future__ import annotations

from importlib import resources

from litestar import Response, get
from litestar.handlers import BaseRouteHandler

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": _CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin"}
_TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}


def asset(name: str, cache: str) -> Response[bytes]:
    # Read per request, not held in a module global: a few kilobytes, fetched once per page load.
    body = (resources.files(__package__) / "static" / name).read_bytes()
    return Response(body, media_type=_TYPES[name], headers={**_HEADERS, "Cache-Control": cache})


@get(["/ui", "/ui/"], include_in_schema=False)
async def shell() -> Response[bytes]:
    return asset("index.html", "no-store")


@get("/ui/app.js", include_in_schema=False)
async def script() -> Response[bytes]:
    return asset("app.js", "no-cache")  # revalidated on each load: an upgrade is never half old


@get("/ui/app.css", include_in_schema=False)
async def stylesheet() -> Response[bytes]:
    return asset("app.css", "no-cache")


def ui_routes() -> list[BaseRouteHandler]:
    return [shell, script, stylesheet]
