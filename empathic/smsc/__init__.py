"""`empathic smsc-sim`: an SMSC simulator speaking SMPP 3.4, for tests and benchmarks of
SMPP channels (ours or anyone's). See `empathic.smsc.server` for what it does."""

from empathic.smsc.server import Smsc, SmscSettings, serve

__all__ = ["Smsc", "SmscSettings", "serve"]
