"""Coverage-guided fuzzing of the SMPP codec with atheris (libFuzzer for Python).

Seeds are the real PDUs of tests/channels/smpp/data/pdus.toml; libFuzzer mutates them for
`--seconds`. Each input goes through `pdu.decode` and `FrameReader.feed`, and every PDU
that decodes through `receipts.report_from` and `coding.decode_text` too. Anything but
`ProtocolError` out of decode/FrameReader (or anything but `Undecodable` out of the other
two) is a crash: it is counted, its input saved to `--crash-dir`, and fuzzing goes on. Prints one JSON
object: {"runs", "crashes", "seconds", "seeds", "first_crashes"}.

atheris is not a project dependency:

    pip install atheris          # into .venv, or a venv of its own with PYTHONPATH=.
    python bench/fuzz_smpp.py [--seconds 60] [--crash-dir /tmp/smpp-crashes]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tomllib
import traceback
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from empathic.channels.smpp import coding, receipts
    from empathic.channels.smpp.pdu import DeliverSm, FrameReader, ProtocolError, SubmitSm, decode

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "tests" / "channels" / "smpp" / "data" / "pdus.toml"

_state = {"runs": 0, "crashes": 0, "first": [], "deadline": 0.0, "started": 0.0, "seeds": 0, "crash_dir": ""}


def _report_and_exit() -> None:
    print(
        json.dumps(
            {
                "runs": _state["runs"],
                "crashes": _state["crashes"],
                "seconds": round(time.monotonic() - _state["started"], 1),
                "seeds": _state["seeds"],
                "first_crashes": _state["first"],
            }
        ),
        flush=True,
    )
    os._exit(0)  # libFuzzer owns the loop; leave without unwinding through it


def _crash(data: bytes, error: BaseException) -> None:
    _state["crashes"] += 1
    if len(_state["first"]) < 5:
        _state["first"].append({"input": data.hex(), "error": "".join(traceback.format_exception_only(error)).strip()})
    if _state["crash_dir"]:
        Path(_state["crash_dir"], f"crash-{_state['crashes']}.bin").write_bytes(data)


def one_input(data: bytes) -> None:
    _state["runs"] += 1
    if time.monotonic() >= _state["deadline"]:
        _report_and_exit()
    try:
        pdu = decode(data)
    except ProtocolError:
        pdu = None
    except Exception as error:  # noqa: BLE001 - that is the finding
        _crash(data, error)
        return
    try:
        FrameReader().feed(data)
    except ProtocolError:
        pass
    except Exception as error:  # noqa: BLE001
        _crash(data, error)
        return
    if isinstance(pdu, (SubmitSm, DeliverSm)):
        try:
            if isinstance(pdu, DeliverSm):
                receipts.report_from(pdu)
            for packed in (False, True):
                udhi = bool(pdu.esm_class & 0x40)
                try:
                    coding.decode_text(pdu.data_coding, pdu.short_message, udhi=udhi, gsm_packed=packed, tlvs=pdu.tlvs)
                except coding.Undecodable:  # a refusal, as it should be
                    pass
        except Exception as error:  # noqa: BLE001
            _crash(data, error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--crash-dir", default="")
    args, libfuzzer_args = parser.parse_known_args()
    vectors = tomllib.loads(SEEDS.read_text())
    corpus = tempfile.mkdtemp(prefix="smpp-corpus-")
    seeds = [v["hex"] for section in ("valid", "invalid") for v in vectors[section]]
    for index, seed in enumerate(seeds):
        Path(corpus, f"seed-{index}").write_bytes(bytes.fromhex(seed))
    if args.crash_dir:
        os.makedirs(args.crash_dir, exist_ok=True)
    _state.update(
        seeds=len(seeds),
        crash_dir=args.crash_dir,
        started=time.monotonic(),
        deadline=time.monotonic() + args.seconds,
    )
    argv = [sys.argv[0], *libfuzzer_args, "-max_len=4096", "-print_final_stats=0", corpus]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
