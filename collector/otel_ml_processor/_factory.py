"""The factory: every component of the service built from its config section, in one place.

Like a Collector component's ``factory.go``: :func:`build` turns a validated :class:`Config` into
unstarted components (the reference store loads its directory; nothing listens, nothing runs);
:class:`~._service.Service` starts them, drives the evaluation loop and stops them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._config import Config
from ._decode import SizeLimits
from ._evaluate import Evaluator
from ._exporter import Exporter
from ._grpc import GrpcReceiver
from ._http import HttpServer
from ._ingest import Ingestor
from ._limits import CacheBudget
from ._outcomes import Outcomes
from ._state import State
from ._store import ReferenceStore
from ._telemetry import Telemetry
from ._versions import VersionPair

log = logging.getLogger("otel_ml_processor")


@dataclass
class Components:
    """What one service is made of; the receivers are ``None`` when their listener is disabled."""

    store: ReferenceStore
    state: State
    telemetry: Telemetry
    exporter: Exporter
    ingestor: Ingestor
    evaluator: Evaluator
    grpc: GrpcReceiver | None
    http: HttpServer | None
    caches: CacheBudget
    outcomes: Outcomes | None = None


def build(config: Config, *, status: Callable[[], dict[str, Any]] | None = None) -> Components:
    """The service's components, unstarted. ``status`` feeds the HTTP server's ``/api/v1/status``."""
    rec, win, st, exp = config.receivers, config.windows, config.state, config.export
    ref_dir = config.references_directory
    store = ReferenceStore(ref_dir)
    log.info("reference store %s: %d references", ref_dir or "<memory>", len(store))
    caches = CacheBudget(st.max_cache_bytes)
    state = State(store, windows=win.sizes, slots_per_window=win.slots, series_ttl=st.series_ttl,
                  max_streams_per_model=st.max_streams_per_model, max_series_per_model=st.max_series_per_model,
                  cache_budget=caches, max_segment_series=st.max_segment_series)
    telemetry = Telemetry()
    exporter = Exporter(exp.endpoint, protocol=exp.resolved_protocol, headers=exp.headers, timeout=exp.timeout,
                        queue_size=exp.queue_size, telemetry=telemetry)
    ingestor = Ingestor(state, telemetry, max_points_per_second=rec.overload.max_points_per_second,
                        max_loop_lag=rec.overload.max_loop_lag, retry_after=rec.overload.retry_after,
                        max_inflight_bytes=rec.max_inflight_bytes,
                        size_limits=SizeLimits(rec.max_attribute_bytes, rec.max_resource_bytes), cache_budget=caches)
    evaluator = Evaluator(store, config.evaluation.policy_book(), win.labels,
                          versions=tuple(VersionPair(*p) for p in config.versions.compare),
                          automatic_versions=config.versions.automatic)
    tls = rec.tls.files
    grpc = None
    if rec.otlp_grpc is not None:
        grpc = GrpcReceiver(ingestor, endpoint=rec.otlp_grpc, max_request_bytes=rec.request_limit,
                            token=config.auth.ingest_token, tls=tls,
                            max_connections=rec.grpc_connection_limit())
    http = None
    http_address = rec.http_address()
    if http_address is not None:
        http = HttpServer(ingestor, store, endpoint=http_address, max_request_bytes=rec.request_limit,
                          max_reference_bytes=config.references.max_upload_bytes, token=config.auth.token,
                          require_token_for_ingest=config.auth.require_for_ingest, tls=tls,
                          status=status)
        http.read_timeout = rec.http_read_timeout
        http.connection_limit = rec.connection_limit
    out = config.outcomes
    outcomes = Outcomes(store, directory=st.directory, windows=win.sizes, labels=win.labels, ttl=out.ttl,
                        max_pending=out.max_pending, max_window_pairs=out.max_window_pairs,
                        synchronous=out.synchronous, policy=out.policy,
                        max_segment_series=st.max_segment_series, segment_overflow=state.segment_overflow)
    outcomes.segment_series = lambda: state.segment_series
    outcomes.versions = evaluator.versions
    outcomes.automatic_versions = evaluator.automatic_versions
    outcomes.roles = state.roles
    outcomes.learn_role = state.learn_role
    outcomes.version_registry = state.version_registry
    for receiver in (grpc, http):
        if receiver is not None:
            receiver.outcomes = outcomes
    return Components(store, state, telemetry, exporter, ingestor, evaluator, grpc, http, caches, outcomes)
