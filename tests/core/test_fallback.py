"""Which channels a message takes for one person (core.fallback.plan), email variants of
templates (core.templates.compile_email) and their configuration at project load: a
template's `<name>.email.toml` and the `[fallback]` table of empathic.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from empathic.core.fallback import NOTHING, Plan, plan
from empathic.core.preferences import ChannelChoice
from empathic.core.templates import TemplateError, compile_email, subject_line
from empathic.engine.project import ProjectError, load_project

BOTH, EMAIL, SMS = ChannelChoice.BOTH, ChannelChoice.EMAIL, ChannelChoice.SMS


@pytest.mark.parametrize(
    ("preference", "phone", "email", "fallback", "expected"),
    [
        # no preference: the text, with the email as its fallback where the topic allows it
        (None, True, True, False, Plan(sms=True)),
        (None, True, True, True, Plan(sms=True, fallback=True)),
        (None, True, False, True, Plan(sms=True)),  # no address (or no way to email): no fallback
        (None, False, True, True, Plan(email=True)),  # no number: the email instead
        (None, False, True, False, NOTHING),  # ... only where the topic allows it
        (None, False, False, True, NOTHING),
        # both: the text and the email, each where possible
        (BOTH, True, True, True, Plan(sms=True, email=True)),
        (BOTH, True, True, False, Plan(sms=True, email=True)),
        (BOTH, True, False, False, Plan(sms=True)),
        (BOTH, False, True, False, Plan(email=True)),
        (BOTH, False, False, True, NOTHING),
        # email: the email instead of the text; when impossible, the text as before (the gate
        # then blocks it: channel_preference)
        (EMAIL, True, True, True, Plan(email=True)),
        (EMAIL, True, True, False, Plan(email=True)),
        (EMAIL, True, False, True, Plan(sms=True)),
        (EMAIL, False, True, False, Plan(email=True)),
        # sms: the text; the fallback email is written, and the gate applies the preference to it
        (SMS, True, True, True, Plan(sms=True, fallback=True)),
        (SMS, True, True, False, Plan(sms=True)),
    ],
)
def test_plan(preference: ChannelChoice | None, phone: bool, email: bool, fallback: bool, expected: Plan) -> None:
    assert plan(preference=preference, phone=phone, email=email, fallback=fallback) == expected
    assert expected.nothing == (not expected.sms and not expected.email)


def test_an_email_variant_renders_subject_text_and_escaped_html() -> None:
    variant = compile_email(
        "shipped", "Order {{ event.data.id }}\n  shipped", html="<p>Hi {{ contact.attributes.name }}</p>"
    )
    email = variant.render("Order A-1 shipped.", contact={"attributes": {"name": "<Ana & Bo>"}}, event={"data": {"id": "A-1"}})
    assert email.subject == "Order A-1 shipped"  # one line
    assert email.text == "Order A-1 shipped."  # the text template's, without a text of its own
    assert email.html == "<p>Hi &lt;Ana &amp; Bo&gt;</p>"
    own = compile_email("s", "S", text="Plain {{ event.data.id }}").render("sms", contact={}, event={"data": {"id": 7}})
    assert (own.text, own.html) == ("Plain 7", None)


def test_an_email_variant_names_the_part_that_cannot_render() -> None:
    with pytest.raises(TemplateError, match="shipped:html.*unknown variable 'order'"):
        compile_email("shipped", "S", html="{{ order.id }}")
    variant = compile_email("shipped", "Order {{ event.data.id }}")
    with pytest.raises(TemplateError, match="shipped:subject.*event.data.id is not defined"):
        variant.render("text", contact={}, event={"data": {}})
    assert subject_line(" a\r\n\tb  c ") == "a b c"


# -- at project load ---------------------------------------------------------------------------

SMTP = """
[[channels]]
type = "simulator"
name = "sim"

[[channels]]
type = "smtp"
name = "mail"
host = "127.0.0.1"
from = "texts@acme.example"
security = "none"
"""


def project(tmp_path: Path, toml: str, templates: dict[str, str] | None = None) -> Path:
    (tmp_path / "empathic.toml").write_text(toml, encoding="utf-8")
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, text in (templates or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_fallback_topics_and_email_variants_load(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, '[topics]\norders = "transactional"\n\n[fallback]\norders = "email"\n' + SMTP, {
        "shipped.txt": "Order {{ event.data.id }} shipped.",
        "shipped.email.toml": 'subject = "Order {{ event.data.id }}"\nhtml = """<p>{{ event.data.id }}</p>"""\n',
        "plain.txt": "No email here.",
    }))
    assert loaded.fallback == {"orders"}
    assert set(loaded.emails) == {"shipped"}
    assert loaded.emails["shipped"].subject.source == "Order {{ event.data.id }}" and loaded.emails["shipped"].text is None


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('[fallback]\ngossip = "email"\n' + SMTP, "[fallback] gossip: unknown topic"),
        ('[fallback]\ntransactional = "fax"\n' + SMTP, "[fallback] transactional = 'fax': the only fallback is \"email\""),
        ('[fallback]\ncompliance = "email"\n' + SMTP, "compliance replies go where the person wrote"),
        ('fallback = "email"\n' + SMTP, "[fallback] must be a table"),
        ('[fallback]\ntransactional = "email"\n', 'no email channel serves this topic; declare one ([[channels]] type = "smtp")'),
        # an smtp channel that carries other topics only does not count
        ('[fallback]\notp = "email"\n' + SMTP + 'topics = ["transactional"]\n', "[fallback] otp = \"email\": no email channel"),
    ],
)
def test_bad_fallback_tables_stop_the_start(tmp_path: Path, toml: str, error: str) -> None:
    with pytest.raises(ProjectError, match="empathic.toml") as caught:
        load_project(project(tmp_path, toml))
    assert error in str(caught.value)


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"a.txt": "A", "a.email.toml": 'html = "<p>A</p>"'}, "a.email.toml: an email needs a subject"),
        ({"a.txt": "A", "a.email.toml": 'subject = "S"\nbody = "x"'}, "a.email.toml: unknown keys body"),
        ({"a.txt": "A", "a.email.toml": 'subject = ""'}, "a.email.toml: subject must be text, not empty"),
        ({"a.txt": "A", "a.email.toml": "subject = 3"}, "a.email.toml: subject must be text"),
        ({"a.txt": "A", "a.email.toml": 'subject = "S'}, "a.email.toml: "),  # TOML syntax
        ({"b.email.toml": 'subject = "S"'}, "the email variant of template 'b', but there is no b.txt"),
        ({"a.txt": "A", "a.email.toml": 'subject = "{{ order.id }}"'}, "template 'a:subject', line 1: uses unknown variable 'order'"),
        ({"a.txt": "A", "a.email.toml": 'subject = "S"\nhtml = "{% if %}"'}, "template 'a:html', line 1: syntax error"),
    ],
)
def test_bad_email_variants_stop_the_start_naming_the_file(tmp_path: Path, files: dict[str, str], error: str) -> None:
    with pytest.raises(ProjectError) as caught:
        load_project(project(tmp_path, SMTP, files))
    assert error in str(caught.value)


def test_the_example_project_loads_its_email_variants() -> None:
    from empathic.engine.project import EXAMPLES

    loaded = load_project(EXAMPLES)
    assert {"order_dispatched", "order_delivered"} <= set(loaded.emails)
    assert loaded.fallback == frozenset()  # it declares no smtp channel
