"""Which browser origins may open a Socket.IO connection.

Panel pages are same-origin; the extension connects from chrome-extension://<id>. Any other web origin
is refused, so a hostile page cannot ride a supervisor's session cookie into `/panel`. Clients that send
no Origin (scripts, `veil simulate`) are not browsers and authenticate with tokens.
"""

from __future__ import annotations

from collections.abc import Callable


def origin_checker(extra_origins: list[str]) -> Callable[[str | None, dict], bool]:
    extra = {o.rstrip("/") for o in extra_origins if o}

    def allowed(origin: str | None, environ: dict | None = None) -> bool:
        if not origin:
            return True
        origin = origin.rstrip("/")
        if origin.startswith("chrome-extension://") or origin in extra:
            return True
        # Behind proxies, ProxyFix (VEIL_PROXY_COUNT) has already put the client's host and scheme here;
        # raw X-Forwarded-* headers are not trusted.
        environ = environ or {}
        host = environ.get("HTTP_HOST")
        scheme = environ.get("wsgi.url_scheme", "http")
        return bool(host) and origin == f"{scheme}://{host}"

    return allowed
