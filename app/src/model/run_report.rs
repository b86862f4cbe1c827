//! A run's report: everything an auditor needs to answer who did what, on which
//! host, with whose approval, what came back, and whether the record has been
//! altered since. The HTML page and the PDF are both drawn from it.

use super::audit::AuditEventView;
use super::run_view::{AttemptView, RunView};
use serde::{Deserialize, Serialize};

/// The report of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run: RunView,
    /// Length and SHA-256 of each attempt's whole output, by attempt id.
    pub outputs: Vec<OutputDigest>,
    /// The run's audit events (subject `run:N…`), oldest first.
    pub events: Vec<AuditEventView>,
    pub chain: ChainCheck,
    /// RFC 3339.
    pub generated_at: String,
    pub generated_by: String,
}

impl RunReport {
    /// The digest of an attempt's output.
    pub fn output_of(&self, attempt_id: i64) -> Option<&OutputDigest> {
        self.outputs.iter().find(|o| o.attempt_id == attempt_id)
    }
}

/// An attempt's whole output (every chunk's text, in order, stdout and stderr as
/// they came) measured, so a printed report names exactly what it abbreviates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDigest {
    pub attempt_id: i64,
    pub bytes: u64,
    pub lines: u64,
    /// Lower-case hex SHA-256 of the output's UTF-8 bytes.
    pub sha256: String,
}

/// The result of verifying the audit chain over the run's events: every event
/// from the one before the run's first up to the run's last (other runs' events
/// in between included, as the chain links them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheck {
    /// Id and hash of the run's first audit event.
    pub first: Option<EventRef>,
    /// Id and hash of the run's last audit event.
    pub last: Option<EventRef>,
    /// How many events were checked.
    pub checked: u64,
    pub verdict: ChainVerdict,
    /// The whole chain's last event when the report was made: kept with the
    /// report, `recovery-portal audit verify --expect-head ID:HASH` later shows
    /// that no event up to it was removed or changed.
    #[serde(default)]
    pub head: Option<EventRef>,
}

/// An event by id and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub id: i64,
    pub hash: String,
}

/// What the verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ChainVerdict {
    Intact,
    /// The first event that does not fit, and why.
    Broken {
        event_id: i64,
        reason: String,
    },
    /// The run has no audit events (it cannot: runs are started under audit).
    NoEvents,
}

impl ChainCheck {
    /// One sentence for the report's end.
    pub fn sentence(&self) -> String {
        match (&self.verdict, &self.first, &self.last) {
            (ChainVerdict::Intact, Some(first), Some(last)) => format!(
                "Audit chain verified intact from event {} to event {} ({} events checked).",
                first.id, last.id, self.checked
            ),
            (ChainVerdict::Broken { event_id, reason }, _, _) => format!(
                "Audit chain BROKEN at event {event_id}: {reason} ({} events checked before it).",
                self.checked
            ),
            _ => "The run has no audit events to verify.".to_string(),
        }
    }

    pub fn intact(&self) -> bool {
        self.verdict == ChainVerdict::Intact
    }
}

/// An outcome in one line: "passed (exited), exit status 0, 3 checks".
pub fn outcome_line(o: &super::run_view::Outcome) -> String {
    let mut line = format!(
        "{} ({})",
        if o.passed { "passed" } else { "failed" },
        o.ending
    );
    if let Some(status) = o.exit_status {
        line.push_str(&format!(", exit status {status}"));
    }
    if let Some(checks) = o.checks {
        line.push_str(&format!(", {checks} checks"));
    }
    if let Some(note) = o.output.as_ref().and_then(|t| t.truncation_note()) {
        line.push_str(&format!("; {note}"));
    }
    line
}

/// A supervisor's decision: its label ("Approved", "Rejected") and its line.
pub fn decision_line(d: &super::approval::DecisionView) -> (&'static str, String) {
    let label = match d.decision {
        super::approval::Decision::Approve => "Approved",
        super::approval::Decision::Reject => "Rejected",
    };
    let mut line = format!("{} by {}", d.at, d.by);
    if !d.text.trim().is_empty() {
        line.push_str(&format!(": {}", d.text));
    }
    if let Some(reason) = &d.break_glass_reason {
        line.push_str(&format!(" (own request, break-glass: {reason})"));
    }
    (label, line)
}

/// How a request ended, if it did: when, by whom, why.
pub fn ended_line(a: &super::approval::ApprovalView) -> Option<String> {
    let mut line = a.ended_at.clone()?;
    if let Some(by) = &a.ended_by {
        line.push_str(&format!(" by {by}"));
    }
    if let Some(reason) = &a.ended_reason {
        line.push_str(&format!(": {reason}"));
    }
    Some(line)
}

/// A request's heading: "Approval #3 for attempt 1 (1 of quorum 1): used".
pub fn approval_heading(a: &super::approval::ApprovalView) -> String {
    let approvals = a
        .decisions
        .iter()
        .filter(|d| d.decision == super::approval::Decision::Approve)
        .count();
    format!(
        "Approval #{} for attempt {} ({approvals} of quorum {}): {}",
        a.id,
        a.attempt,
        a.quorum,
        a.state.as_str()
    )
}

/// The whole output of an attempt: every chunk's text in order.
pub fn output_text(attempt: &AttemptView) -> String {
    attempt.output.iter().map(|c| c.text.as_str()).collect()
}

/// Output as printed: short output whole, long output as its head and tail
/// around a line that says how much is left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abbreviated {
    pub head: Vec<String>,
    /// Lines left out between head and tail (0: the output is whole).
    pub omitted_lines: usize,
    pub omitted_bytes: usize,
    pub tail: Vec<String>,
}

/// Output longer than `head + tail` lines keeps its first `head` and last `tail`.
pub fn abbreviate(text: &str, head: usize, tail: usize) -> Abbreviated {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= head + tail {
        return Abbreviated {
            head: lines.into_iter().map(str::to_string).collect(),
            omitted_lines: 0,
            omitted_bytes: 0,
            tail: Vec::new(),
        };
    }
    let omitted = &lines[head..lines.len() - tail];
    Abbreviated {
        head: lines[..head].iter().map(|l| l.to_string()).collect(),
        omitted_lines: omitted.len(),
        // Each omitted line had its newline.
        omitted_bytes: omitted.iter().map(|l| l.len() + 1).sum(),
        tail: lines[lines.len() - tail..]
            .iter()
            .map(|l| l.to_string())
            .collect(),
    }
}

/// The file name of the run's attached JSONL.
pub fn jsonl_name(run_id: i64) -> String {
    format!("run-{run_id}-report.jsonl")
}

/// The file name of the run's PDF.
pub fn pdf_name(run_id: i64) -> String {
    format!("run-{run_id}-report.pdf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let a = abbreviate("a\nb\nc\n", 2, 2);
        assert_eq!(a.head, vec!["a", "b", "c"]);
        assert_eq!(a.omitted_lines, 0);
        assert!(a.tail.is_empty());
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_counts_the_rest() {
        let text: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        let a = abbreviate(&text, 3, 2);
        assert_eq!(a.head, vec!["line 1", "line 2", "line 3"]);
        assert_eq!(a.tail, vec!["line 9", "line 10"]);
        assert_eq!(a.omitted_lines, 5);
        // "line 4\n" … "line 8\n": 7 bytes each.
        assert_eq!(a.omitted_bytes, 35);
    }

    #[test]
    fn the_verdict_is_one_sentence() {
        let check = ChainCheck {
            first: Some(EventRef {
                id: 3,
                hash: "a".into(),
            }),
            last: Some(EventRef {
                id: 9,
                hash: "b".into(),
            }),
            checked: 7,
            verdict: ChainVerdict::Intact,
            head: None,
        };
        assert_eq!(
            check.sentence(),
            "Audit chain verified intact from event 3 to event 9 (7 events checked)."
        );
        let broken = ChainCheck {
            verdict: ChainVerdict::Broken {
                event_id: 5,
                reason: "altered".into(),
            },
            checked: 2,
            ..check
        };
        assert!(!broken.intact());
        assert!(broken.sentence().contains("BROKEN at event 5"));
    }
}
