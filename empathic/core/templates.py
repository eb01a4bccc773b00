"""Message templates: compiling and rendering the Jinja2 text of outgoing SMS, sandboxed.

Templates are written by platform users, so they run in Jinja's immutable sandbox, may refer
only to the names in :data:`TEMPLATE_SCOPE`, and fail loudly (:class:`TemplateError`) instead
of sending a message with a hole in it: unknown variables are rejected when a template is
compiled, missing values when it is rendered. What compiling and rendering one may cost is
bounded by ``core.template_limits``: a source of at most :data:`MAX_SOURCE_LENGTH`
characters, a rendered text of at most :data:`MAX_RENDERED_LENGTH`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import (
    SecurityError,
    TemplateRuntimeError,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.parser import Parser
from jinja2.runtime import Context, missing
from jinja2.sandbox import ImmutableSandboxedEnvironment

from empathic.core import template_limits as limits
from empathic.core.errors import FieldError, InputError

__all__ = [
    "FLOW_SCOPE",
    "MAX_RENDERED_LENGTH",
    "MAX_SOURCE_LENGTH",
    "TEMPLATE_SCOPE",
    "Condition",
    "Email",
    "EmailTemplate",
    "Template",
    "TemplateError",
    "compile_condition",
    "compile_email",
    "compile_template",
    "subject_line",
]

# The only names a template may use at the top level; render() supplies exactly these.
TEMPLATE_SCOPE = frozenset({"contact", "event"})
# Texts and conditions inside a flow also see the run's variables and the last reply.
FLOW_SCOPE = frozenset({"contact", "event", "vars", "reply"})
MAX_SOURCE_LENGTH = 10_000
# The longest text a render may give (an email body; an SMS is held to its segments later).
MAX_RENDERED_LENGTH = limits.MAX_LENGTH

# Jinja names the compiled code of from_string() templates like this in tracebacks.
_TEMPLATE_FILENAME = "<template>"


class TemplateError(InputError):
    """A template that cannot be compiled or rendered, with where and why; the API answers
    it as a fault of the `body`, with the whole message."""

    def __init__(
        self,
        template: str,
        detail: str,
        *,
        line: int | None = None,
        variable: str | None = None,
    ) -> None:
        self.template = template
        self.line = line
        self.variable = variable
        where = f", line {line}" if line is not None else ""
        super().__init__("body", detail, message=f"template {template!r}{where}: {detail}")

    def errors(self) -> list[FieldError]:
        return [{"field": self.field, "detail": str(self)}]

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields would be lost by the default (message-only) pickling.
        return (_rebuild_error, (self.template, self.detail, self.line, self.variable))


def _rebuild_error(
    template: str, detail: str, line: int | None, variable: str | None
) -> TemplateError:
    return TemplateError(template, detail, line=line, variable=variable)


@dataclass(frozen=True)
class Template:
    """A compiled message template; build with :func:`compile_template`."""

    name: str
    source: str
    _compiled: jinja2.Template = field(repr=False, compare=False)

    def render_value(self, **context: Any) -> str:
        """Like render, but an empty result is a value (a field set to ""), not an error."""
        try:
            return self.render(**context)
        except TemplateError as exc:
            if exc.detail == "renders to empty text":
                return ""
            raise

    def render(self, **context: Any) -> str:
        """Render the message text for ``contact`` and ``event``, stripped of surrounding space.

        Raises :class:`TemplateError` if the template reads a value that is not there, does
        something the sandbox forbids, fails otherwise, or produces no text at all.
        """
        try:
            with limits.rendering():  # every text written is charged: the budget bounds the whole
                text = self._compiled.render({name: _track(value, name) for name, value in context.items()})
        except limits.LimitExceeded as exc:
            raise TemplateError(self.name, exc.message or "is too costly to render",
                                line=_template_line(exc.__traceback__)) from None
        except _MissingValueError as exc:
            raise TemplateError(
                self.name,
                f"{exc.variable} is not defined",
                line=_template_line(exc.__traceback__),
                variable=exc.variable,
            ) from exc
        except UndefinedError as exc:
            raise TemplateError(
                self.name,
                exc.message or "uses a value that is not defined",
                line=_template_line(exc.__traceback__),
            ) from exc
        except SecurityError as exc:
            reason = _plain_type_names(exc.message or "unsafe operation")
            raise TemplateError(
                self.name,
                f"blocked by the sandbox: {reason}",
                line=_template_line(exc.__traceback__),
            ) from exc
        except Exception as exc:
            # Anything else raised while rendering (bad arithmetic, calling a non-function, …)
            # is still the template's fault, and must not escape as a generic crash.
            raise TemplateError(
                self.name,
                f"failed to render: {type(exc).__name__}: {exc}",
                line=_template_line(exc.__traceback__),
            ) from exc
        text = text.strip()
        if not text:
            raise TemplateError(self.name, "renders to empty text")
        if len(text) > MAX_RENDERED_LENGTH:
            raise TemplateError(self.name, f"renders to {len(text):,} characters; the limit is {MAX_RENDERED_LENGTH:,}")
        return text


# A template is immutable once compiled, and compiling is most of what loading a project
# costs (Jinja's parse and code generation): the same text is compiled once per process.
@lru_cache(maxsize=4096)
def compile_template(
    name: str, source: str, scope: frozenset[str] = TEMPLATE_SCOPE, *, html: bool = False
) -> Template:
    """Check and compile ``source``; raise :class:`TemplateError` if it could never render.

    ``html``: the text is HTML, so values are escaped as they are put in (``<`` → ``&lt;``)."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise TemplateError(
            name,
            f"is {len(source)} characters long; templates are limited to {MAX_SOURCE_LENGTH}",
        )
    environment = _HTML_ENVIRONMENT if html else _ENVIRONMENT
    with _compiling(name):
        tree = environment.parse(source, name=name)
        if any(True for _ in meta.find_referenced_templates(tree)):
            # There is no loader; fail now rather than on the first send.
            raise TemplateError(
                name,
                "uses include, import or extends; message templates must be self-contained",
                line=_first_line(tree, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)),
            )
        _check_names(name, tree, scope)
        compiled = environment.from_string(limits.bounded(tree, environment))
    return Template(name=name, source=source, _compiled=compiled)


@contextmanager
def _compiling(name: str) -> Iterator[None]:
    """Jinja's and Python's complaints about a source, as our TemplateError."""
    try:
        yield
    except TemplateError:
        raise
    except TemplateSyntaxError as exc:
        raise TemplateError(name, f"syntax error: {exc.message}", line=exc.lineno) from exc
    except (RecursionError, SyntaxError, MemoryError):
        # Python's own limits on nesting (blocks, brackets, filters) in the compiled code.
        raise TemplateError(name, "nests blocks or expressions too deeply") from None
    except ValueError as exc:  # a number literal of thousands of digits
        raise TemplateError(name, f"cannot be read: {exc}") from None


def subject_line(text: str) -> str:
    """An email subject is one line: runs of white space (line breaks a value brought in
    included) become one space."""
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Email:
    """A rendered email: its subject, plain text and optional HTML alternative."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class EmailTemplate:
    """The email variant of a message template: a subject, and optionally its own plain text
    (else the message's text is the email's) and an HTML alternative (values escaped)."""

    name: str
    subject: Template
    text: Template | None = None
    html: Template | None = None

    def render(self, message_text: str, **context: Any) -> Email:
        """The email for this context; ``message_text`` is the rendered text template, the
        plain part when the variant has no text of its own. Raises :class:`TemplateError`."""
        return Email(
            subject=subject_line(self.subject.render(**context)),
            text=self.text.render(**context) if self.text is not None else message_text,
            html=self.html.render(**context) if self.html is not None else None,
        )


def compile_email(
    name: str, subject: str, text: str | None = None, html: str | None = None, scope: frozenset[str] = TEMPLATE_SCOPE
) -> EmailTemplate:
    """Check and compile an email variant; :class:`TemplateError` names the part (``name:subject``)."""
    return EmailTemplate(
        name=name,
        subject=compile_template(f"{name}:subject", subject, scope),
        text=compile_template(f"{name}:text", text, scope) if text is not None else None,
        html=compile_template(f"{name}:html", html, scope, html=True) if html is not None else None,
    )


@dataclass(frozen=True)
class Condition:
    """A Jinja expression (`vars.score <= 2`, `reply.intent == "confirm"`) read as true/false."""

    name: str
    source: str
    _compiled: Any = field(repr=False, compare=False)

    def holds(self, **context: Any) -> bool:
        return bool(self.value(**context))

    def value(self, **context: Any) -> Any:
        """The expression's value, typed (a number stays a number)."""
        try:
            with limits.rendering():
                # Measured like a written value: it is kept (a flow's vars), copied and stored.
                return _plain(limits.measured(self._compiled(**{n: _track(v, n) for n, v in context.items()})))
        except limits.LimitExceeded as exc:
            raise TemplateError(self.name, exc.message or "is too costly to evaluate") from None
        except _MissingValueError as exc:
            raise TemplateError(self.name, f"{exc.variable} is not defined", variable=exc.variable) from exc
        except SecurityError as exc:
            raise TemplateError(self.name, f"blocked by the sandbox: {_plain_type_names(exc.message or '')}") from exc
        except Exception as exc:
            raise TemplateError(self.name, f"failed: {type(exc).__name__}: {exc}") from exc


def _plain(value: Any) -> Any:
    """Our tracked copies back to plain dicts and lists (they are handed to JSON and storage)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, jinja2.Undefined):
        return None
    return value


@lru_cache(maxsize=4096)
def compile_condition(name: str, source: str, scope: frozenset[str] = FLOW_SCOPE) -> Condition:
    """Check and compile a condition; raise :class:`TemplateError` if it could never be evaluated."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise TemplateError(name, f"is {len(source)} characters long; conditions are limited to {MAX_SOURCE_LENGTH}")
    with _compiling(name):
        tree = _ENVIRONMENT.parse("{{ (" + source + ") }}", name=name)
        _check_names(name, tree, scope)
        compiled = _compile_expression(source)
    return Condition(name, source, compiled)


def _compile_expression(source: str) -> TemplateExpression:
    """Jinja's ``compile_expression``, its tree bounded like a template's."""
    parser = Parser(_ENVIRONMENT, source, state="variable")
    expression = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
    tree = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)], lineno=1)
    template = _ENVIRONMENT.from_string(limits.bounded(tree, _ENVIRONMENT))
    return TemplateExpression(template, undefined_to_none=False)


def _check_names(name: str, tree: nodes.Template, scope: frozenset[str]) -> None:
    unknown = meta.find_undeclared_variables(tree) - scope
    if unknown:
        lines = {variable: _first_use(tree, variable) for variable in unknown}
        # Report the earliest offender, as an editor would; name the rest too.
        ordered = sorted(unknown, key=lambda v: (lines[v] or 0, v))
        first = ordered[0]
        others = f" (also {', '.join(repr(v) for v in ordered[1:])})" if ordered[1:] else ""
        raise TemplateError(
            name,
            f"uses unknown variable {first!r}{others}; "
            f"templates may use: {', '.join(sorted(scope))}",
            line=lines[first],
            variable=first,
        )


# --- rendering machinery -------------------------------------------------------------------


class _MissingValueError(UndefinedError):
    """An undefined value whose template path (``event.data.courier``) we could work out."""

    def __init__(self, message: str | None = None, *, variable: str) -> None:
        super().__init__(message)
        self.variable = variable


class _TrackedMapping(dict[str, Any]):
    """A copy of a context mapping that remembers its template path, for error messages.

    The underscore keeps the path out of the sandbox's reach; the dict base keeps the
    sandbox's immutability rules (no .update(), .pop(), …) in force.
    """

    __slots__ = ("_children", "_path")
    _path: str
    _children: dict[str | int, Any]  # the tracked copies handed out, by key: each made once


class _TrackedList(list[Any]):
    """A copy of a context list that remembers its path and hands out tracked elements."""

    __slots__ = ("_children", "_path")
    _path: str
    _children: dict[str | int, Any]

    def __iter__(self) -> Iterator[Any]:
        # {% for item in event.items %} iterates; tracking items names event.items[2].sku.
        # (Sorting, joining or printing a list iterates it too: a text or number is handed
        # out as it is, at once.)
        for index, value in enumerate(super().__iter__()):
            yield value if type(value) in _SCALARS else _tracked_child(self, index, value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _tracked_child(parent: _TrackedMapping | _TrackedList, key: Any, value: Any) -> Any:
    """``value``, found under ``key`` in ``parent``, tracked. A mapping or list is copied to be
    tracked, once per render: a loop reading ``event.data.x`` does not copy ``event.data`` at
    every turn (the parent cannot change: the sandbox is immutable)."""
    if type(value) in _SCALARS:
        return value
    cached = isinstance(key, (str, int))
    if cached and key in parent._children:
        return parent._children[key]
    child = _track(value, _child_path(parent._path, key))
    if cached and child is not value:
        parent._children[key] = child
    return child


def _track(value: Any, path: str) -> Any:
    if isinstance(value, (_TrackedMapping, _TrackedList)):
        return value
    if isinstance(value, Mapping):
        mapping = _TrackedMapping(value)
        mapping._path, mapping._children = path, {}
        return mapping
    if isinstance(value, (list, tuple)):
        items = _TrackedList(value)
        items._path, items._children = path, {}
        return items
    return value


def _child_path(parent: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{parent}.{key}"
    return f"{parent}[{key!r}]"


def _path_of(obj: Any, name: Any) -> str | None:
    if obj is missing:
        return name if isinstance(name, str) else None
    if isinstance(obj, (_TrackedMapping, _TrackedList)):
        return _child_path(obj._path, name)
    return None


class _MissingValue(jinja2.ChainableUndefined, jinja2.StrictUndefined):
    """Undefined that fails on any use except ``default``/``is defined``, naming its path.

    Chainable so ``contact.attributes.first_name | default("there")`` works even when
    ``attributes`` itself is absent; strict so nothing missing is ever printed as "".
    """

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        path = _path_of(obj, name)
        # Leave the sandbox's SecurityError undefineds alone; they must stay security errors.
        if exc is UndefinedError and hint is None and path is not None:
            # Jinja only ever calls this with the message, so a partial carries the path.
            raise_as: Any = partial(_MissingValueError, variable=path)
            self._undefined_exception = raise_as


class _MessageEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, reading context data the way template authors expect, its operators,
    filters and method calls bounded (``core.template_limits``)."""

    intercepted_binops = limits.INTERCEPTED_BINOPS

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # range, lipsum, namespace, cycler, … would otherwise be usable too;
        # TEMPLATE_SCOPE is the whole namespace.
        self.globals.clear()
        self.filters.clear()
        self.filters.update(limits.FILTERS)
        self.tests.update(limits.TESTS)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return limits.binop(operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # Every call (macros, loop(...), methods) is a step of the render's budget.
        args = limits.checked_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        # Of the built-in types' methods only those in the allow-list (no to_bytes, expandtabs, …).
        if isinstance(obj, (str, bytes, int, float, complex, list, tuple, dict, set, frozenset)) and callable(value):
            return limits.allowed_method(obj, attr)
        return True

    def wrap_str_format(self, value: Any) -> Any:
        format_ = super().wrap_str_format(value)
        if format_ is None:
            return None
        template, name = value.__self__, value.__name__

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if name == "format_map":  # format_map(mapping): its fields are the mapping's keys
                mapping = args[0] if args else {}
                limits.checked_format(template, (), mapping if isinstance(mapping, Mapping) else {"": mapping})
            else:
                limits.checked_format(template, args, kwargs)
            text: str = format_(*args, **kwargs)
            limits.current().charge(len(text))
            return text

        return bounded_format

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data keys win over dict methods: {{ event.items }} is the "items" field, not dict.items.
        if isinstance(obj, dict) or isinstance(obj, Mapping):  # (a dict is quicker to recognise)
            try:
                return self._descend(obj, attribute, obj[attribute])
            except (TypeError, LookupError):
                pass
        return self._descend(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        # (Jinja compiles `x[a:b]` to Python's own slicing: core.template_limits charges those.)
        if isinstance(argument, tuple):
            limits.measure(argument)  # a tuple's hash is worked out afresh at every look-up
        return self._descend(obj, argument, super().getitem(obj, argument))

    @staticmethod
    def _descend(parent: Any, key: Any, value: Any) -> Any:
        if isinstance(parent, (_TrackedMapping, _TrackedList)):
            return _tracked_child(parent, key, value)
        return value


_ENVIRONMENT = _MessageEnvironment(
    undefined=_MissingValue, autoescape=False, keep_trailing_newline=False
)
# HTML email bodies: a value with `<` or `&` in it is text, never markup.
_HTML_ENVIRONMENT = _MessageEnvironment(
    undefined=_MissingValue, autoescape=True, keep_trailing_newline=False
)


def _first_use(tree: nodes.Template, variable: str) -> int | None:
    lines = [node.lineno for node in tree.find_all(nodes.Name) if node.name == variable]
    return min(lines, default=None)


def _first_line(tree: nodes.Template, kinds: tuple[type[nodes.Node], ...]) -> int | None:
    return min((node.lineno for node in tree.find_all(kinds)), default=None)


def _plain_type_names(message: str) -> str:
    # Sandbox messages name the object's type; authors know our tracked copies as dict/list.
    return message.replace(f"'{_TrackedMapping.__name__}'", "'dict'").replace(
        f"'{_TrackedList.__name__}'", "'list'"
    )


def _template_line(traceback: TracebackType | None) -> int | None:
    # Jinja rewrites tracebacks so template frames carry template line numbers; the
    # innermost such frame is where rendering failed.
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
