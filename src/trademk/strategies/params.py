"""Typed strategy parameters: a default, an optional range or choice list, a doc line.

A strategy declares its parameters as class attributes::

    class SmaCross(Strategy):
        fast = Param(10, low=1, high=1000, doc="bars in the fast moving average")

``Param`` is a descriptor: on the class it is the declaration, on an instance
it is the validated value given to the constructor (or the default). The type
is the default's type (``int``, ``float``, ``bool`` or ``str``); an ``int``
parameter refuses ``2.5`` and ``True``, a ``float`` one accepts ``2``. Values
given as text (CLI, API) are parsed by :meth:`Param.parse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar, overload

__all__ = ["Param", "ParamError", "ParamValue", "validate_params"]

ParamValue = int | float | bool | str
T = TypeVar("T", int, float, bool, str)

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


class ParamError(ValueError):
    """A strategy parameter is unknown, of the wrong type or out of its range."""


class Param(Generic[T]):
    """One declared parameter; see the module docstring."""

    __slots__ = ("choices", "default", "doc", "high", "low", "name", "type")

    def __init__(
        self,
        default: T,
        *,
        low: float | None = None,
        high: float | None = None,
        choices: Sequence[T] | None = None,
        doc: str = "",
    ) -> None:
        if not isinstance(default, int | float | str):
            raise TypeError(f"a parameter default must be int, float, bool or str: {default!r}")
        self.type: type = type(default)
        self.low = low
        self.high = high
        self.choices: tuple[T, ...] | None = None if choices is None else tuple(choices)
        self.doc = doc
        self.name = ""
        self.default: T = default
        if low is not None and high is not None and low > high:
            raise ValueError(f"parameter range is empty: low {low} > high {high}")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.default = self.validate(self.default)

    @overload
    def __get__(self, instance: None, owner: type) -> Param[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> Param[T] | T:
        if instance is None:
            return self
        values: dict[str, Any] = instance.__dict__.get("_param_values", {})
        return values.get(self.name, self.default)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        bounds = "" if self.low is None and self.high is None else f" in [{self.low}, {self.high}]"
        return f"Param({self.name}: {self.type.__name__} = {self.default!r}{bounds})"

    def validate(self, value: object) -> T:
        """``value`` coerced to the parameter's type; ``ParamError`` if it does not fit."""
        coerced = self._coerce(value)
        if self.choices is not None and coerced not in self.choices:
            raise ParamError(
                f"parameter {self.name!r} must be one of {self.choices}, got {value!r}"
            )
        if isinstance(coerced, bool | str):
            return coerced
        if self.low is not None and coerced < self.low:
            raise ParamError(f"parameter {self.name!r} must be >= {self.low}, got {value!r}")
        if self.high is not None and coerced > self.high:
            raise ParamError(f"parameter {self.name!r} must be <= {self.high}, got {value!r}")
        return coerced

    def _coerce(self, value: object) -> T:
        kind = self.type
        if kind is bool:
            if not isinstance(value, bool):
                raise ParamError(f"parameter {self.name!r} must be a bool, got {value!r}")
            return value  # type: ignore[return-value]
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return int(value)  # type: ignore[return-value]
                raise ParamError(f"parameter {self.name!r} must be an integer, got {value!r}")
            return value  # type: ignore[return-value]
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParamError(f"parameter {self.name!r} must be a number, got {value!r}")
            return float(value)  # type: ignore[return-value]
        if not isinstance(value, str):
            raise ParamError(f"parameter {self.name!r} must be a string, got {value!r}")
        return value  # type: ignore[return-value]

    def parse(self, text: str) -> T:
        """Parse a value given as text (``"10"``, ``"0.5"``, ``"false"``) and validate it."""
        raw = text.strip()
        try:
            if self.type is bool:
                lowered = raw.lower()
                if lowered not in _TRUE | _FALSE:
                    raise ParamError(f"parameter {self.name!r} must be true or false, got {text!r}")
                return self.validate(lowered in _TRUE)
            if self.type is int:
                return self.validate(int(raw))
            if self.type is float:
                return self.validate(float(raw))
        except ValueError as err:
            if isinstance(err, ParamError):
                raise
            raise ParamError(
                f"parameter {self.name!r} must be a {self.type.__name__}, got {text!r}"
            ) from None
        return self.validate(raw)

    def describe(self) -> dict[str, object]:
        """A JSON-ready description (name, type, default, range, choices, doc)."""
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "low": self.low,
            "high": self.high,
            "choices": None if self.choices is None else list(self.choices),
            "doc": self.doc,
        }


def validate_params(
    declared: Mapping[str, Param[Any]], given: Mapping[str, object], owner: str
) -> dict[str, ParamValue]:
    """Every declared parameter's value: the given one validated, else the default.

    An unknown name raises ``ParamError`` listing the parameters ``owner`` has.
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ParamError(
            f"{owner} has no parameter {', '.join(map(repr, unknown))} (it has: {known})"
        )
    values: dict[str, ParamValue] = {}
    for name, param in declared.items():
        values[name] = param.validate(given[name]) if name in given else param.default
    return values
