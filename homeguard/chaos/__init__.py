"""`homeguard chaos`: the whole stack (Mosquitto, gateway, centre, a fleet of
simulated boards running the real firmware) under random faults, reconciled
from outside.  The fault test (tests/test_faults.py) runs the same code on a
small fleet.

    stack.py      the servers, the proxy between devices and broker, the fleet
    proxy.py      the TCP proxy that cuts device links
    faults.py     the fault driver
    reconcile.py  journals -> lost, duplicated, telemetry lost vs shed, latency
    run.py        one run: start, break, settle, reconcile
    cli.py        the command: table, JSON, exit code
"""
