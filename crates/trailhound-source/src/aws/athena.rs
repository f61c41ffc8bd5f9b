//! Hunting on Amazon Athena: an `athena://` source runs its plan's queries in the workgroup,
//! polls them with a bounded exponential backoff, pages through their results (`NextToken`,
//! up to 1,000 rows a page, the first row of the first page the header), merges the queries'
//! rows in event-time order (each query is ordered by `eventtime`; an event two queries return
//! is kept once), rebuilds each row into the record the engine reads
//! ([`AthenaPlan::to_record`]) and hands the records to the same scanner as every other source,
//! in batches with watermarks so correlations sweep as time moves on.
//!
//! Athena's answers are untrusted: a row that cannot be rebuilt is counted and named (query id,
//! row number) and the read goes on. A query that FAILED or was CANCELLED ends the read with its
//! id and Athena's reason. An error, or Ctrl-C, stops every query the read started that has not
//! finished (StopQueryExecution). Throttling (TooManyRequestsException) and network errors are
//! retried with backoff a bounded number of times. The SQL only chooses which rows come back:
//! what is found is decided by the engine, as for any other source.
//!
//! The calls here are in `deploy/iam-policy-athena.json`: StartQueryExecution and
//! StopQueryExecution write in IAM's terms, so they are not in the read-only policy.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use trailhound_aws::{Aws, AwsError, classify};
use trailhound_event::printable;

use crate::cursor::{ATHENA_OVERLAP, Cursor, MAX_SEEN};
use crate::input::AthenaTable;
use crate::read::{ATHENA_PRICE_PER_TB, AthenaCursor, AthenaPlan, RowToRecord};
use crate::scan::{Fetched, MAX_PROBLEMS_SHOWN, Problem, ProblemKind};

/// How hard and how fast the reader asks.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Attempts per request when throttled or unreachable.
    pub attempts: u32,
    /// Wait after the first throttle; doubled after each, up to `max_backoff`.
    pub backoff: StdDuration,
    pub max_backoff: StdDuration,
    /// First wait between two polls of running queries; doubled up to `max_poll`.
    pub poll: StdDuration,
    pub max_poll: StdDuration,
    /// Rows a result page asks for (Athena's most is 1,000).
    pub page_rows: i32,
    /// Records per object handed to the scanner.
    pub object_rows: usize,
    /// Records per batch: correlations sweep after each.
    pub batch_rows: usize,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            attempts: 8,
            backoff: StdDuration::from_millis(500),
            max_backoff: StdDuration::from_secs(20),
            poll: StdDuration::from_millis(250),
            max_poll: StdDuration::from_secs(5),
            page_rows: 1000,
            object_rows: 1000,
            batch_rows: 20_000,
        }
    }
}

impl Pacing {
    /// The wait before attempt `attempt + 1` after a throttle (attempt 0 is the first retry).
    pub fn backoff(&self, attempt: u32) -> StdDuration {
        self.backoff.saturating_mul(1 << attempt.min(16)).min(self.max_backoff)
    }
}

/// Pages in a row without a usable row after which a query's answer is refused.
const MAX_EMPTY_PAGES: usize = 1000;

/// What the read did, for the run summary.
#[derive(Debug, Default)]
pub struct AthenaCounters {
    pub queries: AtomicU64,
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub pages: AtomicU64,
    pub rows: AtomicU64,
    /// Rows that could not be rebuilt into a record (each named as met).
    pub bad_rows: AtomicU64,
    /// Rows of an event another query of the plan had already returned.
    pub duplicates: AtomicU64,
    /// Athena's `Statistics.DataScannedInBytes`, summed over the queries.
    pub bytes_scanned: AtomicU64,
    /// Queries whose statistics gave no bytes scanned.
    pub unmeasured: AtomicU64,
    /// Rows of events the last incremental run read (in the overlap before its cursor).
    pub already_read: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Records of the merged rows, and the time before which every event has been handed over.
#[derive(Debug)]
pub struct Batch {
    pub objects: Vec<Fetched>,
    pub watermark: Option<DateTime<Utc>>,
}

/// A running read of one `athena://` source.
pub struct AthenaRead {
    /// Batches in event-time order; the channel closes when the read ends.
    pub batches: mpsc::Receiver<Batch>,
    pub counters: std::sync::Arc<AthenaCounters>,
    /// How the read ended: an error (every query it started stopped) or what it finished.
    pub done: tokio::task::JoinHandle<Result<Finished, String>>,
}

/// A read that ended well.
#[derive(Debug)]
pub struct Finished {
    /// The query ids.
    pub queries: Vec<String>,
    /// The cursor to keep for the next incremental run, as the case store keeps it.
    pub cursor: Cursor,
}

/// Why a read stopped early.
#[derive(Debug)]
enum Stop {
    Interrupted,
    Failed(String),
}

impl From<AwsError> for Stop {
    fn from(err: AwsError) -> Stop {
        Stop::Failed(err.to_string())
    }
}

/// Reads currently running (Ctrl-C stops their queries; otherwise it ends the process).
static READING: AtomicUsize = AtomicUsize::new(0);
static INTERRUPT: OnceLock<watch::Sender<bool>> = OnceLock::new();

/// A receiver told of Ctrl-C. The first call starts the watcher on `runtime`: once it listens,
/// Ctrl-C no longer ends the process by itself, so outside an Athena read it exits as the
/// default handler would (status 130), and a second Ctrl-C during a read does too.
fn interrupt(runtime: &tokio::runtime::Handle) -> watch::Receiver<bool> {
    let sender = INTERRUPT.get_or_init(|| {
        let (sender, _) = watch::channel(false);
        let notify = sender.clone();
        runtime.spawn(async move {
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                if READING.load(Ordering::SeqCst) == 0 || *notify.borrow() {
                    std::process::exit(130);
                }
                tracing::warn!("interrupted: stopping the Athena queries this run started (Ctrl-C again to quit now)");
                notify.send_replace(true);
            }
        });
        sender
    });
    sender.send_replace(false);
    sender.subscribe()
}

/// Waits `wait`, or less if interrupted.
async fn pause(wait: StdDuration, interrupt: &mut watch::Receiver<bool>) -> Result<(), Stop> {
    let interrupted = async {
        if interrupt.wait_for(|stop| *stop).await.is_err() {
            // No one can interrupt any more: wait out the pause.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => Ok(()),
        () = interrupted => Err(Stop::Interrupted),
    }
}

/// Runs `call` until it succeeds; throttling and network errors are retried up to
/// `pacing.attempts` times in all, with exponential backoff.
async fn retried<T, F, Fut>(
    pacing: &Pacing,
    counters: &AthenaCounters,
    interrupt: &mut watch::Receiver<bool>,
    mut call: F,
) -> Result<T, Stop>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let mut attempt = 0;
    loop {
        if *interrupt.borrow() {
            return Err(Stop::Interrupted);
        }
        add(&counters.requests, 1);
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_transient() && attempt + 1 < pacing.attempts => {
                if matches!(err, AwsError::Throttled { .. }) {
                    add(&counters.throttled, 1);
                }
                let wait = pacing.backoff(attempt);
                tracing::debug!("{err}: trying again in {wait:?}");
                attempt += 1;
                pause(wait, interrupt).await?;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// What one read needs, shared by its steps.
struct Run {
    client: aws_sdk_athena::Client,
    name: String,
    region: String,
    table: AthenaTable,
    output: Option<String>,
    pacing: Pacing,
    counters: std::sync::Arc<AthenaCounters>,
    to_record: RowToRecord,
    /// Problems shown so far (shared with the scanner's cap).
    shown: std::sync::Arc<AtomicUsize>,
    cursor: AthenaCursor,
}

/// Starts the read of `table` with `plan` on `runtime`.
pub fn read(
    aws: &Aws,
    runtime: &tokio::runtime::Handle,
    table: &AthenaTable,
    plan: &AthenaPlan,
    output: Option<String>,
    pacing: Pacing,
    shown: std::sync::Arc<AtomicUsize>,
) -> AthenaRead {
    let (tx, rx) = mpsc::channel(2);
    let counters = std::sync::Arc::new(AthenaCounters::default());
    let run = Run {
        client: aws.athena(false),
        name: crate::Input::Athena(table.clone()).describe(),
        region: aws.region().to_string(),
        table: table.clone(),
        output,
        pacing,
        counters: counters.clone(),
        to_record: plan.to_record,
        shown,
        cursor: plan.cursor.clone(),
    };
    let queries = plan.queries.clone();
    let mut interrupt = interrupt(runtime);
    let done = runtime.spawn(async move {
        READING.fetch_add(1, Ordering::SeqCst);
        let mut started: Vec<String> = Vec::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let result = run
            .all(&queries, &mut started, &mut finished, &mut interrupt, &tx)
            .await;
        let outcome = match result {
            Ok(seen) => Ok(Finished {
                queries: started,
                cursor: Cursor {
                    position: run.cursor.until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    seen,
                },
            }),
            Err(stop) => Err(run
                .give_up(stop, started, &finished, "the queries this run had started: ")
                .await),
        };
        READING.fetch_sub(1, Ordering::SeqCst);
        outcome
    });
    AthenaRead {
        batches: rx,
        counters,
        done,
    }
}

impl Run {
    async fn all(
        &self,
        queries: &[String],
        started: &mut Vec<String>,
        finished: &mut BTreeSet<String>,
        interrupt: &mut watch::Receiver<bool>,
        tx: &mpsc::Sender<Batch>,
    ) -> Result<BTreeSet<String>, Stop> {
        for sql in queries {
            let id = self.start(sql, interrupt).await?;
            tracing::debug!("{}: started Athena query {id}", self.name);
            add(&self.counters.queries, 1);
            started.push(id);
        }
        self.wait(started, finished, interrupt).await?;
        let mut streams: Vec<Stream> = started.iter().map(|id| Stream::new(id.clone())).collect();
        self.merge(&mut streams, interrupt, tx).await
    }

    async fn start(&self, sql: &str, interrupt: &mut watch::Receiver<bool>) -> Result<String, Stop> {
        let client = &self.client;
        let context = QueryExecutionContext::builder()
            .database(self.table.database.clone())
            .build();
        let results = self
            .output
            .as_ref()
            .map(|location| ResultConfiguration::builder().output_location(location).build());
        let started = retried(&self.pacing, &self.counters, interrupt, || async {
            client
                .start_query_execution()
                .query_string(sql)
                .query_execution_context(context.clone())
                .set_work_group(self.table.workgroup.clone())
                .set_result_configuration(results.clone())
                .send()
                .await
                .map_err(|e| classify(&e, &self.name, "athena:StartQueryExecution", &self.region))
        })
        .await;
        let started = match started {
            Ok(started) => started,
            Err(Stop::Failed(message)) if message.contains("output location") || message.contains("OutputLocation") => {
                return Err(Stop::Failed(format!(
                    "{message} (give --athena-output s3://BUCKET/PREFIX/, or set the workgroup's query result location)"
                )));
            }
            Err(stop) => return Err(stop),
        };
        // The id is printed and sent back: only the shape Athena gives (a UUID) is taken.
        match started.query_execution_id() {
            Some(id)
                if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Ok(id.to_string())
            }
            _ => Err(Stop::Failed(format!(
                "{}: Athena started a query but gave no usable query id",
                self.name
            ))),
        }
    }

    /// Polls the queries until every one has succeeded; the first to fail or be cancelled
    /// ends the read.
    async fn wait(
        &self,
        ids: &[String],
        finished: &mut BTreeSet<String>,
        interrupt: &mut watch::Receiver<bool>,
    ) -> Result<(), Stop> {
        let client = &self.client;
        let mut wait = self.pacing.poll;
        loop {
            let pending: Vec<&String> = ids.iter().filter(|id| !finished.contains(*id)).collect();
            for id in pending {
                let answer = retried(&self.pacing, &self.counters, interrupt, || async {
                    client
                        .get_query_execution()
                        .query_execution_id(id)
                        .send()
                        .await
                        .map_err(|e| classify(&e, &self.name, "athena:GetQueryExecution", &self.region))
                })
                .await?;
                let execution = answer.query_execution();
                let status = execution.and_then(|e| e.status());
                match status.and_then(|s| s.state()) {
                    Some(QueryExecutionState::Succeeded) => {
                        finished.insert(id.clone());
                        match execution
                            .and_then(|e| e.statistics())
                            .and_then(|s| s.data_scanned_in_bytes())
                        {
                            Some(bytes) => add(&self.counters.bytes_scanned, u64::try_from(bytes).unwrap_or(0)),
                            None => add(&self.counters.unmeasured, 1),
                        }
                    }
                    Some(state @ (QueryExecutionState::Failed | QueryExecutionState::Cancelled)) => {
                        finished.insert(id.clone());
                        let reason = status
                            .and_then(|s| s.state_change_reason())
                            .or_else(|| status.and_then(|s| s.athena_error()).and_then(|e| e.error_message()))
                            .unwrap_or("Athena gave no reason");
                        return Err(Stop::Failed(format!(
                            "{}: Athena query {} {}: {}",
                            self.name,
                            printable(id),
                            state.as_str(),
                            printable(reason)
                        )));
                    }
                    _ => {}
                }
            }
            if ids.iter().all(|id| finished.contains(id)) {
                return Ok(());
            }
            pause(wait, interrupt).await?;
            wait = wait.saturating_mul(2).min(self.pacing.max_poll);
        }
    }

    /// Why a run stopped, once the queries it started that had not finished are stopped
    /// (named after `stopped`, e.g. "query ").
    async fn give_up(
        &self,
        stop: Stop,
        started: impl IntoIterator<Item = String>,
        finished: &BTreeSet<String>,
        stopped: &str,
    ) -> String {
        let running: Vec<String> = started.into_iter().filter(|id| !finished.contains(id)).collect();
        let ids = self.stop(&running).await;
        let what = match stop {
            Stop::Interrupted => format!("{}: interrupted", self.name),
            Stop::Failed(message) => message,
        };
        if ids.is_empty() {
            what
        } else {
            format!("{what} (stopped {stopped}{})", ids.join(", "))
        }
    }

    /// Stops `ids` (best effort: a query that finished meanwhile cannot be stopped, and says so).
    async fn stop(&self, ids: &[String]) -> Vec<String> {
        let client = &self.client;
        // Stopping must not be interrupted itself.
        let (_keep, mut never) = watch::channel(false);
        let mut stopped = Vec::new();
        for id in ids {
            let result = retried(&self.pacing, &self.counters, &mut never, || async {
                client
                    .stop_query_execution()
                    .query_execution_id(id)
                    .send()
                    .await
                    .map_err(|e| classify(&e, &self.name, "athena:StopQueryExecution", &self.region))
            })
            .await;
            match result {
                Ok(_) => stopped.push(id.clone()),
                Err(Stop::Failed(message)) => tracing::warn!("Athena query {id} could not be stopped: {message}"),
                Err(Stop::Interrupted) => {}
            }
        }
        stopped
    }

    /// Pages through every stream, merging rows by event time into batches. Events the last
    /// incremental run read are skipped; returns the ids of the events handed over in the
    /// overlap before this read's end (none past [`MAX_SEEN`]: the next run reads it all again).
    async fn merge(
        &self,
        streams: &mut [Stream],
        interrupt: &mut watch::Receiver<bool>,
        tx: &mpsc::Sender<Batch>,
    ) -> Result<BTreeSet<String>, Stop> {
        let mut batch: Vec<String> = Vec::new();
        let overlap = self.cursor.until - ATHENA_OVERLAP;
        let mut overlap_ids: BTreeSet<String> = BTreeSet::new();
        let mut overflow = false;
        // Events already handed over at the current time (two queries may return one event).
        let mut now: Option<DateTime<Utc>> = None;
        let mut seen_now: BTreeSet<String> = BTreeSet::new();
        loop {
            for stream in streams.iter_mut() {
                // A page may hold only bad rows, but an answer that never ends is refused.
                let mut empty = 0;
                while stream.rows.is_empty() && !stream.done {
                    self.page(stream, interrupt).await?;
                    empty += 1;
                    if empty > MAX_EMPTY_PAGES {
                        return Err(Stop::Failed(format!(
                            "{}: Athena query {} gave {MAX_EMPTY_PAGES} pages in a row without a usable row",
                            self.name, stream.id
                        )));
                    }
                }
            }
            let next = streams
                .iter()
                .enumerate()
                .filter_map(|(n, s)| s.rows.front().map(|row| (row.time, n)))
                .min();
            let Some((time, index)) = next else { break };
            if batch.len() >= self.pacing.batch_rows {
                // Every row left is at `time` or later; a second's margin for rows whose text
                // order (Athena's ORDER BY) differs from their time order by a fraction.
                let watermark = time - chrono::Duration::seconds(1);
                self.send(std::mem::take(&mut batch), Some(watermark), tx).await?;
            }
            let Some(row) = streams[index].rows.pop_front() else {
                break;
            };
            if now != Some(time) {
                now = Some(time);
                seen_now.clear();
            }
            if let Some(id) = &row.event_id {
                if !seen_now.insert(id.clone()) {
                    add(&self.counters.duplicates, 1);
                    continue;
                }
                if let Some((position, read_before)) = &self.cursor.resume
                    && time <= *position
                    && read_before.contains(id)
                {
                    add(&self.counters.already_read, 1);
                    continue;
                }
                if time >= overlap && !overflow {
                    overlap_ids.insert(id.clone());
                    if overlap_ids.len() > MAX_SEEN {
                        overflow = true;
                        overlap_ids.clear();
                    }
                }
            }
            batch.push(row.record);
        }
        self.send(batch, None, tx).await?;
        Ok(overlap_ids)
    }

    async fn send(
        &self,
        records: Vec<String>,
        watermark: Option<DateTime<Utc>>,
        tx: &mpsc::Sender<Batch>,
    ) -> Result<(), Stop> {
        if records.is_empty() && watermark.is_none() {
            return Ok(());
        }
        let objects = records
            .chunks(self.pacing.object_rows.max(1))
            .map(|chunk| {
                let mut bytes = Vec::with_capacity(chunk.iter().map(|r| r.len() + 1).sum());
                for record in chunk {
                    bytes.extend_from_slice(record.as_bytes());
                    bytes.push(b'\n');
                }
                Fetched::Object {
                    name: self.name.clone(),
                    bytes,
                }
            })
            .collect();
        tx.send(Batch { objects, watermark })
            .await
            .map_err(|_| Stop::Failed(format!("{}: the reader stopped taking rows", self.name)))
    }

    /// Fetches the next page of `stream`.
    async fn page(&self, stream: &mut Stream, interrupt: &mut watch::Receiver<bool>) -> Result<(), Stop> {
        let client = &self.client;
        let token = stream.token.clone();
        let page = retried(&self.pacing, &self.counters, interrupt, || async {
            client
                .get_query_results()
                .query_execution_id(&stream.id)
                .max_results(self.pacing.page_rows)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| classify(&e, &self.name, "athena:GetQueryResults", &self.region))
        })
        .await?;
        add(&self.counters.pages, 1);
        for row in page.result_set().map(|r| r.rows()).unwrap_or_default() {
            let cells: Vec<Option<String>> = row
                .data()
                .iter()
                .map(|datum| datum.var_char_value().map(str::to_string))
                .collect();
            stream.take(cells, self);
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => {
                if stream.token.as_deref() == Some(next) {
                    return Err(Stop::Failed(format!(
                        "{}: Athena query {} gave the same NextToken twice",
                        self.name, stream.id
                    )));
                }
                stream.token = Some(next.to_string());
            }
            _ => stream.done = true,
        }
        Ok(())
    }

    fn bad_row(&self, id: &str, row: u64, message: String) {
        add(&self.counters.bad_rows, 1);
        // Rows are numbered from 1 after the header, as in the query's results.
        let problem = Problem {
            file: format!("{} query {id} row {row}", self.name),
            record: None,
            line: None,
            kind: ProblemKind::Record,
            message,
        };
        if self.shown.fetch_add(1, Ordering::Relaxed) < MAX_PROBLEMS_SHOWN {
            tracing::warn!("{problem}");
        } else {
            tracing::debug!("{problem}");
        }
    }
}

/// One row, rebuilt.
struct Row {
    time: DateTime<Utc>,
    event_id: Option<String>,
    record: String,
}

/// The results of one query as they are paged.
struct Stream {
    id: String,
    token: Option<String>,
    done: bool,
    /// The column names (the first row of the first page).
    header: Option<Vec<String>>,
    time_column: Option<usize>,
    id_column: Option<usize>,
    /// Data rows met, the header not counted.
    row_number: u64,
    rows: VecDeque<Row>,
}

impl Stream {
    fn new(id: String) -> Stream {
        Stream {
            id,
            token: None,
            done: false,
            header: None,
            time_column: None,
            id_column: None,
            row_number: 0,
            rows: VecDeque::new(),
        }
    }

    /// Takes one result row: the header, or a row to rebuild.
    fn take(&mut self, cells: Vec<Option<String>>, run: &Run) {
        let Some(header) = &self.header else {
            let names: Vec<String> = cells.into_iter().map(Option::unwrap_or_default).collect();
            let find = |column: &str| names.iter().position(|n| n.eq_ignore_ascii_case(column));
            self.time_column = find("eventtime");
            self.id_column = find("eventid");
            self.header = Some(names);
            return;
        };
        self.row_number += 1;
        add(&run.counters.rows, 1);
        let cell = |column: Option<usize>| column.and_then(|n| cells.get(n)).and_then(Option::as_deref);
        let Some(time) = cell(self.time_column).and_then(trailhound_event::parse_event_time) else {
            run.bad_row(&self.id, self.row_number, "no eventtime that reads as a time".into());
            return;
        };
        match (run.to_record)(header, &cells) {
            Ok(record) => {
                let event_id = cell(self.id_column).map(str::to_string);
                self.rows.push_back(Row { time, event_id, record });
            }
            Err(message) => run.bad_row(&self.id, self.row_number, message),
        }
    }
}

/// Runs one statement that returns no rows (DDL: `trailhound athena table --create`) in
/// `table`'s workgroup, with its database as the query's context, and waits for it: started,
/// polled and retried as a read's queries are, stopped on Ctrl-C. A FAILED or CANCELLED
/// statement is an error with Athena's reason. Returns the query id.
pub fn execute(
    aws: &Aws,
    runtime: &tokio::runtime::Handle,
    table: &AthenaTable,
    sql: &str,
    output: Option<String>,
) -> Result<String, String> {
    let run = Run {
        client: aws.athena(false),
        name: crate::Input::Athena(table.clone()).describe(),
        region: aws.region().to_string(),
        table: table.clone(),
        output,
        pacing: Pacing::default(),
        counters: std::sync::Arc::new(AthenaCounters::default()),
        to_record: |_, _| Err("a statement returns no rows".to_string()),
        shown: std::sync::Arc::new(AtomicUsize::new(0)),
        cursor: AthenaCursor {
            key: String::new(),
            until: Utc::now(),
            resume: None,
        },
    };
    let mut interrupt = interrupt(runtime);
    let sql = sql.to_string();
    runtime.block_on(async move {
        READING.fetch_add(1, Ordering::SeqCst);
        let mut finished = BTreeSet::new();
        let mut started = None;
        let result = async {
            let id = run.start(&sql, &mut interrupt).await?;
            started = Some(id.clone());
            run.wait(std::slice::from_ref(&id), &mut finished, &mut interrupt)
                .await?;
            Ok::<String, Stop>(id)
        }
        .await;
        let outcome = match result {
            Ok(query) => Ok(query),
            Err(stop) => Err(run.give_up(stop, started, &finished, "query ").await),
        };
        READING.fetch_sub(1, Ordering::SeqCst);
        outcome
    })
}

/// The cost of scanning `bytes` at Athena's price.
pub fn cost(bytes: f64) -> f64 {
    bytes / 1e12 * ATHENA_PRICE_PER_TB
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn throttled() -> AwsError {
        AwsError::Throttled {
            resource: "athena://db.t".into(),
            action: "athena:GetQueryResults".into(),
        }
    }

    #[test]
    fn throttling_is_retried_with_a_bounded_backoff() {
        let pacing = Pacing::default();
        assert_eq!(pacing.backoff(0), StdDuration::from_millis(500));
        assert_eq!(pacing.backoff(3), StdDuration::from_secs(4));
        assert_eq!(pacing.backoff(10), StdDuration::from_secs(20), "bounded");
        assert_eq!(pacing.backoff(u32::MAX), StdDuration::from_secs(20));

        // Short waits, for the test's sake.
        let pacing = Pacing {
            backoff: StdDuration::from_millis(10),
            max_backoff: StdDuration::from_millis(40),
            ..Pacing::default()
        };
        let rt = runtime();
        let counters = AthenaCounters::default();
        let (_tx, mut rx) = watch::channel(false);
        // Throttled three times, then answered.
        let mut calls = 0;
        let started = std::time::Instant::now();
        let result = rt.block_on(retried(&pacing, &counters, &mut rx, || {
            calls += 1;
            let n = calls;
            async move { if n <= 3 { Err(throttled()) } else { Ok(n) } }
        }));
        assert!(matches!(result, Ok(4)), "{result:?}");
        assert_eq!(counters.throttled.load(Ordering::Relaxed), 3);
        assert_eq!(counters.requests.load(Ordering::Relaxed), 4);
        let waited = started.elapsed();
        assert!(
            waited >= StdDuration::from_millis(70) && waited < StdDuration::from_secs(5),
            "{waited:?}"
        );

        // Always throttled: gives up after `attempts`, naming the action.
        let counters = AthenaCounters::default();
        let result: Result<(), Stop> = rt.block_on(retried(&pacing, &counters, &mut rx, || async { Err(throttled()) }));
        match result {
            Err(Stop::Failed(message)) => assert!(
                message.contains("throttled by AWS (athena:GetQueryResults)"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(counters.requests.load(Ordering::Relaxed), 8);

        // Other errors are not retried.
        let counters = AthenaCounters::default();
        let denied = || async {
            Err::<(), _>(AwsError::AccessDenied {
                resource: "athena://db.t".into(),
                action: "athena:StartQueryExecution".into(),
            })
        };
        assert!(rt.block_on(retried(&pacing, &counters, &mut rx, denied)).is_err());
        assert_eq!(counters.requests.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_interrupt_ends_a_backoff() {
        let rt = runtime();
        let pacing = Pacing::default();
        let started = std::time::Instant::now();
        let counters = AthenaCounters::default();
        let (tx, mut rx) = watch::channel(false);
        let result: Result<(), Stop> = rt.block_on(async {
            tokio::spawn(async move {
                tokio::time::sleep(StdDuration::from_millis(100)).await;
                tx.send_replace(true);
                // Kept alive until the waiter has seen it.
                tokio::time::sleep(StdDuration::from_secs(1)).await;
            });
            retried(&pacing, &counters, &mut rx, || async { Err(throttled()) }).await
        });
        assert!(matches!(result, Err(Stop::Interrupted)), "{result:?}");
        assert_eq!(counters.requests.load(Ordering::Relaxed), 1);
        assert!(
            started.elapsed() < StdDuration::from_millis(450),
            "the 500 ms backoff was cut short"
        );
    }

    #[test]
    fn sizes_and_costs() {
        assert_eq!(crate::decimal_size(1_234_567_890.0), "1.23 GB");
        assert_eq!(crate::decimal_size(12.0), "12.00 B");
        assert!((cost(2e12) - 10.0).abs() < 1e-9);
    }
}
