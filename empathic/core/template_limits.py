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
- A render has a :class:`Budget`: :data:`RENDER_STEPS` steps (loop turns, calls, filters,
  items taken from a filter's lazy output), :data:`RENDER_WORK` characters' worth of work
  and :data:`RENDER_SECONDS` of time, a backstop: the work is charged, mostly before it is
  done, so that running out of it comes well before the clock. Every text made, copied or
  written counts its length; every value compared, searched, sorted, hashed, sliced or
  written its deep size (:func:`measure`: shared elements as often as they appear, so lists
  of the same list are as big as they print); filters that go through items in Python a
  cost per item; loop and macro bodies what they work out at each turn. Loops, writes,
  ``~``, literals, comparisons and slices are charged by rewriting the parsed template
  (:func:`bounded`), the rest in the filters, tests and calls.

Going past a limit raises :class:`LimitExceeded`; ``core.templates`` turns it into its
``TemplateError``.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from math import inf
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateRuntimeError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context, LoopContext, Macro, markup_join, str_join
from jinja2.tests import TESTS as JINJA_TESTS
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
    "TESTS",
    "CALL_WORK",
    "CLOCK_EVERY",
    "ELEMENT_WORK",
    "LOOKUP_WORK",
    "NODE_WORK",
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
    "measured",
    "rendering",
    "size",
]

# The longest text a template may render, and the longest value it may make on the way:
# an email body (plain or HTML) is at most this; an SMS is far less (its segments).
MAX_LENGTH = 256 * 1024
MAX_INT_BITS = 4096  # about 1,230 digits
MAX_WIDTH = 1_000  # padding, indent, wrap string, format width and precision, batch and slice counts
RENDER_STEPS = 20_000  # loop turns, calls, filters and items of lazy output in one render
RENDER_WORK = 4 * 1024 * 1024  # characters' worth of work in one render
RENDER_SECONDS = 0.2  # a render should take well under a millisecond; this is a backstop
# Work is counted in characters: one is about what copying or writing a character costs
# (RENDER_WORK in RENDER_SECONDS allows 50 ns each), far less than what Python takes for an
# element of a list (a step of a walk, a comparison, a hash): each element read costs this
# many more. The figures here are about four times the CPU time measured, so a render runs
# out of work well before its time, whatever the shape of its values.
ELEMENT_WORK = 16
# Each node of a template worked out again in a loop or a macro costs NODE_WORK (an operation,
# a name, a constant), LOOKUP_WORK for a look-up, call or filter (the sandbox's own Python,
# about a microsecond), and calling a macro CALL_WORK more (a frame and a context of its own).
NODE_WORK = 8
LOOKUP_WORK = 64
CALL_WORK = 2048
CLOCK_EVERY = 64 * 1024  # work between two looks at the clock (a few milliseconds' worth)

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
    look_at: int = RENDER_WORK - CLOCK_EVERY  # the work left when the clock is next read

    def step(self) -> None:
        self.steps -= 1
        if self.steps & 15:  # the clock is read every 16 steps
            return
        if self.steps < 0:
            raise LimitExceeded(f"takes more than {RENDER_STEPS:,} loop iterations, calls and filters to render")
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"takes longer than {RENDER_SECONDS:g} s to render")

    def charge(self, chars: int) -> None:
        """A value of ``chars`` characters made, copied, written, compared or read through."""
        if chars > MAX_LENGTH:
            raise LimitExceeded(f"makes a text or list of more than {MAX_LENGTH:,} characters")
        self.spend(chars)

    def spend(self, work: int) -> None:
        """Work worth ``work`` characters (a filter that goes through items in Python costs more
        per item than copying a character does)."""
        self.work -= work
        if self.work < 0:
            raise LimitExceeded(f"makes, copies or reads more than {RENDER_WORK:,} characters in all")
        # Work charged without steps (writes, comparisons, filters over long values) is timed
        # too, so a render that is all such work still stops at the deadline; but only once
        # it has done some (a machine that paused a small render is no reason to refuse it).
        if self.work < self.look_at:
            self.look_at = self.work - CLOCK_EVERY
            if time.monotonic() > self.deadline:
                raise LimitExceeded(f"takes longer than {RENDER_SECONDS:g} s to render")


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
    return _walk(value, limit)[0]


def _walk(value: Any, limit: int) -> tuple[int, int]:
    """``value``'s size (as :func:`size`) and how many elements its containers hold."""
    if isinstance(value, str):
        return len(value), 0
    total = elements = 0
    pending = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple)):
            total += 2 + 2 * len(item)
            elements += len(item)
            if len(item) < 16:  # most nested lists: quicker to look at one by one
                pending.extend(list.__iter__(item) if isinstance(item, list) else item)
            else:
                total += _members(item, pending)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            elements += 2 * len(item)
            if len(item) < 16:
                pending.extend(dict.keys(item))
                pending.extend(dict.values(item))
            else:
                total += _members(dict.keys(item), pending) + _members(dict.values(item), pending)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item) + _members(item.keys(), pending) + _members(item.values(), pending)
            elements += 2 * len(item)
        elif isinstance(item, (set, frozenset, MappingView)):
            total += 2 + 2 * len(item) + _members(item, pending)
            elements += len(item)
        else:
            total += 64  # an undefined value, a macro, a generator: a short repr at most
    return total, elements


def _members(items: Any, pending: list[Any]) -> int:
    """The size of a container's ``items`` when all are texts or all whole numbers, worked out
    in C (most data is such lists and mappings); else 0, and they join ``pending``."""
    each = list.__iter__ if isinstance(items, list) else iter  # not a tracked list's copying iterator
    if len(items) >= 16:  # below that, finding out costs more than it saves
        kinds = set(map(type, each(items)))
        if kinds == {str}:
            return sum(map(len, each(items)))
        if kinds == {int}:
            return sum(map(int.bit_length, each(items))) // 3 + 2 * len(items)
    pending.extend(each(items))
    return 0


def measure(value: Any) -> int:
    """Charge the current render for turning ``value`` into text (or copying, comparing,
    reading it): its size, and :data:`ELEMENT_WORK` more for each element of a container."""
    budget = current()
    if isinstance(value, str):
        chars = len(value)
    elif isinstance(value, int):  # bool too
        chars = value.bit_length() // 3 + 2  # its digits (turning 4,096 bits into them takes a while)
    elif isinstance(value, float) or value is None:
        chars = 24
    else:
        chars, elements = _walk(value, min(MAX_LENGTH, max(budget.work, 0)))
        budget.charge(chars)
        budget.spend(ELEMENT_WORK * elements)
        return chars
    budget.charge(chars)
    return chars


def measured(value: Any) -> Any:
    """``value``, charged for a deep look at it (a comparison, a search, a sort, a hash, a copy).

    An iterator (a filter's lazy output: ``map``, ``select``, ``batch``, …) is taken first,
    a step per item, into the list it stands for, and that list is measured and returned: a
    generator would otherwise pass as a few characters and then be consumed for free."""
    if type(value) not in _PLAIN and isinstance(value, Iterator) and not isinstance(value, Sized):
        value = list(loop_items(value))  # (a loop object is an iterator too, but Sized: left alone)
    measure(value)
    return value


_PLAIN = frozenset({str, int, float, bool, type(None), list, tuple, dict})  # not iterators: no need to ask


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


def _check_join(separator: Any, items: Iterable[Any]) -> list[Any]:
    listed = list(items)
    current().charge(measure(listed) + len(str(separator)) * len(listed))
    return listed


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
    if isinstance(function, Macro):  # a macro, or a call block's caller()
        budget.spend(CALL_WORK)
    elif isinstance(function, LoopContext) and args:
        return (loop_items(args[0]), *args[1:])  # loop(children) of a recursive for
    owner = getattr(function, "__self__", None)
    if owner is None or not callable(function):
        return args
    name = getattr(function, "__name__", "")
    if isinstance(owner, LoopContext):
        # loop.changed(value) compares the value with the last one it was given
        return tuple(measured(a) for a in args) if name == "changed" else args
    if not isinstance(owner, (str, list, tuple, Mapping)):
        return args
    if isinstance(owner, str) and name == "join" and args:
        budget.charge(len(owner))
        return (_check_join(owner, args[0]), *args[1:])
    # A method's arguments are searched for, compared or hashed (a needle, a key, an item).
    args = tuple(measured(a) for a in args)
    for value in kwargs.values():
        measure(value)
    if isinstance(owner, str):
        budget.charge(len(owner))
        if name in ("center", "ljust", "rjust", "zfill") and args:
            _check_width(args[0], "width")
        elif name in ("strip", "lstrip", "rstrip") and args:
            _check_width(args[0], "set of characters to strip")  # each character is looked for in it
        elif name == "replace" and len(args) >= 2:
            budget.charge(_replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count")))
    elif isinstance(owner, (list, tuple)):  # count, index: a scan comparing every item
        measure(owner)
    return args


def loop_items(iterable: Iterable[Any], work: int = 0) -> Iterator[Any]:
    """The items of a for loop, each one a step of the render (and ``work`` more)."""
    budget = current()
    for item in iterable:
        budget.step()
        if work:
            budget.spend(work)
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


def _sum(value: Any, attribute: Any = None, start: Any = 0) -> None:
    # Python's sum copies a list or tuple total at every item it adds: quadratic, never charged.
    if not isinstance(start, (int, float)):
        raise LimitExceeded("sums numbers only: sum's start must be a number")


def _trim(value: Any, chars: Any = None) -> None:
    _check_width(chars, "set of characters to strip")  # each character is looked for in it


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "replace": _replace,
    "round": _round,
    "slice": _slice,
    "sum": _sum,
    "trim": _trim,
    "wordwrap": _wordwrap,
}
# Filters that neither copy nor turn their value into text: not charged for its size. Those
# that go through it lazily (batch, map, select, …) give an iterator whose items are counted.
_LIGHT = frozenset({
    "abs", "attr", "batch", "count", "d", "default", "first", "float", "int", "items", "last",
    "length", "map", "reject", "rejectattr", "round", "select", "selectattr", "slice",
})
_PARSING = frozenset({"float", "int"})  # light, but they read a text through
# Filters that go through their value an item (or a character) at a time in Python: what each
# item costs, in characters' worth of work. RENDER_WORK in RENDER_SECONDS is 50 ns a character;
# these are about four times the CPU time measured per item on large values, so that a render
# runs out of work well before its time, even on a busy machine. Charged before the filter runs.
_PER_ITEM = {
    "batch": 8, "dictsort": 64, "groupby": 512, "indent": 16, "max": 64, "min": 64, "slice": 8, "sort": 128,
    "striptags": 32, "sum": 8, "title": 32, "unique": 64, "urlencode": 8, "wordcount": 16, "wordwrap": 64,
}
# pprint, random, urlize and xmlattr are left out: unbounded, not repeatable, or not for messages.
_KEPT = sorted(set(JINJA_FILTERS) - {"pprint", "random", "urlize", "xmlattr"})


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    check = _FILTER_CHECKS.get(name)
    light = name in _LIGHT
    per_item = _PER_ITEM.get(name, 0)
    passed = _PassArg.from_obj(function)

    # Taking the context keeps Jinja from running the filter at compile time on constants.
    @pass_context
    def bounded_filter(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        if not light:
            value = measured(value)
            args = tuple(measured(a) for a in args)
            for argument in kwargs.values():
                measure(argument)
        elif name in _PARSING and isinstance(value, str):
            budget.charge(len(value))
        if per_item and isinstance(value, Sized):
            budget.spend(per_item * len(value))
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
        elif isinstance(result, Iterator) and not isinstance(result, Sized):
            return _counted(result)
        return result

    bounded_filter.__name__ = f"bounded_{name}"
    return bounded_filter


def _counted(items: Iterator[Any]) -> Iterator[Any]:
    """A filter's lazy output (batch, map, select, items, …): whoever takes its items takes a
    step for each, and a row it makes (batch's, slice's) is charged like any copy."""
    budget = current()
    for item in items:
        budget.step()
        if isinstance(item, (list, tuple)):
            budget.charge(2 + 2 * len(item))
        yield item


# Tests that compare, search or read through their value and arguments.
_SCANNING_TESTS = frozenset({
    "!=", "<", "<=", "==", ">", ">=", "eq", "equalto", "ge", "greaterthan", "gt", "in", "le",
    "lessthan", "lower", "lt", "ne", "upper",
})


def _bounded_test(name: str, function: Callable[..., bool]) -> Callable[..., bool]:
    # Taking the context keeps Jinja from running the test at compile time on constants.
    @pass_context
    def bounded_test(context: Context, value: Any, *args: Any) -> bool:
        current().step()
        return function(measured(value), *(measured(a) for a in args))

    bounded_test.__name__ = f"bounded_{name}"
    return bounded_test


TESTS: dict[str, Callable[..., bool]] = {
    # jinja2 leaves TESTS unannotated, so mypy infers dict[str, function], which it cannot call.
    name: _bounded_test(name, JINJA_TESTS[name])  # type: ignore[arg-type]
    for name in _SCANNING_TESTS
}


@pass_context
def _loop_filter(context: Context, iterable: Any, work: int = 0) -> Iterator[Any]:
    return loop_items(iterable, work)


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


@pass_context
def _measured_filter(context: Context, value: Any) -> Any:
    """A value just built ([…], (…), {…}) or about to be compared (== < in …), charged."""
    return measured(value)


_LOOP, _WRITTEN, _CONCAT, _MEASURED = "_limits_loop", "_limits_written", "_limits_concat", "_limits_measured"
FILTERS: dict[str, Callable[..., Any]] = {name: _bounded_filter(name, JINJA_FILTERS[name]) for name in _KEPT} | {
    _LOOP: _loop_filter,
    _WRITTEN: _written,
    _CONCAT: _concat,
    _MEASURED: _measured_filter,
}


# --- the tree ------------------------------------------------------------------------------

def _filter(node: nodes.Expr, name: str, *args: Any) -> nodes.Filter:
    arguments: list[nodes.Expr] = [nodes.Const(a, lineno=node.lineno) for a in args]
    return nodes.Filter(node, name, arguments, [], None, None, lineno=node.lineno)


def _weight(*parts: nodes.Node) -> int:
    """What working out ``parts`` once costs, in characters' worth of work: NODE_WORK a node,
    LOOKUP_WORK a look-up, call or filter (the sandbox's own Python)."""
    return sum(
        LOOKUP_WORK if isinstance(node, _LOOKUPS) else NODE_WORK
        for part in parts for node in (part, *part.find_all(nodes.Node))
    )


_LOOKUPS = (nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Filter, nodes.Test)


def _charging(body: list[nodes.Node], lineno: int) -> list[nodes.Node]:
    """A body run again and again (a loop's, a macro's), charged at each run for what it works
    out: ``{{ i-i-i-…-i }}`` in a loop costs its source little and a step a turn, but thousands of
    operations each time."""
    work = _weight(*body)
    return [nodes.Output([_filter(nodes.Const("", lineno=lineno), _WRITTEN, work)], lineno=lineno), *body]


class _Bounder(NodeTransformer):
    """Rewrites a parsed template so its loops, writes, `~`, literals and comparisons are
    charged to the budget."""

    def __init__(self) -> None:
        self.repeated = 0  # inside a loop, macro or block: literal text may be written many times

    def _repeating(self, node: nodes.Macro | nodes.CallBlock | nodes.Block) -> nodes.Node:
        self.repeated += 1
        try:
            self.generic_visit(node)
        finally:
            self.repeated -= 1
        node.body = _charging(node.body, node.lineno)
        return node

    visit_Macro = visit_CallBlock = visit_Block = _repeating

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.repeated += 1
        try:
            node.body = _charging([self.visit(n) for n in node.body], node.lineno)
            node.else_ = [self.visit(n) for n in node.else_]
            if node.test is not None:
                node.test = self.visit(node.test)
        finally:
            self.repeated -= 1
        # `for … if test`: the test is worked out for every item, the body only for those it lets by
        tested = _weight(node.test) if node.test is not None else 0
        node.iter = _filter(self.visit(node.iter), _LOOP, *([tested] if tested else []))
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

    # `[a, a, a]` costs its source little, but holds `a` three times: charged as it would
    # print, so nesting shared lists cannot build something huge to compare or print.
    def _built(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)  # rewrites the children in place
        return _filter(node, _MEASURED)

    visit_List = visit_Dict = _built

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        return self._built(node) if node.ctx == "load" else self.generic_visit(node)  # not `a, b` being set

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        # Jinja compiles `x[a:b]` to Python's own slicing, past the sandbox: the copy is charged here.
        return _filter(node, _MEASURED) if isinstance(node.arg, nodes.Slice) else node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        # == < in … take one C call, however deep the values: each side is charged for its size.
        node.expr = _filter(self.visit(node.expr), _MEASURED)
        for operand in node.ops:
            operand.expr = _filter(self.visit(operand.expr), _MEASURED)
        return node


def bounded(tree: nodes.Template, environment: Any) -> nodes.Template:
    """The parsed template, rewritten (in place) so rendering it is charged to the budget."""
    result = _Bounder().visit(tree)
    assert isinstance(result, nodes.Template)
    result.set_environment(environment)  # the new nodes' too
    return result
