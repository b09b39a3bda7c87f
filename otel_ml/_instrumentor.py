"""``OtelMLInstrumentor``: otel-ml as an OpenTelemetry instrumentation, for ``opentelemetry-instrument``.

Loaded through the ``opentelemetry_instrumentor`` entry point (or ``OtelMLInstrumentor().instrument()``),
it monitors the predict methods of the model libraries present, with no change to the application:

===============================================  ================================  ================================
Classes                                          Methods                           Default model name
===============================================  ================================  ================================
every ``sklearn.base.BaseEstimator`` subclass    ``predict``, ``predict_proba``    the class name
(XGBoost's and LightGBM's scikit-learn API too)
``xgboost.Booster``                              ``predict``, ``inplace_predict``  ``xgboost.Booster``
``lightgbm.Booster``                             ``predict``                       ``lightgbm.Booster``
``onnxruntime.InferenceSession``                 ``run``                           ``onnxruntime.InferenceSession``
                                                 (features: the only tensor fed)
===============================================  ================================  ================================

Nothing is imported at start-up: a post-import hook patches a library when the application imports it,
and scikit-learn estimator classes are patched as they are defined (a hook on ``BaseEstimator``'s
``__init_subclass__``), so a process that never imports scikit-learn pays nothing. A call made inside
another monitored call (``Pipeline.predict`` calling its final step, ``RandomForestClassifier.predict``
calling ``predict_proba`` and the trees) is not monitored again: the outermost call is the model.

The model name is ``OTEL_ML_MODEL_NAME`` (every model of the process: for one-model servers) or the
default above; the version is ``OTEL_ML_MODEL_VERSION``, else the reference's, else ``unknown``. With
``OTEL_ML_REFERENCES=<dir>``, the reference ``<dir>/<model name>.json`` (built with ``otel-ml reference build`` or
:func:`otel_ml.build_reference`) turns on feature and output monitoring for that model; without one,
the span, ``ml.predict.duration`` and ``ml.predict.rows`` are recorded. A reference that cannot be read
or names another model or version leaves that model unmonitored, with one warning. Each method's outputs
are recorded as :func:`otel_ml.instrument` does (the method the reference describes); the boosters'
predictions count as ``predict``'s, ONNX Runtime's outputs are not recorded. Every predict call is
monitored, those made by ``fit``/``score``/cross-validation in the same process too; sub-estimators
called from worker threads (``n_jobs`` > 1) are seen as calls of their own.

:func:`otel_ml.monitor`'s per-model options come from variables read once by ``instrument()``
(:func:`model_settings`) and apply to every automatically monitored model, as ``OTEL_ML_MODEL_NAME``
does: ``OTEL_ML_PREDICTION_ID`` (an input column: prediction records), ``OTEL_ML_SEGMENTS``
(comma-separated input columns), ``OTEL_ML_MODEL_ROLE`` and ``OTEL_ML_OUTCOME_SAMPLE_RATE``. A bad value
warns once and is ignored, as the SDK does. A call whose input has no such column (a numpy array, a
``DMatrix``) still returns the model's result; its records are dropped and counted
(``ml.records.dropped``, ``error.type=invalid``, logged once per model). Segments that exceed a model's
series budget (they depend on its reference) are left off for that model, with one warning.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry.instrumentation.dependencies import (
    DependencyConflict,
    get_dependency_conflicts,
)
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import _monitor, _patch, semconv
from ._config import _from_env
from ._errors import ConfigurationError
from ._ids import check_sample_rate
from ._log import internal_error, log_once
from ._records import Recorder
from ._reference import Reference, load_reference, name_problem
from ._segments import Segments, check_columns

ENV_REFERENCES = "OTEL_ML_REFERENCES"
ENV_MODEL_NAME = "OTEL_ML_MODEL_NAME"
ENV_MODEL_VERSION = "OTEL_ML_MODEL_VERSION"
ENV_PREDICTION_ID = "OTEL_ML_PREDICTION_ID"
ENV_SEGMENTS = "OTEL_ML_SEGMENTS"
ENV_MODEL_ROLE = "OTEL_ML_MODEL_ROLE"
ENV_OUTCOME_SAMPLE_RATE = "OTEL_ML_OUTCOME_SAMPLE_RATE"
DEFAULT_VERSION = "unknown"


@dataclass(frozen=True)
class ModelSettings:
    """:func:`otel_ml.monitor`'s per-model options for every automatically monitored model (from variables)."""

    prediction_id: str | None = None  # an input column: prediction records on
    segments: tuple[str, ...] = ()  # input columns, at most 4
    role: str | None = None  # one of semconv.MODEL_ROLES
    outcome_sample_rate: float = 1.0


def _parse_column(raw: str) -> str:
    if "," in raw:
        raise ValueError("one input column name, not a list")
    return raw


def _parse_segments(raw: str) -> tuple[str, ...]:
    try:
        return check_columns([c.strip() for c in raw.split(",")])
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def _parse_role(raw: str) -> str:
    role = raw.lower()  # OTel: enum values are case-insensitive
    if role not in semconv.MODEL_ROLES:
        raise ValueError(f"expected one of {', '.join(semconv.MODEL_ROLES)}")
    return role


def _parse_rate(raw: str) -> float:
    try:
        rate = float(raw)
    except ValueError:
        raise ValueError("not a number") from None
    try:
        return check_sample_rate(rate, "the rate")
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def model_settings(env: Mapping[str, str] | None = None) -> ModelSettings:
    """The per-model options from ``OTEL_ML_PREDICTION_ID``, ``OTEL_ML_SEGMENTS``, ``OTEL_ML_MODEL_ROLE``
    and ``OTEL_ML_OUTCOME_SAMPLE_RATE``; a bad value warns once and its default applies."""
    env = os.environ if env is None else env
    _, column = _from_env(env, (ENV_PREDICTION_ID,), _parse_column, "no prediction records")
    _, segments = _from_env(env, (ENV_SEGMENTS,), _parse_segments, "no segments")
    _, role = _from_env(env, (ENV_MODEL_ROLE,), _parse_role, "no role")
    _, rate = _from_env(env, (ENV_OUTCOME_SAMPLE_RATE,), _parse_rate, "1.0")
    return ModelSettings(column, segments or (), role, 1.0 if rate is None else rate)

_SKLEARN_METHODS = ("predict", "predict_proba")


class _RowsOnly:
    """An input whose rows are known but whose features are not readable (an XGBoost ``DMatrix``)."""

    __slots__ = ("rows",)

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return self.rows


def _dmatrix_rows(x: Any) -> Any:
    num_row = getattr(x, "num_row", None)
    return _RowsOnly(int(num_row())) if callable(num_row) else x


def _single_tensor(feed: Any) -> Any:
    """ONNX Runtime's ``input_feed``: its only tensor is the feature batch; several are named columns."""
    if isinstance(feed, Mapping) and len(feed) == 1:
        return next(iter(feed.values()))
    return feed


@dataclass(frozen=True)
class _Native:
    """A model class outside scikit-learn's BaseEstimator tree, patched when its module is imported."""

    module: str
    attr: str
    model_name: str  # default model name (class names such as ``Booster`` are ambiguous)
    methods: tuple[str, ...]
    input_arg: str | None = None
    outputs_as: str | None = None  # the scikit-learn method whose outputs convention applies; None: none
    extract: Callable[[Any], Any] | None = None


_NATIVE = (
    _Native("xgboost.core", "Booster", "xgboost.Booster", ("predict", "inplace_predict"), None, "predict",
            _dmatrix_rows),
    _Native("lightgbm.basic", "Booster", "lightgbm.Booster", ("predict",), None, "predict"),
    _Native("onnxruntime.capi.onnxruntime_inference_collection", "InferenceSession",
            "onnxruntime.InferenceSession", ("run",), "input_feed", None, _single_tensor),
)


class _ExtractingMonitor(_monitor._Monitor):
    """A monitor whose located input is first turned into the feature batch by ``extract``."""

    extract: Callable[[Any], Any]

    def find_input(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        found, x = super().find_input(instance, args, kwargs)
        return (True, self.extract(x)) if found else (False, x)


class _State:
    """What the instrumentor switched on; read on every automatically monitored call."""

    active = False
    tracer_provider: Any = None
    hooks_registered = False
    sklearn_hook: Any = None  # the BaseEstimator our __init_subclass__ hook sits on
    settings = ModelSettings()
    lock = threading.Lock()
    handlers: ClassVar[dict[tuple[type, str], Callable[..., Any]]] = {}
    native: ClassVar[dict[type, _Native]] = {}  # patched classes of the native libraries
    #: (records, segments) per (model, version): a model's methods share its segment values and records
    options: ClassVar[dict[tuple[str, str], tuple[Recorder | None, Segments | None]]] = {}


class OtelMLInstrumentor(BaseInstrumentor):
    """OpenTelemetry instrumentor of otel-ml (entry point ``opentelemetry_instrumentor: otel_ml``).

    ``instrument(tracer_provider=..., meter_provider=..., **configure_kwargs)`` monitors the predict
    methods of scikit-learn, XGBoost, LightGBM and ONNX Runtime models (see the module docstring);
    ``tracer_provider`` gets their spans (default: the global one); ``meter_provider``, an SDK
    ``MeterProvider``, gives its resource to otel-ml's metrics export; other keyword arguments go to
    :func:`otel_ml.configure`. ``uninstrument()`` restores the classes, makes every ``@monitor``
    function a pass-through and forgets estimators wrapped by :func:`otel_ml.instrument`. Both are
    idempotent (the base class warns on a repeated call).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """The instrumented libraries; any one of them installed is enough."""
        return ("scikit-learn >= 1.0", "xgboost >= 1.7", "xgboost-cpu >= 2.0", "lightgbm >= 3.3", "onnxruntime >= 1.14")

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        conflicts = [get_dependency_conflicts([dep]) for dep in self.instrumentation_dependencies()]
        return None if any(c is None for c in conflicts) else conflicts[0]

    def _instrument(self, **kwargs: Any) -> None:
        _State.tracer_provider = kwargs.pop("tracer_provider", None)
        _State.settings = model_settings()
        meter_provider = kwargs.pop("meter_provider", None)
        if kwargs or meter_provider is not None:
            _configure(kwargs, meter_provider)
        _monitor.set_enabled(True)
        with _State.lock:
            _State.handlers.clear()
            _State.options.clear()
        _State.active = True
        _patch.set_auto_handler(_auto_handler)
        _register_hooks()

    def _uninstrument(self, **kwargs: Any) -> None:
        _State.active = False
        _patch.set_auto_handler(None)
        _monitor.set_enabled(False)
        _patch.detach_all()
        _patch.unpatch_classes()
        with _State.lock:
            _State.handlers.clear()


def _configure(kwargs: dict[str, Any], meter_provider: Any) -> None:
    resource = _provider_resource(meter_provider)
    if kwargs:
        from . import configure

        if resource is not None:
            kwargs.setdefault("resource", resource)
        configure(**kwargs)
    elif resource is not None:
        import dataclasses

        from ._export import PIPELINE

        PIPELINE.configure(dataclasses.replace(PIPELINE.config, resource=resource))


def _provider_resource(meter_provider: Any) -> Any:
    if meter_provider is None:
        return None
    try:
        return meter_provider._sdk_config.resource  # an SDK MeterProvider; no public accessor
    except AttributeError:
        return None  # the API's no-op provider or another implementation: keep the default resource


# --- finding the classes ---------------------------------------------------------------------------------


def _register_hooks() -> None:
    """Post-import hooks (once per process; they act only while instrumented)."""
    import wrapt

    with _State.lock:
        if _State.hooks_registered:
            first = False
        else:
            _State.hooks_registered = first = True
    if first:
        wrapt.register_post_import_hook(_on_sklearn_base, "sklearn.base")
        for module in {t.module for t in _NATIVE}:
            wrapt.register_post_import_hook(_on_native, module)
    else:  # re-instrumented: the modules already imported need patching again
        import sys

        if "sklearn.base" in sys.modules:
            _on_sklearn_base(sys.modules["sklearn.base"])
        for module in {t.module for t in _NATIVE}:
            if module in sys.modules:
                _on_native(sys.modules[module])


def _on_sklearn_base(module: Any) -> None:
    if not _State.active:
        return
    try:
        base = module.BaseEstimator
        _hook_subclass_creation(base)
        for cls in _subclasses(base):
            _patch_estimator_class(cls)
    except Exception as exc:
        internal_error("instrument", exc)


def _hook_subclass_creation(base: type) -> None:
    """Patch every BaseEstimator subclass when its class statement runs (installed once)."""
    if _State.sklearn_hook is base:
        return
    original = base.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: type, **kwargs: Any) -> None:
        if original is not None:
            original.__get__(None, cls)(**kwargs)
        else:
            super(base, cls).__init_subclass__(**kwargs)  # type: ignore[arg-type]
        if _State.active:
            _patch_estimator_class(cls)

    base.__init_subclass__ = classmethod(__init_subclass__)  # type: ignore[assignment,method-assign]
    _State.sklearn_hook = base


def _subclasses(base: type) -> list[type]:
    seen: set[type] = set()
    order: list[type] = []
    stack: list[type] = [base]
    while stack:
        subs: list[type] = type.__subclasses__(stack.pop())
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                order.append(sub)
                stack.append(sub)
    return order


def _patch_estimator_class(cls: type) -> None:
    for name in _SKLEARN_METHODS:
        try:
            _patch.patch_class(cls, name)
        except Exception as exc:
            internal_error("instrument", exc)


def _on_native(module: Any) -> None:
    if not _State.active:
        return
    for target in _NATIVE:
        cls = getattr(module, target.attr, None) if target.module == module.__name__ else None
        if not isinstance(cls, type):
            continue
        for name in target.methods:
            try:
                if _patch.patch_class(cls, name):
                    _State.native[cls] = target
            except Exception as exc:
                internal_error("instrument", exc)


# --- the calls ------------------------------------------------------------------------------------------


def _auto_handler(name: str, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    if not _State.active or instance is None or _monitor._active.get() is not None:
        return wrapped(*args, **kwargs)  # off, or nested in a monitored call: the outer call is the model
    cls = type(instance)
    handler = _State.handlers.get((cls, name))
    if handler is None:
        handler = _make_handler(cls, name, wrapped)
    return handler(wrapped, instance, args, kwargs)


def _pass_through(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return wrapped(*args, **kwargs)


def _make_handler(cls: type, name: str, wrapped: Callable[..., Any]) -> Callable[..., Any]:
    """The monitor of ``cls.name``, built at its first call; a pass-through when it cannot be built."""
    with _State.lock:
        handler = _State.handlers.get((cls, name))
        if handler is not None:
            return handler
        try:
            native = _native_target(cls)
            model, version, reference = model_identity(cls, default_name=native.model_name if native else None)
            records, segments = _model_options(model, version, reference)
            role = _State.settings.role
            if native is None:  # a scikit-learn estimator: outputs as predict / predict_proba
                handler = _monitor.monitor_method(wrapped, name, model=model, version=version, reference=reference,
                                                  tracer_provider=_State.tracer_provider, records=records,
                                                  segments=segments, role=role)
            else:  # outputs recorded as predict's when the library returns predictions, else never
                m = _ExtractingMonitor(
                    wrapped, model, version, reference, native.input_arg, False,
                    outputs=native.outputs_as is not None and _monitor.describes_outputs(reference, native.outputs_as),
                    tracer_provider=_State.tracer_provider, records=records, segments=segments, role=role)
                m.extract = native.extract or (lambda x: x)
                handler = m.sync_wrapper
        except Exception as exc:
            log_once(f"instrument:{cls.__qualname__}.{name}", "otel-ml: cannot monitor %s.%s: %s",
                     cls.__qualname__, name, exc)
            handler = _pass_through
        _State.handlers[(cls, name)] = handler
        return handler


def _model_options(model: str, version: str, reference: Reference | None) -> tuple[Recorder | None, Segments | None]:
    """(records, segments) of one model from :attr:`_State.settings`, shared by its methods.

    What a model cannot take (segments over its series budget, records whose destination is misconfigured)
    is left off for that model with one warning; the model is monitored all the same.
    """
    settings = _State.settings
    key = (model, version)
    cached = _State.options.get(key)
    if cached is not None:
        return cached
    segments: Segments | None = None
    records: Recorder | None = None
    if settings.segments:
        try:
            segments = Segments(list(settings.segments), reference)
        except ConfigurationError as exc:
            log_once(f"instrument:segments:{model}", "otel-ml: model %r version %r: %s=%s cannot apply (%s); "
                     "monitored without segments", model, version, ENV_SEGMENTS, ",".join(settings.segments), exc)
    if settings.prediction_id is not None:
        try:
            records = Recorder(model, version, settings.prediction_id, settings.outcome_sample_rate, None,
                               reference, segments)
        except ConfigurationError as exc:
            log_once(f"instrument:records:{model}", "otel-ml: model %r version %r: no prediction records (%s)",
                     model, version, exc)
    _State.options[key] = (records, segments)
    return records, segments


def _native_target(cls: type) -> _Native | None:
    for klass in cls.__mro__:
        target = _State.native.get(klass)
        if target is not None:
            return target
    return None


def model_identity(cls: type, env: Any = None, *, default_name: str | None = None) -> tuple[str, str, Reference | None]:
    """(model name, version, reference) of an automatically monitored class, from the environment.

    Raises on a bad configuration (a bad name, an unreadable or mismatched reference); the caller logs
    it once and leaves the class unmonitored rather than monitoring it against the wrong reference.
    """
    env = os.environ if env is None else env
    model = (env.get(ENV_MODEL_NAME) or "").strip() or default_name or cls.__name__
    version = (env.get(ENV_MODEL_VERSION) or "").strip() or None
    reference = None
    directory = (env.get(ENV_REFERENCES) or "").strip()
    if directory:
        path = os.path.join(directory, f"{model}.json")
        if os.path.isfile(path):
            reference = load_reference(path)
            if reference.model_name != model:
                raise ValueError(f"{path} is the reference of model {reference.model_name!r}, not {model!r}")
            if version is not None and reference.model_version != version:
                raise ValueError(f"{path} is the reference of version {reference.model_version!r}, but "
                                 f"{ENV_MODEL_VERSION}={version!r}")
            version = reference.model_version
    version = version or DEFAULT_VERSION
    for what, value in (("model name", model), ("model version", version)):
        problem = name_problem(value)
        if problem:
            raise ValueError(f"{what} {problem}, got {value!r}")
    return model, version, reference
