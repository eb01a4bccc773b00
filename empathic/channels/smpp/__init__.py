"""SMPP 3.4: the protocol carriers' SMSCs speak to us (an ESME) over TCP.

Written here rather than taken from PyPI: aiosmpplib, the most complete asyncio library,
implements only part of an ESME around its own broker and correlator queues and offers no
SMSC side, so window + TPS control, every data coding and SAR/payload long messages would
have been ours to add anyway.

`pdu` (wire format and framing), `coding` (text ⇄ short_message parts), `receipts`
(delivery receipts), `status` (command_status meanings) are pure; the ESME session lives
in `session`, the SMSC simulator in `empathic.smsc`.
"""
