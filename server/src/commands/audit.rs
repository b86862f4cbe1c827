//! `audit verify` (the live chain, or `--file` an export offline) and `audit export`.

use super::{CommandError, EXIT_CHAIN_BROKEN};
use crate::cli::{AuditCommand, ExpectedHead, ExportFormat};
use crate::config::Settings;
use crate::web::audit_export::{lines, Format};
use app::model::audit_query::AuditQuery;
use app::ssr::audit::checkpoint::{Anchor, AnchorKind, Checkpoints};
use app::ssr::audit::{self, export::ExportVerifier};
use futures_util::StreamExt;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

pub async fn run(
    pool: &PgPool,
    settings: &Settings,
    command: AuditCommand,
) -> Result<ExitCode, CommandError> {
    match command {
        AuditCommand::Verify {
            file: Some(file), ..
        } => verify_file(&file),
        AuditCommand::Verify {
            file: None,
            expect_head,
        } => verify_live(pool, settings, expect_head).await,
        AuditCommand::Export {
            format,
            from,
            until,
            actor,
            action,
            run,
            site,
            host,
            text,
            out,
        } => {
            let given: BTreeMap<String, String> = [
                ("from", from),
                ("until", until),
                ("actor", actor),
                ("action", action),
                ("run", run),
                ("site", site),
                ("host", host),
                ("text", text),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
            let q = AuditQuery::parse(&given).map_err(|errors| {
                CommandError::Input(
                    errors
                        .into_iter()
                        .map(|(f, m)| {
                            format!("--{f}: {}", m.split_once(": ").map(|x| x.1).unwrap_or(&m))
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
            let format = match format {
                ExportFormat::Csv => Format::Csv,
                ExportFormat::Jsonl => Format::Jsonl,
            };
            let mut sink: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|e| {
                        CommandError::Input(format!("--out {}: {e}", path.display()))
                    })?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let head = audit::store::head(pool).await?;
            let events = audit::query::stream(pool.clone(), q.clone());
            let mut stream = Box::pin(lines(format, q.to_params(), head.clone(), events));
            let mut written: u64 = 0;
            while let Some(line) = stream.next().await {
                let line =
                    line.map_err(|e| CommandError::Service(format!("the export stopped: {e}")))?;
                sink.write_all(line.as_bytes())
                    .map_err(|e| CommandError::Service(format!("cannot write the export: {e}")))?;
                written += 1;
                if written.is_multiple_of(100_000) {
                    eprint!("\rexported {written} lines…");
                }
            }
            sink.flush()
                .map_err(|e| CommandError::Service(format!("cannot write the export: {e}")))?;
            if let Some(path) = out {
                eprintln!("\rexported to {}", path.display());
            }
            // Printed beside the CSV (which has no place for it) and the JSONL
            // (whose trailer has it too), for `audit verify --expect-head` later.
            match head {
                Some((id, hash)) => eprintln!("chain head when exported: {id}:{hash}"),
                None => eprintln!("the chain had no events when exported"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `audit verify`: walks the chain in the database and compares it with the
/// newest signed checkpoint and the head the auditor expects.
async fn verify_live(
    pool: &PgPool,
    settings: &Settings,
    expect_head: Option<ExpectedHead>,
) -> Result<ExitCode, CommandError> {
    let checkpoints = Checkpoints::open(&settings.audit_key_file)
        .map_err(|e| CommandError::Input(e.to_string()))?;
    let started = std::time::Instant::now();
    let by = audit::Actor::cli();
    let (id, new) = audit::verification::begin(pool, &by).await?;
    if !new {
        return Err(CommandError::Service(format!(
            "verification {id} of the chain is running already (started in the portal); \
             its result shows on the portal's Audit → Verify page. Try again when it ends."
        )));
    }
    let expected = expect_head.map(|h| Anchor {
        head_id: h.id,
        head_hash: h.hash,
        kind: AnchorKind::Expected,
    });
    let anchors = audit::verification::Anchors {
        checkpoints: Some(&checkpoints),
        expected: expected.as_ref(),
    };
    let v = audit::verification::run(pool, id, &by, anchors, |n| {
        eprint!("\rverified {n} events…");
        let _ = std::io::stderr().flush();
    })
    .await?;
    eprint!("\r");
    let seconds = started.elapsed().as_secs_f64();
    let anchored = match (v.anchor_head_id, &v.anchor_head_hash) {
        (Some(head), Some(hash)) => format!(
            "compared with the last signed checkpoint ({}, signed {}): head {head}:{hash}",
            v.anchor_source.as_deref().unwrap_or("?"),
            v.anchor_at.as_deref().unwrap_or("?"),
        ),
        _ => format!(
            "no signed checkpoint of this trail yet (in the database or {}): only the chain's own links were checked",
            checkpoints.log_path().display()
        ),
    };
    match v.state.as_str() {
        "intact" => {
            println!(
                "audit chain intact: {} events verified in {seconds:.2} s; head {}:{}",
                v.checked,
                v.head_id.unwrap_or(0),
                v.head_hash.as_deref().unwrap_or(audit::GENESIS_HASH)
            );
            println!("{anchored}");
            if let Some(e) = &expected {
                println!(
                    "the expected head {}:{} is in the chain",
                    e.head_id, e.head_hash
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let verified = match v.broken_at {
                Some(at) => format!("The {} events before event {at} verified.", v.checked),
                None => format!("Its {} events verified.", v.checked),
            };
            println!(
                "audit chain BROKEN: {}. {verified}",
                v.reason.as_deref().unwrap_or("unknown"),
            );
            println!("{anchored}");
            Ok(ExitCode::from(EXIT_CHAIN_BROKEN))
        }
    }
}

/// `audit verify --file`: checks a JSONL export line by line.
pub fn verify_file(path: &Path) -> Result<ExitCode, CommandError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CommandError::Input(format!("--file {}: {e}", path.display())))?;
    let mut verifier = ExportVerifier::default();
    let started = std::time::Instant::now();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line
            .map_err(|e| CommandError::Input(format!("{}: line {}: {e}", path.display(), n + 1)))?;
        if let Err(broken) = verifier.push(&line) {
            println!("export BROKEN: {broken}");
            return Ok(ExitCode::from(EXIT_CHAIN_BROKEN));
        }
        if (n + 1).is_multiple_of(100_000) {
            eprint!("\rchecked {} lines…", n + 1);
        }
    }
    match verifier.finish() {
        Ok(r) => {
            let scope = if r.complete {
                "the whole chain from event 1".to_string()
            } else {
                format!(
                    "filtered ({}); {} links between consecutive events checked",
                    r.filters
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.links
                )
            };
            println!(
                "export intact: {} events, {scope}, every event's hash recomputed in {:.2} s; last hash {}",
                r.events,
                started.elapsed().as_secs_f64(),
                r.last_hash.as_deref().unwrap_or("-")
            );
            if let Some((id, hash)) = &r.chain_head {
                println!(
                    "the chain's head when exported: {id}:{hash} (`recovery-portal audit verify --expect-head {id}:{hash}` checks the live chain still holds it)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            println!("export BROKEN: {broken}");
            Ok(ExitCode::from(EXIT_CHAIN_BROKEN))
        }
    }
}
