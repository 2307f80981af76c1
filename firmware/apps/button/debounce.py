# Debounce as a chain of small filters, each `new_value(v, now_ms)` returning
# a value to pass on or None to stop the chain for this sample (the ESPHome
# filter idea).  Pure logic: the caller samples the pin and gives the time.


class Stable:
    """Passes the level on once it has held for `ms` (contact bounce filter);
    returns the settled level on every sample after that, None before."""

    def __init__(self, ms=30):
        self.ms = ms
        self.level = None  # the settled level
        self.cand = None  # the level being timed
        self.since = 0

    def new_value(self, v, now):
        if v != self.cand:
            self.cand, self.since = v, now
        if self.cand != self.level and now - self.since >= self.ms:
            self.level = self.cand
        return self.level


class Edge:
    """1 on a rising level, 0 on a falling one, None while it stays.  Starts
    released, so an input already active at boot (a press that woke the
    board) gives a rising edge."""

    def __init__(self, level=0):
        self.level = level

    def new_value(self, v, now):
        if v == self.level:
            return None
        self.level = v
        return v


class Invert:
    """For inputs wired active-low that the hal does not already invert."""

    def new_value(self, v, now):
        return 0 if v else 1


class Chain:
    """Filters applied in order; None from one stops the rest."""

    def __init__(self, *filters):
        self.filters = filters

    def new_value(self, v, now):
        for f in self.filters:
            v = f.new_value(v, now)
            if v is None:
                return None
        return v


def button(ms=30):
    """The usual chain for a push button: settle for `ms`, then edges."""
    return Chain(Stable(ms), Edge())
