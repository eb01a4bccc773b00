"""Micro-benchmark of the SMPP codec (empathic.channels.smpp.pdu): µs per encode and decode.

Three PDUs an SMPP channel handles for every message: a submit_sm (GSM text, registered
delivery), a deliver_sm delivery receipt (text and TLVs, as real SMSCs send them), and a
submit_sm_resp. Prints one JSON object; each figure is the best of 5 runs of `--number`
calls, in microseconds per call.

    python bench/smpp_codec.py [--number 50000]
"""

from __future__ import annotations

import argparse
import json
import platform
import timeit

from empathic.channels.smpp.pdu import DeliverSm, SubmitSm, SubmitSmResp, Tag, decode, encode

SUBMIT = SubmitSm(
    source_addr_ton=1,
    source_addr_npi=1,
    source_addr="14155550100",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="14155550199",
    registered_delivery=1,
    short_message=b"Your appointment with Acme Dental is tomorrow at 10:30. Reply C to confirm.",
    sequence=123456,
)
RECEIPT = DeliverSm(
    source_addr_ton=1,
    source_addr_npi=1,
    source_addr="14155550199",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="14155550100",
    esm_class=0x04,
    short_message=(
        b"id:1234567890 sub:001 dlvrd:001 submit date:2611231200 done date:2611231201 "
        b"stat:DELIVRD err:000 text:Your appointment w"
    ),
    tlvs={Tag.RECEIPTED_MESSAGE_ID: b"499602d2\0", Tag.MESSAGE_STATE: b"\x02"},
    sequence=99,
)
RESP = SubmitSmResp(message_id="499602d2", sequence=123456)


def per_call_us(statement, number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=50_000)
    number = parser.parse_args().number
    figures = {}
    for name, pdu in (("submit_sm", SUBMIT), ("deliver_sm_receipt", RECEIPT), ("submit_sm_resp", RESP)):
        frame = encode(pdu)
        assert decode(frame) == pdu
        figures[name] = {
            "octets": len(frame),
            "encode_us": round(per_call_us(lambda: encode(pdu), number), 3),
            "decode_us": round(per_call_us(lambda: decode(frame), number), 3),
        }
    figures["python"] = platform.python_version()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
