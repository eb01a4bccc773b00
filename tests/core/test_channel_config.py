"""`[[channels]]` in empathic.toml: checked at load, with the file and the entry named."""

from __future__ import annotations

from pathlib import Path

import pytest

from empathic.core.routing import Reach
from empathic.engine.project import ProjectError, load_project


def project(tmp_path: Path, toml: str) -> Path:
    (tmp_path / "empathic.toml").write_text(toml, encoding="utf-8")
    return tmp_path


def test_no_channels_means_the_simulator(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, "[simulator]\nreceipt_delay = 0.5\n"))
    (entry,) = loaded.channels
    assert (entry.name, entry.type, entry.settings.receipt_delay) == ("simulator", "simulator", 0.5)


def test_declared_channels_with_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSC_PASSWORD", "s3cret")
    loaded = load_project(project(tmp_path, """
[topics]
deals = "marketing"

[[channels]]
type = "smpp"
name = "carrier-us"
host = "127.0.0.1"
port = 2775
system_id = "acme"
password_env = "SMSC_PASSWORD"
window = 100
shards = 4
receipt_timeout = 3600
query_after = 600
countries = ["us", "CA"]
topics = ["otp", "transactional", "deals"]
priority = 1

[[channels]]
type = "simulator"
name = "sim"
"""))
    smpp, sim = loaded.channels
    assert smpp.route.countries == {"US", "CA"} and smpp.route.priority == 1
    assert smpp.route.topics == {"otp", "transactional", "deals"} and smpp.route.reach is Reach.SMS
    assert smpp.settings.password == "s3cret" and smpp.settings.window == 100
    assert "s3cret" not in repr(smpp) and "s3cret" not in repr(smpp.settings)
    assert sim.route.countries == frozenset()
    assert smpp.shards == 4 and sim.shards == 1
    assert smpp.receipt_timeout == 3600.0 and sim.receipt_timeout is None  # None: the engine's 72 h
    assert smpp.settings.query_after == 600 and sim.route.priority == 0


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ('type = "carrier-pigeon"\nname = "x"', "type 'carrier-pigeon' is not one of"),
        ('type = "simulator"', "lacks name"),
        ('type = "simulator"\nname = "bad name!"', "name must be"),
        ('type = "simulator"\nname = "s"\ncountries = "US"', "countries must be a list"),
        ('type = "simulator"\nname = "s"\ntopics = ["gossip"]', "unknown topics ['gossip']"),
        ('type = "simulator"\nname = "s"\nnumber_types = ["landline"]', "unknown number_types ['landline']"),
        ('type = "simulator"\nname = "s"\ntps = -1', "tps must be positive"),
        ('type = "simulator"\nname = "s"\nspeed = 3', "unknown keys speed"),
        ('type = "simulator"\nname = "s"\nshards = 2', "the simulator has one shard"),
        ('type = "smtp"\nname = "m"\nhost = "h"\nfrom = "a@b.example"\nshards = 0', "shards must be a whole number from 1 to 32"),
        ('type = "smtp"\nname = "m"\nhost = "h"\nfrom = "a@b.example"\nshards = "2"', "shards must be a whole number"),
        ('type = "smpp"\nname = "c"\nhost = "h"\nport = 2775\nsystem_id = "x"', "missing password"),
        ('type = "smpp"\nname = "c"\nhost = "h"\nport = 2775\nsystem_id = "x"\npassword_env = "NOPE_NOT_SET"', "NOPE_NOT_SET, which is not set"),
        ('type = "smpp"\nname = "c"\nhost = "h"\nport = 2775\nsystem_id = "x"\npassword = "p"\nbind = "both"', "bind must be"),
        ('type = "smpp"\nname = "c"\nhost = "h"\nport = 2775\nsystem_id = "x"\npassword = "p"\nlong = "split"', "long must be"),
        ('type = "simulator"\nname = "s"\nreceipt_timeout = 0', "receipt_timeout must be seconds above 0"),
        ('type = "simulator"\nname = "s"\nreceipt_timeout = "72h"', "receipt_timeout must be seconds above 0"),
        ('type = "simulator"\nname = "s"\nreceipt_timeout = 700000', "at most 604800 (7 days)"),
        ('type = "smpp"\nname = "c"\nhost = "h"\nport = 2775\nsystem_id = "x"\npassword = "p"\nquery_after = -1', "query_after must be"),
        ('type = "smpp"\nname = "c"\nhost = "h"\nport = 2775\nsystem_id = "x"\npassword = "p"\nquery_tps = 0', "query_tps must be"),
        ('type = "smpp"\nname = "c"\nhost = "h"\nport = 2775\nsystem_id = "x"\npassword = "p"\nquery_batch = 0', "query_batch must be"),
    ],
)
def test_bad_entries_name_the_channel_and_the_problem(tmp_path: Path, entry: str, error: str) -> None:
    with pytest.raises(ProjectError, match="empathic.toml") as caught:
        load_project(project(tmp_path, f"[[channels]]\n{entry}\n"))
    assert error in str(caught.value)


def test_names_are_unique_and_one_simulator(tmp_path: Path) -> None:
    twice = '[[channels]]\ntype = "simulator"\nname = "a"\n[[channels]]\ntype = "simulator"\nname = "a"\n'
    with pytest.raises(ProjectError, match="declared twice"):
        load_project(project(tmp_path, twice))
    two_sims = '[[channels]]\ntype = "simulator"\nname = "a"\n[[channels]]\ntype = "simulator"\nname = "b"\n'
    with pytest.raises(ProjectError, match="only one simulator"):
        load_project(project(tmp_path, two_sims))
