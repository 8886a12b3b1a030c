"""South African fields through the API over a real socket: search filters for medical aid, hospital and
hospital group (any case, combined with the query, audited), the choices for them (/api/search/facets), and
the SA ID number with its data-quality flags in results and in a series."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from support_sa import DISCOVERY, SA_ID, write_sa_tree
from support_web import PASSWORD, LiveServer


@dataclass
class Live:
    url: str
    client: httpx.Client

    def search(self, **params: Any) -> list[dict[str, Any]]:
        r = self.client.get("/api/search", params=params)
        assert r.status_code == 200, r.text
        return list(r.json())

    def names(self, **params: Any) -> set[str]:
        return {row["PatientName"] for row in self.search(**params)}


@pytest.fixture(scope="module")
def live(live_server: Callable[..., LiveServer]) -> Live:
    server = live_server(users={"sister": False, "admin": True})
    client, _ = server.sign_in("sister")
    no_index = client.get("/api/search/facets")
    assert no_index.status_code == 404 and "start indexing" in no_index.json()["detail"]
    archive = write_sa_tree(server.settings.db.parent / "archive")
    run_index(server.settings.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    return Live(server.url, client)


def test_results_carry_the_sa_id_its_flags_medical_aid_and_hospital(live: Live) -> None:
    rows = {r["PatientName"]: r for r in live.search()}
    mokoena, merwe, naidoo = rows["MOKOENA^SIPHO"], rows["VAN DER MERWE^ANNA"], rows["NAIDOO^PRIYA"]
    assert mokoena["sa_id"] == SA_ID
    assert "19810203 in the header, 19800101 from the SA ID number" in mokoena["sa_id_issues"]
    assert "sex F in the header, M from the SA ID number" in mokoena["sa_id_issues"]
    assert mokoena["medical_aid"] == "Government Employees Medical Scheme"
    assert mokoena["hospital"] == "Groote Schuur Hospital"
    assert mokoena["hospital_group"] == "Public (Western Cape Health)"
    assert merwe["sa_id"] == "7503150123087" and merwe["sa_id_issues"] is None
    assert merwe["medical_aid"] == DISCOVERY
    assert (merwe["hospital"], merwe["hospital_group"]) == ("Netcare Milpark Hospital", "Netcare")
    assert naidoo["sa_id"] is None and naidoo["medical_aid"] is None
    assert naidoo["hospital_group"] == "Life Healthcare"

    detail = live.client.get(f"/api/series/{mokoena['SeriesKey']}").json()
    assert detail["sa_id"] == SA_ID and detail["sa_id_issues"] == mokoena["sa_id_issues"]
    assert detail["InsurancePlanIdentification"] == "GEMS" and detail["hospital"] == "Groote Schuur Hospital"


def test_filters_narrow_the_search_in_any_letter_case(live: Live) -> None:
    assert live.names(medical_aid=DISCOVERY) == {"VAN DER MERWE^ANNA"}
    assert live.names(medical_aid=DISCOVERY.upper()) == {"VAN DER MERWE^ANNA"}
    assert live.names(hospital="groote schuur hospital") == {"MOKOENA^SIPHO"}
    assert live.names(hospital_group="Netcare") == {"VAN DER MERWE^ANNA"}
    assert live.names(hospital_group="Life Healthcare") == {"NAIDOO^PRIYA"}
    assert live.names(hospital_group="Netcare", modality="MR", q="merwe") == {"VAN DER MERWE^ANNA"}
    assert live.names(hospital_group="Netcare", q="mokoena") == set()
    assert live.names(medical_aid="Bonitas Medical Fund") == set()
    assert live.names(q="800101 5009 087") == {"MOKOENA^SIPHO"}  # the ID number as typed, with spaces


def test_facets_offer_what_is_in_the_index(live: Live) -> None:
    r = live.client.get("/api/search/facets")
    assert r.status_code == 200
    facets = r.json()
    assert {(f["name"], f["count"]) for f in facets["medical_aids"]} == {
        (DISCOVERY, 1),
        ("Government Employees Medical Scheme", 1),
    }
    assert {(f["name"], f["group"], f["count"]) for f in facets["hospitals"]} == {
        ("Groote Schuur Hospital", "Public (Western Cape Health)", 1),
        ("Netcare Milpark Hospital", "Netcare", 1),
        ("Life Fourways Hospital", "Life Healthcare", 1),
    }
    assert {f["name"] for f in facets["hospital_groups"]} == {
        "Public (Western Cape Health)",
        "Netcare",
        "Life Healthcare",
    }
    for facet in facets["medical_aids"]:  # every choice offered finds something
        assert live.search(medical_aid=facet["name"])


def test_bad_filters_get_a_4xx_and_odd_ones_are_just_text(live: Live) -> None:
    r = live.client.get("/api/search", params={"medical_aid": "x" * 201})
    assert r.status_code == 422 and "medical_aid" in r.json()["detail"]
    for odd in ("'; DROP TABLE patients; --", "%", "_", "\\"):
        assert live.names(hospital=odd) == set()
    assert live.client.get("/api/search/facets", params={"unknown": "1"}).status_code == 200


def test_filters_are_in_the_audit_log_and_need_a_session(live: Live) -> None:
    live.search(medical_aid=DISCOVERY, hospital_group="Netcare")
    with httpx.Client(base_url=live.url) as anonymous:
        assert anonymous.get("/api/search/facets").status_code == 401
        assert anonymous.get("/api/search", params={"medical_aid": DISCOVERY}).status_code == 401
    with httpx.Client(base_url=live.url) as admin:
        assert admin.post("/auth/signin", json={"name": "admin", "password": PASSWORD}).status_code == 200
        entries = admin.get("/api/audit", params={"action": "search", "user": "sister"}).json()
    assert {"medical_aid": DISCOVERY, "hospital_group": "Netcare"} in [
        {k: e["detail"].get(k) for k in ("medical_aid", "hospital_group")} for e in entries
    ]
