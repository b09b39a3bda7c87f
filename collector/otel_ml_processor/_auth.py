"""Bearer-token checks shared by the HTTP server and the gRPC receiver.

``Authorization: Bearer <token>`` (RFC 6750 section 2.1): the scheme is matched case-insensitively,
as RFC 7235 defines auth-schemes; the credential is compared in constant time
(:func:`hmac.compare_digest`), so the comparison leaks nothing about the token.
"""

from __future__ import annotations

import hmac

SCHEME = "bearer"


def bearer_matches(header: str | bytes | None, token: str) -> bool:
    """True when the ``Authorization`` value ``header`` carries ``token`` with the Bearer scheme."""
    if header is None:
        return False
    raw = header if isinstance(header, bytes) else header.encode("utf-8", "surrogateescape")
    scheme, _, credential = raw.strip().partition(b" ")
    if scheme.lower() != SCHEME.encode():
        return False
    return hmac.compare_digest(credential.strip(b" \t"), token.encode())


__all__ = ["bearer_matches"]
