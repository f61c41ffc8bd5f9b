//! The case store: one SQLite file that remembers runs, findings and their triage state.
//!
//! A finding is identified by its rule and event (or, for correlations and grouped findings, by
//! its rule, group and window start), so the same finding seen by a nightly run and again by the
//! next one is one row with two sightings. That is what makes `hunt --new-only` print only what is
//! new, and what lets an analyst's `ack` or `explain` outlast the run that produced the finding.
//! The schema is versioned and migrated forward on open; migration 2 added inventory snapshots,
//! kept as the JSON text the inventory crate writes (this crate does not parse them), and
//! migration 3 named state blobs (the correlation state an incremental run continues, and what
//! the last run read of an overlap), also opaque here. This crate knows nothing of scanning,
//! inventory or output formats.
//!
//! Several processes may open one store at once (two hunts creating it at the same moment
//! included): each waits up to five seconds for another's write. Reading commands open it
//! read-only and never write, so a store on read-only media can still be listed.

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use trailhound_finding::{Finding, Status, StoredFinding};

/// Errors name the store file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the store: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: cannot create its folder: {source}")]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("{path}: written by a newer trailhound (schema {found}, this one knows up to {known})")]
    Newer { path: PathBuf, found: i64, known: i64 },
    #[error("{path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("no finding has id {0}")]
    NoSuchFinding(i64),
}

/// Schema migrations, in order; `meta.schema_version` counts how many have run.
const MIGRATIONS: [&str; 3] = [
    r#"
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    sources TEXT NOT NULL,
    since TEXT,
    until TEXT,
    rules INTEGER,
    records INTEGER,
    findings INTEGER,
    new_findings INTEGER
);
CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    rule_id TEXT NOT NULL,
    level TEXT NOT NULL,
    event_time TEXT NOT NULL,
    event_name TEXT NOT NULL,
    principal_arn TEXT,
    access_key_id TEXT,
    source_ip TEXT,
    first_run INTEGER NOT NULL REFERENCES runs(id),
    last_run INTEGER NOT NULL REFERENCES runs(id),
    times_seen INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'acked', 'explained')),
    reason TEXT,
    ticket TEXT,
    status_changed_at TEXT,
    finding TEXT NOT NULL
);
CREATE INDEX findings_by_status ON findings(status, event_time);
CREATE INDEX findings_by_rule ON findings(rule_id, event_time);
CREATE TABLE cursors (
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, key)
);
"#,
    r#"
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    collected_at TEXT NOT NULL,
    account_id TEXT,
    saved_at TEXT NOT NULL,
    snapshot TEXT NOT NULL
);
CREATE INDEX snapshots_by_time ON snapshots(collected_at);
"#,
    r#"
CREATE TABLE state (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    updated_at TEXT NOT NULL
);
"#,
];

/// What a run was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunStart {
    pub command: String,
    pub sources: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub rules: usize,
}

/// What the store made of one finding of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub id: i64,
    /// No earlier run had seen it.
    pub new: bool,
    pub status: Status,
    pub reason: Option<String>,
    pub ticket: Option<String>,
}

/// Which stored findings to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub rule: Option<String>,
    /// Event time at or after this RFC 3339 time.
    pub since: Option<String>,
    pub limit: Option<usize>,
}

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// How long a process waits for another's write before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether SQLite refused because another connection holds a lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// `path` for an SQLite `file:` URI: absolute, with the characters a URI gives meaning to escaped.
fn uri_path(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for byte in absolute.to_string_lossy().bytes() {
        match byte {
            b'?' | b'#' | b'%' => out.push_str(&format!("%{byte:02X}")),
            _ => out.push(byte as char),
        }
    }
    out
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Store {
    /// `$XDG_DATA_HOME/trailhound/trailhound.db` (or the platform's equivalent).
    pub fn default_path() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("trailhound").join("trailhound.db"))
    }

    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let open = |path: &Path| {
            let conn = Connection::open(path)?;
            // Before anything that takes a lock: another process may be creating the store.
            conn.busy_timeout(BUSY_TIMEOUT)?;
            Ok(conn)
        };
        let conn = open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        // Switching a new file to WAL, or migrating it, while another process does the same
        // can be refused at once (SQLite does not wait where waiting could deadlock): retry.
        let started = std::time::Instant::now();
        loop {
            match store.migrate() {
                Err(StoreError::Open { source, .. } | StoreError::Sql { source, .. })
                    if is_busy(&source) && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other.map(|()| store),
            }
        }
    }

    /// Opens the store at `path` for reading only: nothing is created, migrated or written (a
    /// store on read-only media, or one another user owns, can be listed). A store older than
    /// this trailhound is read as it is; a newer one is refused.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        if !path.is_file() {
            return Err(error(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some("no store there".into()),
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let readable = |conn: Connection| -> Result<Connection, rusqlite::Error> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
            Ok(conn)
        };
        // A WAL store needs its -shm file to be read; when that cannot be made (read-only
        // folder), the file is read as immutable, which is what it is to this process.
        let conn = Connection::open_with_flags(path, flags)
            .and_then(readable)
            .or_else(|_| {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).and_then(readable)
            })
            .map_err(error)?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        let version = store.stored_version()?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::Newer {
                path: store.path.clone(),
                found: version,
                known,
            });
        }
        Ok(store)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// `meta.schema_version`, 0 for a new or foreign file.
    fn stored_version(&self) -> Result<i64, StoreError> {
        let has_meta: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.sql(e))?
            > 0;
        if !has_meta {
            return Ok(0);
        }
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(|e| self.sql(e))?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(open_error)?;
        // A store already at this version needs no write (and no lock another run may hold).
        let known = MIGRATIONS.len() as i64;
        match self.stored_version()? {
            current if current == known => return Ok(()),
            newer if newer > known => {
                return Err(StoreError::Newer {
                    path: path.clone(),
                    found: newer,
                    known,
                });
            }
            _ => {}
        }
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL;")
            .map_err(open_error)?;
        // The version is read inside a write transaction, so two processes creating one store
        // at the same moment migrate one after the other, the second finding nothing to do.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_error)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .map_err(open_error)?;
        let version: i64 = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(|source| StoreError::Sql {
                path: path.clone(),
                source,
            })?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if version > known {
            return Err(StoreError::Newer {
                path: path.clone(),
                found: version,
                known,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(migration).map_err(|source| StoreError::Sql {
                path: path.clone(),
                source,
            })?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![(index + 1).to_string()],
            )
            .map_err(|source| StoreError::Sql { path: path.clone(), source })?;
        }
        tx.commit().map_err(|source| StoreError::Sql { path, source })
    }

    /// The schema version the store is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Records the start of a run; returns its id.
    pub fn begin_run(&mut self, run: &RunStart) -> Result<i64, StoreError> {
        let sources = serde_json::to_string(&run.sources).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "INSERT INTO runs (command, started_at, sources, since, until, rules) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run.command, now(), sources, run.since, run.until, run.rules as i64],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a run's outcome.
    pub fn finish_run(
        &mut self,
        run: i64,
        records: u64,
        findings: usize,
        new_findings: usize,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?1, records = ?2, findings = ?3, new_findings = ?4 WHERE id = ?5",
                params![now(), records as i64, findings as i64, new_findings as i64, run],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Stores the findings of run `run`; returns, for each finding, its id, whether no earlier run
    /// had seen it, and its triage state. A finding a known reason explains is stored as explained.
    pub fn record_findings(&mut self, run: i64, findings: &[Finding]) -> Result<Vec<Recorded>, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let mut out = Vec::with_capacity(findings.len());
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO findings (key, rule_id, level, event_time, event_name, principal_arn, access_key_id, source_ip,
                                           first_run, last_run, times_seen, status, reason, ticket, status_changed_at, finding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT(key) DO UPDATE SET
                         times_seen = times_seen + (CASE WHEN last_run = excluded.last_run THEN 0 ELSE 1 END),
                         last_run = excluded.last_run
                     RETURNING id, first_run, status, reason, ticket",
                )
                .map_err(sql)?;
            for finding in findings {
                let (status, reason, ticket, changed) = match &finding.explanation {
                    Some(e) => (Status::Explained, Some(e.reason.clone()), e.ticket.clone(), Some(now())),
                    None => (Status::New, None, None, None),
                };
                let json = serde_json::to_string(finding).unwrap_or_default();
                let recorded = upsert
                    .query_row(
                        params![
                            finding_key(finding),
                            finding.rule_id,
                            finding.level.as_str(),
                            finding.event_time,
                            finding.event_name,
                            finding.principal_arn,
                            finding.access_key_id,
                            finding.source_ip,
                            run,
                            status.as_str(),
                            reason,
                            ticket,
                            changed,
                            json
                        ],
                        |r| {
                            let status: String = r.get(2)?;
                            Ok(Recorded {
                                id: r.get(0)?,
                                new: r.get::<_, i64>(1)? == run,
                                status: Status::parse(&status).unwrap_or(Status::New),
                                reason: r.get(3)?,
                                ticket: r.get(4)?,
                            })
                        },
                    )
                    .map_err(sql)?;
                out.push(recorded);
            }
        }
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    /// Stored findings, oldest event first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<StoredFinding>, StoreError> {
        let mut listed = Vec::new();
        self.each(filter, &mut |finding| {
            listed.push(finding);
            true
        })?;
        Ok(listed)
    }

    /// [`Store::list`] one finding at a time, without holding them: `visit` returns false to
    /// stop.
    pub fn each(&self, filter: &Filter, visit: &mut dyn FnMut(StoredFinding) -> bool) -> Result<(), StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT f.id, f.status, f.reason, f.ticket, r1.started_at, r2.started_at, f.times_seen, f.finding
                 FROM findings f JOIN runs r1 ON r1.id = f.first_run JOIN runs r2 ON r2.id = f.last_run
                 WHERE (?1 IS NULL OR f.status = ?1) AND (?2 IS NULL OR f.rule_id = ?2) AND (?3 IS NULL OR f.event_time >= ?3)
                 ORDER BY f.event_time, f.id LIMIT ?4",
            )
            .map_err(|e| self.sql(e))?;
        let limit = filter.limit.map_or(-1, |l| l as i64);
        let rows = statement
            .query_map(
                params![filter.status.map(Status::as_str), filter.rule, filter.since, limit],
                |r| {
                    let status: String = r.get(1)?;
                    let json: String = r.get(7)?;
                    Ok(StoredFinding {
                        id: r.get(0)?,
                        status: Status::parse(&status).unwrap_or(Status::New),
                        reason: r.get(2)?,
                        ticket: r.get(3)?,
                        first_seen: r.get(4)?,
                        last_seen: r.get(5)?,
                        times_seen: r.get(6)?,
                        finding: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
                    })
                },
            )
            .map_err(|e| self.sql(e))?;
        for row in rows {
            if !visit(row.map_err(|e| self.sql(e))?) {
                break;
            }
        }
        Ok(())
    }

    /// Sets the triage state of findings by id. Every id must exist (nothing changes otherwise).
    pub fn set_status(
        &mut self,
        ids: &[i64],
        status: Status,
        reason: Option<&str>,
        ticket: Option<&str>,
    ) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for id in ids {
            let changed = tx
                .execute(
                    "UPDATE findings SET status = ?1, reason = ?2, ticket = ?3, status_changed_at = ?4 WHERE id = ?5",
                    params![status.as_str(), reason, ticket, now(), id],
                )
                .map_err(sql)?;
            if changed == 0 {
                return Err(StoreError::NoSuchFinding(*id));
            }
        }
        tx.commit().map_err(sql)?;
        Ok(ids.len())
    }

    /// A source cursor: where an incremental read of `source` stopped.
    pub fn cursor(&self, source: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM cursors WHERE source = ?1 AND key = ?2",
                params![source, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    pub fn set_cursor(&mut self, source: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO cursors (source, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![source, key, value, now()],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Every cursor, as `(source, key) -> value`.
    pub fn cursors(&self) -> Result<std::collections::BTreeMap<(String, String), String>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT source, key, value FROM cursors")
            .map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// A named state blob an earlier run saved (see [`Store::save_progress`]).
    pub fn state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT value FROM state WHERE name = ?1", params![name], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Saves where an incremental run got to, all or nothing: its cursors (`(source, key) ->
    /// value`) and its named state blobs. A run killed before this returns leaves the previous
    /// run's progress whole, so the next run reads again what this one read.
    pub fn save_progress<'a>(
        &mut self,
        cursors: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
        states: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let at = now();
        for (source, key, value) in cursors {
            tx.execute(
                "INSERT INTO cursors (source, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![source, key, value, at],
            )
            .map_err(sql)?;
        }
        for (name, value) in states {
            tx.execute(
                "INSERT INTO state (name, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![name, value, at],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Saves an inventory snapshot (its JSON text); returns its id. `collected_at` is the
    /// snapshot's RFC 3339 collection time.
    pub fn save_snapshot(
        &mut self,
        collected_at: &str,
        account_id: Option<&str>,
        json: &str,
    ) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO snapshots (collected_at, account_id, saved_at, snapshot) VALUES (?1, ?2, ?3, ?4)",
                params![collected_at, account_id, now(), json],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The JSON text of snapshot `id`, None when there is no such snapshot.
    pub fn snapshot(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT snapshot FROM snapshots WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The `n` most recently collected snapshots, newest first by collection time (not by when
    /// they were saved): (id, collected_at, account_id).
    pub fn latest_snapshots(&self, n: usize) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT id, collected_at, account_id FROM snapshots ORDER BY julianday(collected_at) DESC, id DESC LIMIT ?1",
            )
            .map_err(|e| self.sql(e))?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = statement
            .query_map(params![limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }
}

/// What makes two findings the same finding across runs (see [`Finding::key`]).
pub fn finding_key(f: &Finding) -> String {
    f.key()
}

#[cfg(test)]
mod tests;
