# mypy: ignore-errors
# MicroPython code, untyped as the firmware is: not for mypy
# The virtual board's `machine` module (tests/test_device_tool.py): what
# hg.esp32hal uses, with no hardware behind it.  Inputs read their pull
# (pulled up: released buttons, but an open tamper switch) unless their gpio
# is in `held` (driven the other way: a button held down, the tamper switch
# closed); everything else is recorded.
# MicroPython subset; put on the virtual board's /tmp, never in its flash.
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
log = []
held = set()  # gpio numbers of inputs driven against their pull


class Pin:
    IN, OUT, PULL_UP, PULL_DOWN = 1, 3, 2, 1

    def __init__(self, gpio, mode=IN, pull=None):
        self.gpio, self.mode, self.pull, self.v = gpio, mode, pull, 0

    def value(self, v=None):
        if v is None:
            if self.mode != Pin.IN:
                return self.v
            return 0 if (self.pull == Pin.PULL_UP) == (self.gpio in held) else 1
        self.v = v


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.d = duty_u16

    def duty_u16(self, d=None):
        self.d = self.d if d is None else d
        return self.d


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        pass

    def atten(self, a):
        pass

    def read_uv(self):
        return 1500000  # 3.0 V behind a 2:1 divider

    def read_u16(self):
        return 32768


class WDT:
    def __init__(self, timeout=0):
        log.append("wdt " + str(timeout))

    def feed(self):
        pass


def reset_cause():
    return PWRON_RESET


def reset():
    raise SystemExit("machine.reset()")


def unique_id():
    return b"\x12\x34\x56\x78\x9a\xbc"
