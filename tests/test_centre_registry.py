"""The registry API (grid cells, households with contacts, devices, keys),
gateways' status batches and an alarm's site in its detail; TestClient in
process against a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.settings import Settings
from dashboard.users import create_user
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login

PASSWORD = "a-long-password"
REG = "/api/v1/registry"
KEY = "00112233445566778899aabbccddeeff" * 2
CELL = {"code": "G-01", "name": "幸福里一网格", "community": "幸福里社区",
        "worker_name": "张三", "worker_phone": "13800138000"}


def household(code: str = "H-0001", **over: Any) -> dict[str, Any]:
    h: dict[str, Any] = {
        "code": code, "address": "幸福路 8 号 3-2-501", "compound": "阳光小区",
        "community": "幸福里社区", "grid_cell": "G-01",
        "contacts": [{"name": "李四", "phone": "139-0000-0002", "relation": "儿子", "rank": 2},
                     {"name": "王五", "phone": "+86 139 0000 0001", "rank": 1}],
    }
    h.update(over)
    return h


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FastAPI]:
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres").fresh_database())
    else:
        url = f"sqlite:///{tmp_path / 'centre.db'}"
    app = create_app(Settings(database_url=url, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with app.state.centre.sessions() as s:
        for name, role in (("olga", "operator"), ("tom", "technician")):
            create_user(s, name, PASSWORD, role, name.title())
        s.commit()
    with TestClient(app):
        yield app


def as_user(app: FastAPI, username: str) -> TestClient:
    """A client logged in as username with its X-CSRF-Token preset."""
    c = TestClient(app)
    c.headers["X-CSRF-Token"] = login(c, username, ADMIN_PASSWORD if username == ADMIN
                                      else PASSWORD)
    return c


@pytest.fixture
def admin(app: FastAPI) -> TestClient:
    return as_user(app, ADMIN)


def test_grid_cells_households_and_devices_round_trip(admin: TestClient) -> None:
    assert admin.post(f"{REG}/grid-cells", json=CELL).status_code == 201
    r = admin.post(f"{REG}/households", json=household())
    assert r.status_code == 201, r.text
    got = r.json()
    assert [(c["name"], c["rank"]) for c in got["contacts"]] == [("王五", 1), ("李四", 2)]
    assert got["grid_cell"] == "G-01" and got["devices"] == []
    r = admin.post(f"{REG}/devices", json={"device_id": "hg-b-0001", "type": "button",
                                           "board": "esp32-c3", "household": "H-0001"})
    assert r.status_code == 201, r.text
    assert r.json()["online"] is None and r.json()["has_key"] is False
    assert admin.get(f"{REG}/households/H-0001").json()["devices"] == ["hg-b-0001"]

    # contacts given on PATCH replace the list; ranks follow list order when left out
    r = admin.patch(f"{REG}/households/H-0001", json={
        "contacts": [{"name": "赵六", "phone": "13700000000"},
                     {"name": "钱七", "phone": "010-1234567"}]})
    assert r.status_code == 200, r.text
    assert [(c["name"], c["rank"]) for c in r.json()["contacts"]] == [("赵六", 1), ("钱七", 2)]
    assert r.json()["address"] == household()["address"]
    r = admin.patch(f"{REG}/grid-cells/G-01", json={"worker_name": "孙八"})
    assert r.json()["worker_name"] == "孙八" and r.json()["worker_phone"] == "13800138000"

    assert admin.delete(f"{REG}/grid-cells/G-01").status_code == 204
    assert admin.get(f"{REG}/grid-cells").json() == []
    assert admin.get(f"{REG}/households/H-0001").json()["grid_cell"] is None
    assert admin.delete(f"{REG}/households/H-0001").status_code == 204
    assert admin.get(f"{REG}/households/H-0001").status_code == 404
    assert admin.get(f"{REG}/devices/hg-b-0001").json()["household"] is None
    assert admin.delete(f"{REG}/devices/hg-b-0001").status_code == 204
    assert admin.get(f"{REG}/devices").json() == []


def test_duplicates_unknowns_and_bad_input_are_clear_4xx(admin: TestClient) -> None:
    admin.post(f"{REG}/grid-cells", json=CELL)
    r = admin.post(f"{REG}/grid-cells", json=CELL)
    assert r.status_code == 409 and r.json()["detail"] == "grid cell 'G-01' exists already"
    r = admin.post(f"{REG}/households", json=household(grid_cell="G-99"))
    assert r.status_code == 404 and r.json()["detail"] == "no grid cell 'G-99'"
    assert admin.get(f"{REG}/households").json() == []  # nothing half-made
    admin.post(f"{REG}/households", json=household())
    assert admin.post(f"{REG}/households", json=household()).status_code == 409
    dev = {"device_id": "hg-b-0001", "type": "button", "household": "H-0404"}
    r = admin.post(f"{REG}/devices", json=dev)
    assert r.status_code == 404 and "H-0404" in r.json()["detail"]
    assert admin.post(f"{REG}/devices", json={**dev, "household": None}).status_code == 201
    assert admin.post(f"{REG}/devices", json=dev).status_code == 409
    assert admin.patch(f"{REG}/devices/hg-b-0404", json={"board": "x"}).status_code == 404

    bad_phone = household("H-0002", contacts=[{"name": "周九", "phone": "call me"}])
    r = admin.post(f"{REG}/households", json=bad_phone)
    assert r.status_code == 422 and "contacts.0.phone" in r.json()["detail"]
    r = admin.post(f"{REG}/devices", json={"device_id": "HG_B 1", "type": "button"})
    assert r.status_code == 422 and "device id 'HG_B 1'" in r.json()["detail"]
    r = admin.post(f"{REG}/devices", json={"device_id": "hg-x-0001", "type": "camera"})
    assert r.status_code == 422 and "type" in r.json()["detail"]
    same_rank = household("H-0003", contacts=[{"name": "a", "phone": "13700000000", "rank": 1},
                                              {"name": "b", "phone": "13700000001", "rank": 1}])
    r = admin.post(f"{REG}/households", json=same_rank)
    assert r.status_code == 422 and "ranks must differ" in r.json()["detail"]
    assert admin.get(f"{REG}/devices/Bad_Id").status_code == 422
    r = admin.post(f"{REG}/grid-cells", json={**CELL, "code": "G-02", "name": "a\x00b"})
    assert r.status_code == 422 and "control characters" in r.json()["detail"]


def test_everyone_reads_the_registry_but_operators_cannot_change_it(app: FastAPI) -> None:
    olga, tom = as_user(app, "olga"), as_user(app, "tom")
    assert tom.post(f"{REG}/grid-cells", json=CELL).status_code == 201
    assert olga.get(f"{REG}/grid-cells").json()[0]["code"] == "G-01"
    r = olga.post(f"{REG}/households", json=household())
    assert r.status_code == 403
    assert r.json()["detail"] == ("role operator may not do registry.manage; it needs one of: "
                                  "supervisor, technician, admin")
    assert olga.delete(f"{REG}/grid-cells/G-01").status_code == 403
    r = tom.post(f"{REG}/households", json=household(), headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert TestClient(app).get(f"{REG}/households").status_code == 401
    assert olga.get(f"{REG}/households").json() == []


def test_keys_are_written_by_technicians_and_read_only_by_gateways_and_admins(
    app: FastAPI, admin: TestClient
) -> None:
    tom, olga = as_user(app, "tom"), as_user(app, "olga")
    for dev in ("hg-b-0001", "hg-s-0002"):
        tom.post(f"{REG}/devices", json={"device_id": dev, "type": dev[3] == "b" and "button"
                                         or "sensor"})
    r = tom.put(f"{REG}/devices/hg-b-0001/key", json={"key_hex": KEY.upper()})
    assert r.status_code == 200, r.text
    assert KEY not in r.text.lower() and r.json()["device_id"] == "hg-b-0001"
    first = r.json()["updated_ms"]
    assert tom.put(f"{REG}/devices/hg-b-0001/key", json={"key_hex": "abcd"}).status_code == 422
    assert tom.put(f"{REG}/devices/hg-x-0404/key", json={"key_hex": KEY}).status_code == 404

    for who in (tom, olga):
        assert who.get(f"{REG}/keys").status_code == 403
    assert TestClient(app).get(f"{REG}/keys").status_code == 401
    bad = TestClient(app).get(f"{REG}/keys", headers={"Authorization": "Bearer wrong-token"})
    assert bad.status_code == 401
    gw = TestClient(app).get(f"{REG}/keys", headers=AUTH)
    assert gw.json() == {"keys": {"hg-b-0001": KEY}, "updated_ms": first,
                         "device_ids": ["hg-b-0001"]}
    assert admin.get(f"{REG}/keys").json()["keys"] == {"hg-b-0001": KEY}

    # incremental: only what changed after the last sync
    tom.put(f"{REG}/devices/hg-s-0002/key", json={"key_hex": "ff" * 16})
    later = TestClient(app).get(f"{REG}/keys", params={"after_ms": first}, headers=AUTH).json()
    assert later["keys"] == {"hg-s-0002": "ff" * 16} and later["updated_ms"] > first
    again = TestClient(app).get(f"{REG}/keys", params={"after_ms": later["updated_ms"]},
                                headers=AUTH).json()
    assert again == {"keys": {}, "updated_ms": later["updated_ms"],
                     "device_ids": ["hg-b-0001", "hg-s-0002"]}
    # a deleted device's key is gone: a gateway drops what device_ids lacks
    assert admin.delete(f"{REG}/devices/hg-s-0002").status_code == 204
    gone = TestClient(app).get(f"{REG}/keys", params={"after_ms": later["updated_ms"]},
                               headers=AUTH).json()
    assert gone["device_ids"] == ["hg-b-0001"]

    # the key appears nowhere else
    seen = [admin.get(p).text for p in (f"{REG}/devices", f"{REG}/devices/hg-b-0001",
                                        "/registry", "/devices", "/openapi.json")]
    assert all(KEY not in text for text in seen)
    assert admin.get(f"{REG}/devices/hg-b-0001").json()["has_key"] is True


def test_status_batches_update_known_devices_newest_first(admin: TestClient,
                                                          app: FastAPI) -> None:
    admin.post(f"{REG}/devices", json={"device_id": "hg-b-0001", "type": "button",
                                       "firmware": "1.0.0"})
    gw = TestClient(app)
    status = "/api/v1/devices/status"
    beat = {"device": "hg-b-0001", "at_ms": 2000, "battery_mv": 3900, "rssi": -61,
            "outbox": 2, "fw": "1.0.1"}
    assert gw.post(status, json={"items": [beat]}).status_code == 401
    r = gw.post(status, headers=AUTH, json={"gateway": "gw-1", "items": [
        beat, {"device": "hg-b-0999", "at_ms": 2000, "online": True}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"updated": ["hg-b-0001"], "stale": [], "unknown": ["hg-b-0999"]}
    assert admin.get(f"{REG}/devices/hg-b-0999").status_code == 404  # not created
    dev = admin.get(f"{REG}/devices/hg-b-0001").json()
    assert (dev["online"], dev["last_heartbeat_ms"], dev["battery_mv"], dev["rssi"],
            dev["outbox_depth"], dev["firmware"]) == (True, 2000, 3900, -61, 2, "1.0.1")

    # offline at 3000 wins over a late heartbeat from 1500
    r = gw.post(status, headers=AUTH, json={"items": [
        {"device": "hg-b-0001", "at_ms": 3000, "online": False},
        {**beat, "at_ms": 1500, "battery_mv": 3100}]})
    assert r.json() == {"updated": ["hg-b-0001"], "stale": [], "unknown": []}
    dev = admin.get(f"{REG}/devices/hg-b-0001").json()
    assert (dev["online"], dev["battery_mv"], dev["last_seen_ms"]) == (False, 3900, 3000)
    r = gw.post(status, headers=AUTH, json={"items": [{**beat, "at_ms": 2500}]})
    assert r.json()["stale"] == ["hg-b-0001"]
    r = gw.post(status, headers=AUTH, json={"items": [{**beat, "rssi": 5}]})
    assert r.status_code == 422 and "rssi" in r.json()["detail"]
    # a device's firmware string is shown, never a reason to lose the batch
    r = gw.post(status, headers=AUTH, json={"items": [{**beat, "at_ms": 4000, "fw": "1.1\x00b"}]})
    assert r.status_code == 200 and r.json()["updated"] == ["hg-b-0001"]
    r = gw.post("/api/v1/ingest", headers=AUTH, json=batch(event(
        9, kind="heartbeat", typ="periodic", event_time_ms=5000, data={"fw": "1.2\x07"})))
    assert r.status_code == 200, r.text
    assert admin.get(f"{REG}/devices/hg-b-0001").json()["firmware"] == "1.2?"


def test_alarm_detail_shows_the_household_grid_worker_and_contacts(
    admin: TestClient, app: FastAPI
) -> None:
    admin.post(f"{REG}/grid-cells", json=CELL)
    admin.post(f"{REG}/households", json=household())
    admin.post(f"{REG}/devices", json={"device_id": "hg-b-0001", "type": "button",
                                       "household": "H-0001"})
    gw = TestClient(app)
    r = gw.post("/api/v1/ingest", headers=AUTH,
                json=batch(event(1), event(2, device="hg-b-0777")))
    assert r.status_code == 200
    site = admin.get("/api/v1/alarms/1").json()["site"]
    assert site["registered"] is True and site["household"] == "H-0001"
    assert (site["address"], site["compound"], site["community"]) == (
        "幸福路 8 号 3-2-501", "阳光小区", "幸福里社区")
    assert site["grid_cell"] == {"code": "G-01", "name": "幸福里一网格",
                                 "worker_name": "张三", "worker_phone": "13800138000"}
    assert [(c["rank"], c["name"], c["phone"]) for c in site["contacts"]] == [
        (1, "王五", "+86 139 0000 0001"), (2, "李四", "139-0000-0002")]
    other = admin.get("/api/v1/alarms/2").json()
    assert other["alarm"]["device"] == "hg-b-0777"
    assert other["site"] == {"registered": False, "device_type": None, "household": None,
                             "address": None, "compound": None, "community": None,
                             "grid_cell": None, "contacts": []}


def test_openapi_documents_the_registry(admin: TestClient) -> None:
    spec = admin.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (f"{REG}/grid-cells", f"{REG}/households/{{code}}",
                 f"{REG}/devices/{{device_id}}/key", f"{REG}/keys", "/api/v1/devices/status"):
        assert path in paths, path
    assert "409" in paths[f"{REG}/households"]["post"]["responses"]
    assert "HouseholdCreate" in spec["components"]["schemas"]
