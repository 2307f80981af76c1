"""`homeguard bench centre`: the centre on its own (issue 5's figures).

- ingest -> browser: one alarm per POST /api/v1/ingest (gateway token), the
  time until it arrives on an operator's SSE stream (/api/v1/stream, logged
  in through the login form as the desk's browser is), p50/p95/p99;
- ingest throughput: alarms/s stored, at batch sizes 1, 100 and 500;
- desk load: real Chromium (Playwright) opening the logged-in desk until its
  rows are rendered and the live stream is connected, with no open alarm
  (the baseline) and with `open_alarms` open alarms.

All against `homeguard centre` on SQLite, on this machine, in one run."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from homeguard.bench import report
from homeguard.bench.latency import BUTTON, Browser
from homeguard.bench.rig import TOKEN, BenchError, Rig
from homeguard.bench.servers import CHROMIUM_ARGS

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BATCHES = (1, 100, 500)


def event(device: str, seq: int, typ: str = "fire") -> dict:
    now = int(time.time() * 1000)
    return {"device": device, "seq": seq, "kind": "alarm", "type": typ,
            "event_time_ms": now, "device_time_ms": now, "gateway_time_ms": now,
            "age_ms": 0, "skew_ms": 0, "data": {"btn": typ[0]}}


def ingest(client: httpx.Client, events: list[dict]) -> None:
    r = client.post("/api/v1/ingest", json={"gateway": "gw-bench", "events": events},
                    headers=AUTH)
    if r.status_code != 200:
        raise BenchError(f"ingest answered {r.status_code}: {r.text[:300]}")


def throughput(client: httpx.Client, batch: int, total: int, prefix: str) -> float:
    events = [event(f"{prefix}-{i % 500:04d}", 1 + i // 500) for i in range(total)]
    t0 = time.perf_counter()
    for i in range(0, total, batch):
        ingest(client, events[i:i + batch])
    return total / (time.perf_counter() - t0)


def ingest_to_browser(client: httpx.Client, browser: Browser, count: int) -> list[float]:
    out = []
    for seq in range(1, count + 1):
        t0 = time.time() * 1000
        ingest(client, [event(BUTTON, seq, "medical")])
        seen, _ = browser.wait(seq, 30)
        out.append(seen - t0)
        time.sleep(0.02)
    return out


def desk_load(url: str, username: str, password: str, rounds: int = 3) -> list[float]:
    """ms from navigation to rows rendered and the stream live, in Chromium."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", password)
            page.click("#login-submit")
            page.wait_for_selector("#conn[data-state=live]")
            for _ in range(rounds):
                t0 = time.perf_counter()
                page.goto(url + "/")
                page.wait_for_selector("#conn[data-state=live]")
                out.append((time.perf_counter() - t0) * 1000)
        finally:
            browser.close()
    return out


def run(tmp: Path, presses: int, open_alarms: int) -> dict:
    rig = Rig(tmp)
    try:
        rig.start_centre()
        operator, password = rig.operator_login()
        browser = Browser(operator)
        browser.start()
        if not browser.connected.wait(10) or browser.error:
            raise BenchError(f"the SSE stream did not connect: {browser.error!r}")
        gw = httpx.Client(base_url=rig.centre_url, timeout=30)
        results: dict = {"desk_load_ms_empty": report.percentiles(
            desk_load(rig.centre_url, "bench-operator", password))}
        results["ingest_to_browser_ms"] = report.percentiles(
            ingest_to_browser(gw, browser, presses))
        results["ingest_alarms_per_s"] = {
            str(b): throughput(gw, b, min(open_alarms, 2000 if b == 1 else 5000), f"hg-t{b}")
            for b in BATCHES}
        stored = sum(min(open_alarms, 2000 if b == 1 else 5000) for b in BATCHES) + presses
        if open_alarms > stored:
            throughput(gw, 500, open_alarms - stored, "hg-fill")
        results["open_alarms"] = max(open_alarms, stored)
        results[f"desk_load_ms_{results['open_alarms']}_open"] = report.percentiles(
            desk_load(rig.centre_url, "bench-operator", password))
        return results
    finally:
        rig.stop()


def table(results: dict) -> None:
    rows = []
    for name, v in results.items():
        if isinstance(v, dict) and "p50" in v:
            rows.append([name, v["p50"], v["p95"], v["p99"], v["max"], v["count"]])
    report.show("centre latencies, ms", ["figure", "p50", "p95", "p99", "max", "n"], rows)
    report.show("centre ingest throughput (alarms stored per second)",
                ["batch size", "alarms/s"],
                [[b, r] for b, r in results["ingest_alarms_per_s"].items()])
