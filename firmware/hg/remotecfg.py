# Remote config on the device (hg.device): a `config` message from the centre
# is validated (hg.cfgcheck), written atomically with the previous config
# kept (hg.config.stage) and applied; hg.device commits it once the device
# has stayed healthy for healthy_ms, else rolls it back (here) after
# trial_ms; an invalid config is refused with a reported reason.  hg.device
# imports this module only while a change is applied or rolled back
# (hg.config.cold) and unloads it after, so a board does not keep it on the
# heap.  MicroPython subset.
from hg import config
from hg.device import _call, _err


def apply(dev, seq, data):
    dev._cfg_seen = seq
    new, errs = config.remote_update(dev.cfg, data)
    if errs:
        dev.faults.append(("config", "rejected " + errs[0]))
        return
    if new == dev.cfg:
        return  # the retained config again
    config.stage(dev.root, new, dev.cfg)
    dev.cfg = new
    dev._trial = dev.hal.ticks_ms()
    dev._trial_errs = dev.loop_errors
    try:
        _call(dev.app, "on_config", new)
    except Exception as e:
        rollback(dev, "apply failed: " + _err(e))


def rollback(dev, why):
    dev._trial = None
    dev.cfg, errs = config.rollback(dev.root)
    dev.faults.append(("config", "rolled back: " + why))
    _call(dev.app, "on_config", dev.cfg)
