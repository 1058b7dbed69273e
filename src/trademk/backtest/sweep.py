"""Parameter sweeps as the CLI states them: ``name=value`` settings, ``name=a:b:step``
grids, constraint expressions, and a sweep on the event engine.

``optimize`` (``trademk.backtest.optimize``) sweeps signal strategies on the fast
path; ``sweep_event`` runs every combination through the event-driven chain instead
(any strategy, one backtest per combination, over all cores) and returns the same
``OptimizationResult``.
"""

from __future__ import annotations

import ast
import itertools
import math
import multiprocessing
import operator
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import numpy as np
import pandas as pd

from trademk.backtest.api import backtest
from trademk.backtest.optimize import OptimizationResult
from trademk.backtest.stats import STAT_NAMES
from trademk.strategies.base import Strategy
from trademk.strategies.params import Param, ParamError, ParamValue

__all__ = [
    "MAX_COMBINATIONS",
    "Constraint",
    "choose_engine",
    "expand_grid",
    "parse_grid",
    "parse_params",
    "resolve_stat",
    "sweep_event",
]

MAX_COMBINATIONS: Final = 1_000_000
Progress = Callable[[int, int], None]

_BINARY: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: Final[dict[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_UNARY: Final[dict[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_ALLOWED_NODES: Final = (
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.Compare,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Name,
    ast.Load,
    *_BINARY,
    *_COMPARE,
    *_UNARY,
)


def _declared(cls: type[Strategy], name: str, option: str) -> Param[Any]:
    param = cls.params.get(name)
    if param is None:
        known = ", ".join(cls.params) or "none"
        owner = cls.name or cls.__name__
        raise ParamError(f"{option}: {owner} has no parameter {name!r} (it has: {known})")
    return param


def _split(spec: str, option: str) -> tuple[str, str]:
    name, sep, text = spec.partition("=")
    if not sep or not name.strip() or not text.strip():
        raise ParamError(f"{option} takes name=value, got {spec!r}")
    return name.strip(), text.strip()


def parse_params(cls: type[Strategy], specs: Iterable[str]) -> dict[str, ParamValue]:
    """``["fast=10", "allow_short=false"]`` as typed, range-checked parameter values."""
    values: dict[str, ParamValue] = {}
    for spec in specs:
        name, text = _split(spec, "--param")
        values[name] = _declared(cls, name, "--param").parse(text)
    return values


def _range(param: Param[Any], text: str) -> list[ParamValue]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or param.type not in (int, float):
        raise ParamError(
            f"--grid {param.name}: a range a:b[:step] needs a numeric parameter, got {text!r}"
        )
    try:
        low, high, step = (Decimal(p.strip()) for p in (*parts, "1")[:3])
        finite = all(v.is_finite() for v in (low, high, step))
    except InvalidOperation:
        finite = False
    if not finite:
        raise ParamError(f"--grid {param.name}: {text!r} is not a:b[:step] of numbers")
    if step <= 0 or high < low:
        raise ParamError(f"--grid {param.name}: {text!r} needs a <= b and a positive step")
    if param.type is int and any(v != v.to_integral_value() for v in (low, high, step)):
        raise ParamError(f"--grid {param.name}: {text!r}: an integer parameter takes whole steps")
    count = int((high - low) / step) + 1
    if count > MAX_COMBINATIONS:
        raise ParamError(f"--grid {param.name}: {text!r} has {count:,} values, too many")
    kind = param.type
    return [param.validate(kind(low + i * step)) for i in range(count)]


def parse_grid(cls: type[Strategy], specs: Iterable[str]) -> dict[str, list[ParamValue]]:
    """``["fast=5:30:5", "slow=20,40,60"]`` as each parameter's values.

    ``a:b:step`` includes both ends (``b`` when the step lands on it; ``step`` is 1 by
    default); ``v1,v2,...`` lists values (booleans and strings too). Every value is
    parsed and range-checked like ``--param``.
    """
    grid: dict[str, list[ParamValue]] = {}
    for spec in specs:
        name, text = _split(spec, "--grid")
        param = _declared(cls, name, "--grid")
        if name in grid:
            raise ParamError(f"--grid {name} is given twice")
        if ":" in text:
            grid[name] = _range(param, text)
        else:
            grid[name] = list(dict.fromkeys(param.parse(v) for v in text.split(",")))
    if not grid:
        raise ParamError("give at least one --grid name=a:b:step")
    return grid


class Constraint:
    """A condition on parameters, as a Python-like expression: ``slow >= 2 * fast and
    fast > 3``. Only parameter names, numbers, strings, ``+ - * / // %``,
    comparisons and ``and``/``or``/``not`` are allowed; parameters not swept keep
    their fixed or default values."""

    def __init__(self, expression: str, defaults: Mapping[str, ParamValue]) -> None:
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError as err:
            raise ValueError(
                f"--constraint {expression!r} is not an expression: {err.msg}"
            ) from None
        self.expression = expression
        self.defaults = dict(defaults)
        for node in ast.walk(tree.body):
            self._check(node)
        self._body = tree.body

    def _check(self, node: ast.AST) -> None:
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(
                f"--constraint {self.expression!r}: {type(node).__name__} is not allowed "
                "(use parameter names, numbers, arithmetic, comparisons, and/or/not)"
            )
        if isinstance(node, ast.Name) and node.id not in self.defaults:
            known = ", ".join(self.defaults)
            raise ValueError(
                f"--constraint {self.expression!r}: unknown name {node.id!r} (parameters: {known})"
            )

    def __call__(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` (with defaults for the others) satisfy the expression."""
        return bool(_evaluate(self._body, {**self.defaults, **params}))


def _evaluate(node: ast.expr, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(v, names) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, names))
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, names), _evaluate(node.right, names))
    assert isinstance(node, ast.Compare)  # the only node left after Constraint._check
    left = _evaluate(node.left, names)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _evaluate(right_node, names)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def expand_grid(
    cls: type[Strategy],
    grid: Mapping[str, Sequence[ParamValue]],
    fixed: Mapping[str, ParamValue],
    constraint: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """The combinations to run: the product of ``grid`` with ``fixed``, minus those the
    ``constraint`` or the strategy's own checks refuse (``optimize``'s rules)."""
    overlap = sorted(set(grid) & set(fixed))
    if overlap:
        raise ParamError(f"{overlap} given both as --grid and --param")
    total = math.prod(len(values) for values in grid.values())
    if total > MAX_COMBINATIONS:
        raise ParamError(f"the grid has {total:,} combinations; at most {MAX_COMBINATIONS:,}")
    names = list(grid)
    combos = []
    for chosen in itertools.product(*(grid[name] for name in names)):
        params = {**fixed, **dict(zip(names, chosen, strict=True))}
        if (constraint is None or constraint(params)) and cls.params_ok(**params):
            combos.append(params)
    if not combos:
        raise ParamError("no parameter combination passes the strategy's checks and the constraint")
    return combos


def choose_engine(cls: type[Strategy], requested: str | None) -> str:
    """``fast`` or ``event``: the requested one, else fast for a pure signal strategy."""
    pure_signals = cls.has_signals() and cls.uses_default_on_bar()
    if requested is None:
        return "fast" if pure_signals else "event"
    if requested == "fast" and not pure_signals:
        raise ValueError(f"{cls.name or cls.__name__} decides in on_bar: use --engine event")
    if requested not in ("fast", "event"):
        raise ValueError(f"unknown engine {requested!r}: use fast or event")
    return requested


def resolve_stat(name: str) -> str:
    """The statistic called ``name`` (any case); ``ValueError`` listing them otherwise."""
    by_lower = {stat.lower(): stat for stat in STAT_NAMES}
    found = by_lower.get(name.strip().lower())
    if found is None:
        raise ValueError(f"no statistic {name!r}: use one of {', '.join(STAT_NAMES)}")
    return found


_WORKER: dict[str, Any] = {}


def _set_worker(strategy: str, data: pd.DataFrame, settings: dict[str, Any]) -> None:
    _WORKER.update(strategy=strategy, data=data, settings=settings)


def _run_event_combo(params: dict[str, Any]) -> dict[str, Any]:
    result = backtest(
        _WORKER["strategy"], _WORKER["data"], engine="event", **_WORKER["settings"], **params
    )
    return {**result.params, **dict(result.stats)}


def sweep_event(
    strategy: type[Strategy],
    data: pd.DataFrame,
    combos: Sequence[dict[str, Any]],
    *,
    maximize: str,
    workers: int | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> OptimizationResult:
    """Backtest every combination on the event engine over ``workers`` processes (default:
    every core); ``settings`` are ``backtest``'s (cash, commission, ...). ``progress(done,
    total)`` is called as combinations finish."""
    name = strategy.name
    if not name:
        raise ValueError("only registered strategies can be swept on the event engine")
    count = max(1, min(workers or os.cpu_count() or 1, len(combos)))
    context = multiprocessing.get_context("spawn")
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(
        count, mp_context=context, initializer=_set_worker, initargs=(name, data, settings)
    ) as pool:
        futures = [pool.submit(_run_event_combo, params) for params in combos]
        for done, future in enumerate(as_completed(futures), start=1):
            rows.append(future.result())
            if progress is not None:
                progress(done, len(combos))
    table = pd.DataFrame(rows)
    order = table[maximize].astype(np.float64).sort_values(ascending=False, na_position="last")
    table = table.loc[order.index].reset_index(drop=True)
    return OptimizationResult(table=table, maximize=maximize, param_names=tuple(strategy.params))
