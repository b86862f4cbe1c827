//! Signed checkpoints of the chain's head: what makes a shortened trail visible.
//!
//! The chain proves that nothing inside it changed, but not that it is whole at
//! its end: delete the newest events and what is left still links up. So the
//! portal signs the head (its id and hash, the trail it belongs to, the time)
//! with HMAC-SHA256 under a key kept in a file the database cannot read, and
//! keeps every checkpoint twice: a row in `audit_checkpoints` and a line in an
//! append-only file next to the key. A verification takes the checkpoint with
//! the highest head id whose MAC checks, from either place, and requires the
//! chain to still hold that event with that hash. Since every hash covers the
//! one before it, that one event vouches for every event up to it.
//!
//! What remains possible for whoever controls the database: delete checkpoint
//! rows (the file keeps them), insert rows (without the key their MAC fails and
//! they are reported as forged), and remove or change events newer than the last
//! checkpoint. Checkpoints are written at start, while the head moves (every
//! `audit_checkpoint_seconds`) and after every verification.

use super::store::head;
use crate::ssr::ServiceError;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::{PgPool, Row};
use std::fmt;
use std::path::{Path, PathBuf};

/// The key's length: 32 random bytes.
pub const KEY_LEN: usize = 32;

/// The HMAC key that signs checkpoints. Never printed.
#[derive(Clone)]
pub struct CheckpointKey([u8; KEY_LEN]);

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckpointKey(…)")
    }
}

/// Why the key file cannot be used: the portal does not start without it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit checkpoint key {path}: {why}")]
pub struct KeyFileError {
    pub path: String,
    pub why: String,
}

impl CheckpointKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads the key file, or creates it (32 random bytes, mode 0600, in a
    /// directory of mode 0700 when it has to be made) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyFileError> {
        let fail = |why: String| KeyFileError {
            path: path.display().to_string(),
            why,
        };
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match Self::create(path) {
                    Ok(key) => {
                        tracing::info!(key = %path.display(), "created the audit checkpoint key");
                        return Ok(key);
                    }
                    // Another process made it first: read theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(fail(format!("cannot be created: {e}"))),
                }
            }
            Err(e) => return Err(fail(format!("cannot be read: {e}"))),
            Ok(_) => {}
        }
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        if !meta.is_file() {
            return Err(fail("is not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(fail(format!(
                    "other users may read or change it (mode {mode:04o}); only the portal's own user may: chmod 600 {}",
                    path.display()
                )));
            }
        }
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        let bytes: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            fail(format!(
                "holds {} bytes; a checkpoint key is exactly {KEY_LEN} random bytes \
                 (the portal makes one when the file does not exist)",
                bytes.len()
            ))
        })?;
        Ok(Self(bytes))
    }

    fn create(path: &Path) -> std::io::Result<Self> {
        use rand::RngCore;
        use std::io::Write;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder.create(dir)?;
            }
        }
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        Ok(Self(bytes))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }

    /// The hex MAC of a checkpoint.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let mut mac = self.mac();
        mac.update(checkpoint.message().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `mac_hex` is this key's MAC of `checkpoint` (compared in constant time).
    pub fn verifies(&self, checkpoint: &Checkpoint, mac_hex: &str) -> bool {
        let Ok(given) = hex::decode(mac_hex) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(checkpoint.message().as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

/// The head of a trail at a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The database the trail lives in.
    pub database: String,
    /// The hash of the trail's first event.
    pub first_hash: String,
    pub head_id: i64,
    pub head_hash: String,
    pub at: DateTime<Utc>,
}

impl Checkpoint {
    /// What the MAC covers: a label and every field, as a JSON array (so no
    /// field can run into the next).
    pub fn message(&self) -> String {
        serde_json::json!([
            "recovery-portal audit checkpoint v1",
            self.database,
            self.first_hash,
            self.head_id,
            self.head_hash,
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        ])
        .to_string()
    }
}

/// One line of the checkpoint file.
#[derive(Serialize, Deserialize)]
struct Line {
    database: String,
    first_hash: String,
    head_id: i64,
    head_hash: String,
    at: DateTime<Utc>,
    mac: String,
}

/// Where a checkpoint was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Row(i64),
    Line { file: String, line: u64 },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Row(id) => write!(f, "row {id} of audit_checkpoints"),
            Source::Line { file, line } => write!(f, "line {line} of {file}"),
        }
    }
}

/// Which trail is being checked: checkpoints of other databases signed with
/// the same key (a key shared between portals) are left aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trail {
    pub database: String,
    /// The first event's hash; none when the trail has no event 1.
    pub first_hash: Option<String>,
}

impl Trail {
    /// The trail of the database `pool` reaches.
    pub async fn of(pool: &PgPool) -> Result<Self, ServiceError> {
        let database: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(pool)
            .await?;
        let first_hash: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_events WHERE id = 1")
                .fetch_optional(pool)
                .await?;
        Ok(Self {
            database,
            first_hash,
        })
    }

    /// A checkpoint of this trail: same database, or (a renamed or restored
    /// database) the same first event. A trail rewritten from event 1 under the
    /// same database name still matches by its name, and so fails the check.
    pub fn owns(&self, c: &Checkpoint) -> bool {
        c.database == self.database || self.first_hash.as_deref() == Some(c.first_hash.as_str())
    }
}

/// A checkpoint that does not check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forged {
    pub source: Source,
    pub why: String,
}

impl fmt::Display for Forged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint {}: {}", self.source, self.why)
    }
}

/// How many forged checkpoints are kept by name (the count has them all).
const FORGED_NAMED: usize = 5;

/// Every checkpoint read, in constant memory: the newest of this trail that
/// checks, and those that do not.
#[derive(Clone, Debug, Default)]
pub struct Survey {
    pub newest: Option<(Checkpoint, Source)>,
    pub valid: u64,
    pub forged: Vec<Forged>,
    pub forged_count: u64,
}

impl Survey {
    /// Takes one checkpoint (or why its line could not be read).
    pub fn consider(
        &mut self,
        key: &CheckpointKey,
        trail: &Trail,
        source: Source,
        read: Result<(Checkpoint, String), String>,
    ) {
        let checkpoint = match read {
            Ok((c, mac)) if key.verifies(&c, &mac) => c,
            Ok(_) => {
                return self.forge(
                    source,
                    "its MAC does not check: it was not signed with this portal's key (forged or altered)"
                        .into(),
                )
            }
            Err(why) => return self.forge(source, why),
        };
        self.valid += 1;
        if !trail.owns(&checkpoint) {
            return;
        }
        // The highest head wins; of two for the same head, the earlier (a later
        // one with another hash would be a checkpoint of a rewritten chain).
        let better = match &self.newest {
            None => true,
            Some((n, _)) => {
                checkpoint.head_id > n.head_id
                    || (checkpoint.head_id == n.head_id && checkpoint.at < n.at)
            }
        };
        if better {
            self.newest = Some((checkpoint, source));
        }
    }

    fn forge(&mut self, source: Source, why: String) {
        self.forged_count += 1;
        if self.forged.len() < FORGED_NAMED {
            self.forged.push(Forged { source, why });
        }
    }

    /// One sentence naming the forged checkpoints, if any.
    pub fn forged_sentence(&self) -> Option<String> {
        let first = self.forged.first()?;
        Some(if self.forged_count == 1 {
            format!("a forged {first}")
        } else {
            format!(
                "{} forged checkpoints, the first: {first}",
                self.forged_count
            )
        })
    }
}

/// What the chain is compared with: a checkpoint, or a head the auditor kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub head_id: i64,
    pub head_hash: String,
    pub kind: AnchorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorKind {
    Checkpoint {
        at: DateTime<Utc>,
        source: Source,
    },
    /// `audit verify --expect-head`.
    Expected,
}

impl Anchor {
    /// The anchor of a checkpoint.
    pub fn of(checkpoint: &Checkpoint, source: Source) -> Self {
        Self {
            head_id: checkpoint.head_id,
            head_hash: checkpoint.head_hash.clone(),
            kind: AnchorKind::Checkpoint {
                at: checkpoint.at,
                source,
            },
        }
    }

    fn says(&self) -> String {
        match &self.kind {
            AnchorKind::Checkpoint { at, source } => format!(
                "the last checkpoint (signed {}, {source}) recorded",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            AnchorKind::Expected => "the head you expected (--expect-head) is".into(),
        }
    }
}

/// The chain no longer holds its anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorBreak {
    /// Events `from..=to` are gone; the chain ends at `ends` (0: no events).
    Missing {
        from: i64,
        to: i64,
        ends: i64,
        anchor: Anchor,
    },
    /// The anchor's event is there with another hash.
    Rewritten { anchor: Anchor, found: String },
}

impl AnchorBreak {
    /// The first event that does not fit.
    pub fn event_id(&self) -> i64 {
        match self {
            AnchorBreak::Missing { from, .. } => *from,
            AnchorBreak::Rewritten { anchor, .. } => anchor.head_id,
        }
    }
}

impl fmt::Display for AnchorBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorBreak::Missing {
                from,
                to,
                ends,
                anchor,
            } => {
                let events = if from == to {
                    format!("event {from} is missing")
                } else {
                    format!("events {from}–{to} are missing")
                };
                let now = if *ends == 0 {
                    "the chain now has no events".to_string()
                } else if ends >= to {
                    format!("the chain has no event {to}")
                } else {
                    format!("the chain now ends at {ends}")
                };
                write!(
                    f,
                    "{events}: {} head {} with hash {}, {now}",
                    anchor.says(),
                    anchor.head_id,
                    anchor.head_hash
                )
            }
            AnchorBreak::Rewritten { anchor, found } => write!(
                f,
                "event {id} was rewritten: {} head {id} with hash {}, the chain now has hash {found} there",
                anchor.says(),
                anchor.head_hash,
                id = anchor.head_id,
            ),
        }
    }
}

/// Compares the chain with an anchor: the chain ends at `chain_end` (its highest
/// id) and holds `hash_at_anchor` at the anchor's id.
pub fn check_anchor(
    anchor: &Anchor,
    chain_end: i64,
    hash_at_anchor: Option<&str>,
) -> Result<(), AnchorBreak> {
    match hash_at_anchor {
        Some(h) if h == anchor.head_hash => Ok(()),
        Some(h) => Err(AnchorBreak::Rewritten {
            anchor: anchor.clone(),
            found: h.to_string(),
        }),
        None => Err(AnchorBreak::Missing {
            from: if chain_end < anchor.head_id {
                chain_end + 1
            } else {
                anchor.head_id
            },
            to: anchor.head_id,
            ends: chain_end,
            anchor: anchor.clone(),
        }),
    }
}

/// What [`Checkpoints::write`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    Signed(Checkpoint),
    /// The head has not moved since the last checkpoint.
    Unchanged,
    /// There are no events (or no event 1) to anchor.
    Empty,
    /// The chain no longer holds the last checkpoint: nothing is signed, so a
    /// shortened or rewritten chain never gets a checkpoint that would hide it.
    Refused(AnchorBreak),
}

/// The newest checkpoint this process knows, so that the periodic writer does
/// not read the whole file every time.
#[derive(Default)]
struct Known {
    loaded: bool,
    best: Option<(Checkpoint, Source)>,
}

/// The key, the checkpoint file, and the newest checkpoint known.
pub struct Checkpoints {
    key: CheckpointKey,
    log: PathBuf,
    known: tokio::sync::Mutex<Known>,
}

impl fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoints")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// Checkpoint rows read newest first by the writer until one checks.
const ROWS_TRIED: i64 = 20;

impl Checkpoints {
    /// The key at `key_file` (made when missing) and the checkpoint file next
    /// to it ([`Checkpoints::log_path_for`]).
    pub fn open(key_file: &Path) -> Result<Self, KeyFileError> {
        let key = CheckpointKey::load_or_create(key_file)?;
        Ok(Self::with_key(key, Self::log_path_for(key_file)))
    }

    /// Checkpoints under `key`, appended to `log`.
    pub fn with_key(key: CheckpointKey, log: PathBuf) -> Self {
        Self {
            key,
            log,
            known: tokio::sync::Mutex::new(Known::default()),
        }
    }

    /// The checkpoint file of a key file: beside it, `.jsonl` for its extension
    /// (`.data/audit-checkpoint.key` → `.data/audit-checkpoint.jsonl`).
    pub fn log_path_for(key_file: &Path) -> PathBuf {
        let log = key_file.with_extension("jsonl");
        if log == key_file {
            let mut name = key_file.as_os_str().to_owned();
            name.push(".checkpoints.jsonl");
            PathBuf::from(name)
        } else {
            log
        }
    }

    /// The checkpoint file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Reads every checkpoint, from the database and the file.
    pub async fn survey(&self, pool: &PgPool) -> Result<(Trail, Survey), ServiceError> {
        let trail = Trail::of(pool).await?;
        let survey = {
            let key = self.key.clone();
            let trail = trail.clone();
            let log = self.log.clone();
            tokio::task::spawn_blocking(move || read_file(&key, &trail, &log))
                .await
                .map_err(|e| ServiceError::Internal(format!("reading checkpoints: {e}")))??
        };
        let mut survey = survey;
        {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query(
                "SELECT id, database, first_hash, head_id, head_hash, at, mac \
                 FROM audit_checkpoints ORDER BY id",
            )
            .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                let (id, read) = from_row(&row)?;
                survey.consider(&self.key, &trail, Source::Row(id), Ok(read));
            }
        }
        let mut known = self.known.lock().await;
        known.loaded = true;
        remember(&mut known, survey.newest.clone());
        Ok((trail, survey))
    }

    /// The newest checkpoint of this trail that checks, as far as it can be
    /// known cheaply: the one this process last saw (the whole file is read
    /// the first time) and the newest rows.
    pub async fn newest(
        &self,
        pool: &PgPool,
    ) -> Result<Option<(Checkpoint, Source)>, ServiceError> {
        if !self.known.lock().await.loaded {
            return Ok(self.survey(pool).await?.1.newest);
        }
        let trail = Trail::of(pool).await?;
        let rows = sqlx::query(
            "SELECT id, database, first_hash, head_id, head_hash, at, mac \
             FROM audit_checkpoints ORDER BY head_id DESC, id LIMIT $1",
        )
        .bind(ROWS_TRIED)
        .fetch_all(pool)
        .await?;
        let mut survey = Survey::default();
        for row in &rows {
            let (id, read) = from_row(row)?;
            survey.consider(&self.key, &trail, Source::Row(id), Ok(read));
        }
        let mut known = self.known.lock().await;
        remember(&mut known, survey.newest);
        Ok(known.best.clone().filter(|(c, _)| trail.owns(c)))
    }

    /// Signs the chain's head, unless it has not moved or the chain no longer
    /// holds the newest checkpoint. The file is written first: a checkpoint
    /// the database lost is still in the file.
    pub async fn write(&self, pool: &PgPool) -> Result<Written, ServiceError> {
        let newest = self.newest(pool).await?;
        let trail = Trail::of(pool).await?;
        let (Some((head_id, head_hash)), Some(first_hash)) = (head(pool).await?, trail.first_hash)
        else {
            return Ok(Written::Empty);
        };
        if let Some((c, source)) = &newest {
            let anchor = Anchor::of(c, source.clone());
            let at: Option<String> =
                sqlx::query_scalar("SELECT hash FROM audit_events WHERE id = $1")
                    .bind(c.head_id)
                    .fetch_optional(pool)
                    .await?;
            if let Err(b) = check_anchor(&anchor, head_id, at.as_deref()) {
                return Ok(Written::Refused(b));
            }
            if c.head_id == head_id {
                return Ok(Written::Unchanged);
            }
        }
        let checkpoint = Checkpoint {
            database: trail.database,
            first_hash,
            head_id,
            head_hash,
            at: super::chain::to_stored_precision(Utc::now()),
        };
        let mac = self.key.sign(&checkpoint);
        let line = serde_json::to_string(&Line {
            database: checkpoint.database.clone(),
            first_hash: checkpoint.first_hash.clone(),
            head_id: checkpoint.head_id,
            head_hash: checkpoint.head_hash.clone(),
            at: checkpoint.at,
            mac: mac.clone(),
        })
        .map_err(|e| ServiceError::Internal(format!("encoding a checkpoint: {e}")))?;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || append_line(&log, &line))
            .await
            .map_err(|e| ServiceError::Internal(format!("writing a checkpoint: {e}")))?
            .map_err(|e| {
                ServiceError::Internal(format!(
                    "cannot append to the checkpoint file {}: {e}",
                    self.log.display()
                ))
            })?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_checkpoints (database, first_hash, head_id, head_hash, at, mac) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&checkpoint.database)
        .bind(&checkpoint.first_hash)
        .bind(checkpoint.head_id)
        .bind(&checkpoint.head_hash)
        .bind(checkpoint.at)
        .bind(&mac)
        .fetch_one(pool)
        .await?;
        let mut known = self.known.lock().await;
        remember(&mut known, Some((checkpoint.clone(), Source::Row(id))));
        Ok(Written::Signed(checkpoint))
    }

    /// Writes a checkpoint and says in the log what came of it; for the
    /// moments the portal checkpoints on its own (start, timer, verification).
    pub async fn write_logged(&self, pool: &PgPool, when: &str) -> Option<Checkpoint> {
        match self.write(pool).await {
            Ok(Written::Signed(c)) => {
                tracing::info!(head_id = c.head_id, head_hash = %c.head_hash, when, "audit head checkpointed");
                Some(c)
            }
            Ok(Written::Unchanged | Written::Empty) => None,
            Ok(Written::Refused(b)) => {
                tracing::error!(
                    problem = %b,
                    when,
                    "AUDIT TRAIL TAMPERED WITH: the chain no longer holds the last signed checkpoint; \
                     no new checkpoint is signed until this is investigated (recovery-portal audit verify)"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, when, "the audit head could not be checkpointed");
                None
            }
        }
    }

    /// Checkpoints the head every `every` while it moves, as long as the
    /// process lives.
    pub fn spawn_periodic(self: std::sync::Arc<Self>, pool: PgPool, every: std::time::Duration) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; the start writes its own checkpoint.
            tick.tick().await;
            loop {
                tick.tick().await;
                self.write_logged(&pool, "periodic").await;
            }
        });
    }
}

fn remember(known: &mut Known, seen: Option<(Checkpoint, Source)>) {
    let Some((c, source)) = seen else { return };
    let better = match &known.best {
        None => true,
        Some((b, _)) => c.head_id > b.head_id || (c.head_id == b.head_id && c.at < b.at),
    };
    if better {
        known.best = Some((c, source));
    }
}

fn from_row(row: &sqlx::postgres::PgRow) -> Result<(i64, (Checkpoint, String)), sqlx::Error> {
    Ok((
        row.try_get("id")?,
        (
            Checkpoint {
                database: row.try_get("database")?,
                first_hash: row.try_get("first_hash")?,
                head_id: row.try_get("head_id")?,
                head_hash: row.try_get("head_hash")?,
                at: row.try_get("at")?,
            },
            row.try_get("mac")?,
        ),
    ))
}

/// Reads the checkpoint file line by line (none yet: nothing to read).
fn read_file(key: &CheckpointKey, trail: &Trail, log: &Path) -> Result<Survey, ServiceError> {
    use std::io::BufRead;
    let mut survey = Survey::default();
    let file = match std::fs::File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(survey),
        Err(e) => {
            return Err(ServiceError::Internal(format!(
                "cannot read the checkpoint file {}: {e}",
                log.display()
            )))
        }
    };
    let name = log.display().to_string();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let source = Source::Line {
            file: name.clone(),
            line: n as u64 + 1,
        };
        let read = match line {
            Err(e) => Err(format!("cannot be read: {e}")),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => serde_json::from_str::<Line>(&text)
                .map(|l| {
                    (
                        Checkpoint {
                            database: l.database,
                            first_hash: l.first_hash,
                            head_id: l.head_id,
                            head_hash: l.head_hash,
                            at: l.at,
                        },
                        l.mac,
                    )
                })
                .map_err(|e| format!("is not a checkpoint ({e})")),
        };
        survey.consider(key, trail, source, read);
    }
    Ok(survey)
}

fn append_line(log: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(log)?;
    // One write of the whole line, so lines of two processes never interleave.
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CheckpointKey {
        CheckpointKey::from_bytes([b; KEY_LEN])
    }

    fn cp(head_id: i64, minute: u32) -> Checkpoint {
        Checkpoint {
            database: "portal".into(),
            first_hash: "f".repeat(64),
            head_id,
            head_hash: format!("{head_id:064x}"),
            at: DateTime::parse_from_rfc3339(&format!("2026-12-07T22:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    fn trail() -> Trail {
        Trail {
            database: "portal".into(),
            first_hash: Some("f".repeat(64)),
        }
    }

    #[test]
    fn the_mac_covers_every_field_and_the_key() {
        let k = key(1);
        let c = cp(100, 31);
        let mac = k.sign(&c);
        assert!(k.verifies(&c, &mac));
        assert!(!key(2).verifies(&c, &mac));
        assert!(!k.verifies(&c, "not hex"));
        let mut variants = vec![c.clone(); 5];
        variants[0].database = "other".into();
        variants[1].first_hash = "e".repeat(64);
        variants[2].head_id = 99;
        variants[3].head_hash = "0".repeat(64);
        variants[4].at += chrono::Duration::microseconds(1);
        for v in variants {
            assert!(!k.verifies(&v, &mac), "{v:?}");
        }
    }

    #[test]
    fn the_survey_keeps_the_highest_valid_head_and_names_forgeries() {
        let k = key(1);
        let mut s = Survey::default();
        let signed = |c: Checkpoint| {
            let mac = k.sign(&c);
            Ok((c, mac))
        };
        s.consider(&k, &trail(), Source::Row(1), signed(cp(50, 10)));
        s.consider(&k, &trail(), Source::Row(2), signed(cp(100, 31)));
        // A forged row claiming a higher head is not taken.
        let forged = cp(500, 40);
        s.consider(
            &k,
            &trail(),
            Source::Row(3),
            Ok((forged.clone(), key(9).sign(&forged))),
        );
        s.consider(
            &k,
            &trail(),
            Source::Line {
                file: "cp.jsonl".into(),
                line: 4,
            },
            Err("is not a checkpoint (expected value)".into()),
        );
        // Another database's checkpoint, signed with the same key: left aside.
        let mut other = cp(900, 45);
        other.database = "elsewhere".into();
        other.first_hash = "a".repeat(64);
        s.consider(&k, &trail(), Source::Row(5), signed(other));
        let (newest, source) = s.newest.clone().unwrap();
        assert_eq!(newest.head_id, 100);
        assert_eq!(source, Source::Row(2));
        assert_eq!(s.forged_count, 2);
        assert_eq!(
            s.forged_sentence().unwrap(),
            "2 forged checkpoints, the first: checkpoint row 3 of audit_checkpoints: its MAC does not check: it was not signed with this portal's key (forged or altered)"
        );
    }

    #[test]
    fn a_shortened_chain_is_named_with_the_missing_range() {
        let c = cp(100, 31);
        let anchor = Anchor::of(&c, Source::Row(7));
        let err = check_anchor(&anchor, 90, None).unwrap_err();
        assert_eq!(err.event_id(), 91);
        assert_eq!(
            err.to_string(),
            format!(
                "events 91–100 are missing: the last checkpoint (signed 2026-12-07 22:31 UTC, row 7 of audit_checkpoints) recorded head 100 with hash {}, the chain now ends at 90",
                c.head_hash
            )
        );
        let err = check_anchor(&anchor, 99, None).unwrap_err();
        assert!(err.to_string().starts_with("event 100 is missing"), "{err}");
        let err = check_anchor(&anchor, 0, None).unwrap_err();
        assert!(
            err.to_string().ends_with("the chain now has no events"),
            "{err}"
        );
    }

    #[test]
    fn a_rewritten_anchor_and_an_intact_one() {
        let c = cp(100, 31);
        let anchor = Anchor::of(&c, Source::Row(7));
        assert_eq!(check_anchor(&anchor, 120, Some(&c.head_hash)), Ok(()));
        let err = check_anchor(&anchor, 120, Some(&"9".repeat(64))).unwrap_err();
        assert_eq!(err.event_id(), 100);
        assert!(
            err.to_string().starts_with("event 100 was rewritten"),
            "{err}"
        );
        let expected = Anchor {
            head_id: 100,
            head_hash: c.head_hash.clone(),
            kind: AnchorKind::Expected,
        };
        let err = check_anchor(&expected, 90, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("the head you expected (--expect-head) is head 100"),
            "{err}"
        );
    }

    #[test]
    fn the_key_file_is_made_private_and_checked() {
        let dir = std::env::temp_dir().join(format!("cp-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("audit-checkpoint.key");
        let made = CheckpointKey::load_or_create(&path).unwrap();
        let again = CheckpointKey::load_or_create(&path).unwrap();
        assert_eq!(made.0, again.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = CheckpointKey::load_or_create(&path).unwrap_err();
            assert!(err.why.contains("chmod 600"), "{err}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, b"short").unwrap();
        let err = CheckpointKey::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("holds 5 bytes"), "{err}");
        assert_eq!(
            Checkpoints::log_path_for(&path),
            dir.join("sub").join("audit-checkpoint.jsonl")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
