"""The gateway service: wires source -> pipeline -> store -> sinks and runs
until SIGTERM/SIGINT, then shuts down gracefully (stop taking messages,
one last delivery round, close the store)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from prometheus_client import start_http_server

from gateway.ack import Acker
from gateway.config import Config
from gateway.pipeline import Pipeline
from gateway.registry import Registry
from gateway.sinks.centre import SINK as CENTRE
from gateway.sinks.centre import CentreSink
from gateway.source import MQTTSource
from gateway.store import Store

log = logging.getLogger("homeguard.gateway")


class Gateway:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.registry = Registry(cfg.registry.path)
        self.store = Store(Path(cfg.gateway.data_dir) / "gateway.db", sinks=(CENTRE,))
        self.source = MQTTSource(cfg.mqtt, self._handle)
        self.acker = Acker(self.store, self.registry.key_of, self.source.publish)
        self.sink = CentreSink(cfg.centre, cfg.gateway.id, self.store, self.acker.send)
        self.pipeline = Pipeline(cfg, self.store, self.registry, self.acker,
                                 on_stored=self.sink.wakeup.set, sinks=(CENTRE,))

    def _handle(self, topic: str, payload: bytes, received_ms: int) -> str:
        return self.pipeline.handle(topic, payload, received_ms)

    def start(self) -> None:
        if self.cfg.metrics.port:
            start_http_server(self.cfg.metrics.port, self.cfg.metrics.host)
        self.sink.start()
        self.source.start()
        log.info("gateway started id=%s broker=%s:%d centre=%s", self.cfg.gateway.id,
                 self.cfg.mqtt.host, self.cfg.mqtt.port, self.cfg.centre.url)

    def stop(self) -> None:
        log.info("gateway stopping")
        self.source.stop()
        self.sink.stop()
        self.store.close()
        log.info("gateway stopped")


def run(cfg: Config) -> None:
    gw = Gateway(cfg)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    gw.start()
    done.wait()
    gw.stop()
