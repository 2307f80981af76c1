# Board entry point of the electrical-safety sensor: wiring only.
import time

from apps.sensor.app import SensorApp
from hg import esp32hal
from hg.device import Device


def main(root="/"):
    dev = None
    hal = None
    try:
        from hg import config
        cfg, _ = config.load(config.join(root, config.FILE))
        hal = esp32hal.ESP32HAL(esp32hal.load_profile(cfg.get("board") or "sensor-esp32"))
        app = SensorApp(cfg, hal, hal.profile)
        dev = Device.boot(hal, app, root)
        app.attach(dev)
    except Exception as e:  # noqa: BLE001 - no config/profile: show the fault, keep trying
        print("sensor: cannot start:", e)
        time.sleep(30)
        import machine
        machine.reset()
    synced = False
    while True:
        now = hal.ticks_ms()
        wifi = dev.cfg.get("wifi", {})
        if hal.wifi(wifi.get("ssid", ""), wifi.get("password", "")) and not synced:
            synced = hal.sync_time()
        dev.poll(now)
        app.step(now)
        hal.tick(now)
        time.sleep_ms(20)


main()
