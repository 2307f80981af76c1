# Board entry point of the household-guard alarm button: wiring only.
from apps.button.app import ButtonApp
from hg import board

board.run(ButtonApp, "button-c3")
