"""What became of one received message: the pipeline's one vocabulary.

Every stage ends a message with one Outcome: it was taken (`stored`,
`telemetry`), recognised as a resend (`duplicate`), held without a verdict
(`hold`: not acknowledged, the broker hands it over again), or refused with
a reason. Refusals are counted in hg_gateway_rejected_total{reason} and
logged; the reasons are hg.protocol's stateless checks (docs/protocol.md,
checks 1-11) and the gateway's own: `replay`, `seq_conflict` (the de-dup
stage) and `retained` (a broker's stale copy).

Outcomes are strings (StrEnum), so they print, log and compare as the
reason names the protocol documents.
"""

from __future__ import annotations

from enum import StrEnum

from hg import protocol


class Outcome(StrEnum):
    # taken
    STORED = "stored"  # an event committed (acked `stored` when the device waits for it)
    TELEMETRY = "telemetry"  # a point committed (or shed, counted) by the telemetry lane
    QUEUED = "queued"  # waiting in a lane for its commit (a Deferred's outcome until then)
    DUPLICATE = "duplicate"  # a resend of what is stored: acked again, forwarded nowhere
    HELD = "hold"  # no verdict (an unexpected error): not acknowledged, redelivered
    # refused by hg.protocol's stateless checks, in their documented order
    OVERSIZED = protocol.R_OVERSIZED
    MALFORMED = protocol.R_MALFORMED
    BAD_VERSION = protocol.R_VERSION
    BAD_FIELD = protocol.R_FIELD
    UNKNOWN_KIND = protocol.R_KIND
    UNKNOWN_TYPE = protocol.R_TYPE
    NOT_CANONICAL = protocol.R_CANONICAL
    TOPIC_MISMATCH = protocol.R_TOPIC
    UNKNOWN_DEVICE = protocol.R_DEVICE
    BAD_SIGNATURE = protocol.R_SIGNATURE
    CLOCK_SKEW = protocol.R_SKEW
    # refused by the gateway's own state
    REPLAY = protocol.R_REPLAY
    SEQ_CONFLICT = protocol.R_CONFLICT
    RETAINED = "retained"

    @property
    def refused(self) -> bool:
        return self not in _TAKEN

    @property
    def naked(self) -> bool:
        """Refusals the device is told about (a signed `nak`)."""
        return self in (Outcome.CLOCK_SKEW, Outcome.REPLAY, Outcome.SEQ_CONFLICT)


_TAKEN = frozenset({Outcome.STORED, Outcome.TELEMETRY, Outcome.QUEUED, Outcome.DUPLICATE,
                    Outcome.HELD})
assert {o.value for o in Outcome if o.refused} >= set(protocol.REASONS), \
    "every hg.protocol reason is an Outcome"
