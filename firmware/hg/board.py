# The board loop every app shares: config + board profile -> hg.esp32hal,
# hg.device, the app; then forever: step the app (inputs -> events, in
# flash first), join Wi-Fi (and set the clock once it is up), poll the
# device (network work that never waits), drive the LED/buzzer.
# An app is a class App(cfg, hal, profile) with attach(dev) and
# step(now_ms).  A board without a usable config or profile says why and
# restarts after 30 s rather than stopping.  run() never returns on a board;
# a test gives it `until`, asked after each turn whether to stop.
import time


def setup(make_app, default_board, root="/", fatal=True):
    """(hal, app, dev) built from the board's config and profile (hg.boot,
    loaded for the moment it runs).  When that fails: fatal (the board's
    main loop) prints the reason, waits 30 s and resets; otherwise (a
    technician's tool) raises OSError("cannot start: ...") so the tool
    shows the board's own reason."""
    from hg import config
    try:
        return config.cold("boot", "setup", make_app, default_board, root)
    except Exception as e:  # no config or profile: say so, then try again from boot
        why = "cannot start: " + str(e)
        if not fatal:
            raise OSError(why) from None
        print(why)
        time.sleep(30)
        import machine
        machine.reset()
        raise


def network(hal, dev, synced):
    """Join Wi-Fi; keep the clock set by SNTP while it is up (neither
    waits: each call does what is due).  Returns synced."""
    wifi = dev.cfg.get("wifi", {})
    if hal.wifi(wifi.get("ssid", ""), wifi.get("password", "")):
        synced = hal.sync_time()
    return synced


def run(make_app, default_board, root="/", idle_ms=10, until=None):
    """The board's main loop; until(hal, app, dev) -> True ends it (tests)."""
    hal, app, dev = setup(make_app, default_board, root)
    synced = False
    while True:
        now = hal.ticks_ms()
        app.step(now)  # inputs first: a press is in flash before any network work
        synced = network(hal, dev, synced)
        dev.poll(now)
        hal.tick(now)
        if until is not None and until(hal, app, dev):
            return
        time.sleep_ms(idle_ms)
