"""Container health check: exit 0 when the processor's /healthz answers 200, else 1 (Docker HEALTHCHECK).

The URL is ``$OTEL_ML_HEALTHCHECK_URL`` (default ``http://127.0.0.1:14318/healthz``). For ``https`` the
certificate is not verified: the probe talks to its own container over loopback and only asks whether
the process serves, which the server's certificate name (issued for the service's DNS name) cannot tell.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request

DEFAULT_URL = "http://127.0.0.1:14318/healthz"


def main() -> int:
    url = os.environ.get("OTEL_ML_HEALTHCHECK_URL") or DEFAULT_URL
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as resp:
            ok = resp.status == 200
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
