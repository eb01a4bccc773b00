"""SMPP command_status values (SMPP 3.4 §5.1.3 table 5-2, plus the 5.0 additions seen in the
wild) and what each means to the dispatcher: retry or give up, and whose fault it is.

    >>> name(0x58)
    'ESME_RTHROTTLED'
    >>> classify(0x58)
    <ErrorKind.THROTTLED: 'throttled'>
"""

from __future__ import annotations

from empathic.channels.base import ErrorKind

__all__ = ["classify", "name"]

ESME_ROK = 0x00  # no error
ESME_RINVMSGLEN = 0x01  # message length is invalid
ESME_RINVCMDLEN = 0x02  # command length is invalid
ESME_RINVCMDID = 0x03  # invalid command id
ESME_RINVBNDSTS = 0x04  # incorrect bind status for the command
ESME_RALYBND = 0x05  # ESME already bound
ESME_RINVPRTFLG = 0x06  # invalid priority flag
ESME_RINVREGDLVFLG = 0x07  # invalid registered delivery flag
ESME_RSYSERR = 0x08  # system error
ESME_RINVSRCADR = 0x0A  # invalid source address
ESME_RINVDSTADR = 0x0B  # invalid destination address
ESME_RINVMSGID = 0x0C  # message id is invalid
ESME_RBINDFAIL = 0x0D  # bind failed
ESME_RINVPASWD = 0x0E  # invalid password
ESME_RINVSYSID = 0x0F  # invalid system id
ESME_RCANCELFAIL = 0x11  # cancel_sm failed
ESME_RREPLACEFAIL = 0x13  # replace_sm failed
ESME_RMSGQFUL = 0x14  # message queue full
ESME_RINVSERTYP = 0x15  # invalid service type
ESME_RINVNUMDESTS = 0x33  # invalid number of destinations
ESME_RINVDLNAME = 0x34  # invalid distribution list name
ESME_RINVDESTFLAG = 0x40  # destination flag is invalid (submit_multi)
ESME_RINVSUBREP = 0x42  # invalid 'submit with replace' request
ESME_RINVESMCLASS = 0x43  # invalid esm_class field data
ESME_RCNTSUBDL = 0x44  # cannot submit to distribution list
ESME_RSUBMITFAIL = 0x45  # submit_sm or submit_multi failed
ESME_RINVSRCTON = 0x48  # invalid source address TON
ESME_RINVSRCNPI = 0x49  # invalid source address NPI
ESME_RINVDSTTON = 0x50  # invalid destination address TON
ESME_RINVDSTNPI = 0x51  # invalid destination address NPI
ESME_RINVSYSTYP = 0x53  # invalid system_type field
ESME_RINVREPFLAG = 0x54  # invalid replace_if_present flag
ESME_RINVNUMMSGS = 0x55  # invalid number of messages
ESME_RTHROTTLED = 0x58  # throttling error: the ESME exceeded the allowed message limits
ESME_RINVSCHED = 0x61  # invalid scheduled delivery time
ESME_RINVEXPIRY = 0x62  # invalid message validity period (expiry time)
ESME_RINVDFTMSGID = 0x63  # predefined message invalid or not found
ESME_RX_T_APPN = 0x64  # ESME receiver temporary app error
ESME_RX_P_APPN = 0x65  # ESME receiver permanent app error
ESME_RX_R_APPN = 0x66  # ESME receiver reject message error
ESME_RQUERYFAIL = 0x67  # query_sm request failed
ESME_RINVOPTPARSTREAM = 0xC0  # error in the optional part of the PDU body
ESME_ROPTPARNOTALLWD = 0xC1  # optional parameter not allowed
ESME_RINVPARLEN = 0xC2  # invalid parameter length
ESME_RMISSINGOPTPARAM = 0xC3  # expected optional parameter missing
ESME_RINVOPTPARAMVAL = 0xC4  # invalid optional parameter value
ESME_RDELIVERYFAILURE = 0xFE  # delivery failure (data_sm_resp)
ESME_RUNKNOWNERR = 0xFF  # unknown error
# SMPP 5.0 additions (0x100..0x3FF was reserved for them in 3.4); SMSCs send these to 3.4 binds.
ESME_RSERTYPUNAUTH = 0x100  # ESME not authorised to use the service type
ESME_RPROHIBITED = 0x101  # ESME prohibited from using the operation
ESME_RSERTYPUNAVAIL = 0x102  # service type unavailable
ESME_RSERTYPDENIED = 0x103  # service type denied
ESME_RINVDCS = 0x104  # invalid data coding scheme
ESME_RINVSRCADDRSUBUNIT = 0x105  # source address subunit is invalid
ESME_RINVDSTADDRSUBUNIT = 0x106  # destination address subunit is invalid
# 0x400..0x4FF are SMSC vendor specific: their meaning is the vendor's.
VENDOR_FIRST = 0x400

_NAMES: dict[int, str] = {
    value: key for key, value in globals().items() if key.startswith("ESME_") and isinstance(value, int)
}

_THROTTLED = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
# Temporary trouble at the SMSC or our session state: the same message may go through later.
_CONNECTION = frozenset(
    {ESME_RSYSERR, ESME_RSUBMITFAIL, ESME_RX_T_APPN, ESME_RINVBNDSTS, ESME_RALYBND, ESME_RSERTYPUNAVAIL}
)
# The account is set up wrong (credentials, system type, service type): nothing goes until fixed.
_CONFIG = frozenset(
    {
        ESME_RBINDFAIL,
        ESME_RINVPASWD,
        ESME_RINVSYSID,
        ESME_RINVSYSTYP,
        ESME_RINVSERTYP,
        ESME_RSERTYPUNAUTH,
        ESME_RPROHIBITED,
        ESME_RSERTYPDENIED,
    }
)
# This text cannot go as encoded: a different encoding or length might.
_BAD_CONTENT = frozenset({ESME_RINVMSGLEN, ESME_RINVDCS})


def name(status: int) -> str:
    """The spec's name of a command_status, or a description of an unlisted one."""
    known = _NAMES.get(status)
    if known is not None:
        return known
    if VENDOR_FIRST <= status <= 0x4FF:
        return f"vendor error 0x{status:X}"
    return f"unknown status 0x{status:X}"


def classify(status: int) -> ErrorKind | None:
    """The channel error kind of a non-zero command_status (None for ESME_ROK).

    Unknown codes from 0x400 up are vendor specific: treated as transient (the message is
    retried) since vendors use them mostly for routing and capacity trouble. Every other
    refusal is permanent for the message (`rejected`).
    """
    if status == ESME_ROK:
        return None
    if status in _THROTTLED:
        return ErrorKind.THROTTLED
    if status in _CONNECTION or (status >= VENDOR_FIRST and status not in _NAMES):
        return ErrorKind.CONNECTION
    if status in _CONFIG:
        return ErrorKind.CONFIG
    if status in _BAD_CONTENT:
        return ErrorKind.BAD_CONTENT
    return ErrorKind.REJECTED
