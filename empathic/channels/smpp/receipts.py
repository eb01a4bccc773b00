"""Delivery receipts: the deliver_sm an SMSC sends when a message we submitted reaches its
final state (or an intermediate one), and how to match it with our message.

SMPP 3.4 Appendix B describes the de-facto text format most SMSCs put in short_message:

    id:0059113978 sub:001 dlvrd:001 submit date:1002101730 done date:1002101731 stat:DELIVRD err:000 text:@$#!%&/:

Many also (or only) send the TLVs receipted_message_id, message_state and
network_error_code, which win over the text when present. Real receipts bend the format
(upper case keys, `submit_date`, 12-digit dates with seconds, `err:0000`, missing fields,
the text in message_payload), so parsing is tolerant.

The id in a receipt is not always written like the submit_sm_resp's: a famous class of
SMSCs answers submit_sm with a hex id and reports the same number in decimal in the
receipt. `normalise_id` converts a receipt's id to the submit_sm_resp's form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from empathic.channels.base import ReceiptStatus
from empathic.channels.smpp.pdu import DeliverSm, Tag

__all__ = [
    "DeliveryReport",
    "ID_MODES",
    "match_key",
    "normalise_id",
    "parse_receipt_text",
    "receipt_status",
    "report_from",
    "state_status",
]

ESM_RECEIPT_MASK = 0x3C  # esm_class bits 2..5: the message type
ESM_SMSC_RECEIPT = 0x04  # "SMSC Delivery Receipt"

# message_state TLV values (SMPP 3.4 §5.2.28) as the text format's stat words.
STATES: dict[int, str] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}

_FINAL: dict[str, ReceiptStatus | None] = {
    "DELIVRD": ReceiptStatus.DELIVERED,
    "DELIVERED": ReceiptStatus.DELIVERED,
    "UNDELIV": ReceiptStatus.UNDELIVERED,
    "UNDELIVERABLE": ReceiptStatus.UNDELIVERED,
    "UNDELIVERED": ReceiptStatus.UNDELIVERED,
    "UNKNOWN": ReceiptStatus.UNDELIVERED,
    "EXPIRED": ReceiptStatus.EXPIRED,
    "REJECTD": ReceiptStatus.FAILED,
    "REJECTED": ReceiptStatus.FAILED,
    "DELETED": ReceiptStatus.FAILED,
    "FAILED": ReceiptStatus.FAILED,
    "ENROUTE": None,
    "ACCEPTD": None,
    "ACCEPTED": None,
}


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    message_id: str  # as the receipt wrote it (see normalise_id)
    stat: str  # upper case: DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN, ENROUTE, ACCEPTD
    err: str | None  # network/SMSC error code as sent ("000"), None when absent
    submitted: str | None  # "YYMMDDhhmm" or "YYMMDDhhmmss", as sent
    done: str | None
    text: str | None  # the first characters of the original message, when sent
    # True when the id came from the receipted_message_id TLV, which holds the id exactly as
    # the submit_sm_resp gave it; the text form's id may be in another base (normalise_id).
    id_from_tlv: bool = False


# Keys of the text format; `text:` runs to the end (it may hold anything, colons included).
_KEY = re.compile(r"(?i)(?<![a-z0-9_])(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:\s*")


# The form nearly every SMSC writes, read in one match; anything else (other case, other
# order, missing fields, a colon or NUL in a value) takes the tolerant reader below, which
# gives the same report for this form (tests/channels/smpp/test_receipts.py checks).
_V = r"([^\s\x00:]*)"
_CANONICAL = re.compile(
    rf"id:([^\s\x00:]+) sub:{_V} dlvrd:{_V} submit date:{_V} done date:{_V} stat:([^\s\x00:]+) err:{_V}"
    r"(?: text:\s*(.*))?",
    re.DOTALL,
)


def parse_receipt_text(text: str) -> DeliveryReport | None:
    """The receipt in a short_message's text, or None when it is not one (needs id and stat)."""
    canonical = _CANONICAL.fullmatch(text)
    if canonical is None:
        return _parse_tolerantly(text)
    message_id, _, _, submitted, done, stat, err, body = canonical.groups()
    return DeliveryReport(
        message_id=message_id,
        stat=stat.upper(),
        err=err or None,
        submitted=submitted or None,
        done=done or None,
        text=body.rstrip("\0") if body is not None else None,
    )


def _parse_tolerantly(text: str) -> DeliveryReport | None:
    fields: dict[str, str] = {}
    matches = []
    for match in _KEY.finditer(text):
        matches.append(match)
        if match.group(1).lower() == "text":
            break  # everything after text: is the message itself
    for index, match in enumerate(matches):
        key = match.group(1).lower().replace(" ", "").replace("_", "")
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = text[match.end() : end]
        if key == "text":
            fields.setdefault(key, value.rstrip("\0"))
        else:
            value = value.strip().rstrip("\0").strip()
            fields.setdefault(key, value.split()[0] if value else "")
    message_id, stat = fields.get("id"), fields.get("stat")
    if not message_id or not stat:
        return None
    return DeliveryReport(
        message_id=message_id,
        stat=stat.upper(),
        err=fields.get("err") or None,
        submitted=fields.get("submitdate") or None,
        done=fields.get("donedate") or None,
        text=fields.get("text"),
    )


def _network_error(value: bytes) -> str | None:
    """network_error_code: network type (1 octet) + error code (2 octets). Some SMSCs write
    three ASCII digits instead ("000"); those are taken as they are."""
    if len(value) == 3 and value.isdigit():
        return value.decode("ascii")
    if len(value) >= 3:
        return f"{int.from_bytes(value[1:3], 'big'):03d}"
    return None


def _receipt_body(pdu: DeliverSm) -> str:
    data = pdu.tlvs.get(Tag.MESSAGE_PAYLOAD, pdu.short_message)
    if pdu.data_coding == 8:
        return data.decode("utf-16-be", "replace")
    # Receipts are ASCII; read them as Latin-1 even under data_coding 0, since their `_`
    # and `@` are ASCII's, not GSM's.
    return data.decode("latin-1")


def report_from(pdu: DeliverSm) -> DeliveryReport | None:
    """The delivery report a deliver_sm carries, or None when it is not a receipt (or is one
    nobody can read: no id or no state)."""
    tlvs = pdu.tlvs
    receipted = tlvs.get(Tag.RECEIPTED_MESSAGE_ID)
    if (pdu.esm_class & ESM_RECEIPT_MASK) != ESM_SMSC_RECEIPT and receipted is None:
        return None
    parsed = parse_receipt_text(_receipt_body(pdu))
    tlv_id = receipted.split(b"\0", 1)[0].decode("latin-1").strip() if receipted else ""
    message_id = tlv_id
    state = tlvs.get(Tag.MESSAGE_STATE)
    stat = STATES.get(state[0], "UNKNOWN") if state else (parsed.stat if parsed else "")
    network_error = tlvs.get(Tag.NETWORK_ERROR_CODE)
    err = _network_error(network_error) if network_error is not None else None
    if parsed is not None:
        message_id = message_id or parsed.message_id
        err = err or parsed.err
    if not message_id or not stat:
        return None
    return DeliveryReport(
        message_id=message_id,
        stat=stat,
        err=err,
        submitted=parsed.submitted if parsed else None,
        done=parsed.done if parsed else None,
        text=parsed.text if parsed else None,
        id_from_tlv=bool(tlv_id),
    )


def receipt_status(report: DeliveryReport) -> ReceiptStatus | None:
    """The final status a report gives our message; None while it is not final (or unknown)."""
    return _FINAL.get(report.stat.upper())


def state_status(state: int) -> ReceiptStatus | None:
    """The final status a message_state value (the TLV's, or query_sm_resp's) gives our
    message, as its word in a receipt's text would; None while not final (or unknown)."""
    return _FINAL.get(STATES.get(state, ""))


ID_MODES = ("same", "hex_to_dec", "dec_to_hex")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_DEC = re.compile(r"[0-9]+")


def normalise_id(message_id: str, mode: str) -> str:
    """A receipt's message id in the submit_sm_resp's form.

    mode "same": unchanged; "hex_to_dec": the receipt has the decimal of the resp's hex id
    (returns lower-case hex, no leading zeros); "dec_to_hex": the receipt has the hex of the
    resp's decimal id (returns decimal, no leading zeros). An id that is not a number of the
    expected base is returned as it came (stripped). Compare with `match_key(resp_id, mode)`
    when the SMSC's resp ids may carry upper case or leading zeros.
    """
    message_id = message_id.strip()
    if mode == "same":
        return message_id
    if mode == "hex_to_dec":
        return f"{int(message_id, 10):x}" if _DEC.fullmatch(message_id) else message_id
    if mode == "dec_to_hex":
        return str(int(message_id, 16)) if _HEX.fullmatch(message_id) else message_id
    raise ValueError(f"mode must be one of {ID_MODES}, not {mode!r}")


def match_key(resp_id: str, mode: str) -> str:
    """A submit_sm_resp's id in the canonical form `normalise_id` gives receipts' ids."""
    resp_id = resp_id.strip()
    if mode == "same":
        return resp_id
    if mode == "hex_to_dec":
        return f"{int(resp_id, 16):x}" if _HEX.fullmatch(resp_id) else resp_id
    if mode == "dec_to_hex":
        return str(int(resp_id, 10)) if _DEC.fullmatch(resp_id) else resp_id
    raise ValueError(f"mode must be one of {ID_MODES}, not {mode!r}")
