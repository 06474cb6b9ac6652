"""Safe expressions for state-map rules: parsed with `ast`, checked against a whitelist,
compiled to closures. Designer text is never passed to eval/exec."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Value = float | str | bool
Env = Mapping[str, Value]

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
           ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "clamp": lambda x, lo=0.0, hi=1.0: min(max(x, lo), hi), "abs": abs,
}
_ALIASES = {"true": True, "false": False, "on": True, "off": False}


class ExprError(ValueError):
    """A bad expression; `col` is the 0-based column inside the expression text."""

    def __init__(self, message: str, col: int = 0) -> None:
        super().__init__(message)
        self.col = col


@dataclass(frozen=True)
class Expr:
    """A compiled expression: call it with an environment of names -> values."""

    text: str
    names: frozenset[str]
    fn: Callable[[Env], Value]

    def __call__(self, env: Env) -> Value:
        return self.fn(env)


def _num(v: Value, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExprError(f"{what} needs a number, got {v!r}")
    return v


def _compile(node: ast.AST, names: set[str], known: Mapping[str, str]) -> Callable[[Env], Value]:
    col = getattr(node, "col_offset", 0)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        value = node.value
        return lambda env: value
    if isinstance(node, ast.Name):
        name = node.id
        if name in _ALIASES:
            const = _ALIASES[name]
            return lambda env: const
        if name not in known:
            raise ExprError(f"unknown name '{name}'; known names: {', '.join(sorted(known))}", col)
        names.add(name)
        return lambda env: env[name]
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, names, known) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda env: all(bool(p(env)) for p in parts)
        return lambda env: any(bool(p(env)) for p in parts)
    if isinstance(node, ast.UnaryOp):
        inner = _compile(node.operand, names, known)
        if isinstance(node.op, ast.Not):
            return lambda env: not inner(env)
        if isinstance(node.op, ast.USub):
            return lambda env: -_num(inner(env), "'-'")
        if isinstance(node.op, ast.UAdd):
            return inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        op, left, right = _BINOPS[type(node.op)], _compile(node.left, names, known), _compile(
            node.right, names, known)
        sym = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(node.op)]

        def binop(env: Env) -> float:
            a, b = _num(left(env), f"'{sym}'"), _num(right(env), f"'{sym}'")
            if sym == "/" and b == 0:
                raise ExprError("division by zero", col)
            return op(a, b)
        return binop
    if isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
        _check_state_literals(node, known)
        terms = [_compile(node.left, names, known)] + [_compile(c, names, known) for c in node.comparators]
        ops = [_CMPOPS[type(o)] for o in node.ops]

        def compare(env: Env) -> bool:
            vals = [t(env) for t in terms]
            for op, a, b in zip(ops, vals, vals[1:], strict=False):
                if isinstance(a, str) != isinstance(b, str) and op not in (operator.eq, operator.ne):
                    raise ExprError(f"cannot order {a!r} and {b!r}", col)
                if not op(a, b):
                    return False
            return True
        return compare
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "time_in":
        arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
        group = arg.value if isinstance(arg, ast.Constant) else None
        if not isinstance(group, str) or not known.get(group, "").startswith("state:"):
            states = [n for n, k in known.items() if k.startswith("state:")]
            raise ExprError(f"time_in() takes the name of a state group in quotes, one of: "
                            f"{', '.join(states) or 'none defined'}", col)
        key = f"time_in:{group}"
        return lambda env: env[key]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
            and not node.keywords and node.args:
        fn, args = _FUNCS[node.func.id], [_compile(a, names, known) for a in node.args]
        label = node.func.id
        return lambda env: fn(*(_num(a(env), label) for a in args))
    what = type(node).__name__
    if isinstance(node, ast.Call):
        what = "call of anything but min/max/clamp/abs/time_in"
    elif isinstance(node, ast.Attribute):
        what = "attribute access"
    raise ExprError(f"not allowed in an expression: {what}", col)


def _check_state_literals(node: ast.Compare, known: Mapping[str, str]) -> None:
    """`area == 'cavee'` is a typo the designer wants to hear about at load time."""
    terms = [node.left, *node.comparators]
    for a, b in zip(terms, terms[1:], strict=False):
        for name_node, lit in ((a, b), (b, a)):
            if isinstance(name_node, ast.Name) and isinstance(lit, ast.Constant):
                kind = known.get(name_node.id, "")
                if kind.startswith("state:") and lit.value not in kind[6:].split("|"):
                    raise ExprError(f"{lit.value!r} is not a value of state '{name_node.id}' "
                                    f"(expected one of: {', '.join(kind[6:].split('|'))})",
                                    lit.col_offset)


def compile_expr(text: str | float | bool, known: Mapping[str, str]) -> Expr:
    """Compile designer text. `known` maps each name to 'number' or 'state:v1|v2|...'."""
    if isinstance(text, (bool, int, float)):
        return Expr(str(text), frozenset(), lambda env, v=text: v)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"syntax error: {e.msg}", max(0, (e.offset or 1) - 1)) from None
    names: set[str] = set()
    fn = _compile(tree.body, names, known)
    return Expr(text, frozenset(names), fn)
