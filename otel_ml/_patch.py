"""Method patching shared by :func:`otel_ml.instrument` and :class:`otel_ml.OtelMLInstrumentor`.

A monitored method is wrapped once on the estimator's *class* by a thin dispatcher: a call on an
instance registered by :func:`attach` goes to that instance's monitor, any other call goes to the
automatic handler of the instrumentor when one is set (:func:`set_auto_handler`), else straight to the
method. Nothing is stored on the instance, so an instrumented estimator pickles, copies and clones
exactly as the plain one does (byte for byte), and the copy is the plain estimator: monitoring is
configuration of the process, not state of the model. A bound method pickles as ``getattr(instance,
name)`` (what joblib workers receive). Descriptors such as scikit-learn's ``available_if`` keep working:
the wrapper binds through them, so ``hasattr(svc, "predict_proba")`` is unchanged.

Only when the class cannot carry the wrapper (an extension type) or the instance shadows the method in
its own ``__dict__`` is the method wrapped on the instance, by a wrapper that pickles and copies as the
original attribute.
"""

from __future__ import annotations

import copy
import operator
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import wrapt

from ._errors import ConfigurationError

#: ``handler(wrapped, instance, args, kwargs)``: a monitor's sync or async wrapper.
Handler = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
#: ``auto(name, wrapped, instance, args, kwargs)``: the instrumentor's handler of every other call.
AutoHandler = Callable[[str, Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_MISSING = object()
_lock = threading.RLock()
#: id(instance) -> (reference keeping the entry honest, {method name: handler})
_attached: dict[int, tuple[Any, dict[str, Handler]]] = {}
#: (class, method name, the attribute the class had in its own __dict__ or _MISSING), in patch order
_patched: list[tuple[type, str, Any]] = []
_auto: AutoHandler | None = None


class _BoundMethodWrapper(wrapt.BoundFunctionWrapper):
    """The dispatcher bound to an instance; pickles as ``getattr(instance, name)``."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        name = self._self_parent._self_otel_ml_name
        instance = self._self_instance
        if instance is None:
            return getattr, (self._self_owner, name)
        return getattr, (instance, name)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return getattr(copy.deepcopy(self._self_instance, memo), self._self_parent._self_otel_ml_name)


class _ClassMethodWrapper(wrapt.FunctionWrapper):
    """The dispatcher as a class attribute (wraps the original function or descriptor)."""

    __bound_function_wrapper__ = _BoundMethodWrapper


class _InstanceMethodWrapper(wrapt.FunctionWrapper):
    """A method wrapped on one instance; pickled and copied as the original attribute."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        return operator.itemgetter(0), ([self.__wrapped__],)  # unpickles as the wrapped object itself

    def __copy__(self) -> Any:
        return self.__wrapped__

    def __deepcopy__(self, memo: Any) -> Any:
        return copy.deepcopy(self.__wrapped__, memo)


def _dispatcher(name: str) -> Callable[..., Any]:
    def dispatch(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        entry = _attached.get(id(instance))
        if entry is not None:
            handler = entry[1].get(name)
            if handler is not None:
                return handler(wrapped, instance, args, kwargs)
        auto = _auto
        if auto is not None:
            return auto(name, wrapped, instance, args, kwargs)
        return wrapped(*args, **kwargs)

    return dispatch


def _static_lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _MISSING


def patch_class(cls: type, name: str) -> bool:
    """Put the dispatcher on ``cls.name`` (idempotent). False when ``cls`` has no such method or is immutable."""
    with _lock:
        raw = _static_lookup(cls, name)
        if isinstance(raw, _ClassMethodWrapper):
            return True  # patched here or on a base class
        if raw is _MISSING or not (callable(raw) or hasattr(raw, "__get__")):
            return False
        own = cls.__dict__.get(name, _MISSING)
        wrapper = _ClassMethodWrapper(raw, _dispatcher(name))
        wrapper._self_otel_ml_name = name  # type: ignore[attr-defined]
        try:
            setattr(cls, name, wrapper)
        except (TypeError, AttributeError):
            return False
        _patched.append((cls, name, own))
        return True


def unpatch_classes() -> None:
    """Restore every class patched by :func:`patch_class`, newest first."""
    with _lock:
        items = list(reversed(_patched))
        _patched.clear()
    for cls, name, own in items:
        if isinstance(cls.__dict__.get(name), _ClassMethodWrapper):
            try:
                if own is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, own)
            except (TypeError, AttributeError):
                pass


def is_attached(instance: Any, name: str) -> bool:
    entry = _attached.get(id(instance))
    if entry is not None and name in entry[1]:
        return True
    return isinstance(_instance_dict(instance).get(name), _InstanceMethodWrapper)


def attach(instance: Any, handlers: Mapping[str, Handler]) -> None:
    """Route calls of ``instance``'s methods to ``handlers``; raises ConfigurationError when impossible."""
    own = _instance_dict(instance)
    via_class = {}
    for name, handler in handlers.items():
        if name in own:
            try:
                setattr(instance, name, _InstanceMethodWrapper(own[name], handler))
            except AttributeError as exc:
                raise ConfigurationError(f"cannot replace {type(instance).__name__}.{name}: {exc}") from None
            with _lock:
                try:
                    _instance_wrapped.append(weakref.ref(instance))
                except TypeError:
                    _instance_wrapped.append(instance)
        elif patch_class(type(instance), name):
            via_class[name] = handler
        else:
            raise ConfigurationError(f"cannot wrap {type(instance).__name__}.{name}: its class is immutable")
    if not via_class:
        return
    key = id(instance)
    with _lock:
        entry = _attached.get(key)
        if entry is None:
            try:
                ref: Any = weakref.ref(instance, _forget(key))
            except TypeError:
                ref = instance  # no weakref support: kept alive while attached
            entry = _attached[key] = (ref, {})
        entry[1].update(via_class)


def _forget(key: int) -> Callable[[Any], None]:
    def forget(_ref: Any) -> None:
        _attached.pop(key, None)

    return forget


def detach_all() -> None:
    """Forget every attached instance and remove instance-level wrappers."""
    with _lock:
        _attached.clear()
        wrapped_instances = [r() if isinstance(r, weakref.ref) else r for r in _instance_wrapped]
        _instance_wrapped.clear()
    for inst in wrapped_instances:
        d = _instance_dict(inst) if inst is not None else {}
        for name, value in list(d.items()):
            if isinstance(value, _InstanceMethodWrapper):
                try:
                    setattr(inst, name, value.__wrapped__)
                except AttributeError:
                    pass


#: instances carrying an instance-level wrapper (weak references where possible)
_instance_wrapped: list[Any] = []


def _instance_dict(instance: Any) -> dict[str, Any]:
    try:
        d = object.__getattribute__(instance, "__dict__")
    except AttributeError:
        return {}
    return d if isinstance(d, dict) else {}


def set_auto_handler(handler: AutoHandler | None) -> None:
    """The handler of calls on patched classes from instances nobody attached (None: pass through)."""
    global _auto
    _auto = handler
