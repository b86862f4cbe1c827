//! What the PDF says, in order, as blocks: no positions, no fonts. Pure, so what
//! the report contains is tested without drawing it.

use app::model::ansi;
use app::model::approval::ApprovalView;
use app::model::run_report::{
    abbreviate, approval_heading, decision_line, ended_line, jsonl_name, outcome_line, RunReport,
};
use app::model::run_view::{AttemptView, Outcome, RunStepView};

/// Output longer than this many lines is printed as its head and tail.
pub const HEAD_LINES: usize = 40;
pub const TAIL_LINES: usize = 20;

/// A piece of the report.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Title(String),
    /// A section (Parameters, a step, Audit events, Chain).
    Heading(String),
    /// A smaller heading inside a section (an attempt, an approval).
    Subheading(String),
    /// `label`: `value`, the value wrapped beside the label.
    Field {
        label: String,
        value: String,
    },
    /// Lines in the monospace font, exactly as they came (wrapped, never reflowed).
    Mono(Vec<String>),
    /// A small muted remark.
    Note(String),
    /// A result: good (green) or bad (red).
    Verdict {
        good: bool,
        text: String,
    },
}

fn field(label: &str, value: impl Into<String>) -> Block {
    Block::Field {
        label: label.to_string(),
        value: value.into(),
    }
}

/// Output as printed: escape sequences dropped, tabs expanded.
fn printable(line: &str) -> String {
    let plain: String = ansi::spans(line).into_iter().map(|s| s.text).collect();
    let mut out = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '\t' => {
                let pad = 8 - (out.chars().count() % 8);
                out.extend(std::iter::repeat_n(' ', pad));
            }
            '\r' => {}
            c if c.is_control() => out.push('�'),
            c => out.push(c),
        }
    }
    out
}

/// The report as blocks.
pub fn blocks(report: &RunReport) -> Vec<Block> {
    let run = &report.run;
    let s = &run.summary;
    let mut out = vec![
        Block::Title(format!("Run #{} — {}", s.id, s.runbook_title)),
        field("Runbook", s.runbook_id.clone()),
        field("Runbook SHA-256", run.runbook_sha256.clone()),
        field("Site", s.site.clone()),
        field("State", format!("{:?}", s.state).to_lowercase()),
        field("Started", format!("{} by {}", s.started_at, s.started_by)),
        field(
            "Finished",
            s.finished_at
                .clone()
                .unwrap_or_else(|| "not finished".into()),
        ),
        field(
            "Report",
            format!(
                "generated {} for {}; outputs whole in the attached {}",
                report.generated_at,
                report.generated_by,
                jsonl_name(s.id)
            ),
        ),
        Block::Heading("Parameters".into()),
    ];
    if run.parameters.is_empty() {
        out.push(Block::Note("The runbook has no parameters.".into()));
    }
    for (name, value) in &run.parameters {
        out.push(field(name, value.clone()));
    }
    if !run.captures.is_empty() {
        out.push(Block::Heading("Captured values".into()));
        for (name, value) in &run.captures {
            out.push(field(name, value.clone()));
        }
    }
    for step in &run.steps {
        step_blocks(report, step, &mut out);
    }
    audit_blocks(report, &mut out);
    out
}

fn step_blocks(report: &RunReport, step: &RunStepView, out: &mut Vec<Block>) {
    let mut kind = step.kind.clone();
    if step.destructive {
        kind.push_str(", destructive");
    }
    out.push(Block::Heading(format!(
        "Step {}. {} ({kind})",
        step.position + 1,
        step.title
    )));
    out.push(field("Step id", step.id.clone()));
    out.push(field("State", step.state.as_str()));
    if let Some((condition, holds)) = &step.when {
        out.push(field(
            "When",
            format!(
                "{condition} ({})",
                if *holds { "holds" } else { "does not hold" }
            ),
        ));
    }
    if let Some(note) = &step.note {
        let label = match step.state.as_str() {
            "skipped" => "Skipped because",
            _ => "Note",
        };
        out.push(field(label, note.clone()));
    }
    if step.attempts.is_empty() {
        match &step.action {
            Ok(action) => {
                if let Some(host) = &action.host {
                    out.push(field("Host", host.clone()));
                }
                out.push(field("Action", "(not run)"));
                out.push(Block::Mono(action.text.lines().map(printable).collect()));
            }
            Err(why) => out.push(field("Action", format!("not rendered: {why}"))),
        }
    }
    for approval in &step.approvals {
        approval_blocks(approval, out);
    }
    for attempt in &step.attempts {
        attempt_blocks(report, attempt, out);
    }
}

fn approval_blocks(a: &ApprovalView, out: &mut Vec<Block>) {
    out.push(Block::Subheading(approval_heading(a)));
    out.push(field(
        "Requested",
        format!("{} by {}", a.requested_at, a.requested_by),
    ));
    out.push(field("Justification", a.justification.clone()));
    if let Some(host) = &a.host {
        out.push(field("Host", host.clone()));
    }
    out.push(field("Action hash", a.action_hash.clone()));
    out.push(Block::Mono(a.action.lines().map(printable).collect()));
    for d in &a.decisions {
        let (label, line) = decision_line(d);
        out.push(field(label, line));
    }
    if let Some(expires) = &a.expires_at {
        out.push(field("Valid until", expires.clone()));
    }
    if let Some(ended) = ended_line(a) {
        out.push(field("Ended", ended));
    }
}

fn attempt_blocks(report: &RunReport, a: &AttemptView, out: &mut Vec<Block>) {
    out.push(Block::Subheading(format!("Attempt {}", a.attempt)));
    if let Some(host) = &a.host {
        out.push(field("Host", host.clone()));
    }
    out.push(field(
        "Started",
        format!("{} by {}", a.started_at, a.started_by),
    ));
    out.push(field(
        "Ended",
        a.finished_at.clone().unwrap_or_else(|| "not ended".into()),
    ));
    if let Some(id) = a.approval_id {
        out.push(field("Under approval", format!("#{id}")));
    }
    out.push(field("Action", ""));
    out.push(Block::Mono(a.action.lines().map(printable).collect()));
    match &a.outcome {
        Some(o) => outcome_blocks(o, out),
        None => out.push(field(
            "Outcome",
            "none recorded (still running or interrupted)",
        )),
    }
    let text = app::model::run_report::output_text(a);
    let digest = report.output_of(a.id);
    if text.is_empty() {
        out.push(field("Output", "none"));
        return;
    }
    let cut = abbreviate(&text, HEAD_LINES, TAIL_LINES);
    let mut lines: Vec<String> = cut.head.iter().map(|l| printable(l)).collect();
    if cut.omitted_lines > 0 {
        lines.push(format!(
            "[… {} lines ({} bytes) left out here; see the attached JSONL …]",
            cut.omitted_lines, cut.omitted_bytes
        ));
        lines.extend(cut.tail.iter().map(|l| printable(l)));
    }
    let summary = match digest {
        Some(d) => format!(
            "{} bytes, {} lines, SHA-256 {}{}",
            d.bytes,
            d.lines,
            d.sha256,
            if cut.omitted_lines > 0 {
                " (abbreviated below)"
            } else {
                ""
            }
        ),
        None => format!("{} bytes", text.len()),
    };
    out.push(field("Output", summary));
    out.push(Block::Mono(lines));
}

fn outcome_blocks(o: &Outcome, out: &mut Vec<Block>) {
    out.push(Block::Verdict {
        good: o.passed,
        text: format!("Outcome: {}", outcome_line(o)),
    });
    if let Some(error) = &o.error {
        out.push(field("Error", error.clone()));
    }
    for e in &o.expectations {
        out.push(field(
            if e.passed {
                "Expected ✓"
            } else {
                "Expected ✗"
            },
            e.description.clone(),
        ));
    }
    for (name, value) in &o.captures {
        out.push(field(&format!("Captured {name}"), value.clone()));
    }
    for name in &o.missing_captures {
        out.push(field(&format!("Captured {name}"), "(no match)"));
    }
    if let Some(observation) = &o.observation {
        out.push(field("Observation", observation.clone()));
    }
    if let Some(t) = &o.transfer {
        out.push(field(
            "Transferred",
            format!("{} bytes, SHA-256 {}", t.bytes, t.sha256),
        ));
    }
}

fn audit_blocks(report: &RunReport, out: &mut Vec<Block>) {
    out.push(Block::Heading(format!(
        "Audit events of run #{} ({})",
        report.run.summary.id,
        report.events.len()
    )));
    out.push(Block::Mono(
        report
            .events
            .iter()
            .map(|e| {
                format!(
                    "#{:<7} {} {:<12} {:<26} {}",
                    e.id,
                    e.at.format("%Y-%m-%d %H:%M:%S"),
                    e.actor,
                    e.action,
                    e.subject
                )
            })
            .collect(),
    ));
    let chain = &report.chain;
    out.push(Block::Heading("Audit chain".into()));
    if let Some(first) = &chain.first {
        out.push(field(
            "First event",
            format!("#{} hash {}", first.id, first.hash),
        ));
    }
    if let Some(last) = &chain.last {
        out.push(field(
            "Last event",
            format!("#{} hash {}", last.id, last.hash),
        ));
    }
    if let Some(head) = &chain.head {
        out.push(field(
            "Chain head",
            format!(
                "#{} hash {} (the whole trail's last event when this report was made)",
                head.id, head.hash
            ),
        ));
    }
    out.push(Block::Verdict {
        good: chain.intact(),
        text: chain.sentence(),
    });
    let expect = chain
        .head
        .as_ref()
        .map(|h| format!(" `recovery-portal audit verify --expect-head {}:{}` shows that the chain still holds every event up to the head above.", h.id, h.hash))
        .unwrap_or_default();
    out.push(Block::Note(format!(
        "To check this printed report later: `recovery-portal audit verify` checks the whole chain in the database, \
         and the two hashes above must be those of the same event ids there.{expect} \
         `recovery-portal audit verify --file {}` checks the attached file offline: every event's hash and link, \
         and every attempt's output against its length and SHA-256.",
        jsonl_name(report.run.summary.id)
    )));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_drops_colours_and_expands_tabs() {
        assert_eq!(printable("\u{1b}[32mOK\u{1b}[0m\tx\r"), "OK      x");
        assert_eq!(printable("a\u{7}b"), "a�b");
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;
    use app::model::approval::{ApprovalState, Decision, DecisionView};
    use app::model::run::{RunState, StepState};
    use app::model::run_report::{ChainCheck, ChainVerdict, EventRef, OutputDigest};
    use app::model::run_view::{ActionView, OutputChunk, RunSummary, RunView};
    use std::collections::BTreeMap;

    fn report(output: &str) -> RunReport {
        let attempt = AttemptView {
            id: 41,
            attempt: 1,
            host: Some("pcrfclient01".into()),
            action: "kind=shell\ncommand=crontab x".into(),
            started_by: "olga".into(),
            started_at: "2026-11-27T10:00:00Z".into(),
            finished_at: Some("2026-11-27T10:00:01Z".into()),
            approval_id: Some(3),
            outcome: Some(Outcome {
                passed: true,
                exit_status: Some(0),
                ending: "exited".into(),
                ..Outcome::default()
            }),
            output: vec![OutputChunk {
                seq: 0,
                stderr: false,
                text: output.into(),
            }],
            earlier_bytes: 0,
            loaded_from_seq: 0,
            progress: None,
        };
        let approval = ApprovalView {
            id: 3,
            run_id: 9,
            position: 0,
            step_id: "install".into(),
            step_title: "Install".into(),
            site: "lab".into(),
            host: Some("pcrfclient01".into()),
            attempt: 1,
            state: ApprovalState::Used,
            quorum: 1,
            requested_by: "olga".into(),
            requested_by_id: 2,
            requested_at: "2026-11-27T09:59:00Z".into(),
            justification: "lost its crontab".into(),
            action: "crontab x".into(),
            action_hash: "ab".repeat(32),
            runbook_sha256: "cd".repeat(32),
            decisions: vec![DecisionView {
                by: "sam".into(),
                decision: Decision::Approve,
                text: "go ahead".into(),
                at: "2026-11-27T09:59:30Z".into(),
                break_glass_reason: None,
            }],
            expires_at: None,
            ended_at: None,
            ended_by: None,
            ended_reason: None,
            break_glass: false,
        };
        let step = RunStepView {
            position: 0,
            id: "install".into(),
            title: "Install".into(),
            kind: "ssh".into(),
            destructive: true,
            state: StepState::Succeeded,
            instructions: String::new(),
            when: None,
            action: Ok(ActionView {
                host: Some("pcrfclient01".into()),
                text: "crontab x".into(),
            }),
            observation: None,
            note: None,
            actions: vec![],
            blocked: None,
            attempts: vec![attempt],
            approvals_needed: 1,
            approvals: vec![approval],
        };
        RunReport {
            run: RunView {
                summary: RunSummary {
                    id: 9,
                    runbook_id: "restore-cron".into(),
                    runbook_title: "4. Restore cron jobs".into(),
                    site: "lab".into(),
                    state: RunState::Completed,
                    started_by: "olga".into(),
                    owner: "olga".into(),
                    started_at: "2026-11-27T09:58:00Z".into(),
                    finished_at: Some("2026-11-27T10:00:02Z".into()),
                    steps: 1,
                    steps_done: 1,
                    current: None,
                },
                runbook_sha256: "cd".repeat(32),
                parameters: BTreeMap::from([("target".into(), "pcrfclient01".into())]),
                captures: BTreeMap::new(),
                steps: vec![step],
                current: None,
                break_glass: None,
            },
            outputs: vec![OutputDigest {
                attempt_id: 41,
                bytes: output.len() as u64,
                lines: output.lines().count() as u64,
                sha256: "ef".repeat(32),
            }],
            events: vec![],
            chain: ChainCheck {
                first: Some(EventRef {
                    id: 1,
                    hash: "01".repeat(32),
                }),
                last: Some(EventRef {
                    id: 5,
                    hash: "05".repeat(32),
                }),
                checked: 5,
                verdict: ChainVerdict::Intact,
                head: Some(EventRef {
                    id: 9,
                    hash: "09".repeat(32),
                }),
            },
            generated_at: "2026-11-27T11:00:00Z".into(),
            generated_by: "ann".into(),
        }
    }

    fn mono_lines(blocks: &[Block]) -> Vec<String> {
        blocks
            .iter()
            .filter_map(|b| match b {
                Block::Mono(lines) => Some(lines.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn long_output_is_printed_as_head_and_tail_with_its_digest() {
        let output: String = (1..=500).map(|i| format!("row {i}\n")).collect();
        let blocks = blocks(&report(&output));
        let lines = mono_lines(&blocks);
        assert!(lines.contains(&"row 1".to_string()));
        assert!(lines.contains(&format!("row {HEAD_LINES}")));
        assert!(!lines.contains(&format!("row {}", HEAD_LINES + 1)));
        assert!(lines.contains(&"row 500".to_string()));
        let omitted = 500 - HEAD_LINES - TAIL_LINES;
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("[… {omitted} lines"))),
            "{lines:?}"
        );
        assert!(blocks.contains(&Block::Field {
            label: "Output".into(),
            value: format!(
                "{} bytes, 500 lines, SHA-256 {} (abbreviated below)",
                output.len(),
                "ef".repeat(32)
            ),
        }));
    }

    #[test]
    fn the_approval_chain_and_the_chain_hashes_are_in_the_report() {
        let blocks = blocks(&report("ok\n"));
        let fields: Vec<(String, String)> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Field { label, value } => Some((label.clone(), value.clone())),
                _ => None,
            })
            .collect();
        let has =
            |label: &str, value: &str| fields.iter().any(|(l, v)| l == label && v.contains(value));
        assert!(has("target", "pcrfclient01"));
        assert!(has("Requested", "by olga"));
        assert!(has("Justification", "lost its crontab"));
        assert!(has("Approved", "by sam: go ahead"));
        assert!(has("Under approval", "#3"));
        assert!(has("First event", &"01".repeat(32)));
        assert!(has("Last event", &"05".repeat(32)));
        // The whole trail's head, and how to check it later.
        assert!(has("Chain head", &format!("#9 hash {}", "09".repeat(32))));
        assert!(blocks.iter().any(|b| matches!(b, Block::Note(n)
            if n.contains(&format!("audit verify --expect-head 9:{}", "09".repeat(32))))));
        assert!(blocks.contains(&Block::Verdict {
            good: true,
            text: "Audit chain verified intact from event 1 to event 5 (5 events checked).".into()
        }));
        // Short output is whole, with no marker.
        assert!(mono_lines(&blocks).contains(&"ok".to_string()));
        assert!(!mono_lines(&blocks).iter().any(|l| l.starts_with("[…")));
    }
}
