# The virtual board's `network` module (tests/test_device_tool.py): a
# station interface whose connect() ends the boot there -- the test boots
# the board up to its network step and no further.  MicroPython subset.
STA_IF, STAT_CONNECTING = 0, 1001
stop = True  # connect() ends the boot; False: it joins at once (benchmarks)


class Stop(Exception):
    """The boot reached the network step."""


class WLAN:
    def __init__(self, iface):
        self.on = False
        self.joined = False

    def active(self, on=None):
        if on is not None:
            self.on = on
        return self.on

    def isconnected(self):
        return self.joined

    def status(self, what=None):
        return 0

    def connect(self, ssid, password):
        if stop:
            raise Stop("joining Wi-Fi " + ssid)
        self.joined = True
