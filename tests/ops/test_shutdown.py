"""A clean shutdown: stopping the web service while an indexing run is going stops the run between files
(recorded as cancelled, so the next run resumes), and the audit log says the service stopped it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from opskit import FAST, PASSWORD, add_study, count, sign_in

from pacsindex.config.settings import Settings
from pacsindex.sources.files import DirListing, LocalTree, WalkError
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer
from support_wait import wait_until


class HeldTree(LocalTree):
    """A tree whose walk holds after its first folder of files until the run is told to stop."""

    holding = threading.Event()

    def walk(self, cancel: threading.Event, skip: object = None) -> Iterator[DirListing | WalkError]:
        for item in super().walk(cancel):  # every folder listed: this test is about stopping
            yield item
            if isinstance(item, DirListing) and item.entries:
                HeldTree.holding.set()
                cancel.wait(60)


def test_stopping_the_service_stops_a_run_between_files_and_audits_it(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    for i in range(3):
        add_study(archive, f"PATIENT^{i}", f"PID-{i}", f"1.2.826.{i}")
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1, roots=(str(archive),))
    app = create_app(settings, hasher=FAST, source_for=lambda root: HeldTree(root))
    app.state.pacsindex.accounts.add_user("admin", PASSWORD, admin=True)
    with ThreadedServer(app, settings) as server:
        client, csrf = sign_in(server.url, "admin")
        assert client.post("/api/index/start", headers=csrf).status_code == 202
        assert HeldTree.holding.wait(60)
        client.close()
    wait_until(lambda: not app.state.pacsindex.jobs.running, what="the run to stop")
    assert count(settings.db, "SELECT count(*) FROM runs WHERE status = 'cancelled'") == 1
    assert count(settings.db, "SELECT count(*) FROM files") < 6  # it stopped part-way
    stops = app.state.pacsindex.audit.entries(action="index_stop")
    assert [(e["user"], e["detail"]["reason"]) for e in stops] == [
        ("system", "the service stopped; the next run resumes")
    ]
