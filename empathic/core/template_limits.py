"""What a template may cost: compiling and rendering one takes bounded time and memory.

Templates come from API users, and the server renders them on its event loop, so no
template may hold it (`{{ 3 ** 10000000 }}` once took 22 s to compile, `{{ 'a' * 10**8 }}`
previewed as 202 MB). Three things keep them small:

- Nothing that could be large is worked out at compile time. Jinja's optimizer folds
  constant expressions while compiling; the operators ``+ * % **`` are intercepted (which
  stops that) and every filter takes the render context (which stops it for filters).
- Each operation that can make something big checks first: no integer wider than
  :data:`MAX_INT_BITS`, no value longer than :data:`MAX_LENGTH` characters (repetition,
  joins, replacements, ``%`` and ``format``), no width or padding over :data:`MAX_WIDTH`.
  Only the filters in :data:`FILTERS` exist, and only the methods in ``_METHODS``.
- A render has a :class:`Budget`: :data:`RENDER_STEPS` loop iterations, calls and filters,
  :data:`RENDER_WORK` characters of work (every text made, copied or written counts) and
  :data:`RENDER_SECONDS` of time. Loops, text written inside loops, macros and blocks, and
  ``~`` are charged by rewriting the parsed template (:func:`bounded`).

Going past a limit raises :class:`LimitExceeded`; ``core.templates`` turns it into its
``TemplateError``.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from math import inf
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateRuntimeError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.utils import _PassArg, pass_context  # _PassArg: how Jinja itself reads a filter's wants
from jinja2.visitor import NodeTransformer

__all__ = [
    "FILTERS",
    "INTERCEPTED_BINOPS",
    "MAX_INT_BITS",
    "MAX_LENGTH",
    "MAX_WIDTH",
    "RENDER_SECONDS",
    "RENDER_STEPS",
    "RENDER_WORK",
    "Budget",
    "LimitExceeded",
    "allowed_method",
    "binop",
    "bounded",
    "checked_call",
    "checked_format",
    "current",
    "loop_items",
    "measure",
    "rendering",
    "size",
]

# The longest text a template may render, and the longest value it may make on the way:
# an email body (plain or HTML) is at most this; an SMS is far less (its segments).
MAX_LENGTH = 256 * 1024
MAX_INT_BITS = 4096  # about 1,230 digits
MAX_WIDTH = 1_000  # padding, indent, wrap string, format width and precision, batch and slice counts
RENDER_STEPS = 20_000  # loop iterations, calls and filters in one render
RENDER_WORK = 4 * 1024 * 1024  # characters made, copied or written in one render
RENDER_SECONDS = 0.2  # a render should take well under a millisecond; this is a backstop

# The operators whose results are checked; also the ones Jinja then no longer folds.
INTERCEPTED_BINOPS = frozenset({"+", "*", "%", "**"})


class LimitExceeded(TemplateRuntimeError):
    """A template went past one of its limits; the message says which."""


@dataclass(slots=True)
class Budget:
    """What one render may still spend."""

    steps: int = RENDER_STEPS
    work: int = RENDER_WORK
    deadline: float = inf

    def step(self) -> None:
        self.steps -= 1
        if self.steps & 15:  # the clock is read every 16 steps
            return
        if self.steps < 0:
            raise LimitExceeded(f"takes more than {RENDER_STEPS:,} loop iterations, calls and filters to render")
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"takes longer than {RENDER_SECONDS:g} s to render")

    def charge(self, chars: int) -> None:
        if chars > MAX_LENGTH:
            raise LimitExceeded(f"makes a text or list of more than {MAX_LENGTH:,} characters")
        self.work -= chars
        if self.work < 0:
            raise LimitExceeded(f"makes more than {RENDER_WORK:,} characters in all")


_budget: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def current() -> Budget:
    """The budget of the render under way; outside one (constant folding while compiling),
    a fresh one, so the limits of each single operation still hold."""
    budget = _budget.get()
    return budget if budget is not None else Budget()


@contextmanager
def rendering() -> Iterator[Budget]:
    """Give the render run inside a fresh budget."""
    budget = Budget(deadline=time.monotonic() + RENDER_SECONDS)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def size(value: Any, limit: int = MAX_LENGTH) -> int:
    """About ``len(str(value))``, worked out without building it; counting stops past ``limit``.

    Containers count every element (so walking one costs about what it counts), shared
    elements as often as they appear: ``[s, s]`` is twice ``s``."""
    if isinstance(value, str):
        return len(value)
    total = 0
    pending = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, list):
            total += 2 + 2 * len(item)
            pending.extend(list.__iter__(item))  # not a tracked list's copying iterator
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            pending.extend(dict.keys(item))
            pending.extend(dict.values(item))
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            pending.extend(item)
        else:
            total += 64  # an undefined value, a macro, a generator: a short repr at most
    return total


def measure(value: Any) -> int:
    """Charge the current render for turning ``value`` into text (or copying it)."""
    budget = current()
    if isinstance(value, str):
        chars = len(value)
    elif isinstance(value, (int, float)) or value is None:  # bool too
        chars = 24
    else:
        chars = size(value, min(MAX_LENGTH, max(budget.work, 0)))
    budget.charge(chars)
    return chars


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value: Any) -> Any:
    if _whole(value) and value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded(f"makes a number of more than {MAX_INT_BITS:,} bits")
    return value


def _check_width(value: Any, what: str) -> None:
    width = len(value) if isinstance(value, str) else value
    if _whole(width) and width > MAX_WIDTH:
        raise LimitExceeded(f"asks for a {what} of {width:,}; the limit is {MAX_WIDTH:,}")


# --- operators -----------------------------------------------------------------------------

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "*": lambda a, b: a * b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
}


def binop(operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right``, refused before it is worked out if the result would be too big."""
    if operator == "**":
        if _whole(left) and _whole(right) and right > 0 and abs(left) > 1:
            if left.bit_length() * right > MAX_INT_BITS + right:  # 2**4096 still goes
                raise LimitExceeded(f"makes a number of more than {MAX_INT_BITS:,} bits")
    elif operator == "*":
        times, repeated = (right, left) if _whole(right) else (left, right)
        if _whole(times) and isinstance(repeated, (str, list, tuple)) and times > 1:
            current().charge(size(repeated) * times)
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            current().charge(size(left) + size(right))
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right)
    result = _BINOPS[operator](left, right)
    if operator == "%" and isinstance(result, str):
        current().charge(len(result))
    return _check_int(result)


# `%` conversions: `%%`, or `%(key)` flags, width, precision; a `*` takes the width from the values.
_PRINTF = re.compile(r"%%|%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?")


def _check_printf(template: str, values: Any) -> None:
    """``template % values`` stays small: widths and precisions bounded, the result too."""
    fields, widest = 0, 0
    for match in _PRINTF.finditer(template):
        if match.group(0) == "%%":
            continue
        fields += 1
        for number in match.groups():
            if number == "*":
                raise LimitExceeded("uses a `*` width in a % format; write the width out")
            widest = max(widest, _width(number))
    _check_fields(template, fields, widest, values if isinstance(values, tuple) else (values,), {})


def _width(number: str | None) -> int:
    if number and (len(number) > 6 or int(number) > MAX_WIDTH):
        raise LimitExceeded(f"asks for a format width of {number}; the limit is {MAX_WIDTH:,}")
    return int(number) if number else 0


def _check_fields(template: str, fields: int, widest: int, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    # A field may name the same value again ("%(a)s%(a)s", "{0}{0}"): count each field as the largest.
    largest = max((measure(v) for v in (*args, *kwargs.values())), default=0)
    current().charge(len(template) + fields * (largest + widest))


def checked_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """``template.format(*args, **kwargs)`` (or format_map) stays small."""
    fields, widest = 0, 0
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return  # malformed: format itself raises, having made nothing
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise LimitExceeded("uses a nested {} in a format spec; write the width out")
        for number in re.findall(r"\d+", spec or ""):
            widest = max(widest, _width(number))
    _check_fields(template, fields, widest, args, kwargs)


# --- calls ---------------------------------------------------------------------------------

def _replace_size(text: str, old: Any, new: Any, count: Any) -> int:
    old, new = str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if _whole(count) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _check_join(separator: Any, items: Any) -> list[Any]:
    items = list(items)
    current().charge(size(items) + len(str(separator)) * len(items))
    return items


# Methods a template may call on its values (anything else is "unsafe" to the sandbox).
_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({
        "capitalize", "casefold", "center", "count", "endswith", "find", "format", "format_map",
        "index", "isalnum", "isalpha", "isdecimal", "isdigit", "islower", "isnumeric", "isspace",
        "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix",
        "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
        "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
    }),
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
}


def allowed_method(obj: Any, name: str) -> bool:
    """Whether ``obj.name`` is a method a template may call (data attributes are not methods)."""
    return any(isinstance(obj, kind) and name in names for kind, names in _METHODS.items())


def checked_call(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Before a call from a template: count it, and refuse a method call that would make
    something too big. Returns the arguments to call with."""
    budget = current()
    budget.step()
    if isinstance(function, LoopContext) and args:
        return (loop_items(args[0]), *args[1:])  # loop(children) of a recursive for
    owner = getattr(function, "__self__", None)
    if not isinstance(owner, str) or not callable(function):
        return args
    name = getattr(function, "__name__", "")
    budget.charge(len(owner))
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0], "width")
    elif name == "replace" and len(args) >= 2:
        budget.charge(_replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count")))
    elif name == "join" and args:
        return (_check_join(owner, args[0]), *args[1:])
    return args


def loop_items(iterable: Iterable[Any]) -> Iterator[Any]:
    """The items of a for loop, each one a step of the render."""
    budget = current()
    for item in iterable:
        budget.step()
        yield item


# --- filters -------------------------------------------------------------------------------

def _center(value: Any, width: Any = 80) -> None:
    _check_width(width, "width")


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    _check_width(width, "indent")
    text = str(s)
    step = len(width) if isinstance(width, str) else width if _whole(width) else 0
    current().charge(len(text) + (text.count("\n") + 1) * max(step, 0))


def _wordwrap(
    s: Any, width: Any = 79, break_long_words: bool = True, wrapstring: Any = None, break_on_hyphens: bool = True
) -> None:
    text, joint = str(s), str(wrapstring or "\n")
    _check_width(joint, "wrap string")
    lines = len(text) // max(width, 1) if _whole(width) else len(text)
    current().charge(len(text) + (lines + text.count("\n") + 1) * len(joint))


def _replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    current().charge(_replace_size(str(s), old, new, count))


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_printf(str(value), kwargs or args)


def _batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
    _check_width(linecount, "batch size")


def _slice(value: Any, slices: Any, fill_with: Any = None) -> None:
    _check_width(slices, "slice count")


def _round(value: Any, precision: Any = 0, method: str = "common") -> None:
    if _whole(precision) and abs(precision) > 100:
        raise LimitExceeded(f"rounds to {precision:,} places; the limit is 100")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "replace": _replace,
    "round": _round,
    "slice": _slice,
    "wordwrap": _wordwrap,
}
# Filters that neither copy nor turn their value into text: not charged for its size.
_LIGHT = frozenset({
    "abs", "attr", "batch", "count", "d", "default", "first", "float", "int", "items", "last",
    "length", "map", "reject", "rejectattr", "round", "select", "selectattr", "slice",
})
# pprint, random, urlize and xmlattr are left out: unbounded, not repeatable, or not for messages.
_KEPT = sorted(set(JINJA_FILTERS) - {"pprint", "random", "urlize", "xmlattr"})


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    check = _FILTER_CHECKS.get(name)
    light = name in _LIGHT
    passed = _PassArg.from_obj(function)

    # Taking the context keeps Jinja from running the filter at compile time on constants.
    @pass_context
    def bounded_filter(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        if not light:
            measure(value)
            for argument in (*args, *kwargs.values()):
                measure(argument)
        if name == "join":
            value = _check_join(args[0] if args else kwargs.get("d", ""), value)  # (value, d, attribute)
        elif check is not None:
            check(value, *args, **kwargs)
        if passed is _PassArg.context:
            result = function(context, value, *args, **kwargs)
        elif passed is _PassArg.eval_context:
            result = function(context.eval_ctx, value, *args, **kwargs)
        elif passed is _PassArg.environment:
            result = function(context.environment, value, *args, **kwargs)
        else:
            result = function(value, *args, **kwargs)
        if isinstance(result, str):
            budget.charge(len(result))
        elif isinstance(result, list):
            budget.charge(2 * len(result))
        elif isinstance(result, int):
            _check_int(result)
        return result

    bounded_filter.__name__ = f"bounded_{name}"
    return bounded_filter


@pass_context
def _loop_filter(context: Context, iterable: Any) -> Iterator[Any]:
    return loop_items(iterable)


@pass_context
def _written(context: Context, value: Any, literal: int = 0) -> Any:
    """An expression's value as it is written out ({{ … }}), charged; plus the literal text
    written beside it in a loop, macro or block."""
    measure(value)
    if literal:
        current().charge(literal)
    return value


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    """`a ~ b`: Jinja's own join, once the parts (read as text) and the joined text are charged."""
    current().charge(sum(measure(part) for part in parts))
    return markup_join(parts) if context.eval_ctx.autoescape else str_join(parts)


_LOOP, _WRITTEN, _CONCAT = "_limits_loop", "_limits_written", "_limits_concat"
FILTERS: dict[str, Callable[..., Any]] = {name: _bounded_filter(name, JINJA_FILTERS[name]) for name in _KEPT} | {
    _LOOP: _loop_filter,
    _WRITTEN: _written,
    _CONCAT: _concat,
}


# --- the tree ------------------------------------------------------------------------------

def _filter(node: nodes.Expr, name: str, *args: Any) -> nodes.Filter:
    arguments: list[nodes.Expr] = [nodes.Const(a, lineno=node.lineno) for a in args]
    return nodes.Filter(node, name, arguments, [], None, None, lineno=node.lineno)


class _Bounder(NodeTransformer):
    """Rewrites a parsed template so its loops, writes and `~` are charged to the budget."""

    def __init__(self) -> None:
        self.repeated = 0  # inside a loop, macro or block: literal text may be written many times

    def _repeating(self, node: nodes.Node) -> nodes.Node:
        self.repeated += 1
        try:
            return self.generic_visit(node)
        finally:
            self.repeated -= 1

    visit_Macro = visit_CallBlock = visit_Block = _repeating

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node.iter = _filter(self.visit(node.iter), _LOOP)
        self.repeated += 1
        try:
            node.body = [self.visit(n) for n in node.body]
            node.else_ = [self.visit(n) for n in node.else_]
            if node.test is not None:
                node.test = self.visit(node.test)
        finally:
            self.repeated -= 1
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        literal = sum(len(n.data) for n in node.nodes if isinstance(n, nodes.TemplateData)) if self.repeated else 0
        written: list[nodes.Expr] = []
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                written.append(child)
                continue
            extra = [literal] if literal else []
            written.append(_filter(self.visit(child), _WRITTEN, *extra))
            literal = 0
        if literal:  # only literal text here
            written.append(_filter(nodes.Const("", lineno=node.lineno), _WRITTEN, literal))
        node.nodes = written
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        parts = [self.visit(n) for n in node.nodes]
        return _filter(nodes.List(parts, lineno=node.lineno), _CONCAT)


def bounded(tree: nodes.Template, environment: Any) -> nodes.Template:
    """The parsed template, rewritten (in place) so rendering it is charged to the budget."""
    result = _Bounder().visit(tree)
    assert isinstance(result, nodes.Template)
    result.set_environment(environment)  # the new nodes' too
    return result
