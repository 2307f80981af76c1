"""The map's data (GET /api/v1/map, /api/v1/map/alarms) and page headers;
TestClient in process against a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard.api.routes.map import page_policy, tile_origin
from dashboard.app import create_app
from dashboard.settings import Settings
from tests.test_centre_api import AUTH, batch, event, login
from tests.test_centre_registry import (  # noqa: F401 - the fixtures
    REG,
    admin,
    app,
    as_user,
)
from tests.test_centre_registry_import import EXAMPLE, post


def test_the_map_places_cells_households_devices_and_open_alarms(
        app: FastAPI, admin: TestClient) -> None:  # noqa: F811
    assert post(admin, EXAMPLE.read_bytes(), dry_run=False).status_code == 200
    r = admin.post(f"{REG}/households", json={"code": "H-0003", "address": "无坐标",
                                              "community": "幸福里社区"})
    assert r.status_code == 201
    assert admin.post(f"{REG}/devices", json={"device_id": "hg-b-0003", "type": "button",
                                              "household": "H-0003"}).status_code == 201
    # hg-b-0001: its own place; hg-s-0001: its household's; hg-b-0003 and an
    # unregistered device: none; alarm 5 is closed
    events = [event(1, "hg-b-0001", typ="medical"), event(2, "hg-s-0001", typ="over_temp"),
              event(3, "hg-b-0003"), event(4, "hg-x-0404"), event(5, "hg-b-0002", typ="fire")]
    r = admin.post("/api/v1/ingest", headers=AUTH, json=batch(*events))
    assert r.status_code == 200, r.text
    for action, body in (("ack", {}), ("verify", {"outcome": "false"}), ("resolve", {})):
        assert admin.post(f"/api/v1/alarms/5/{action}", json=body).status_code == 200

    olga = as_user(app, "olga")  # an operator sees the map
    got = olga.get("/api/v1/map").json()
    assert [c["code"] for c in got["cells"]] == ["G-01", "G-02"]
    assert got["cells"][0]["polygon"][0] == [121.47, 31.23]
    assert [(h["code"], h["latitude"], h["devices"]) for h in got["households"]] == [
        ("H-0001", 31.2321, ["hg-b-0001", "hg-s-0001"]), ("H-0002", 31.2318, ["hg-b-0002"])]
    assert [d["device_id"] for d in got["devices"]] == ["hg-b-0001"]  # own coordinates only
    alarms = got["alarms"]
    assert (alarms["open"], alarms["unplaced"], alarms["not_shown"]) == (4, 2, 0)
    placed = [(a["device_id"], a["priority"], a["household"], a["latitude"], a["longitude"])
              for a in alarms["alarms"]]
    assert placed == [("hg-b-0001", 2, "H-0001", 31.2321, 121.4731),
                      ("hg-s-0001", 3, "H-0001", 31.2321, 121.4731)]
    assert olga.get("/api/v1/map/alarms").json() == alarms
    assert TestClient(app).get("/api/v1/map").status_code == 401

    page = olga.get("/map")
    assert page.status_code == 200 and 'id="map"' in page.text
    csp = page.headers["content-security-policy"]
    assert "img-src 'self';" in csp and "script-src 'self';" in csp


def test_a_tile_server_is_the_only_origin_the_map_page_adds(tmp_path: Path) -> None:
    assert tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == (
        "https://*.tile.example.org")
    assert tile_origin("http://10.0.0.5:8081/tiles/{z}/{x}/{y}.png") == "http://10.0.0.5:8081"
    policy = page_policy("https://tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' https://tiles.example.org;" in policy
    assert policy.replace(" https://tiles.example.org", "") == page_policy("")
    for bad in ("javascript:alert(1)", "https://x.org/{z}; script-src *", "ftp://x.org/"):
        try:
            Settings(map_tile_url=bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was taken as a tile URL")
    tiled = create_app(Settings(database_url=f"sqlite:///{tmp_path}/c.db",
                                map_tile_url="https://tiles.example.org/{z}/{x}/{y}.png",
                                bootstrap_admin="admin:admin-password-1",
                                gateway_tokens=["gw-test-token-1"]))
    with TestClient(tiled) as c:
        login(c, "admin", "admin-password-1")
        page = c.get("/map")
        assert "https://tiles.example.org" in page.headers["content-security-policy"]
        assert "tiles.example.org" not in c.get("/registry").headers["content-security-policy"]
