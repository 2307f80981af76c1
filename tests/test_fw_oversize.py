"""A device never sends a message it could not send again (issue 15, spec
gaps): an event that fits the 1024-byte limit now but could outgrow it on a
resend (its age grows; a NAK gives it a larger seq) is refused at once, with
`oversized`, before it takes a seq or flash; before, it was stored and then
failed on every resend. The real hg.device on SimHAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from hg import protocol
from tests.test_firmware_store import boot, write_config


def test_an_event_that_could_outgrow_the_limit_is_refused_before_it_is_stored(
        tmp_path: Path, mosquitto) -> None:  # noqa: ANN001
    write_config(tmp_path, mosquitto)
    dev, hal, _ = boot(tmp_path)
    try:
        def size(seq: int, age: int) -> int:  # wire bytes: the body, then the signature
            body = protocol.body(dev.dev, seq, "alarm", "fire", age, data, hal.time_ms())
            return len(body) + len(',"sig":""') + protocol.SIG_LEN

        data = {f"k{i:02d}": "x" * 30 for i in range(23)}
        while size(dev.seqs.last + 1, 0) > protocol.MAX_PAYLOAD:  # fits now, at age 0
            longest = max(data, key=lambda k: len(data[k]))
            data[longest] = data[longest][:-1]
        assert size(protocol.MAX_SEQ, protocol.MAX_AGE) > protocol.MAX_PAYLOAD
        before = dev.seqs.last
        with pytest.raises(protocol.Reject, match="oversized"):
            dev.send_event("fire", data)
        assert dev.seqs.last == before and not dev.obx.pending()  # no seq, no flash
        seq = dev.send_event("fire", {"btn": "f"})  # a normal alarm goes on as ever
        assert dev.obx.pending() == [seq]
    finally:
        dev.close()
