"""Homeguard's tools: what people run around the parts, not the parts.

    homeguard/cli.py      the `homeguard` command: each part's commands in one
    homeguard/demo.py     the one-command demo (broker, gateway, centre, boards)
    homeguard/simulator/  a fleet of simulated boards running the real firmware
    homeguard/devbroker/  the development broker (`homeguard broker run`)
    homeguard/bench/      the benchmarks (`homeguard bench ...`)
    homeguard/tech/       the technician's tools (`homeguard device ...`)

The parts are broker/, gateway/, dashboard/ (the centre) and hardware/; the
device library hg (firmware/hg) is below them all. Imports go one way:
tools -> parts -> hg, and no part imports another part or a tool
(tests/test_layout.py checks it)."""
