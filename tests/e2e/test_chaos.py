"""Kill -9 under load, the short version of bench/chaos.py (which these tests run).

Real processes over SMPP to `empathic smsc-sim` (receipts on): (1) an API process and 3
workers on PostgreSQL, the worker holding the channel killed 3 times; (2) one embedded
`empathic serve` on SQLite, killed twice, its failed batches sent again with the same
idempotency keys. After the load every accepted message is final and reached the SMSC once,
or is `unknown` (handed over when its worker died: at the SMSC once or not at all), and
there are at most 2 windows of those per kill (engine/dispatcher.py, doubt_limit).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench import chaos
from tests.conftest import postgres_schema


def verdict(result: dict[str, Any], window_bound: int) -> None:
    check, kills = result["check"], result["kills"]
    figures = (f"{result['summary']}; statuses {check['statuses']}; missing {check['missing_detail']}; "
               f"duplicates {check['duplicate_detail']}; kills {kills['each']}; e.g. {check['examples']}; "
               f"errors {result['stderr_errors']}")
    print(figures)
    assert kills["survived"] == result["config"]["kills"], figures
    assert check["accepted"] == result["config"]["messages"], figures
    assert check["terminal"] == check["accepted"], figures
    assert check["missing"] == 0, figures
    assert check["duplicates"] == 0 and check["at_smsc_not_accepted"] == 0, figures
    assert check["unknown"] <= kills["survived"] * window_bound, figures
    assert check["delivered"] + check["unknown"] == check["accepted"], figures


async def test_kill_9_workers_on_postgresql(tmp_path: Path) -> None:
    config = chaos.Config(messages=1000, workers=3, kills=3, every=(0.8, 1.5), pause=0.5, target="holder",
                          rate=300, window=50, drain_timeout=40)
    async with postgres_schema() as schema:
        result = await chaos.run(config, tmp_path, schema)
    verdict(result, 2 * config.window)
    assert result["kills"]["of_channel_holder"] == config.kills, result["kills"]


async def test_kill_9_embedded_on_sqlite(tmp_path: Path) -> None:
    config = chaos.Config(messages=1500, workers=0, kills=2, every=(1.0, 2.0), pause=0.5, rate=300, window=50,
                          drain_timeout=40)
    result = await chaos.run(config, tmp_path)
    verdict(result, 2 * config.window)
    assert result["load"]["batch_retries"] > 0, result["load"]  # the kills did interrupt the API


def test_chaos_check_counts_doubles_losses_and_unknowns() -> None:
    """The check itself: a text at the SMSC twice, one delivered that never got there, one
    left `sent`, an `unknown` at the SMSC and one not, one idempotency key answered twice."""
    config = chaos.Config(messages=6)
    load = chaos.Load({chaos.key(i): f"m{i}" for i in range(6)}, doubled_keys=1, rejected=0, retries=0,
                      errors=Counter(), seconds=1.0)
    rows = [(f"m{i}", chaos.key(i), status, chaos.body(i))
            for i, status in enumerate(["delivered", "delivered", "sent", "unknown", "unknown", "delivered"])]
    texts = [chaos.body(0), chaos.body(0), chaos.body(2), chaos.body(3), chaos.body(5)]
    got = chaos.check(config, load, rows, texts, {"duplicates": 1})
    assert (got["accepted"], got["terminal"], got["delivered"], got["unknown"]) == (6, 5, 3, 2)
    assert (got["unknown_at_smsc"], got["unknown_not_at_smsc"]) == (1, 1)
    assert got["missing_detail"] == {"accepted_not_in_db": 0, "not_final": 1, "sent_or_delivered_not_at_smsc": 1}
    assert got["missing"] == 2 and got["duplicates"] == 2  # once at the SMSC, once by the API
