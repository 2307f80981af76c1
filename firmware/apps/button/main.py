# Board entry point of the household-guard alarm button: wiring only
# (config + profile -> ESP32HAL, Device.boot, ButtonApp; the loop polls the
# device, steps the app, drives the LED/buzzer and sleeps): apps/button/app.py.
from apps.button.app import main

main()
