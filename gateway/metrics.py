"""Prometheus metrics of the gateway (served on [metrics] port when set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("hg_gateway_received_total", "Messages received from the broker", ["leaf"])
REJECTED = Counter("hg_gateway_rejected_total", "Messages rejected, by reason", ["reason"])
HELD = Counter("hg_gateway_held_total",
               "Messages left unacknowledged (redelivered on reconnect) after a gateway error")
LATE = Counter("hg_gateway_late_total", "Messages past the clock window accepted because "
               "they were sent while the gateway was away (queued by the broker)", ["leaf"])
DUPLICATES = Counter("hg_gateway_duplicates_total", "Already-stored messages acked again")
PERSISTED = Counter("hg_gateway_persisted_total", "Messages committed to the store", ["kind"])
TELEMETRY = Counter("hg_gateway_telemetry_received_total", "Telemetry messages verified")
DELIVERED = Counter("hg_gateway_delivered_total", "Events delivered, by sink", ["sink"])
FAILED = Counter("hg_gateway_sink_failures_total", "Failed delivery attempts", ["sink"])
DEAD = Counter("hg_gateway_dead_letters_total", "Events a sink refused for good", ["sink"])
BACKLOG = Gauge("hg_gateway_outbox_depth", "Events not yet delivered", ["sink"])
OLDEST = Gauge("hg_gateway_outbox_oldest_age_seconds", "Age of the oldest undelivered", ["sink"])
LATENCY = Histogram(
    "hg_gateway_end_to_end_seconds", "Gateway receive to sink acceptance", ["sink"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SHED = Counter("hg_gateway_shed_total", "Messages dropped on purpose, by lane and reason",
               ["lane", "reason"])
DISK_FREE = Gauge("hg_gateway_disk_free_bytes", "Free space on the store's file system")
LANE_DEPTH = Gauge("hg_gateway_lane_depth", "Telemetry messages waiting to be committed")
SEQ_MISSING = Counter("hg_gateway_seq_missing_total", "Device seqs never received within the "
                      "grace: messages lost on the way (broker drops, device shedding, "
                      "links); gateway/gaps.py")
SEQ_PENDING = Gauge("hg_gateway_seq_pending", "Device seqs not received yet, within the grace")
SUPERVISION = Counter("hg_gateway_supervision_total", "Supervision events raised", ["type"])

# label children the per-message path uses, looked up once (labels() costs
# about as much as verifying a signature)
RECEIVED_BY_LEAF = {leaf: RECEIVED.labels(leaf)
                    for leaf in ("event", "telemetry", "heartbeat", "status", "other")}
PERSISTED_TELEMETRY = PERSISTED.labels("telemetry")
SHED_TELEMETRY = SHED.labels("telemetry", "queue_full")
