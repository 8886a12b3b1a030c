"""Rebuild the search text of an existing index when what it holds changes (a migration asks for it by
leaving a row in the `refold` table): every series' text is made again from the patient, study and series
columns, a batch at a time in its own transaction, so a large index is never locked for long and an
interrupted rebuild carries on where it stopped. The full-text index follows through its triggers."""

from __future__ import annotations

import logging
import sqlite3

from pacsindex.index.textfold import series_search_text

__all__ = ["refold_pending"]

log = logging.getLogger(__name__)

BATCH = 2000


def refold_pending(conn: sqlite3.Connection) -> int:
    """Finish a pending rebuild; returns how many series it rewrote (0 when none was pending)."""
    try:
        row = conn.execute("SELECT series_after FROM refold").fetchone()
    except sqlite3.OperationalError:  # a database from before the migration that asks for it
        return 0
    if row is None:
        return 0
    log.info("rebuilding the search text of the index")
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            state = conn.execute("SELECT series_after FROM refold").fetchone()
            if state is None:  # another process finished it
                conn.execute("COMMIT")
                return done
            rows = conn.execute(
                """SELECT s.id, p.PatientName, p.PatientID, p.OtherPatientIDs, st.AccessionNumber,
                          st.StudyDescription, s.SeriesDescription, st.ReferringPhysicianName
                   FROM series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id
                   WHERE s.id > ? ORDER BY s.id LIMIT ?""",
                (state[0], BATCH),
            ).fetchall()
            for r in rows:
                text = series_search_text(*r[1:])
                conn.execute(
                    "UPDATE series SET search_text = ? WHERE id = ? AND search_text IS NOT ?",
                    (text, r[0], text),
                )
            if rows:
                conn.execute("UPDATE refold SET series_after = ?", (rows[-1][0],))
            else:
                conn.execute("DELETE FROM refold")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done += len(rows)
        if not rows:
            return done
