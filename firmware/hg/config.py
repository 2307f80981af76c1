# Device configuration: the per-device config file (/config.json), atomic
# writes and the config.prev rollback.  Validation and the remote-config
# update live in hg.cfgcheck, imported for the moment they run and unloaded
# after (about 15 KB of heap a board does not keep between them).
# MicroPython subset; load() never raises for bad content.
import json
import os
import sys

FILE = "config.json"
PREV = "config.prev"  # the config before a remote change, until commit()


def cold(module, name, *args):
    """Run hg.<module>.<name>(*args), then unload hg.<module>: code a board
    runs rarely (config checks, a remote config change) is not kept on the
    heap between those moments."""
    mod = __import__("hg." + module, None, None, [name])
    try:
        return getattr(mod, name)(*args)
    finally:
        unload(module)


def unload(module):
    """Forget hg.<module>: its code leaves the heap once nothing refers to it."""
    sys.modules.pop("hg." + module, None)
    try:
        import hg
        delattr(hg, module)
    except (AttributeError, TypeError, ImportError):
        pass


def _checks(name, *args):
    return cold("cfgcheck", name, *args)


def defaults():
    return _checks("defaults")


def validate(raw):
    """raw (a parsed JSON value) -> (cfg, errors): cfg is the defaults with
    every valid value of raw put in; errors name the key of each problem."""
    return _checks("validate", raw)


def remote_update(cfg, data):
    """The config a remote `config` message asks for: (new cfg, errors)."""
    return _checks("remote_update", cfg, data)


def load(path):
    """(cfg, errors) from a config file; never raises for bad content."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError:  # errno values differ between ports: not shown
        return defaults(), [path + ": missing or unreadable"]
    try:
        raw = json.loads(text)
    except ValueError:
        return defaults(), [path + ": not valid JSON"]
    return validate(raw)


# --- files ------------------------------------------------------------------

def join(root, name):
    return root.rstrip("/") + "/" + name


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def write_atomic(path, data):
    """Write data to path so a power cut leaves the old or the new file,
    never a torn one: write path.tmp, then rename it over path."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        os.rename(tmp, path)
    except OSError:  # FAT will not rename over a file (LittleFS does)
        os.remove(path)
        os.rename(tmp, path)


def dumps(cfg):
    return json.dumps(cfg).encode()


def stage(root, new, old):
    """Keep the old config as config.prev, then write the new one atomically."""
    write_atomic(join(root, PREV), dumps(old))
    write_atomic(join(root, FILE), dumps(new))


def in_trial(root):
    """True while a remote change awaits commit() (also after a reboot)."""
    return exists(join(root, PREV))


def commit(root):
    """The new config proved healthy: forget the previous one."""
    if in_trial(root):
        os.remove(join(root, PREV))


def rollback(root):
    """Put config.prev back as the config; returns load() of it."""
    p = join(root, PREV)
    with open(p, "rb") as f:
        old = f.read()
    write_atomic(join(root, FILE), old)
    os.remove(p)
    return load(join(root, FILE))
