"""Prediction ids as they leave the process: keyed hashes, and the sampling decision taken from them.

``ml.prediction.id`` is ``hmac(secret, str(id), sha256).hexdigest()[:32]``; the secret comes from
:func:`otel_ml.configure` (``id_secret=``) or ``OTEL_ML_ID_SECRET``. Raw ids leave only with
``hash_ids=False``. Whether an id is sampled (``outcome_sample_rate``) depends on its digest alone, so the
process that predicts and the process that records the outcome take the same decision without talking.
Before hashing, an id is spelled as :func:`id_text` says (``7``, ``7.0`` and ``numpy.int64(7)`` are all
``"7"``), so an id read back from a CSV file still matches the one the model saw.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Iterable
from typing import Any

from ._errors import ConfigurationError

ID_SECRET_ENV = "OTEL_ML_ID_SECRET"
HASH_HEX_CHARS = 32
_SAMPLE_SPACE = 1 << 64

_secret: bytes | None = None  # from configure(id_secret=...); None: the environment variable
_hash_ids = True


def configure_ids(id_secret: str | bytes | None, hash_ids: bool | None) -> None:
    """Set the secret and the process default of ``hash_ids`` (from :func:`otel_ml.configure`)."""
    global _secret, _hash_ids
    if id_secret is not None:
        if not isinstance(id_secret, (str, bytes)) or not id_secret:
            raise ConfigurationError("id_secret must be a non-empty str or bytes")
        _secret = id_secret.encode() if isinstance(id_secret, str) else bytes(id_secret)
    if hash_ids is not None:
        if not isinstance(hash_ids, bool):
            raise ConfigurationError(f"hash_ids must be True or False, got {hash_ids!r}")
        _hash_ids = hash_ids


def default_hash_ids() -> bool:
    return _hash_ids


def secret() -> bytes | None:
    """The configured secret, else ``OTEL_ML_ID_SECRET``, else None (records are then not sent)."""
    if _secret is not None:
        return _secret
    env = os.environ.get(ID_SECRET_ENV, "")
    return env.encode() if env else None


def check_sample_rate(rate: Any, what: str = "outcome_sample_rate") -> float:
    """``rate`` as a float in (0, 1]; :class:`ConfigurationError` otherwise."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 < rate <= 1.0:
        raise ConfigurationError(f"{what} must be in (0, 1], got {rate!r}")
    return float(rate)


def id_text(value: Any) -> str | None:
    """The text an id is hashed from: ``str(value)``, integral floats and numpy scalars as Python ints;
    None for a missing id (None, NaN, empty string)."""
    if value is None:
        return None
    if type(value) is str:
        return value or None
    if hasattr(value, "item") and not isinstance(value, (bytes, str)):
        try:
            value = value.item()  # numpy scalar
        except (TypeError, ValueError):
            pass
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    return text or None


def prepare(ids: Iterable[Any], *, hashed: bool, key: bytes | None, rate: float) -> tuple[list[int], list[str], int]:
    """(positions kept, their wire ids, number of missing ids) for one batch of raw ids.

    ``hashed`` needs ``key`` (the caller checks). Positions not kept were either missing ids (counted in
    the third item) or not sampled at ``rate``.
    """
    keep: list[int] = []
    out: list[str] = []
    invalid = 0
    threshold = int(rate * _SAMPLE_SPACE)
    sampled = rate < 1.0
    digest = hmac.digest
    sha256 = hashlib.sha256
    for i, raw in enumerate(ids):
        text = raw if type(raw) is str and raw else id_text(raw)
        if text is None:
            invalid += 1
            continue
        data = text.encode()
        if hashed:
            d = digest(key, data, "sha256")  # type: ignore[arg-type]
            if sampled and int.from_bytes(d[:8], "big") >= threshold:
                continue
            out.append(d.hex()[:HASH_HEX_CHARS])
        else:
            if sampled and int.from_bytes(sha256(data).digest()[:8], "big") >= threshold:
                continue
            out.append(text)
        keep.append(i)
    return keep, out, invalid


def hash_id(value: Any, key: bytes) -> str:
    """The wire id of one raw id (for tests and tools): the contract's keyed hash of :func:`id_text`."""
    text = id_text(value)
    if text is None:
        raise ValueError(f"{value!r} is not a usable prediction id")
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]


def _reset() -> None:
    global _secret, _hash_ids
    _secret, _hash_ids = None, True
