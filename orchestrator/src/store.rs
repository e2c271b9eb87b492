//! SQLite state (WAL): workflows with every version kept, executions, step results.
//!
//! One database file may be shared by several processes (a CLI run and a server): WAL lets readers
//! and one writer work at once, a busy timeout makes writers wait for each other instead of
//! failing, and every read-then-write happens in an immediate transaction so that two writers
//! never both decide on the same next version.
//!
//! The schema is versioned through `PRAGMA user_version`: [`MIGRATIONS`] lists every change since
//! the first version, and opening a database applies the missing ones in one transaction. A
//! database written by a newer testloop is refused rather than guessed at.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::execution::{
    ExecutionRecord, ExecutionStatus, ExecutorKind, StepRecord, StepStatus, TimestampMicros,
    Trigger, now_micros,
};
use crate::results::logscan::Counts;
use crate::results::{TestCase, TestStatus};

/// How long a write waits for another process's write to finish before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most executions one [`Store::list_executions`] call returns; larger limits are clamped.
pub const MAX_LIST_LIMIT: usize = 1000;

/// The most candidates an ambiguous id prefix error names.
pub const MAX_AMBIGUOUS_CANDIDATES: usize = 5;

/// One schema change. Migration `n` (1-based position in [`MIGRATIONS`]) brings a database from
/// `user_version` `n - 1` to `n`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub description: &'static str,
    pub sql: &'static str,
}

/// Every schema change, oldest first. Append only: never edit a migration that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        description: "workflows, their versions, executions and steps",
        sql: "
            CREATE TABLE workflows (
                name            TEXT PRIMARY KEY NOT NULL,
                latest_version  INTEGER NOT NULL,
                created_at      INTEGER NOT NULL,
                updated_at      INTEGER NOT NULL,
                -- Set when deleted; the versions stay, for history.
                deleted_at      INTEGER
            );
            CREATE TABLE workflow_versions (
                name         TEXT NOT NULL REFERENCES workflows(name) ON DELETE CASCADE,
                version      INTEGER NOT NULL,
                yaml         TEXT NOT NULL,
                description  TEXT,
                labels       TEXT NOT NULL DEFAULT '{}',
                created_at   INTEGER NOT NULL,
                PRIMARY KEY (name, version)
            );
            -- No foreign key to workflows: executions outlive deleted workflows and may run
            -- workflows that were never saved.
            CREATE TABLE executions (
                id                TEXT PRIMARY KEY NOT NULL,
                workflow          TEXT NOT NULL,
                workflow_version  INTEGER NOT NULL,
                snapshot          TEXT NOT NULL,
                config            TEXT NOT NULL,
                trigger           TEXT NOT NULL,
                status            TEXT NOT NULL,
                created_at        INTEGER NOT NULL,
                started_at        INTEGER,
                finished_at       INTEGER,
                error             TEXT,
                rerun_of          TEXT
            );
            CREATE TABLE steps (
                execution_id  TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
                path          TEXT NOT NULL,
                name          TEXT NOT NULL,
                status        TEXT NOT NULL,
                exit_code     INTEGER,
                attempts      INTEGER NOT NULL,
                started_at    INTEGER,
                finished_at   INTEGER,
                message       TEXT,
                PRIMARY KEY (execution_id, path)
            ) WITHOUT ROWID;
        ",
    },
    Migration {
        description: "indexes for listing executions by workflow, age and activity",
        sql: "
            CREATE INDEX executions_by_workflow ON executions(workflow, id);
            CREATE INDEX executions_by_created ON executions(created_at);
            CREATE INDEX executions_active ON executions(status)
                WHERE status IN ('queued', 'running');
        ",
    },
    Migration {
        description: "test results: reports and test cases, and re-runs of only failed steps",
        sql: "
            ALTER TABLE executions ADD COLUMN only_failed INTEGER NOT NULL DEFAULT 0;
            -- Where an execution's test cases came from: a JUnit report among its artifacts
            -- (source = the artifact's path) or failures recognised in a step's log
            -- (source = 'log:' and the step path).
            CREATE TABLE test_reports (
                execution_id  TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
                source        TEXT NOT NULL,
                kind          TEXT NOT NULL,
                runner        TEXT,
                cases         INTEGER NOT NULL,
                -- Why the report is incomplete (malformed, truncated), if it is.
                problem       TEXT,
                -- A scanned log's own summary counts (`3 passed; 1 failed`), when it printed any.
                passed        INTEGER,
                failed        INTEGER,
                skipped       INTEGER,
                PRIMARY KEY (execution_id, source)
            ) WITHOUT ROWID;
            CREATE TABLE test_cases (
                execution_id  TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
                seq           INTEGER NOT NULL,
                source        TEXT NOT NULL,
                test_key      TEXT NOT NULL,
                suite         TEXT NOT NULL,
                class         TEXT,
                name          TEXT NOT NULL,
                status        TEXT NOT NULL,
                duration_ms   INTEGER,
                message       TEXT,
                failure_type  TEXT,
                file          TEXT,
                line          INTEGER,
                details       TEXT,
                PRIMARY KEY (execution_id, seq)
            ) WITHOUT ROWID;
            CREATE INDEX test_cases_by_status ON test_cases(execution_id, status, seq);
        ",
    },
    Migration {
        description: "the executor each execution ran on",
        sql: "
            ALTER TABLE executions ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';
        ",
    },
    Migration {
        description: "where on its executor an execution ran (a cluster and namespace)",
        sql: "
            ALTER TABLE executions ADD COLUMN executor_location TEXT;
        ",
    },
];

/// The schema version this build writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to create the directory {path} for the database: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to open the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error: {source}")]
    Sqlite {
        #[from]
        source: rusqlite::Error,
    },
    #[error("failed to migrate the database to schema version {version} ({description}): {source}")]
    Migration {
        version: u32,
        description: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the database has schema version {found}, newer than the {supported} this testloop \
         supports: upgrade testloop"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("no execution id starts with `{prefix}`")]
    NoSuchExecution { prefix: String },
    #[error("execution id prefix `{prefix}` is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousExecutionId {
        prefix: String,
        /// The first few matching ids (at most [`MAX_AMBIGUOUS_CANDIDATES`]).
        candidates: Vec<String>,
    },
    #[error("an execution id prefix must not be empty")]
    EmptyExecutionId,
    #[error("execution {id} does not exist")]
    ExecutionNotFound { id: String },
    #[error("stored {what} is unreadable: {source}")]
    Corrupt {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn corrupt(
    what: impl Into<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error {
    let what = what.into();
    move |source| Error::Corrupt { what, source }
}

/// The result of [`Store::save_workflow`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: u32,
    /// Whether this save made a new version (`false`: the content equals the latest version).
    pub created: bool,
}

/// One version of a workflow as saved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredWorkflow {
    pub name: String,
    pub version: u32,
    pub yaml: String,
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub created_at: TimestampMicros,
}

/// A workflow as listed: its latest version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkflowSummary {
    pub name: String,
    pub latest_version: u32,
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// Which executions [`Store::list_executions`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionFilter {
    pub workflow: Option<String>,
    pub status: Option<ExecutionStatus>,
    /// At most this many (clamped to [`MAX_LIST_LIMIT`]).
    pub limit: usize,
    /// Cursor: only executions older than this id (the last id of the previous page).
    pub before_id: Option<String>,
}

impl Default for ExecutionFilter {
    fn default() -> Self {
        Self {
            workflow: None,
            status: None,
            limit: 50,
            before_id: None,
        }
    }
}

/// Most test cases recorded for one execution; a report with more is cut here.
pub const MAX_TEST_CASES_PER_EXECUTION: usize = 100_000;

/// Where test cases come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// A JUnit XML report among the execution's artifacts.
    Junit,
    /// Failures recognised in a step's log (no report named them).
    Log,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Junit => "junit",
            ReportKind::Log => "log",
        }
    }
}

impl std::str::FromStr for ReportKind {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text {
            "junit" => Ok(ReportKind::Junit),
            "log" => Ok(ReportKind::Log),
            other => Err(format!("unknown report kind {other:?}")),
        }
    }
}

/// One source of an execution's test cases.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct TestReport {
    /// The artifact path of a JUnit report (`data/artifacts/junit.xml`), or `log:` and the step
    /// path whose log was scanned (`log:2`).
    pub source: String,
    pub kind: ReportKind,
    /// The test runner a log was recognised as (`cargo`, `pytest`, ...).
    pub runner: Option<String>,
    /// Test cases this source gave.
    pub cases: usize,
    /// Why it is incomplete (malformed XML, too many cases), if it is.
    pub problem: Option<String>,
    /// For a scanned log, the counts its runner's summary lines gave (a log names only the
    /// failing tests, so these are the only passed and skipped counts there are).
    pub runner_counts: Option<Counts>,
}

/// A test case and the source it came from, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedTestCase {
    pub source: String,
    pub case: TestCase,
}

/// A test case as stored: its place in the execution's results and its source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StoredTestCase {
    pub seq: u32,
    pub source: String,
    #[serde(flatten)]
    pub case: TestCase,
}

/// Test cases per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct TestCounts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub error: usize,
    pub skipped: usize,
}

impl TestCounts {
    pub fn add(&mut self, status: TestStatus, count: usize) {
        self.total += count;
        match status {
            TestStatus::Passed => self.passed += count,
            TestStatus::Failed => self.failed += count,
            TestStatus::Error => self.error += count,
            TestStatus::Skipped => self.skipped += count,
        }
    }
}

/// Which test cases [`Store::test_cases`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCaseFilter {
    /// Only these statuses; empty means all.
    pub statuses: Vec<TestStatus>,
    /// Only cases whose suite, class or name contains this text (case-insensitive).
    pub name_contains: Option<String>,
    pub limit: usize,
    /// Cases to pass over first (pagination).
    pub offset: usize,
}

impl Default for TestCaseFilter {
    fn default() -> Self {
        Self {
            statuses: Vec::new(),
            name_contains: None,
            limit: usize::MAX,
            offset: 0,
        }
    }
}

/// The state database. `Send + Sync`: calls are short and serialised on one connection.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL survives a killed process with every committed transaction; NORMAL only risks the
        // last transactions on power loss, which is the usual trade for a local tool.
        set_wal_mode(&conn).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // Closing the last connection would otherwise checkpoint the WAL and fsync: tens of
        // milliseconds on every CLI command. The WAL is checkpointed as it grows instead, and a
        // WAL left behind is simply read by the next open.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(open_err)?;
        migrate(&mut conn)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: an open transaction rolls
        // back when its guard is dropped during unwinding.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(user_version(&self.conn())?)
    }

    // ---- workflows -------------------------------------------------------------------------

    /// Saves a workflow's YAML as its next version. Saving content equal to the latest version
    /// (same YAML, description and labels) makes no new version; it does bring back a deleted
    /// workflow.
    pub fn save_workflow(
        &self,
        name: &str,
        yaml: &str,
        description: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<WorkflowVersion> {
        let labels_json = serde_json::to_string(labels)
            .map_err(|e| corrupt(format!("labels of workflow {name}"))(Box::new(e)))?;
        let now = now_micros();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let latest: Option<(i64, String, Option<String>, String)> = tx
            .query_row(
                "SELECT v.version, v.yaml, v.description, v.labels
                 FROM workflows w JOIN workflow_versions v
                   ON v.name = w.name AND v.version = w.latest_version
                 WHERE w.name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (version, created) = match latest {
            Some((version, old_yaml, old_desc, old_labels))
                if old_yaml == yaml
                    && old_desc.as_deref() == description
                    && parse_labels(&old_labels, name)? == *labels =>
            {
                tx.execute(
                    "UPDATE workflows SET deleted_at = NULL,
                         updated_at = CASE WHEN deleted_at IS NULL THEN updated_at ELSE ?2 END
                     WHERE name = ?1",
                    params![name, now],
                )?;
                (version, false)
            }
            Some((version, ..)) => {
                let next = version + 1;
                tx.execute(
                    "UPDATE workflows SET latest_version = ?2, updated_at = ?3, deleted_at = NULL
                     WHERE name = ?1",
                    params![name, next, now],
                )?;
                (next, true)
            }
            None => {
                tx.execute(
                    "INSERT INTO workflows (name, latest_version, created_at, updated_at)
                     VALUES (?1, 1, ?2, ?2)",
                    params![name, now],
                )?;
                (1, true)
            }
        };
        if created {
            tx.execute(
                "INSERT INTO workflow_versions (name, version, yaml, description, labels, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, version, yaml, description, labels_json, now],
            )?;
        }
        tx.commit()?;
        Ok(WorkflowVersion {
            name: name.to_owned(),
            version: to_u32(version, || format!("version of workflow {name}"))?,
            created,
        })
    }

    /// A version of a workflow (`None`: the latest). `None` when the workflow or that version
    /// does not exist, or the workflow was deleted.
    pub fn get_workflow(&self, name: &str, version: Option<u32>) -> Result<Option<StoredWorkflow>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT v.version, v.yaml, v.description, v.labels, v.created_at
                 FROM workflows w JOIN workflow_versions v ON v.name = w.name
                 WHERE w.name = ?1 AND w.deleted_at IS NULL
                   AND v.version = COALESCE(?2, w.latest_version)",
                params![name, version],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((version, yaml, description, labels, created_at)) = row else {
            return Ok(None);
        };
        Ok(Some(StoredWorkflow {
            name: name.to_owned(),
            version: to_u32(version, || format!("version of workflow {name}"))?,
            yaml,
            description,
            labels: parse_labels(&labels, name)?,
            created_at,
        }))
    }

    /// The workflows not deleted, by name.
    pub fn list_workflows(&self) -> Result<Vec<WorkflowSummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT w.name, w.latest_version, v.description, v.labels, w.created_at, w.updated_at
             FROM workflows w JOIN workflow_versions v
               ON v.name = w.name AND v.version = w.latest_version
             WHERE w.deleted_at IS NULL
             ORDER BY w.name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(name, version, description, labels, created_at, updated_at)| {
                    Ok(WorkflowSummary {
                        latest_version: to_u32(version, || format!("version of workflow {name}"))?,
                        labels: parse_labels(&labels, &name)?,
                        name,
                        description,
                        created_at,
                        updated_at,
                    })
                },
            )
            .collect()
    }

    /// Deletes a workflow: it is no longer listed or returned, while its executions (which hold
    /// their own snapshot) stay. Returns whether it existed.
    pub fn delete_workflow(&self, name: &str) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE workflows SET deleted_at = ?2 WHERE name = ?1 AND deleted_at IS NULL",
            params![name, now_micros()],
        )?;
        Ok(changed > 0)
    }

    // ---- executions ------------------------------------------------------------------------

    pub fn insert_execution(&self, record: &ExecutionRecord) -> Result<()> {
        let config = serde_json::to_string(&record.config)
            .map_err(|e| corrupt(format!("config of execution {}", record.id))(Box::new(e)))?;
        self.conn().execute(
            "INSERT INTO executions (id, workflow, workflow_version, snapshot, config, trigger,
                 status, created_at, started_at, finished_at, error, rerun_of, only_failed,
                 executor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                record.id,
                record.workflow,
                record.workflow_version,
                record.snapshot,
                config,
                record.trigger.as_str(),
                record.status.as_str(),
                record.created_at,
                record.started_at,
                record.finished_at,
                record.error,
                record.rerun_of,
                record.only_failed,
                record.executor.as_str(),
            ],
        )?;
        Ok(())
    }

    /// Sets an execution's status; each `Some` field is set too, each `None` left as it is.
    pub fn update_execution(
        &self,
        id: &str,
        status: ExecutionStatus,
        started_at: Option<TimestampMicros>,
        finished_at: Option<TimestampMicros>,
        error: Option<&str>,
    ) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE executions SET status = ?2,
                 started_at = COALESCE(?3, started_at),
                 finished_at = COALESCE(?4, finished_at),
                 error = COALESCE(?5, error)
             WHERE id = ?1",
            params![id, status.as_str(), started_at, finished_at, error],
        )?;
        if changed == 0 {
            return Err(Error::ExecutionNotFound { id: id.to_owned() });
        }
        Ok(())
    }

    pub fn get_execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"),
                params![id],
                RawExecution::from_row,
            )
            .optional()?;
        raw.map(RawExecution::into_record).transpose()
    }

    /// The full id of the one execution whose id starts with `prefix` (case-insensitive).
    pub fn resolve_execution_id(&self, prefix: &str) -> Result<String> {
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return Err(Error::EmptyExecutionId);
        }
        // ULIDs are upper case; an upper bound after every id with this prefix keeps the lookup
        // a range scan of the primary key.
        let lower = prefix.to_ascii_uppercase();
        let upper = format!("{lower}\u{10FFFF}");
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id FROM executions WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3")?;
        let ids = stmt
            .query_map(
                params![lower, upper, MAX_AMBIGUOUS_CANDIDATES as i64 + 1],
                |r| r.get::<_, String>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        match ids.len() {
            0 => Err(Error::NoSuchExecution {
                prefix: prefix.to_owned(),
            }),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            _ => {
                // An exact id wins even when it is also the prefix of a longer one.
                if let Some(exact) = ids.iter().find(|id| **id == lower) {
                    return Ok(exact.clone());
                }
                let mut candidates = ids;
                candidates.truncate(MAX_AMBIGUOUS_CANDIDATES);
                Err(Error::AmbiguousExecutionId {
                    prefix: prefix.to_owned(),
                    candidates,
                })
            }
        }
    }

    /// Executions matching `filter`, newest first (ULID order).
    pub fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        let limit = filter.limit.min(MAX_LIST_LIMIT) as i64;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions
             WHERE (?1 IS NULL OR workflow = ?1)
               AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4"
        ))?;
        let raws = stmt
            .query_map(
                params![
                    filter.workflow,
                    filter.status.map(ExecutionStatus::as_str),
                    filter.before_id,
                    limit
                ],
                RawExecution::from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawExecution::into_record).collect()
    }

    /// Records where on its executor an execution runs (see [`crate::executor::Executor::location`]).
    pub fn set_execution_location(&self, id: &str, location: &str) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE executions SET executor_location = ?2 WHERE id = ?1",
            params![id, location],
        )?;
        if changed == 0 {
            return Err(Error::ExecutionNotFound { id: id.to_owned() });
        }
        Ok(())
    }

    /// Where on its executor an execution ran, if that was recorded.
    pub fn execution_location(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT executor_location FROM executions WHERE id = ?1",
                params![id],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Every execution that has ended, oldest first: what retention chooses from.
    pub fn ended_executions(&self) -> Result<Vec<EndedExecution>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, workflow, status, COALESCE(finished_at, created_at) FROM executions
             WHERE status NOT IN ('queued', 'running') ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, workflow, status, ended_at)| {
                let status = status
                    .parse::<ExecutionStatus>()
                    .map_err(|e| corrupt(format!("status of execution {id}"))(Box::new(e)))?;
                Ok(EndedExecution {
                    id,
                    workflow,
                    status,
                    ended_at,
                })
            })
            .collect()
    }

    /// Deletes executions that have ended, with their steps and test results, in one
    /// transaction; one still queued or running is left alone. Returns how many were deleted.
    pub fn delete_ended_executions(&self, ids: &[String]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        {
            let mut stmt = tx.prepare(
                "DELETE FROM executions WHERE id = ?1 AND status NOT IN ('queued', 'running')",
            )?;
            for id in ids {
                deleted += stmt.execute(params![id])?;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Executions queued or running, oldest first: after a crash, those to recover.
    pub fn active_executions(&self) -> Result<Vec<ExecutionRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions
             WHERE status IN ('queued', 'running') ORDER BY id"
        ))?;
        let raws = stmt
            .query_map([], RawExecution::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawExecution::into_record).collect()
    }

    /// Marks an execution that is still queued or running, and its queued or running steps, as
    /// `interrupted` with `reason`, in one transaction. Returns whether the execution changed
    /// (`false`: it had already ended).
    pub fn mark_interrupted(&self, id: &str, reason: &str) -> Result<bool> {
        let now = now_micros();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row(
                "SELECT 1 FROM executions WHERE id = ?1",
                params![id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(Error::ExecutionNotFound { id: id.to_owned() });
        }
        let changed = tx.execute(
            "UPDATE executions SET status = 'interrupted',
                 finished_at = COALESCE(finished_at, ?2), error = ?3
             WHERE id = ?1 AND status IN ('queued', 'running')",
            params![id, now, reason],
        )?;
        if changed > 0 {
            tx.execute(
                "UPDATE steps SET status = 'interrupted',
                     finished_at = COALESCE(finished_at, ?2), message = COALESCE(message, ?3)
                 WHERE execution_id = ?1 AND status IN ('queued', 'running')",
                params![id, now, reason],
            )?;
        }
        tx.commit()?;
        Ok(changed > 0)
    }

    // ---- steps -----------------------------------------------------------------------------

    /// Inserts a step result, or replaces the one with the same execution and path.
    pub fn upsert_step(&self, step: &StepRecord) -> Result<()> {
        upsert_step(&self.conn(), step)
    }

    /// Inserts or updates several steps in one transaction, in order: all of them or none. One
    /// commit for a batch costs about what one step's commit costs, and adds a page or two to the
    /// WAL rather than one per step.
    pub fn upsert_steps(&self, steps: &[StepRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for step in steps {
            upsert_step(&tx, step)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The steps of an execution in tree order (see [`compare_step_paths`]).
    pub fn steps(&self, execution_id: &str) -> Result<Vec<StepRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT path, name, status, exit_code, attempts, started_at, finished_at, message
             FROM steps WHERE execution_id = ?1",
        )?;
        let rows = stmt
            .query_map(params![execution_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i32>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut steps = rows
            .into_iter()
            .map(
                |(path, name, status, exit_code, attempts, started_at, finished_at, message)| {
                    let what = || format!("step {path} of execution {execution_id}");
                    Ok(StepRecord {
                        execution_id: execution_id.to_owned(),
                        status: status
                            .parse::<StepStatus>()
                            .map_err(|e| corrupt(what())(Box::new(e)))?,
                        attempts: to_u32(attempts, what)?,
                        path,
                        name,
                        exit_code,
                        started_at,
                        finished_at,
                        message,
                    })
                },
            )
            .collect::<Result<Vec<_>>>()?;
        steps.sort_by(|a, b| compare_step_paths(&a.path, &b.path));
        Ok(steps)
    }

    // ---- test results ----------------------------------------------------------------------

    /// Records an execution's test results, replacing any recorded before, in one transaction.
    /// Cases past [`MAX_TEST_CASES_PER_EXECUTION`] are dropped and the last report says so.
    pub fn record_test_results(
        &self,
        execution_id: &str,
        reports: &[TestReport],
        cases: &[SourcedTestCase],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM test_cases WHERE execution_id = ?1",
            params![execution_id],
        )?;
        tx.execute(
            "DELETE FROM test_reports WHERE execution_id = ?1",
            params![execution_id],
        )?;
        let dropped = cases.len().saturating_sub(MAX_TEST_CASES_PER_EXECUTION);
        for (index, report) in reports.iter().enumerate() {
            let mut problem = report.problem.clone();
            if dropped > 0 && index + 1 == reports.len() {
                let note = format!(
                    "{dropped} test case(s) past the limit of {MAX_TEST_CASES_PER_EXECUTION} per \
                     execution were not recorded"
                );
                problem = Some(match problem {
                    Some(existing) => format!("{existing}; {note}"),
                    None => note,
                });
            }
            tx.execute(
                "INSERT OR REPLACE INTO test_reports
                     (execution_id, source, kind, runner, cases, problem, passed, failed, skipped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    execution_id,
                    report.source,
                    report.kind.as_str(),
                    report.runner,
                    report.cases as i64,
                    problem,
                    report.runner_counts.map(|c| to_i64(c.passed)),
                    report.runner_counts.map(|c| to_i64(c.failed)),
                    report.runner_counts.map(|c| to_i64(c.skipped)),
                ],
            )?;
        }
        {
            let mut insert = tx.prepare(
                "INSERT INTO test_cases (execution_id, seq, source, test_key, suite, class, name,
                     status, duration_ms, message, failure_type, file, line, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for (seq, sourced) in cases.iter().take(MAX_TEST_CASES_PER_EXECUTION).enumerate() {
                let case = &sourced.case;
                insert.execute(params![
                    execution_id,
                    seq as i64,
                    sourced.source,
                    case.key(),
                    case.suite,
                    case.class,
                    case.name,
                    case.status.as_str(),
                    case.duration_ms
                        .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                    case.message,
                    case.failure_type,
                    case.file,
                    case.line,
                    case.details,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Where an execution's test cases came from: JUnit reports, then scanned logs, by source.
    pub fn test_reports(&self, execution_id: &str) -> Result<Vec<TestReport>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT source, kind, runner, cases, problem, passed, failed, skipped FROM test_reports
             WHERE execution_id = ?1 ORDER BY kind, source",
        )?;
        let rows = stmt
            .query_map(params![execution_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    (
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                    ),
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(source, kind, runner, cases, problem, counts)| {
                let count = |n: i64| u64::try_from(n).unwrap_or(0);
                let runner_counts = match counts {
                    (Some(passed), Some(failed), Some(skipped)) => Some(Counts {
                        passed: count(passed),
                        failed: count(failed),
                        skipped: count(skipped),
                    }),
                    _ => None,
                };
                let what = || format!("test report {source} of execution {execution_id}");
                Ok(TestReport {
                    kind: kind
                        .parse::<ReportKind>()
                        .map_err(|e| corrupt(what())(e.into()))?,
                    cases: usize::try_from(cases).map_err(|e| corrupt(what())(Box::new(e)))?,
                    source,
                    runner,
                    problem,
                    runner_counts,
                })
            })
            .collect()
    }

    /// How many of an execution's test cases ended in each status. Where the cases come from
    /// scanned logs, passed and skipped counts are the runners' own summaries.
    pub fn test_counts(&self, execution_id: &str) -> Result<TestCounts> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT status, COUNT(*) FROM test_cases WHERE execution_id = ?1 GROUP BY status",
        )?;
        let mut counts = TestCounts::default();
        let rows = stmt
            .query_map(params![execution_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (status, count) in rows {
            let count = usize::try_from(count).unwrap_or(0);
            let status = status.parse::<TestStatus>().map_err(|e| {
                corrupt(format!("test case status of execution {execution_id}"))(e.into())
            })?;
            counts.add(status, count);
        }
        drop(stmt);
        drop(conn);
        // A scanned log names only failing tests; its runner's summary says how many passed.
        let mut reported = Counts::default();
        let mut any = false;
        for report in self.test_reports(execution_id)? {
            if let Some(runner) = report
                .runner_counts
                .filter(|_| report.kind == ReportKind::Log)
            {
                reported.passed += runner.passed;
                reported.failed += runner.failed;
                reported.skipped += runner.skipped;
                any = true;
            }
        }
        if any {
            let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            counts.passed = size(reported.passed);
            counts.skipped = size(reported.skipped);
            // The runner counts errors as failures; the cases found say which were errors.
            counts.failed = size(reported.failed)
                .saturating_sub(counts.error)
                .max(counts.failed);
            counts.total = counts.passed + counts.failed + counts.error + counts.skipped;
        }
        Ok(counts)
    }

    /// An execution's test cases matching `filter`: failed and errored cases first, then the
    /// others, each group in recorded order.
    pub fn test_cases(
        &self,
        execution_id: &str,
        filter: &TestCaseFilter,
    ) -> Result<Vec<StoredTestCase>> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let statuses_json = serde_json::to_string(&statuses).unwrap_or_else(|_| "[]".to_owned());
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, source, suite, class, name, status, duration_ms, message, failure_type,
                 file, line, details
             FROM test_cases
             WHERE execution_id = ?1
               AND (?2 = '[]' OR status IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR instr(lower(test_key), lower(?3)) > 0)
             ORDER BY CASE WHEN status IN ('failed', 'error') THEN 0 ELSE 1 END, seq
             LIMIT ?4 OFFSET ?5",
        )?;
        let rows = stmt
            .query_map(
                params![
                    execution_id,
                    statuses_json,
                    filter.name_contains,
                    filter.limit.min(i64::MAX as usize) as i64,
                    filter.offset.min(i64::MAX as usize) as i64,
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(5)?,
                        TestCase {
                            suite: r.get(2)?,
                            class: r.get(3)?,
                            name: r.get(4)?,
                            status: TestStatus::Passed,
                            duration_ms: r
                                .get::<_, Option<i64>>(6)?
                                .map(|ms| u64::try_from(ms).unwrap_or(0)),
                            message: r.get(7)?,
                            failure_type: r.get(8)?,
                            file: r.get(9)?,
                            line: r.get(10)?,
                            details: r.get(11)?,
                        },
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, source, status, mut case)| {
                case.status = status.parse::<TestStatus>().map_err(|e| {
                    corrupt(format!("test case {seq} of execution {execution_id}"))(e.into())
                })?;
                Ok(StoredTestCase {
                    seq: u32::try_from(seq).unwrap_or(u32::MAX),
                    source,
                    case,
                })
            })
            .collect()
    }
}

/// Orders step paths as a tree: segment by segment, a parent before its children, and runs of
/// digits compared as numbers, so `1 < 2 < 2/1 < 2/shard-2 < 2/shard-10 < 10`.
pub fn compare_step_paths(a: &str, b: &str) -> Ordering {
    let mut sa = a.split('/');
    let mut sb = b.split('/');
    loop {
        match (sa.next(), sb.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match natural_cmp(x, y) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// Compares text with digit runs as numbers (any length: compared by significant digits).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let (ta, tb) = (trim_zeros(na), trim_zeros(nb));
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    s.split_at(n)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b'0').count();
    &s[n..]
}

fn upsert_step(conn: &Connection, step: &StepRecord) -> Result<()> {
    // Cached: a run records every step at least once, and parsing the statement each time costs
    // more than executing it.
    conn.prepare_cached(
        "INSERT INTO steps (execution_id, path, name, status, exit_code, attempts, started_at,
             finished_at, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (execution_id, path) DO UPDATE SET
             name = excluded.name, status = excluded.status, exit_code = excluded.exit_code,
             attempts = excluded.attempts, started_at = excluded.started_at,
             finished_at = excluded.finished_at, message = excluded.message",
    )?
    .execute(params![
        step.execution_id,
        step.path,
        step.name,
        step.status.as_str(),
        step.exit_code,
        step.attempts,
        step.started_at,
        step.finished_at,
        step.message,
    ])?;
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
}

/// Applies the migrations the database lacks, all in one transaction: a crash midway leaves the
/// old schema, never half of a new one.
/// Switches to WAL. On a new database two processes opening it at once race for the exclusive
/// lock this needs, and SQLite reports "database is locked" without consulting the busy handler,
/// so the switch is retried here for as long as [`BUSY_TIMEOUT`].
fn set_wal_mode(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated between the check above and taking the write lock.
    let found = user_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as u32 + 1;
        let fail = |source| Error::Migration {
            version,
            description: migration.description,
            source,
        };
        tx.execute_batch(migration.sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
    }
    tx.commit()?;
    Ok(())
}

fn parse_labels(json: &str, workflow: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json)
        .map_err(|e| corrupt(format!("labels of workflow {workflow}"))(Box::new(e)))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u32(n: i64, what: impl FnOnce() -> String) -> Result<u32> {
    u32::try_from(n).map_err(|e| corrupt(what())(Box::new(e)))
}

/// An execution that has ended, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedExecution {
    pub id: String,
    pub workflow: String,
    pub status: ExecutionStatus,
    /// When it finished (when it was created, for one that never recorded an end).
    pub ended_at: TimestampMicros,
}

const EXECUTION_COLUMNS: &str = "id, workflow, workflow_version, snapshot, config, trigger, \
     status, created_at, started_at, finished_at, error, rerun_of, only_failed, executor";

/// An execution row before its text columns are parsed (parsing errors are ours, not SQLite's).
struct RawExecution {
    id: String,
    workflow: String,
    workflow_version: i64,
    snapshot: String,
    config: String,
    trigger: String,
    status: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    error: Option<String>,
    rerun_of: Option<String>,
    only_failed: bool,
    executor: String,
}

impl RawExecution {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            workflow: r.get(1)?,
            workflow_version: r.get(2)?,
            snapshot: r.get(3)?,
            config: r.get(4)?,
            trigger: r.get(5)?,
            status: r.get(6)?,
            created_at: r.get(7)?,
            started_at: r.get(8)?,
            finished_at: r.get(9)?,
            error: r.get(10)?,
            rerun_of: r.get(11)?,
            only_failed: r.get(12)?,
            executor: r.get(13)?,
        })
    }

    fn into_record(self) -> Result<ExecutionRecord> {
        let what = |field: &str| format!("{field} of execution {}", self.id);
        let config =
            serde_json::from_str(&self.config).map_err(|e| corrupt(what("config"))(Box::new(e)))?;
        let trigger = self
            .trigger
            .parse::<Trigger>()
            .map_err(|e| corrupt(what("trigger"))(Box::new(e)))?;
        let status = self
            .status
            .parse::<ExecutionStatus>()
            .map_err(|e| corrupt(what("status"))(Box::new(e)))?;
        let workflow_version = to_u32(self.workflow_version, || what("workflow version"))?;
        let executor = self
            .executor
            .parse::<ExecutorKind>()
            .map_err(|e| corrupt(what("executor"))(Box::new(e)))?;
        Ok(ExecutionRecord {
            id: self.id,
            workflow: self.workflow,
            workflow_version,
            snapshot: self.snapshot,
            config,
            trigger,
            status,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error,
            rerun_of: self.rerun_of,
            only_failed: self.only_failed,
            executor,
        })
    }
}
