# Board entry point of the electrical-safety sensor: wiring only.
from apps.sensor.app import SensorApp
from hg import board

board.run(SensorApp, "sensor-esp32", idle_ms=20)
