"""A corrupted gateway store (issue 16): the events in it were acked `stored`
to their devices, which dropped them from flash. The gateway moves the file
aside, salvages every readable row into a fresh store and delivers the
salvaged undelivered events — to a real centre, through the real gateway
process. (Before: "cannot start", and the events were gone with the file.)"""

from __future__ import annotations

from pathlib import Path

from gateway.store import Event, Store
from tests.harness.proc import wait_until
from tests.harness.stack import BUTTON, Stack

N = 300
PAGE = 4096


def fill(path: Path, n: int = N) -> None:
    """A store whose n alarms were acked `stored` but never reached the centre."""
    store = Store(path, sinks=("centre",))
    now = 1_795_000_000_000
    for seq in range(1, n + 1):
        store.insert(Event(device=BUTTON, seq=seq, kind="alarm", type="fire",
                           event_time_ms=now + seq, device_time_ms=now + seq,
                           gateway_time_ms=now + seq, age_ms=0, skew_ms=0,
                           data={"note": f"row-{seq:04d}"}))
    store.close()  # the last connection checkpoints the WAL into the file


def corrupt_page_of(path: Path, marker: str) -> None:
    """Overwrite the header of the page holding `marker` with garbage."""
    raw = bytearray(path.read_bytes())
    at = raw.index(marker.encode())
    start = at // PAGE * PAGE
    raw[start:start + 16] = b"\xff" * 16
    path.write_bytes(bytes(raw))


def test_corrupt_store_is_set_aside_and_what_is_readable_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    fill(db)
    corrupt_page_of(db, "row-0150")
    store = Store(db, sinks=("centre",))
    report = store.salvaged
    assert report is not None and report.moved_to.exists()
    pending = [e.seq for e in store.pending("centre", 1000)]
    assert 150 not in pending  # its page is gone
    assert 1 in pending and N in pending and len(pending) >= N - 60
    assert report.rows["events"] == len(pending)
    assert report.unreadable["events"] >= 1
    assert all(e.data == {"note": f"row-{e.seq:04d}"} for e in store.pending("centre", 1000))
    store.close()
    # the fresh store opens cleanly next time: nothing more to salvage
    again = Store(db, sinks=("centre",))
    assert again.salvaged is None and len(again.pending("centre", 1000)) == len(pending)
    again.close()


def test_the_gateway_delivers_what_it_salvaged_from_a_corrupt_store(
        mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    (tmp_path / "gw").mkdir()
    db = tmp_path / "gw" / "gateway.db"
    fill(db)
    corrupt_page_of(db, "row-0150")
    stack.start()
    try:
        wait_until(lambda: "replaced: salvaged" in stack.gateway.logs(100_000), 60,
                   "the gateway's salvage report")
        line = next(x for x in stack.gateway.logs(100_000).splitlines() if "replaced:" in x)
        salvaged = int(line.split("salvaged events ")[1].split(",")[0])
        assert N - 60 <= salvaged < N, line

        def mine() -> list[dict]:
            return [a for a in stack.alarms(1000) if a["device"] == BUTTON]

        wait_until(lambda: len(mine()) >= salvaged, 60, "the salvaged alarms at the centre")
        seqs = [a["seq"] for a in mine()]
        assert len(seqs) == len(set(seqs)) == salvaged  # each once
        assert 150 not in seqs and {1, N} <= set(seqs)
        assert list((tmp_path / "gw").glob("gateway.db.corrupt-*"))
    finally:
        stack.stop()
