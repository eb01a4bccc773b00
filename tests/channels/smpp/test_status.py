"""command_status names and what each means to the dispatcher."""

from __future__ import annotations

import pytest

from empathic.channels.base import ErrorKind
from empathic.channels.smpp import status
from empathic.channels.smpp.status import classify, name

# SMPP 3.4 table 5-2, written out independently of the module.
SPEC_TABLE = {
    0x00: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN", 0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS", 0x05: "ESME_RALYBND", 0x06: "ESME_RINVPRTFLG", 0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR", 0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL", 0x0E: "ESME_RINVPASWD", 0x0F: "ESME_RINVSYSID", 0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL", 0x14: "ESME_RMSGQFUL", 0x15: "ESME_RINVSERTYP", 0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME", 0x40: "ESME_RINVDESTFLAG", 0x42: "ESME_RINVSUBREP", 0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL", 0x45: "ESME_RSUBMITFAIL", 0x48: "ESME_RINVSRCTON", 0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI", 0x53: "ESME_RINVSYSTYP", 0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS", 0x58: "ESME_RTHROTTLED", 0x61: "ESME_RINVSCHED", 0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID", 0x64: "ESME_RX_T_APPN", 0x65: "ESME_RX_P_APPN", 0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL", 0xC0: "ESME_RINVOPTPARSTREAM", 0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN", 0xC3: "ESME_RMISSINGOPTPARAM", 0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE", 0xFF: "ESME_RUNKNOWNERR", 0x104: "ESME_RINVDCS",
}  # fmt: skip


@pytest.mark.parametrize(("code", "spec_name"), SPEC_TABLE.items())
def test_names(code: int, spec_name: str) -> None:
    assert name(code) == spec_name
    assert getattr(status, spec_name) == code


def test_unlisted_names() -> None:
    assert name(0x401) == "vendor error 0x401"
    assert name(0x2A) == "unknown status 0x2A"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0x00, None),
        (0x58, ErrorKind.THROTTLED),
        (0x14, ErrorKind.THROTTLED),
        (0x08, ErrorKind.CONNECTION),
        (0x45, ErrorKind.CONNECTION),
        (0x64, ErrorKind.CONNECTION),
        (0x04, ErrorKind.CONNECTION),  # not bound (yet/any more): rebind and retry
        (0x400, ErrorKind.CONNECTION),
        (0x4FF, ErrorKind.CONNECTION),
        (0x12345, ErrorKind.CONNECTION),
        (0x0D, ErrorKind.CONFIG),
        (0x0E, ErrorKind.CONFIG),
        (0x0F, ErrorKind.CONFIG),
        (0x53, ErrorKind.CONFIG),
        (0x01, ErrorKind.BAD_CONTENT),
        (0x104, ErrorKind.BAD_CONTENT),
        (0x0A, ErrorKind.REJECTED),
        (0x0B, ErrorKind.REJECTED),
        (0x65, ErrorKind.REJECTED),
        (0x66, ErrorKind.REJECTED),
        (0xFF, ErrorKind.REJECTED),
        (0x2A, ErrorKind.REJECTED),
    ],
)
def test_classify(code: int, kind: ErrorKind | None) -> None:
    assert classify(code) is kind


def test_every_error_has_a_kind() -> None:
    for code in SPEC_TABLE:
        assert (classify(code) is None) == (code == 0)
