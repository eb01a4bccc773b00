"""SMPP 3.4 PDUs: the dataclasses, their wire encoding, and framing of a TCP stream.

Every PDU is a 16-octet header (command_length, command_id, command_status,
sequence_number; big-endian unsigned 32-bit) and a body of fixed-size integers,
NUL-terminated C-octet strings with a maximum size (the NUL included, SMPP 3.4 §3.1),
and optional TLVs (tag, length: 16 bits each) at the end.

Only the operations an A2P ESME and our SMSC simulator speak are decoded: bind_* (and
their responses), submit_sm, deliver_sm, query_sm, enquire_link, unbind, generic_nack. Any
other command id (data_sm, outbind, submit_multi …) raises `ProtocolError` with
ESME_RINVCMDID and the sequence number, which is exactly what to answer in a generic_nack.

`decode` raises only `ProtocolError`, whatever the bytes (tests feed it random and mutated
frames); `encode` raises `ValueError` for a PDU that cannot be put on the wire (a string
longer than its field, a value out of range). Both are on the hot path of every message,
so they are written out by hand with precompiled structs rather than driven by a field
table (about 2 µs each for a typical submit_sm; `bench/smpp_codec.py`).

    >>> frame = encode(SubmitSm(source_addr="Acme", destination_addr="14155550100",
    ...                         short_message=b"Hello", sequence=7))
    >>> decode(frame).short_message
    b'Hello'
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar, overload

from empathic.channels.smpp import status as st

__all__ = [
    "MAX_PDU",
    "Bind",
    "BindResp",
    "CommandId",
    "DeliverSm",
    "DeliverSmResp",
    "EnquireLink",
    "EnquireLinkResp",
    "FrameReader",
    "GenericNack",
    "Pdu",
    "ProtocolError",
    "QuerySm",
    "QuerySmResp",
    "SubmitSm",
    "SubmitSmResp",
    "Tag",
    "Unbind",
    "UnbindResp",
    "decode",
    "encode",
    "response_to",
]

MAX_PDU = 64 * 1024  # largest command_length we accept; a message_payload is at most 64 KiB
HEADER_SIZE = 16
RESPONSE_BIT = 0x80000000

_HEADER = struct.Struct(">IIII")
_TL = struct.Struct(">HH")
_U32 = struct.Struct(">I")
_SM_TAIL = struct.Struct(">BBBBB")  # registered_delivery … sm_length


class CommandId(enum.IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


_BIND_IDS = frozenset({CommandId.BIND_RECEIVER, CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER})


class Tag(enum.IntEnum):
    """Optional parameter tags (SMPP 3.4 §5.3.2). Values are kept as raw bytes."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E  # C-octet string, the NUL included
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C  # 16 bits
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E  # 8 bits
    SAR_SEGMENT_SEQNUM = 0x020F  # 8 bits, from 1
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423  # 3 octets: network type, error code (16 bits)
    MESSAGE_PAYLOAD = 0x0424  # up to 64 KiB; replaces short_message
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427  # 8 bits: 1 ENROUTE … 8 REJECTED
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class ProtocolError(Exception):
    """Bytes that are not a valid PDU we handle.

    `status` is the command_status to answer with (in a generic_nack, or in the response
    to the request when its command id is known); `sequence` is the PDU's sequence number
    when the header could be read, else None.
    """

    def __init__(self, status: int, message: str, sequence: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.sequence = sequence

    def __repr__(self) -> str:
        return f"ProtocolError({st.name(self.status)}, {str(self)!r}, sequence={self.sequence})"


# --------------------------------------------------------------------------------------
# PDUs. command_status and sequence come last so bodies read in spec order.
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Bind:
    """bind_transmitter, bind_receiver or bind_transceiver (they share one body)."""

    command_id: CommandId
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    command_status: int = 0
    sequence: int = 0

    response_type: ClassVar[type]


@dataclass(slots=True)
class BindResp:
    command_id: CommandId  # BIND_*_RESP
    system_id: str = ""  # the SMSC's
    tlvs: dict[int, bytes] = field(default_factory=dict)  # e.g. SC_INTERFACE_VERSION
    command_status: int = 0
    sequence: int = 0

    request_type: ClassVar[type] = Bind


Bind.response_type = BindResp


@dataclass(slots=True)
class _ShortMessage:
    """The body submit_sm and deliver_sm share (SMPP 3.4 §4.4.1, §4.6.1)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: dict[int, bytes] = field(default_factory=dict)  # insertion ordered, as on the wire
    command_status: int = 0
    sequence: int = 0


@dataclass(slots=True)
class SubmitSmResp:
    message_id: str = ""  # the SMSC's id; empty in most error responses
    command_status: int = 0
    sequence: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)  # not in 3.4; SMPP 5.0 SMSCs add some

    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM_RESP
    request_type: ClassVar[type]


@dataclass(slots=True)
class DeliverSmResp:
    message_id: str = ""  # unused by the spec: always empty
    command_status: int = 0
    sequence: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)

    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM_RESP
    request_type: ClassVar[type]


@dataclass(slots=True)
class SubmitSm(_ShortMessage):
    command_id: ClassVar[CommandId] = CommandId.SUBMIT_SM
    response_type: ClassVar[type] = SubmitSmResp


@dataclass(slots=True)
class DeliverSm(_ShortMessage):
    command_id: ClassVar[CommandId] = CommandId.DELIVER_SM
    response_type: ClassVar[type] = DeliverSmResp


SubmitSmResp.request_type = SubmitSm
DeliverSmResp.request_type = DeliverSm


@dataclass(slots=True)
class EnquireLinkResp:
    command_status: int = 0
    sequence: int = 0

    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK_RESP
    request_type: ClassVar[type]


@dataclass(slots=True)
class EnquireLink:
    command_status: int = 0
    sequence: int = 0

    command_id: ClassVar[CommandId] = CommandId.ENQUIRE_LINK
    response_type: ClassVar[type] = EnquireLinkResp


EnquireLinkResp.request_type = EnquireLink


@dataclass(slots=True)
class UnbindResp:
    command_status: int = 0
    sequence: int = 0

    command_id: ClassVar[CommandId] = CommandId.UNBIND_RESP
    request_type: ClassVar[type]


@dataclass(slots=True)
class Unbind:
    command_status: int = 0
    sequence: int = 0

    command_id: ClassVar[CommandId] = CommandId.UNBIND
    response_type: ClassVar[type] = UnbindResp


UnbindResp.request_type = Unbind


@dataclass(slots=True)
class QuerySmResp:
    """What the SMSC knows of one message (SMPP 3.4 §4.8.2)."""

    message_id: str = ""
    final_date: str = ""  # "" or the 16-character absolute time it reached its final state
    message_state: int = 0  # 1 ENROUTE … 8 REJECTED, as the message_state TLV (§5.2.28)
    error_code: int = 0  # the network error, where there was one
    command_status: int = 0
    sequence: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)  # not in 3.4; kept if an SMSC adds some

    command_id: ClassVar[CommandId] = CommandId.QUERY_SM_RESP
    request_type: ClassVar[type]


@dataclass(slots=True)
class QuerySm:
    """Ask the SMSC the state of a message it took (SMPP 3.4 §4.8.1): its message_id and the
    source address it was submitted with."""

    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    command_status: int = 0
    sequence: int = 0

    command_id: ClassVar[CommandId] = CommandId.QUERY_SM
    response_type: ClassVar[type] = QuerySmResp


QuerySmResp.request_type = QuerySm


@dataclass(slots=True)
class GenericNack:
    """The answer to a PDU that could not be understood (its status says why)."""

    command_status: int = 0
    sequence: int = 0

    command_id: ClassVar[CommandId] = CommandId.GENERIC_NACK


Pdu = (
    Bind
    | BindResp
    | SubmitSm
    | SubmitSmResp
    | DeliverSm
    | DeliverSmResp
    | QuerySm
    | QuerySmResp
    | EnquireLink
    | EnquireLinkResp
    | Unbind
    | UnbindResp
    | GenericNack
)

_HeaderOnly = EnquireLink | EnquireLinkResp | Unbind | UnbindResp | GenericNack

_HEADER_ONLY: dict[int, type[_HeaderOnly]] = {
    CommandId.ENQUIRE_LINK: EnquireLink,
    CommandId.ENQUIRE_LINK_RESP: EnquireLinkResp,
    CommandId.UNBIND: Unbind,
    CommandId.UNBIND_RESP: UnbindResp,
    CommandId.GENERIC_NACK: GenericNack,
}


@overload
def response_to(pdu: Bind, status: int = 0) -> BindResp: ...


@overload
def response_to(pdu: Pdu, status: int = 0) -> Pdu: ...


def response_to(pdu: Pdu, status: int = 0) -> Pdu:
    """The response to a request, with its sequence number; generic_nack for anything else."""
    kind = type(pdu)
    if kind is Bind:
        return BindResp(CommandId(pdu.command_id | RESPONSE_BIT), command_status=status, sequence=pdu.sequence)
    response_type = getattr(kind, "response_type", None)
    if response_type is None:
        return GenericNack(command_status=status or st.ESME_RINVCMDID, sequence=pdu.sequence)
    return response_type(command_status=status, sequence=pdu.sequence)


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------


def _cstr(value: str, size: int, name: str) -> bytes:
    """A C-octet string of at most `size` octets, the terminating NUL included (not added)."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{name} {value!r} is not Latin-1") from None
    if len(raw) >= size or b"\0" in raw:
        raise ValueError(f"{name} {value!r} does not fit {size} octets with its NUL (or holds a NUL)")
    return raw


def _encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    if not tlvs:
        return b""
    parts = []
    for tag, value in tlvs.items():
        if len(value) > 0xFFFF:
            raise ValueError(f"TLV 0x{tag:04X} is {len(value)} octets (at most 65535)")
        parts.append(_TL.pack(tag, len(value)))
        parts.append(value)
    return b"".join(parts)


def _encode_sm(pdu: _ShortMessage) -> bytes:
    sm = pdu.short_message
    try:
        service_type = pdu.service_type.encode("latin-1")
        source = pdu.source_addr.encode("latin-1")
        destination = pdu.destination_addr.encode("latin-1")
        schedule = pdu.schedule_delivery_time.encode("latin-1")
        validity = pdu.validity_period.encode("latin-1")
    except UnicodeEncodeError:
        service_type = source = destination = schedule = validity = b"\0"  # _check_sm says which
    if (
        len(service_type) > 5
        or len(source) > 20
        or len(destination) > 20
        or len(schedule) > 16
        or len(validity) > 16
        or len(sm) > 254
        or b"\0" in b"%b%b%b%b%b" % (service_type, source, destination, schedule, validity)
    ):
        _check_sm(pdu)
    body = b"%b\0%c%c%b\0%c%c%b\0%c%c%c%b\0%b\0%c%c%c%c%c%b" % (
        service_type,
        pdu.source_addr_ton,
        pdu.source_addr_npi,
        source,
        pdu.dest_addr_ton,
        pdu.dest_addr_npi,
        destination,
        pdu.esm_class,
        pdu.protocol_id,
        pdu.priority_flag,
        schedule,
        validity,
        pdu.registered_delivery,
        pdu.replace_if_present_flag,
        pdu.data_coding,
        pdu.sm_default_msg_id,
        len(sm),
        sm,
    )
    if pdu.tlvs:
        body += _encode_tlvs(pdu.tlvs)
    return body


def _check_sm(pdu: _ShortMessage) -> None:
    """Raise ValueError naming the field of a submit_sm/deliver_sm that cannot be encoded."""
    _cstr(pdu.service_type, 6, "service_type")
    _cstr(pdu.source_addr, 21, "source_addr")
    _cstr(pdu.destination_addr, 21, "destination_addr")
    _cstr(pdu.schedule_delivery_time, 17, "schedule_delivery_time")
    _cstr(pdu.validity_period, 17, "validity_period")
    raise ValueError(f"short_message is {len(pdu.short_message)} octets (at most 254; use MESSAGE_PAYLOAD)")


def _encode_bind(pdu: Bind) -> bytes:
    if pdu.command_id not in _BIND_IDS:
        raise ValueError(f"Bind with command_id {pdu.command_id!r}")
    return b"%b\0%b\0%b\0%c%c%c%b\0" % (
        _cstr(pdu.system_id, 16, "system_id"),
        _cstr(pdu.password, 9, "password"),
        _cstr(pdu.system_type, 13, "system_type"),
        pdu.interface_version,
        pdu.addr_ton,
        pdu.addr_npi,
        _cstr(pdu.address_range, 41, "address_range"),
    )


def _encode_bind_resp(pdu: BindResp) -> bytes:
    if pdu.command_id & ~RESPONSE_BIT not in _BIND_IDS or not pdu.command_id & RESPONSE_BIT:
        raise ValueError(f"BindResp with command_id {pdu.command_id!r}")
    # "The body … is not returned if the command_status field contains a non-zero value."
    if pdu.command_status and not pdu.system_id and not pdu.tlvs:
        return b""
    return _cstr(pdu.system_id, 16, "system_id") + b"\0" + _encode_tlvs(pdu.tlvs)


def _encode_message_id_resp(pdu: SubmitSmResp | DeliverSmResp) -> bytes:
    if pdu.command_status and not pdu.message_id and not pdu.tlvs and type(pdu) is SubmitSmResp:
        return b""  # as the spec has it for an error submit_sm_resp
    return _cstr(pdu.message_id, 65, "message_id") + b"\0" + _encode_tlvs(pdu.tlvs)


def _encode_query_sm(pdu: QuerySm) -> bytes:
    return b"%b\0%c%c%b\0" % (
        _cstr(pdu.message_id, 65, "message_id"),
        pdu.source_addr_ton,
        pdu.source_addr_npi,
        _cstr(pdu.source_addr, 21, "source_addr"),
    )


def _encode_query_sm_resp(pdu: QuerySmResp) -> bytes:
    if pdu.command_status and pdu == QuerySmResp(command_status=pdu.command_status, sequence=pdu.sequence):
        return b""  # an error answer carries nothing; most SMSCs send the header alone
    return b"%b\0%b\0%c%c%b" % (
        _cstr(pdu.message_id, 65, "message_id"),
        _cstr(pdu.final_date, 17, "final_date"),
        pdu.message_state,
        pdu.error_code,
        _encode_tlvs(pdu.tlvs),
    )


# Each encoder takes the PDU type it is keyed by, which a dict's value type cannot say.
_ENCODERS: dict[type, Callable[..., bytes]] = {
    SubmitSm: _encode_sm,
    DeliverSm: _encode_sm,
    SubmitSmResp: _encode_message_id_resp,
    DeliverSmResp: _encode_message_id_resp,
    Bind: _encode_bind,
    BindResp: _encode_bind_resp,
    QuerySm: _encode_query_sm,
    QuerySmResp: _encode_query_sm_resp,
}


def encode(pdu: Pdu) -> bytes:
    """The whole PDU, header included. ValueError for values that do not fit their fields."""
    encoder = _ENCODERS.get(type(pdu))
    try:
        body = encoder(pdu) if encoder is not None else b""
        if encoder is None and type(pdu) not in _HEADER_ONLY.values():
            raise ValueError(f"not a PDU: {pdu!r}")
        length = HEADER_SIZE + len(body)
        if length > MAX_PDU:
            raise ValueError(f"PDU of {length} octets (at most {MAX_PDU})")
        return _HEADER.pack(length, pdu.command_id, pdu.command_status, pdu.sequence) + body
    except (OverflowError, TypeError, struct.error) as error:  # an int out of 0..255 / 32 bits
        raise ValueError(f"cannot encode {type(pdu).__name__}: {error}") from None


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------


def _bad_string(status: int, name: str, size: int, sequence: int) -> ProtocolError:
    return ProtocolError(status, f"{name}: no NUL within {size} octets (or the body ends first)", sequence)


def _decode_tlvs(frame: bytes, pos: int, sequence: int) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    end = len(frame)
    while pos < end:
        if pos + 4 > end:
            raise ProtocolError(st.ESME_RINVOPTPARSTREAM, f"{end - pos} stray octets after the last TLV", sequence)
        tag, length = _TL.unpack_from(frame, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise ProtocolError(
                st.ESME_RINVPARLEN, f"TLV 0x{tag:04X} claims {length} octets, {end - pos} left", sequence
            )
        tlvs[tag] = frame[pos:stop]
        pos = stop
    return tlvs


_Sm = TypeVar("_Sm", SubmitSm, DeliverSm)


def _decode_sm(kind: type[_Sm], frame: bytes, status: int, sequence: int) -> _Sm:
    find = frame.find
    nul = find(b"\0", 16, 22)
    if nul < 0:
        raise _bad_string(st.ESME_RINVSERTYP, "service_type", 6, sequence)
    service_type = frame[16:nul].decode("latin-1") if nul > 16 else ""
    source_ton = frame[nul + 1]
    source_npi = frame[nul + 2]
    pos = nul + 3
    nul = find(b"\0", pos, pos + 21)
    if nul < 0:
        raise _bad_string(st.ESME_RINVSRCADR, "source_addr", 21, sequence)
    source = frame[pos:nul].decode("latin-1")
    dest_ton = frame[nul + 1]
    dest_npi = frame[nul + 2]
    pos = nul + 3
    nul = find(b"\0", pos, pos + 21)
    if nul < 0:
        raise _bad_string(st.ESME_RINVDSTADR, "destination_addr", 21, sequence)
    destination = frame[pos:nul].decode("latin-1")
    esm_class = frame[nul + 1]
    protocol_id = frame[nul + 2]
    priority = frame[nul + 3]
    pos = nul + 4
    nul = find(b"\0", pos, pos + 17)
    if nul < 0:
        raise _bad_string(st.ESME_RINVSCHED, "schedule_delivery_time", 17, sequence)
    schedule = frame[pos:nul].decode("latin-1") if nul > pos else ""
    pos = nul + 1
    nul = find(b"\0", pos, pos + 17)
    if nul < 0:
        raise _bad_string(st.ESME_RINVEXPIRY, "validity_period", 17, sequence)
    validity = frame[pos:nul].decode("latin-1") if nul > pos else ""
    registered, replace, data_coding, default_msg_id, sm_length = _SM_TAIL.unpack_from(frame, nul + 1)
    pos = nul + 6
    stop = pos + sm_length
    if stop > len(frame):
        raise ProtocolError(
            st.ESME_RINVMSGLEN, f"sm_length {sm_length} but {len(frame) - pos} octets left", sequence
        )
    return kind(
        service_type,
        source_ton,
        source_npi,
        source,
        dest_ton,
        dest_npi,
        destination,
        esm_class,
        protocol_id,
        priority,
        schedule,
        validity,
        registered,
        replace,
        data_coding,
        default_msg_id,
        frame[pos:stop],
        _decode_tlvs(frame, stop, sequence) if stop < len(frame) else {},
        status,
        sequence,
    )


def _decode_submit_sm(command_id: int, frame: bytes, status: int, sequence: int) -> SubmitSm:
    return _decode_sm(SubmitSm, frame, status, sequence)


def _decode_deliver_sm(command_id: int, frame: bytes, status: int, sequence: int) -> DeliverSm:
    return _decode_sm(DeliverSm, frame, status, sequence)


def _string_at(frame: bytes, pos: int, size: int, name: str, error: int, sequence: int) -> tuple[str, int]:
    nul = frame.find(b"\0", pos, pos + size)
    if nul < 0:
        raise _bad_string(error, name, size, sequence)
    return frame[pos:nul].decode("latin-1"), nul + 1


def _decode_bind(command_id: int, frame: bytes, status: int, sequence: int) -> Bind:
    system_id, pos = _string_at(frame, 16, 16, "system_id", st.ESME_RINVSYSID, sequence)
    password, pos = _string_at(frame, pos, 9, "password", st.ESME_RINVPASWD, sequence)
    system_type, pos = _string_at(frame, pos, 13, "system_type", st.ESME_RINVSYSTYP, sequence)
    version, ton, npi = frame[pos], frame[pos + 1], frame[pos + 2]
    address_range, pos = _string_at(frame, pos + 3, 41, "address_range", st.ESME_RINVCMDLEN, sequence)
    if pos != len(frame):
        raise ProtocolError(st.ESME_RINVCMDLEN, f"{len(frame) - pos} octets after the bind body", sequence)
    return Bind(
        CommandId(command_id), system_id, password, system_type, version, ton, npi, address_range, status, sequence
    )


def _decode_bind_resp(command_id: int, frame: bytes, status: int, sequence: int) -> BindResp:
    if len(frame) == 16:  # no body: usual when command_status is not 0
        return BindResp(CommandId(command_id), "", {}, status, sequence)
    system_id, pos = _string_at(frame, 16, 16, "system_id", st.ESME_RINVSYSID, sequence)
    tlvs = _decode_tlvs(frame, pos, sequence) if pos < len(frame) else {}
    return BindResp(CommandId(command_id), system_id, tlvs, status, sequence)


def _decode_message_id_resp(command_id: int, frame: bytes, status: int, sequence: int) -> Pdu:
    kind = SubmitSmResp if command_id == CommandId.SUBMIT_SM_RESP else DeliverSmResp
    if len(frame) == 16:  # an error submit_sm_resp has no body; some SMSCs send none at all
        return kind("", status, sequence, {})
    message_id, pos = _string_at(frame, 16, 65, "message_id", st.ESME_RINVMSGID, sequence)
    tlvs = _decode_tlvs(frame, pos, sequence) if pos < len(frame) else {}
    return kind(message_id, status, sequence, tlvs)


def _decode_query_sm(command_id: int, frame: bytes, status: int, sequence: int) -> QuerySm:
    message_id, pos = _string_at(frame, 16, 65, "message_id", st.ESME_RINVMSGID, sequence)
    ton, npi = frame[pos], frame[pos + 1]
    source, pos = _string_at(frame, pos + 2, 21, "source_addr", st.ESME_RINVSRCADR, sequence)
    if pos != len(frame):
        raise ProtocolError(st.ESME_RINVCMDLEN, f"{len(frame) - pos} octets after the query_sm body", sequence)
    return QuerySm(message_id, ton, npi, source, status, sequence)


def _decode_query_sm_resp(command_id: int, frame: bytes, status: int, sequence: int) -> QuerySmResp:
    if len(frame) == 16:  # an error answer without a body
        return QuerySmResp(command_status=status, sequence=sequence)
    message_id, pos = _string_at(frame, 16, 65, "message_id", st.ESME_RINVMSGID, sequence)
    final_date, pos = _string_at(frame, pos, 17, "final_date", st.ESME_RINVCMDLEN, sequence)
    state, error_code = frame[pos], frame[pos + 1]
    pos += 2
    tlvs = _decode_tlvs(frame, pos, sequence) if pos < len(frame) else {}
    return QuerySmResp(message_id, final_date, state, error_code, status, sequence, tlvs)


def _decode_header_only(command_id: int, frame: bytes, status: int, sequence: int) -> Pdu:
    if len(frame) != 16:
        raise ProtocolError(st.ESME_RINVCMDLEN, f"{len(frame) - 16} octets of body where none belong", sequence)
    return _HEADER_ONLY[command_id](status, sequence)


_DECODERS: dict[int, Callable[[int, bytes, int, int], Pdu]] = {
    CommandId.SUBMIT_SM: _decode_submit_sm,
    CommandId.DELIVER_SM: _decode_deliver_sm,
    CommandId.SUBMIT_SM_RESP: _decode_message_id_resp,
    CommandId.DELIVER_SM_RESP: _decode_message_id_resp,
    CommandId.QUERY_SM: _decode_query_sm,
    CommandId.QUERY_SM_RESP: _decode_query_sm_resp,
    CommandId.BIND_RECEIVER: _decode_bind,
    CommandId.BIND_TRANSMITTER: _decode_bind,
    CommandId.BIND_TRANSCEIVER: _decode_bind,
    CommandId.BIND_RECEIVER_RESP: _decode_bind_resp,
    CommandId.BIND_TRANSMITTER_RESP: _decode_bind_resp,
    CommandId.BIND_TRANSCEIVER_RESP: _decode_bind_resp,
    CommandId.ENQUIRE_LINK: _decode_header_only,
    CommandId.ENQUIRE_LINK_RESP: _decode_header_only,
    CommandId.UNBIND: _decode_header_only,
    CommandId.UNBIND_RESP: _decode_header_only,
    CommandId.GENERIC_NACK: _decode_header_only,
}
# Plain ints as keys too, so a lookup with the header's int hits the dict's fast path.
_DECODERS.update({int(key): value for key, value in _DECODERS.items()})


def decode(frame: bytes) -> Pdu:
    """Exactly one PDU from `frame` (command_length must equal len(frame)).

    Raises ProtocolError, and nothing else, for anything that is not a valid PDU.
    """
    if type(frame) is not bytes:
        frame = bytes(frame)
    if len(frame) < HEADER_SIZE:
        raise ProtocolError(st.ESME_RINVCMDLEN, f"{len(frame)} octets: shorter than a PDU header")
    length, command_id, status, sequence = _HEADER.unpack_from(frame)
    if length != len(frame):
        raise ProtocolError(st.ESME_RINVCMDLEN, f"command_length {length} but the frame has {len(frame)}", sequence)
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise ProtocolError(st.ESME_RINVCMDID, f"unsupported command_id 0x{command_id:08X}", sequence)
    try:
        return decoder(command_id, frame, status, sequence)
    except (IndexError, struct.error):  # a fixed-size field past the end of the frame
        raise ProtocolError(st.ESME_RINVCMDLEN, "the body ends inside a field", sequence) from None


class FrameReader:
    """Cuts a TCP byte stream into whole PDU frames, keeping a partial one for next time.

    A command_length under 16 or over MAX_PDU raises ProtocolError: the stream cannot be
    re-synchronised after that, so the connection must be closed (after a generic_nack).
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def __len__(self) -> int:
        """Octets held, waiting for the rest of their frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        if buffer:
            buffer += data
            source: bytes | bytearray = buffer
        else:
            source = data  # nothing pending: cut straight from the incoming bytes
        frames: list[bytes] = []
        pos = 0
        end = len(source)
        unpack = _U32.unpack_from
        while end - pos >= 4:
            (length,) = unpack(source, pos)
            if length < HEADER_SIZE or length > MAX_PDU:
                sequence = _U32.unpack_from(source, pos + 12)[0] if end - pos >= 16 else None
                raise ProtocolError(st.ESME_RINVCMDLEN, f"command_length {length} out of 16..{MAX_PDU}", sequence)
            if end - pos < length:
                break
            frames.append(bytes(source[pos : pos + length]))
            pos += length
        if source is buffer:
            del buffer[:pos]
        elif pos < end:
            buffer += source[pos:]
        return frames
