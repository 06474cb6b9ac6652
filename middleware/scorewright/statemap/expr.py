"""Safe expressions for state-map rules: parsed with `ast`, checked against a whitelist and
for types, compiled to closures. Designer text is never passed to eval/exec.

Types are known when the map loads (params are numbers, state groups are strings), so type
mistakes are load errors and evaluation does no type checks: only division by zero is checked
at run time.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Value = float | str | bool
Env = Mapping[str, Value]
Fn = Callable[[Env], Value]
NUM, STR, BOOL = "number", "string", "bool"

_BINOPS = {ast.Add: (operator.add, "+"), ast.Sub: (operator.sub, "-"), ast.Mult: (operator.mul, "*"),
           ast.Div: (operator.truediv, "/")}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
           ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "clamp": lambda x, lo=0.0, hi=1.0: min(max(x, lo), hi), "abs": abs,
}
_ARITY = {"min": (1, 99), "max": (1, 99), "clamp": (1, 3), "abs": (1, 1)}
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
    fn: Fn
    type: str = NUM

    def __call__(self, env: Env) -> Value:
        return self.fn(env)


def _const(v: Value) -> tuple[Fn, str]:
    return (lambda env: v), (BOOL if isinstance(v, bool) else STR if isinstance(v, str) else NUM)


def _need_number(t: str, what: str, col: int) -> None:
    if t != NUM:
        raise ExprError(f"{what} needs a number, got a {t}", col)


class _Compiler:
    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = known
        self.names: set[str] = set()

    def __call__(self, node: ast.AST) -> tuple[Fn, str]:
        col = getattr(node, "col_offset", 0)
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            what = {"Attribute": "attribute access", "Subscript": "indexing", "Lambda": "lambda",
                    "IfExp": "if/else", "NamedExpr": "assignment", "JoinedStr": "f-strings",
                    "List": "lists", "Tuple": "tuples"}.get(type(node).__name__, type(node).__name__)
            raise ExprError(f"not allowed in an expression: {what}", col)
        return method(node, col)

    def _Constant(self, node: ast.Constant, col: int) -> tuple[Fn, str]:
        if not isinstance(node.value, (int, float, str, bool)):
            raise ExprError(f"not allowed in an expression: {node.value!r}", col)
        return _const(node.value)

    def _Name(self, node: ast.Name, col: int) -> tuple[Fn, str]:
        name = node.id
        if name in _ALIASES:
            return _const(_ALIASES[name])
        kind = self.known.get(name)
        if kind is None:
            raise ExprError(f"unknown name '{name}'; known names: "
                            f"{', '.join(sorted(n for n in self.known if ':' not in n))}", col)
        self.names.add(name)
        return (lambda env: env[name]), (STR if kind.startswith("state:") else NUM)

    def _BoolOp(self, node: ast.BoolOp, col: int) -> tuple[Fn, str]:
        parts = [self(v)[0] for v in node.values]
        if isinstance(node.op, ast.And):
            if len(parts) == 2:
                a, b = parts
                return (lambda env: bool(a(env)) and bool(b(env))), BOOL
            return (lambda env: all(bool(p(env)) for p in parts)), BOOL
        if len(parts) == 2:
            a, b = parts
            return (lambda env: bool(a(env)) or bool(b(env))), BOOL
        return (lambda env: any(bool(p(env)) for p in parts)), BOOL

    def _UnaryOp(self, node: ast.UnaryOp, col: int) -> tuple[Fn, str]:
        inner, t = self(node.operand)
        if isinstance(node.op, ast.Not):
            return (lambda env: not inner(env)), BOOL
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            _need_number(t, "'-'", col)
            return ((lambda env: -inner(env)) if isinstance(node.op, ast.USub) else inner), NUM
        raise ExprError("not allowed in an expression: '~'", col)

    def _BinOp(self, node: ast.BinOp, col: int) -> tuple[Fn, str]:
        if type(node.op) not in _BINOPS:
            raise ExprError(f"not allowed in an expression: {type(node.op).__name__} (use + - * /)", col)
        op, sym = _BINOPS[type(node.op)]
        (left, lt), (right, rt) = self(node.left), self(node.right)
        _need_number(lt, f"'{sym}'", col)
        _need_number(rt, f"'{sym}'", col)
        if sym != "/":
            return (lambda env: op(left(env), right(env))), NUM

        def divide(env: Env) -> float:
            b = right(env)
            if b == 0:
                raise ExprError("division by zero", col)
            return left(env) / b
        return divide, NUM

    def _Compare(self, node: ast.Compare, col: int) -> tuple[Fn, str]:
        if not all(type(o) in _CMPOPS for o in node.ops):
            raise ExprError("not allowed in an expression: 'in' / 'is' (use == != < <= > >=)", col)
        self._check_state_literals(node)
        terms = [self(node.left)] + [self(c) for c in node.comparators]
        ops = [_CMPOPS[type(o)] for o in node.ops]
        for (_, ta), (_, tb), op in zip(terms, terms[1:], ops, strict=False):
            if (ta == STR) != (tb == STR):
                raise ExprError(f"cannot compare a {ta} with a {tb}", col)
            if ta == STR and op not in (operator.eq, operator.ne):
                raise ExprError("states can only be compared with == and !=", col)
        fns = [f for f, _ in terms]
        if len(ops) == 1:
            (a, b), op = fns, ops[0]
            return (lambda env: op(a(env), b(env))), BOOL

        def chain(env: Env) -> bool:
            vals = [f(env) for f in fns]
            return all(op(x, y) for op, x, y in zip(ops, vals, vals[1:], strict=False))
        return chain, BOOL

    def _Call(self, node: ast.Call, col: int) -> tuple[Fn, str]:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "time_in":
            arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
            group = arg.value if isinstance(arg, ast.Constant) else None
            if not isinstance(group, str) or not self.known.get(group, "").startswith("state:"):
                states = [n for n, k in self.known.items() if k.startswith("state:")]
                raise ExprError(f"time_in() takes the name of a state group in quotes, one of: "
                                f"{', '.join(states) or 'none defined'}", col)
            key = f"time_in:{group}"
            self.names.add(key)
            return (lambda env: env[key]), NUM
        if name in _FUNCS and node.keywords:
            raise ExprError(f"{name}() takes its arguments in order, without names: e.g. clamp(x, 0, 1)", col)
        if name not in _FUNCS:
            raise ExprError("not allowed in an expression: call of anything but "
                            "min/max/clamp/abs/time_in", col)
        lo, hi = _ARITY[name]
        if not lo <= len(node.args) <= hi:
            raise ExprError(f"{name}() takes {lo}" + (f" to {hi}" if hi != lo else "") + " arguments", col)
        args = []
        for a in node.args:
            fn, t = self(a)
            _need_number(t, f"{name}()", col)
            args.append(fn)
        f = _FUNCS[name]
        if len(args) == 1:
            (a,) = args
            return (lambda env: f(a(env))), NUM
        return (lambda env: f(*(a(env) for a in args))), NUM

    def _check_state_literals(self, node: ast.Compare) -> None:
        """`area == 'cavee'` is a typo the designer wants to hear about at load time."""
        terms = [node.left, *node.comparators]
        for a, b in zip(terms, terms[1:], strict=False):
            for name_node, lit in ((a, b), (b, a)):
                if isinstance(name_node, ast.Name) and isinstance(lit, ast.Constant):
                    kind = self.known.get(name_node.id, "")
                    if kind.startswith("state:") and lit.value not in kind[6:].split("|"):
                        raise ExprError(f"{lit.value!r} is not a value of state '{name_node.id}' "
                                        f"(expected one of: {', '.join(kind[6:].split('|'))})",
                                        lit.col_offset)


def compile_expr(text: str | float | bool, known: Mapping[str, str]) -> Expr:
    """Compile designer text. `known` maps each name to 'number' or 'state:v1|v2|...'."""
    if isinstance(text, (bool, int, float)):
        fn, t = _const(text)
        return Expr(str(text), frozenset(), fn, t)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"syntax error: {e.msg}", max(0, (e.offset or 1) - 1)) from None
    compiler = _Compiler(known)
    fn, t = compiler(tree.body)
    return Expr(text, frozenset(compiler.names), fn, t)
