# The full board image as a button board boots it, under the npm
# MicroPython: hg.board.setup (config + board profile -> hg.esp32hal,
# hg.device, the button app; hg.net, hg.sntp, hg.link, hg.mqtt with them),
# the firmware tree as `homeguard device install` puts it on the board (.mpy
# under /lib/hg), the board profile and config as provisioning writes them.
# `machine` and `network` are the virtual board's modules
# (vhw/ beside this file), imported before the first reading: on a board they
# are the firmware's own C modules, not on the heap.  The broker and the
# gateway are device_bench.py's in-memory stream (its source runs first).
# Heap in use over the interpreter's own: booted, connected, after 1000
# alarm events each acked `stored` (then a few loop turns, so no ack waits
# in the in-memory link, whose own few hundred bytes are counted too).
# device_bench.py's gateway imports hg.protocol before the first reading;
# it is forgotten then and imported again by the board, so the board's
# protocol is counted (until 2026-12 it was not: ~7 KB less).  The
# in-memory link stands for hg.net's Stream and the socket, which are not
# counted.  The Wi-Fi join and the SNTP sync are not run (no network
# here): hg.sntp is loaded only while a sync runs, about 2 KB more for
# those seconds.
MICROPYTHON_MAIN = """
import asyncio
import gc
import sys
sys.path.insert(0, '/t')
import machine
import network
network.stop = False
sys.path.append('/lib/hg')  # what the board's boot.py does
import hg
sys.modules.pop('hg.protocol')
del hg.protocol, protocol
async def heap_now():
    await asyncio.sleep(0)
    gc.collect()
    return gc.mem_alloc()
h0 = await heap_now()
before = sorted(m for m in sys.modules if m.startswith('hg.') or m.startswith('apps'))
from hg import board
from apps.button.app import ButtonApp
hal, app, dev = board.setup(ButtonApp, 'button-c3', '/')
from hg import protocol  # the board's, for the in-memory gateway's acks
h1 = await heap_now()
link = Link()
hal.connect_socket = lambda host, port, tls, ca: link
while not dev.link.connected:
    now = hal.ticks_ms()
    app.step(now)
    dev.poll(now)
    hal.tick(now)
h2 = await heap_now()
press = events(dev, link, hal, EVENTS)
for _ in range(10):  # the last acks read, nothing waiting in the in-memory link
    now = hal.ticks_ms()
    app.step(now)
    dev.poll(now)
h3 = await heap_now()
print(json.dumps({"heap_booted": h1 - h0, "heap_connected": h2 - h0,
                  "heap_after_events": h3 - h0, "events": EVENTS,
                  "loaded_before": before,
                  "outbox_left": len(dev.obx), "press_to_publish_us_p50": press[0],
                  "press_to_publish_us_p99": press[1]}))
"""
