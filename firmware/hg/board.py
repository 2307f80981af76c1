# The board loop every app shares: config + board profile -> hg.esp32hal,
# hg.device, the app; then forever: join Wi-Fi (and set the clock by NTP
# once it is up), poll the device, step the app, drive the LED/buzzer.
# An app is a class App(cfg, hal, profile) with attach(dev) and
# step(now_ms).  A board without a usable config or profile says why and
# restarts after 30 s rather than stopping.
import time


def setup(make_app, default_board, root="/"):
    """(hal, app, dev) built from the board's config and profile."""
    from hg import config, esp32hal
    from hg.device import Device
    try:
        cfg, _ = config.load(config.join(root, config.FILE))
        hal = esp32hal.ESP32HAL(esp32hal.load_profile(cfg.get("board") or default_board))
        app = make_app(cfg, hal, hal.profile)
        dev = Device.boot(hal, app, root)
        app.attach(dev)
    except Exception as e:  # no config or profile: say so, then try again from boot
        print("cannot start:", e)
        time.sleep(30)
        import machine
        machine.reset()
        raise
    return hal, app, dev


def network(hal, dev, synced):
    """Join Wi-Fi; set the clock by NTP once it is up.  Returns synced."""
    wifi = dev.cfg.get("wifi", {})
    if hal.wifi(wifi.get("ssid", ""), wifi.get("password", "")) and not synced:
        synced = hal.sync_time()
    return synced


def run(make_app, default_board, root="/", idle_ms=10):
    hal, app, dev = setup(make_app, default_board, root)
    synced = False
    while True:
        now = hal.ticks_ms()
        synced = network(hal, dev, synced)
        dev.poll(now)
        app.step(now)
        hal.tick(now)
        time.sleep_ms(idle_ms)
