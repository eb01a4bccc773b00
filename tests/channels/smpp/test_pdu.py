"""SMPP PDUs: real SMSCs' frames (data/pdus.toml) decode to what their sources say, encode
back to the same octets, and nothing but ProtocolError ever comes out of decode."""

from __future__ import annotations

import dataclasses
import random
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empathic.channels.smpp import pdu as smpp
from empathic.channels.smpp.pdu import (
    MAX_PDU,
    Bind,
    BindResp,
    CommandId,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    FrameReader,
    GenericNack,
    ProtocolError,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Unbind,
    UnbindResp,
    decode,
    encode,
    response_to,
)

DATA = tomllib.loads((Path(__file__).parent / "data" / "pdus.toml").read_text())
VALID = DATA["valid"]
FRAMES = [bytes.fromhex(vector["hex"]) for vector in VALID]


def _check(pdu: object, expect: dict) -> None:
    for key, value in expect.items():
        if key == "short_message_hex":
            assert pdu.short_message == bytes.fromhex(value)
        elif key == "tlvs_hex":
            assert pdu.tlvs == {int(tag, 16): bytes.fromhex(octets) for tag, octets in value.items()}
        else:
            assert getattr(pdu, key) == value, key


@pytest.mark.parametrize("vector", VALID, ids=[vector["name"] for vector in VALID])
def test_real_pdus_decode(vector: dict) -> None:
    frame = bytes.fromhex(vector["hex"])
    pdu = decode(frame)
    assert type(pdu).__name__ == vector["type"]
    _check(pdu, vector["expect"])
    if vector["roundtrip"]:
        assert encode(pdu) == frame
    assert decode(encode(pdu)) == pdu  # whatever the form, our encoding means the same


@pytest.mark.parametrize("vector", DATA["invalid"], ids=[vector["name"] for vector in DATA["invalid"]])
def test_bad_pdus_raise_protocol_error_with_status_and_sequence(vector: dict) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(bytes.fromhex(vector["hex"]))
    assert caught.value.status == vector["status"]
    assert caught.value.sequence == vector["sequence"]
    assert str(caught.value)


@pytest.mark.parametrize("vector", DATA["frame_errors"], ids=[vector["name"] for vector in DATA["frame_errors"]])
def test_frame_reader_refuses_impossible_lengths(vector: dict) -> None:
    with pytest.raises(ProtocolError) as caught:
        FrameReader().feed(bytes.fromhex(vector["hex"]))
    assert caught.value.status == 0x02


def test_short_frames_raise_without_a_sequence() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(bytes.fromhex("0000001000000015000000"))
    assert caught.value.sequence is None and caught.value.status == 0x02


def test_frame_reader_over_max_pdu() -> None:
    header = (MAX_PDU + 1).to_bytes(4, "big") + bytes.fromhex("000000040000000000000009")
    with pytest.raises(ProtocolError) as caught:
        FrameReader().feed(header)
    assert caught.value.sequence == 9
    assert FrameReader().feed(MAX_PDU.to_bytes(4, "big") + bytes(8)) == []  # the limit itself is fine


def test_frame_reader_cuts_a_stream_however_it_arrives() -> None:
    stream = b"".join(FRAMES)
    for step in (1, 3, 16, 17, 100, len(stream)):
        reader = FrameReader()
        frames = []
        for start in range(0, len(stream), step):
            frames.extend(reader.feed(stream[start : start + step]))
        assert frames == FRAMES
        assert len(reader) == 0


def test_frame_reader_keeps_a_partial_frame() -> None:
    reader = FrameReader()
    assert reader.feed(FRAMES[0] + FRAMES[1][:5]) == [FRAMES[0]]
    assert len(reader) == 5
    assert reader.feed(FRAMES[1][5:]) == [FRAMES[1]]


def test_submit_sm_layout_matches_the_spec_by_hand() -> None:
    """SMPP 3.4 §4.4.1, field by field."""
    pdu = SubmitSm(
        service_type="CMT",
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Acme",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="14155550100",
        esm_class=0x40,
        protocol_id=0,
        priority_flag=1,
        schedule_delivery_time="",
        validity_period="000001000000000R",
        registered_delivery=1,
        replace_if_present_flag=0,
        data_coding=8,
        sm_default_msg_id=0,
        short_message=b"\x00H\x00i",
        tlvs={Tag.USER_MESSAGE_REFERENCE: b"\x00\x2a"},
        sequence=0x01020304,
    )
    body = (
        b"CMT\0" + b"\x05\x00" + b"Acme\0" + b"\x01\x01" + b"14155550100\0"
        + b"\x40\x00\x01" + b"\0" + b"000001000000000R\0" + b"\x01\x00\x08\x00" + b"\x04"
        + b"\x00H\x00i" + b"\x02\x04\x00\x02\x00\x2a"
    )  # fmt: skip
    header = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000004" "00000000" "01020304")
    assert encode(pdu) == header + body
    assert decode(header + body) == pdu


def test_query_sm_and_its_response_match_the_spec_by_hand() -> None:
    """SMPP 3.4 §4.8.1 and §4.8.2, field by field."""
    query = QuerySm("1a2b3c", 1, 1, "18005550100", sequence=9)
    body = b"1a2b3c\0" + b"\x01\x01" + b"18005550100\0"
    header = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000003" "00000000" "00000009")
    assert encode(query) == header + body and decode(header + body) == query
    resp = QuerySmResp("1a2b3c", "260101120000004+", 2, 0, sequence=9)
    body = b"1a2b3c\0" + b"260101120000004+\0" + b"\x02\x00"
    header = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("80000003" "00000000" "00000009")
    assert encode(resp) == header + body and decode(header + body) == resp
    # Still en route: no final date (a lone NUL).
    assert decode(encode(QuerySmResp("7", "", 1, 0, sequence=2))).final_date == ""
    assert response_to(query, 0x67) == QuerySmResp(command_status=0x67, sequence=9)
    # An error answer is the header alone, and a header alone reads as one.
    assert encode(QuerySmResp(command_status=0x67, sequence=4)) == bytes.fromhex("00000010800000030000006700000004")
    # A query_sm whose source_addr has no NUL, or with octets after its body, is refused.
    for body, status in ((b"7\0\x01\x01" + b"1" * 30, 0x0A), (encode(query)[16:] + b"x", 0x02)):
        frame = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000003" "00000000" "00000009") + body
        with pytest.raises(ProtocolError) as caught:
            decode(frame)
        assert (caught.value.status, caught.value.sequence) == (status, 9)


def test_error_responses_have_no_body() -> None:
    assert encode(SubmitSmResp(command_status=0x58, sequence=3)) == bytes.fromhex("00000010800000040000005800000003")
    resp = BindResp(CommandId.BIND_TRANSCEIVER_RESP, command_status=0x0E, sequence=1)
    assert len(encode(resp)) == 16
    assert len(encode(SubmitSmResp(message_id="abc", sequence=3))) == 20
    assert len(encode(DeliverSmResp(sequence=3))) == 17  # message_id NUL, always


@pytest.mark.parametrize(
    "pdu",
    [
        SubmitSm(source_addr="1" * 21),
        SubmitSm(destination_addr="1" * 21),
        SubmitSm(service_type="ABCDEF"),
        SubmitSm(validity_period="1" * 17),
        SubmitSm(short_message=b"x" * 255),
        SubmitSm(source_addr="Ω"),
        SubmitSm(source_addr="a\0b"),
        SubmitSm(esm_class=256),
        SubmitSm(sequence=-1),
        SubmitSm(sequence=2**32),
        SubmitSm(tlvs={Tag.MESSAGE_PAYLOAD: b"x" * 70_000}),
        Bind(CommandId.BIND_TRANSMITTER, "system_id_too_long", "pw"),
        Bind(CommandId.BIND_TRANSMITTER, "sys", "password10"),
        Bind(CommandId.SUBMIT_SM, "sys", "pw"),
        BindResp(CommandId.BIND_TRANSMITTER),
        SubmitSmResp(message_id="x" * 65),
        QuerySm(message_id="x" * 65),
        QuerySm(source_addr="1" * 21),
        QuerySmResp(final_date="1" * 17),
        QuerySmResp(message_state=256),
        "not a pdu",
    ],
    ids=repr,
)
def test_encode_refuses_what_does_not_fit(pdu: object) -> None:
    with pytest.raises(ValueError):
        encode(pdu)


def test_field_maxima_fit() -> None:
    pdu = SubmitSm(
        service_type="A" * 5,
        source_addr="1" * 20,
        destination_addr="2" * 20,
        schedule_delivery_time="3" * 16,
        validity_period="4" * 16,
        short_message=b"x" * 254,
    )
    assert decode(encode(pdu)) == pdu
    bind = Bind(CommandId.BIND_RECEIVER, "s" * 15, "p" * 8, "t" * 12, address_range="r" * 40)
    assert decode(encode(bind)) == bind


def test_responses_match_their_requests() -> None:
    for request in (SubmitSm(sequence=5), DeliverSm(sequence=5), QuerySm(sequence=5), EnquireLink(sequence=5),
                    Unbind(sequence=5)):
        response = response_to(request, 0x58)
        assert type(response) is request.response_type
        assert response.request_type is type(request)
        assert response.command_id == request.command_id | 0x80000000
        assert (response.sequence, response.command_status) == (5, 0x58)
    for command_id in (CommandId.BIND_RECEIVER, CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER):
        response = response_to(Bind(command_id, "sys", "pw", sequence=9), 0x0E)
        assert isinstance(response, BindResp) and response.request_type is Bind
        assert response.command_id == command_id | 0x80000000
        assert (response.sequence, response.command_status) == (9, 0x0E)
    nack = response_to(SubmitSmResp(sequence=4))
    assert nack == GenericNack(command_status=0x03, sequence=4)


def test_each_pdu_has_its_command_id() -> None:
    expected = {
        SubmitSm: 0x04, SubmitSmResp: 0x80000004, DeliverSm: 0x05, DeliverSmResp: 0x80000005,
        EnquireLink: 0x15, EnquireLinkResp: 0x80000015, Unbind: 0x06, UnbindResp: 0x80000006,
        GenericNack: 0x80000000, QuerySm: 0x03, QuerySmResp: 0x80000003,
    }  # fmt: skip
    for kind, command_id in expected.items():
        assert kind().command_id == command_id
        assert decode(encode(kind(sequence=1))) == kind(sequence=1)
    assert not isinstance(DeliverSm(), SubmitSm)


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------


def _cstring(size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=size - 1)


_octet = st.integers(0, 255)
_tlvs = st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=4)


@st.composite
def short_messages(draw: st.DrawFn) -> SubmitSm | DeliverSm:
    kind = draw(st.sampled_from([SubmitSm, DeliverSm]))
    return kind(
        service_type=draw(_cstring(6)),
        source_addr_ton=draw(_octet),
        source_addr_npi=draw(_octet),
        source_addr=draw(_cstring(21)),
        dest_addr_ton=draw(_octet),
        dest_addr_npi=draw(_octet),
        destination_addr=draw(_cstring(21)),
        esm_class=draw(_octet),
        protocol_id=draw(_octet),
        priority_flag=draw(_octet),
        schedule_delivery_time=draw(_cstring(17)),
        validity_period=draw(_cstring(17)),
        registered_delivery=draw(_octet),
        replace_if_present_flag=draw(_octet),
        data_coding=draw(_octet),
        sm_default_msg_id=draw(_octet),
        short_message=draw(st.binary(max_size=254)),
        tlvs=draw(_tlvs),
        command_status=draw(st.integers(0, 2**32 - 1)),
        sequence=draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=300, deadline=None)
@given(short_messages())
def test_any_short_message_round_trips(pdu: SubmitSm | DeliverSm) -> None:
    assert decode(encode(pdu)) == pdu


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([CommandId.BIND_RECEIVER, CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER]),
    _cstring(16),
    _cstring(9),
    _cstring(13),
    _octet,
    _cstring(41),
    _cstring(65),
    _tlvs,
)
def test_binds_and_responses_round_trip(
    command_id, system_id, password, system_type, octet, address_range, message_id, tlvs
) -> None:
    bind = Bind(command_id, system_id, password, system_type, octet, octet, octet, address_range, sequence=1)
    assert decode(encode(bind)) == bind
    bind_resp = BindResp(CommandId(command_id | 0x80000000), system_id, tlvs, sequence=2)
    assert decode(encode(bind_resp)) == bind_resp
    for kind in (SubmitSmResp, DeliverSmResp):
        resp = kind(message_id, sequence=3, tlvs=tlvs)
        assert decode(encode(resp)) == resp


@settings(max_examples=200, deadline=None)
@given(
    _cstring(65), _octet, _octet, _cstring(21), st.sampled_from(["", "260101120000004+", "000000010000000R"]),
    _octet, _octet, _tlvs, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
)
def test_queries_and_their_answers_round_trip(
    message_id, ton, npi, source, final_date, state, error_code, tlvs, status, sequence
) -> None:
    query = QuerySm(message_id, ton, npi, source, status, sequence)
    assert decode(encode(query)) == query
    resp = QuerySmResp(message_id, final_date, state, error_code, status, sequence, tlvs)
    assert decode(encode(resp)) == resp


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120), st.sampled_from([0x00000003, 0x80000003]))
def test_fuzz_query_bodies(body: bytes, command_id: int) -> None:
    _decode_or_protocol_error((16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big") + bytes(8) + body)


# --------------------------------------------------------------------------------------
# Fuzz: whatever arrives, only ProtocolError comes out
# --------------------------------------------------------------------------------------


def _decode_or_protocol_error(data: bytes) -> None:
    try:
        decode(data)
    except ProtocolError as error:
        assert isinstance(error.status, int) and error.status > 0
        assert error.sequence is None or 0 <= error.sequence < 2**32


def _read_or_protocol_error(data: bytes) -> None:
    reader = FrameReader()
    try:
        for frame in reader.feed(data):
            _decode_or_protocol_error(frame)
    except ProtocolError:
        pass


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_or_protocol_error(data)
    _read_or_protocol_error(data)
    # With a header that tells the truth about the length, decoding goes past the header.
    framed = (len(data) + 16).to_bytes(4, "big") + data[:4].ljust(4, b"\0") + bytes(8) + data[4:]
    _decode_or_protocol_error(framed)


def mutate(frame: bytes, rng: random.Random) -> bytes:
    """Flip bits, overwrite, insert or delete a few octets of a real frame."""
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(data) + 1)
        operation = rng.choice("fibd")
        if operation == "i":
            data[position:position] = rng.randbytes(rng.randint(1, 4))
        elif position < len(data):
            if operation == "f":
                data[position] ^= 1 << rng.randrange(8)
            elif operation == "b":
                data[position] = rng.randrange(256)
            else:
                del data[position : position + rng.randint(1, 4)]
    if rng.random() < 0.5:  # keep command_length truthful so the body parsers get the octets
        data[0:4] = len(data).to_bytes(4, "big")
    return bytes(data)


# One integer per example (a seed) keeps hypothesis' own cost per example small.
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FRAMES), st.integers(0, 2**64))
def test_fuzz_mutated_real_frames(frame: bytes, seed: int) -> None:
    data = mutate(frame, random.Random(seed))
    _decode_or_protocol_error(data)
    _read_or_protocol_error(data)


def test_fuzz_many_more_mutations_without_hypothesis() -> None:
    """20,000 more mutations at plain-loop speed (hypothesis costs ~1 ms per example)."""
    rng = random.Random(20261123)
    for _ in range(20_000):
        data = mutate(rng.choice(FRAMES), rng)
        _decode_or_protocol_error(data)
        _read_or_protocol_error(data)


def test_dataclasses_are_slotted() -> None:
    for kind in (Bind, BindResp, SubmitSm, DeliverSm, SubmitSmResp, DeliverSmResp, QuerySm, QuerySmResp, GenericNack):
        assert dataclasses.is_dataclass(kind)
        assert not hasattr(kind(*(() if kind not in (Bind, BindResp) else _required(kind))), "__dict__")
    assert smpp.Pdu is not None


def _required(kind: type) -> tuple:
    return (CommandId.BIND_TRANSMITTER, "s", "p") if kind is Bind else (CommandId.BIND_TRANSMITTER_RESP,)
