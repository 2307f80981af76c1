# A board's start: config + board profile -> hg.esp32hal, hg.device and the
# app (hg.board.setup).  Run once per boot through hg.config.cold, so its
# code leaves the heap once the board runs.  MicroPython subset.
import json

from hg import config

PROFILES = "boards"  # <root>/boards/<board>.json (hardware/boards/), put there by provisioning


def load_profile(name, root="/" + PROFILES):
    """The board profile <root>/<name>.json; OSError naming the file."""
    path = root + "/" + name + ".json"
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise OSError("board profile " + path + ": " + str(e)) from None


def setup(make_app, default_board, root):
    """(hal, app, dev); raises what stops the board from starting."""
    cfg, errors = config.load(config.join(root, config.FILE))
    profile = load_profile(cfg.get("board") or default_board, config.join(root, PROFILES))
    from hg import esp32hal
    from hg.device import Device
    hal = esp32hal.ESP32HAL(profile)
    app = make_app(cfg, hal, profile)
    dev = Device(cfg, hal, app, root, errors)
    app.attach(dev)
    return hal, app, dev
