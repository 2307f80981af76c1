# What the technician's tools call on the board over the raw REPL
# (homeguard/tech): `from hg.app import test_event; print(test_event())`
# sends one on-site test event (kind test, type manual) through the device's
# own runtime and returns its seq once the gateway has stored it (or after
# wait_ms), so `homeguard device test` can follow it to the centre.
import time


def test_event(root="/", wait_ms=20000):
    from hg import board, config
    cfg, _ = config.load(config.join(root, config.FILE))
    if cfg.get("type") == "sensor":
        from apps.sensor.app import SensorApp as App
        default = "sensor-esp32"
    else:
        from apps.button.app import ButtonApp as App  # type: ignore[assignment]
        default = "button-c3"
    # a board that cannot start raises its reason here, for the tool to show
    hal, app, dev = board.setup(App, default, root, fatal=False)
    synced = False
    seq = None
    start = hal.ticks_ms()
    try:
        while hal.ticks_ms() - start < wait_ms:
            now = hal.ticks_ms()
            synced = board.network(hal, dev, synced)
            dev.poll(now)
            if seq is None and dev.link and dev.link.connected:
                seq = dev.send_event("manual", {}, "test")
            elif seq is not None and seq not in dev.obx.pending():
                break  # the gateway stored it
            time.sleep_ms(20)
    finally:
        dev.close()
    return seq
