//! Assembling a run's report: the run as the run page shows it, each attempt's
//! output measured, the run's audit events, and the chain verified over them.
//! The attachment is a JSONL that `recovery-portal audit verify --file` checks:
//! the run's events with their hashes, and every attempt's whole output with its
//! length and SHA-256.

use super::audit::{self, chain::ChainedEvent, export, query};
use super::engine::Engine;
use super::ServiceError;
use crate::model::run_report::{
    output_text, ChainCheck, ChainVerdict, EventRef, OutputDigest, RunReport,
};
use chrono::{SecondsFormat, Utc};
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// A report and its attachment.
pub struct Built {
    pub report: RunReport,
    /// The attached JSONL, whole (empty when not asked for).
    pub jsonl: String,
}

/// The report of run `run_id`, generated for `by`, with its JSONL when `attach`
/// (the PDF and the download need it; the page does not).
pub async fn build(
    engine: &Engine,
    pool: &PgPool,
    run_id: i64,
    by: &str,
    attach: bool,
) -> Result<Built, ServiceError> {
    let run = engine.view_whole(run_id).await?;
    let events = query::of_run(pool, run_id).await?;
    let chain = check_chain(pool, &events).await?;

    let mut jsonl = String::new();
    if attach {
        let filters = BTreeMap::from([("run".to_string(), run_id.to_string())]);
        jsonl.push_str(&export::jsonl_header(&filters));
        for (e, hash) in &events {
            jsonl.push_str(&export::jsonl_line(e, hash));
        }
    }
    let mut outputs = Vec::new();
    for step in &run.steps {
        for attempt in &step.attempts {
            let text = output_text(attempt);
            outputs.push(OutputDigest {
                attempt_id: attempt.id,
                bytes: text.len() as u64,
                lines: text.lines().count() as u64,
                sha256: export::output_sha256(&text),
            });
            if !attach {
                continue;
            }
            jsonl.push_str(&export::jsonl_attempt_line(
                json!({
                    "attempt_id": attempt.id,
                    "run": run_id,
                    "position": step.position,
                    "step": step.id,
                    "attempt": attempt.attempt,
                    "host": attempt.host,
                    "action": attempt.action,
                    "started_at": attempt.started_at,
                    "finished_at": attempt.finished_at,
                }),
                &text,
            ));
        }
    }
    // The chain's head is printed in the report, not in this trailer: the
    // attachment stays the same file however often the report is downloaded
    // (each download is audited, and so moves the head).
    if attach {
        jsonl.push_str(&export::jsonl_trailer(
            events.len() as u64,
            events.last().map(|(_, h)| h.as_str()),
        ));
    }
    let report = RunReport {
        run,
        outputs,
        events: events
            .into_iter()
            .map(|(e, h)| query::view_of(e, h))
            .collect(),
        chain,
        generated_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        generated_by: by.to_string(),
    };
    Ok(Built { report, jsonl })
}

/// Verifies the chain from the run's first event to its last.
async fn check_chain(
    pool: &PgPool,
    events: &[(ChainedEvent, String)],
) -> Result<ChainCheck, ServiceError> {
    let head = audit::store::head(pool)
        .await?
        .map(|(id, hash)| EventRef { id, hash });
    let (Some((first, first_hash)), Some((last, last_hash))) = (events.first(), events.last())
    else {
        return Ok(ChainCheck {
            first: None,
            last: None,
            checked: 0,
            verdict: ChainVerdict::NoEvents,
            head,
        });
    };
    let verified = audit::store::verify_range(pool, first.id, last.id).await?;
    Ok(ChainCheck {
        first: Some(EventRef {
            id: first.id,
            hash: first_hash.clone(),
        }),
        last: Some(EventRef {
            id: last.id,
            hash: last_hash.clone(),
        }),
        checked: verified.checked,
        head,
        verdict: match verified.broken {
            None => ChainVerdict::Intact,
            Some(b) => ChainVerdict::Broken {
                event_id: b.event_id(),
                reason: b.to_string(),
            },
        },
    })
}
