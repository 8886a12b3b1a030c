"""The index's schema as SQL text, one migration per schema version, and the code that runs them.

`PRAGMA user_version` says how many migrations a database has had; `migrate` runs the rest, each in its own
transaction, so a database is always at one version or the next. Migrations are only ever appended:
1 the index (patients, studies, series, files, folders, errors, runs), 2 staff accounts, sessions and the
audit log, 3 the South African fields, 4 the trigram full-text index for search, 5 API tokens; then
index correctness (issue 12): file notes, transient errors and catalog signatures; studies keyed by
patient; a rebuild of the search text (index/refold.py runs it on the first writable open).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pacsindex.index import db

MIGRATIONS: list[str] = [
    # 1: the index
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        roots TEXT NOT NULL,
        enumerated_files INTEGER NOT NULL DEFAULT 0,
        files_processed INTEGER NOT NULL DEFAULT 0,
        files_read INTEGER NOT NULL DEFAULT 0,
        files_unchanged INTEGER NOT NULL DEFAULT 0,
        files_removed INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        non_dicom INTEGER NOT NULL DEFAULT 0,
        message TEXT
    );
    CREATE TABLE dirs (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        sep TEXT NOT NULL
    );
    CREATE TABLE patients (
        id INTEGER PRIMARY KEY,
        patient_key TEXT NOT NULL UNIQUE,
        PatientName TEXT,
        PatientID TEXT,
        PatientBirthDate TEXT,
        PatientSex TEXT,
        OtherPatientIDs TEXT,
        IssuerOfPatientID TEXT
    );
    CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        study_key TEXT NOT NULL UNIQUE,
        patient_id INTEGER NOT NULL REFERENCES patients(id),
        StudyInstanceUID TEXT,
        StudyDate TEXT,
        StudyTime TEXT,
        StudyDescription TEXT,
        AccessionNumber TEXT,
        ReferringPhysicianName TEXT,
        InstitutionName TEXT,
        StudyID TEXT
    );
    CREATE INDEX studies_patient ON studies(patient_id);
    CREATE INDEX studies_date ON studies(StudyDate);
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        SeriesKey TEXT NOT NULL UNIQUE,
        study_id INTEGER NOT NULL REFERENCES studies(id),
        SeriesInstanceUID TEXT,
        SeriesNumber INTEGER,
        SeriesDescription TEXT,
        Modality TEXT,
        BodyPartExamined TEXT,
        SeriesDate TEXT,
        Manufacturer TEXT,
        StationName TEXT,
        file_count INTEGER NOT NULL DEFAULT 0,
        total_size INTEGER NOT NULL DEFAULT 0,
        search_text TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX series_study ON series(study_id);
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        dir_id INTEGER NOT NULL REFERENCES dirs(id),
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('dicom', 'non_dicom', 'error')),
        reason TEXT,
        series_id INTEGER REFERENCES series(id),
        SOPInstanceUID TEXT,
        SOPClassUID TEXT,
        InstanceNumber INTEGER,
        TransferSyntaxUID TEXT,
        run_id INTEGER,
        UNIQUE (dir_id, name)
    );
    CREATE INDEX files_series ON files(series_id);
    CREATE INDEX files_problem ON files(status) WHERE status != 'dicom';
    CREATE TABLE errors (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        path TEXT NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX errors_run ON errors(run_id);
    """,
    # 2: staff sign-in and the audit log (pacsindex.accounts.auth, pacsindex.accounts.audit own these tables)
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        password_changed_at TEXT NOT NULL,
        last_signin_at TEXT
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        csrf_token TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_active REAL NOT NULL,
        client TEXT
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE signin_failures (
        id INTEGER PRIMARY KEY,
        user_name TEXT NOT NULL,
        client TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX signin_failures_user ON signin_failures(user_name, at);
    CREATE INDEX signin_failures_client ON signin_failures(client, at);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        user_name TEXT,
        client TEXT,
        action TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX audit_at ON audit(at);
    CREATE INDEX audit_user ON audit(user_name, at);
    """,
    # 3: fields South African practices search by: insurance, comments, address; derived SA ID / scheme /
    # facility columns (filled by the writer from the configurable tables)
    """
    ALTER TABLE patients ADD COLUMN InsurancePlanIdentification TEXT;
    ALTER TABLE patients ADD COLUMN PatientComments TEXT;
    ALTER TABLE patients ADD COLUMN sa_id TEXT;
    ALTER TABLE patients ADD COLUMN sa_id_issues TEXT;
    ALTER TABLE patients ADD COLUMN medical_aid TEXT;
    ALTER TABLE studies ADD COLUMN InstitutionAddress TEXT;
    ALTER TABLE studies ADD COLUMN hospital TEXT;
    ALTER TABLE studies ADD COLUMN hospital_group TEXT;
    CREATE INDEX patients_medical_aid ON patients(medical_aid);
    CREATE INDEX studies_hospital ON studies(hospital);
    CREATE INDEX studies_hospital_group ON studies(hospital_group);
    """,
    # 4: a trigram full-text index over the folded search text, so word-part searches stay fast at a
    # million files (kept in step with the series table by triggers); the study date on each series, so
    # results can be ordered and paged before joining studies and patients
    """
    ALTER TABLE series ADD COLUMN StudyDate TEXT;
    UPDATE series SET StudyDate = (SELECT StudyDate FROM studies WHERE studies.id = series.study_id);
    CREATE INDEX series_order ON series(StudyDate, study_id, SeriesNumber, id);
    CREATE VIRTUAL TABLE series_fts USING fts5(
        search_text, content='series', content_rowid='id', tokenize='trigram'
    );
    CREATE TRIGGER series_fts_insert AFTER INSERT ON series BEGIN
        INSERT INTO series_fts (rowid, search_text) VALUES (new.id, new.search_text);
    END;
    CREATE TRIGGER series_fts_delete AFTER DELETE ON series BEGIN
        INSERT INTO series_fts (series_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    END;
    CREATE TRIGGER series_fts_update AFTER UPDATE OF search_text ON series BEGIN
        INSERT INTO series_fts (series_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
        INSERT INTO series_fts (rowid, search_text) VALUES (new.id, new.search_text);
    END;
    INSERT INTO series_fts (series_fts) VALUES ('rebuild');
    """,
    # 5: API tokens for machine clients of DICOMweb (pacsindex.accounts.apitokens owns the table); only a
    # token's
    # SHA-256 is kept. Names are unique among tokens that are not revoked.
    """
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
    );
    CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name COLLATE NOCASE) WHERE revoked_at IS NULL;
    """,
    # 6 (operations, issue 13): identical refusals from one address share an audit row with a count;
    # sends to Orthanc kept in the index so they survive a restart (pacsindex.orthanc.sends owns the table)
    """
    ALTER TABLE audit ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit ADD COLUMN last_at TEXT;
    CREATE TABLE orthanc_sends (
        id TEXT PRIMARY KEY,
        SeriesKey TEXT NOT NULL,
        orthanc_url TEXT NOT NULL,
        started_by TEXT NOT NULL,
        client TEXT,
        state TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        total INTEGER NOT NULL DEFAULT 0,
        done INTEGER NOT NULL DEFAULT 0,
        sent INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        failures TEXT NOT NULL DEFAULT '[]',
        error TEXT
    );
    CREATE INDEX orthanc_sends_state ON orthanc_sends(state, started_at);
    """,
    # index correctness (issue 12), files: `note` keeps what was odd about a file that was still read
    # (`pacsindex problems --kind note`); `transient` marks an error that may pass (network, timeout, a
    # file still being written), read again next run; `record_sig` is the catalog that described a file
    # and a hash of its record, so a changed or deleted catalog row reaches the index.
    """
    ALTER TABLE files ADD COLUMN note TEXT;
    ALTER TABLE files ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE files ADD COLUMN record_sig TEXT;
    CREATE INDEX files_note ON files(dir_id) WHERE note IS NOT NULL;
    CREATE INDEX files_record_sig ON files(record_sig) WHERE record_sig IS NOT NULL;
    """,
    # index correctness (issue 12), studies: keyed by (patient, StudyInstanceUID), so a study UID two
    # patients share (a misfiled study) gives each patient their own study, whatever the file order, and
    # is flagged; the UID itself is indexed for DICOMweb.
    """
    UPDATE studies SET study_key =
        (SELECT patient_key FROM patients WHERE patients.id = studies.patient_id) || char(30) || study_key;
    CREATE INDEX studies_uid ON studies(StudyInstanceUID);
    """,
    # index correctness (issue 12), search: the search text also holds the referring physician, German
    # transliterations and ideographic names without spaces; the index rebuilds it on first open
    # (index.refold), a batch at a time, so an existing index finds what a new one finds.
    """
    CREATE TABLE refold (series_after INTEGER NOT NULL);
    INSERT INTO refold (series_after) VALUES (0);
    """,
    # quick re-scans (pacsindex.ingest.scan): a folder's modification time once every file of its listing was
    # indexed, and whether it holds folders; a quick pass does not list a leaf whose time has not moved.
    # Folders indexed before this version count as having subfolders, so they are listed once more.
    """
    ALTER TABLE dirs ADD COLUMN mtime_ns INTEGER;
    ALTER TABLE dirs ADD COLUMN has_subdirs INTEGER NOT NULL DEFAULT 1;
    """,
    # survey of a first index (pacsindex.ingest.survey): a series found by reading one file of its folder
    # while the other files of the folder wait for later in the run; search says it is still being indexed.
    """
    ALTER TABLE series ADD COLUMN filling INTEGER NOT NULL DEFAULT 0;
    """,
    # the Indexing page counts the series still being indexed as progress goes out: a partial index keeps
    # that count as cheap as the number of such series (none, outside a first index).
    """
    CREATE INDEX series_filling ON series (id) WHERE filling = 1;
    """,
]


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS, what: str = "index") -> None:
    """Run the migrations `conn` has not had yet (db.migrate: safe when two processes open a new index)."""
    db.migrate(conn, migrations, what)


statements = db.statements
