//! The case store: one SQLite file that remembers runs, findings and their triage state.
//!
//! A finding is identified by its rule and event (or, for correlations and grouped findings, by
//! its rule, group and window start), so the same finding seen by a nightly run and again by the
//! next one is one row with two sightings. That is what makes `hunt --new-only` print only what is
//! new, and what lets an analyst's `ack` or `explain` outlast the run that produced the finding.
//! The schema is versioned and migrated forward on open; migration 2 added inventory snapshots,
//! kept as the JSON text the inventory crate writes (this crate does not parse them). This crate
//! knows nothing of scanning, inventory or output formats.

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
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
const MIGRATIONS: [&str; 2] = [
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
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let setup = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;
                     CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";
        self.conn.execute_batch(setup).map_err(|e| StoreError::Open {
            path: self.path.clone(),
            source: e,
        })?;
        let version: i64 = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(|e| self.sql(e))?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::Newer {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
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
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
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

/// What makes two findings the same finding across runs.
pub fn finding_key(f: &Finding) -> String {
    if let Some(c) = &f.correlation {
        let group: Vec<String> = c.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return format!(
            "{}\u{1f}correlation\u{1f}{}\u{1f}{}",
            f.rule_id,
            group.join(","),
            c.first_time
        );
    }
    if let Some(g) = &f.group {
        let who = f
            .principal_arn
            .as_deref()
            .or(f.access_key_id.as_deref())
            .or(f.source_ip.as_deref())
            .unwrap_or("");
        return format!("{}\u{1f}group\u{1f}{who}\u{1f}{}", f.rule_id, g.first_time);
    }
    match &f.event_id {
        Some(id) => format!("{}\u{1f}{id}", f.rule_id),
        // No eventID: the event's time, name, caller and file stand in for it.
        None => format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            f.rule_id,
            f.event_time,
            f.event_name,
            f.principal_arn.as_deref().unwrap_or(""),
            f.source_file
        ),
    }
}

#[cfg(test)]
mod tests;
