"""Routes of the dashboard: login/logout, the page shells and the static assets.

Pages are one HTML shell each (navigation, the session's CSRF token in a `<meta>`) plus a
hand-written script under `static/pages/`; all data comes from `/api/v1` in the browser, which
authenticates with the session cookie together with `Authorization: Session <csrf>` (see
`architect.access.auth`). State-changing forms served here (login, logout) check a CSRF token too:
the login form's is issued and verified by the server (`architect.access.login`), which also limits
failed logins per client address and per key prefix (429 with Retry-After) and audits them.
"""

from __future__ import annotations

import hmac
import math
import time
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from architect.access.auth import SESSION_COOKIE, Session, SessionLimitReached
from architect.access.keys import hash_secret
from architect.access.login import key_prefix
from architect.errors import AuthenticationFailed
from architect.principal import Principal
from architect.runtime import Runtime

__all__ = ["PAGES", "routes"]

STATIC = Path(__file__).parent / "static"
LOGIN_COOKIE = "architect_login_csrf"
_MAX_FORM = 8192

# slug -> (navigation label, page title)
PAGES: dict[str, tuple[str, str]] = {
    "overview": ("Overview", "Overview"),
    "providers": ("Providers", "Providers & models"),
    "keys": ("Keys & budgets", "Keys & budgets"),
    "projects": ("Projects", "Projects & features"),
    "report": ("Report", "Feature report"),
    "ledger": ("Ledger", "Ledger explorer"),
}

_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(value: str | None) -> str:
    """Only a local /ui path may be a redirect target (no open redirect)."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/overview"


def _who(p: Principal) -> str:
    if p.kind == "admin":
        return "admin"
    if p.kind == "anonymous":
        return "local (no admin key configured)"
    return f"key {p.name or p.key_id}"


def _shell(page: str, session: Session) -> str:
    label_title = PAGES[page][1]
    current = ' aria-current="page"'
    nav = "".join(
        f'<li><a href="/ui/{slug}"{current if slug == page else ""}>{escape(label)}</a></li>'
        for slug, (label, _) in PAGES.items()
    )
    p = session.principal
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(label_title)} · Architect</title>
<meta name="csrf-token" content="{escape(session.csrf)}">
<meta name="principal-admin" content="{"true" if p.is_admin else "false"}">
<link rel="stylesheet" href="/ui/static/app.css">
<link rel="icon" href="data:,">
<script type="module" src="/ui/static/pages/{page}.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/ui/overview">Architect</a>
  <nav aria-label="Main"><ul>{nav}</ul></nav>
  <div class="who">
    <span>Signed in as <strong>{escape(_who(p))}</strong></span>
    <form method="post" action="/ui/logout">
      <input type="hidden" name="csrf" value="{escape(session.csrf)}">
      <button type="submit" class="link">Log out</button>
    </form>
  </div>
</header>
<main id="main" tabindex="-1">
  <h1>{escape(label_title)}</h1>
  <div id="app" aria-live="polite"><p class="muted">Loading…</p></div>
</main>
</body>
</html>
"""


def _login_page(next_url: str, token: str, error: str | None, open_mode: bool) -> str:
    err = f'<p class="error" role="alert" id="login-error">{escape(error)}</p>' if error else ""
    hint = (
        "No admin key is configured: leave the field empty to continue as the local operator."
        if open_mode
        else "Use the admin key or a virtual API key. The key is checked once; the browser keeps only a session."
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Architect</title>
<link rel="stylesheet" href="/ui/static/app.css">
<link rel="icon" href="data:,">
</head>
<body class="login">
<main id="main">
  <h1>Architect dashboard</h1>
  <form method="post" action="/ui/login" class="card login-form">
    {err}
    <input type="hidden" name="csrf" value="{escape(token)}">
    <input type="hidden" name="next" value="{escape(next_url)}">
    <label for="key">API key</label>
    <input id="key" name="key" type="password" autocomplete="current-password" {"" if open_mode else "required"}
      aria-describedby="key-hint"{' aria-invalid="true"' if error else ""} autofocus>
    <p id="key-hint" class="muted">{escape(hint)}</p>
    <button type="submit">Log in</button>
  </form>
</main>
</body>
</html>
"""


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if v}


def routes(runtime: Runtime) -> list[BaseRoute]:
    auth = runtime.auth

    async def session_of(request: Request) -> Session | None:
        s: Session | None = await auth.session(request.cookies.get(SESSION_COOKIE))
        return s

    def set_session(resp: Response, request: Request, s: Session) -> None:
        resp.set_cookie(
            SESSION_COOKIE, s.id, httponly=True, samesite="strict", secure=_secure(request), path="/",
            max_age=int(auth.sessions.max_age_s),
        )  # fmt: skip

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui/overview", status_code=303)

    async def login_get(
        request: Request, error: str | None = None, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        token = runtime.login.tokens.issue()
        next_url = _safe_next(request.query_params.get("next"))
        resp = _html(_login_page(next_url, token, error, auth.open_mode), status)
        resp.headers.update(headers or {})
        resp.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/ui/login",
            max_age=3600,
        )  # fmt: skip
        return resp

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return await login_get(request)
        guard = runtime.login
        form = await _form(request)
        if not guard.tokens.valid(form.get("csrf", ""), request.cookies.get(LOGIN_COOKIE) or ""):
            return await login_get(request, "The form expired; please try again.", 403)
        key = form.get("key", "").strip()
        peer = request.client.host if request.client else None
        address, prefix = guard.address(peer, request.headers.get("x-forwarded-for")), key_prefix(key)
        wait = guard.retry_after(address, prefix)
        if wait is not None:  # refused unseen, a correct key too: otherwise the limit would not stop guessing
            await guard.failed(address, prefix, limited=True)
            seconds = math.ceil(wait)
            at = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + seconds))
            msg = f"Too many failed logins. Try again in {seconds} s (at {at})."
            return await login_get(request, msg, 429, {"retry-after": str(seconds)})
        try:
            principal: Principal = await auth.authenticate(f"Bearer {key}" if key else None)
        except AuthenticationFailed:
            await guard.failed(address, prefix, limited=False)
            return await login_get(request, "That key was not accepted.")  # the form again, not an HTTP error
        try:
            s = auth.sessions.create(
                principal, credential=hash_secret(key) if principal.kind == "key" else None
            )
        except SessionLimitReached as exc:
            return await login_get(request, exc.message, exc.status, exc.headers)
        resp = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        set_session(resp, request, s)
        resp.delete_cookie(LOGIN_COOKIE, path="/ui/login")
        return resp

    async def logout(request: Request) -> Response:
        s = auth.sessions.get(request.cookies.get(SESSION_COOKIE))  # any live session may log out
        form = await _form(request)
        if s is not None:
            if not hmac.compare_digest(form.get("csrf", "").encode(), s.csrf.encode()):
                return _html("<!doctype html><title>Forbidden</title><p>Invalid CSRF token.</p>", 403)
            auth.sessions.drop(s.id)
        resp = RedirectResponse("/ui/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    async def page(request: Request) -> Response:
        slug = request.path_params["page"]
        if slug not in PAGES:
            return _html(
                "<!doctype html><title>Not found</title><p>No such page. <a href='/ui/overview'>Overview</a>",
                404,
            )
        s = await session_of(request)
        if s is None and auth.open_mode:  # loopback-only mode: no key exists to log in with
            try:
                s = auth.sessions.create(await auth.authenticate(None))
            except SessionLimitReached as exc:
                return _html(f"<!doctype html><title>Busy</title><p>{escape(exc.message)}</p>", exc.status)
            resp = _html(_shell(slug, s))
            set_session(resp, request, s)
            return resp
        if s is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
        return _html(_shell(slug, s))

    return [
        Route("/ui", root),
        Route("/ui/", root),
        Route("/ui/login", login, methods=["GET", "POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Mount("/ui/static", app=StaticFiles(directory=STATIC), name="ui-static"),
        Route("/ui/{page}", page),
    ]
