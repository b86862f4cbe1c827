//! What approvers are told: the webhook's JSON body and the e-mail's subject and
//! text, built from one [`ApprovalNotice`]. Pure: no clock, no randomness, no I/O.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The kind of the only event notified so far.
pub const APPROVAL_REQUESTED: &str = "approval.requested";

/// Everything an approver needs to decide whether to act, as the webhook's body
/// carries it (field order is the body's order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalNotice {
    /// Always [`APPROVAL_REQUESTED`].
    pub event: String,
    /// Unique per event; the same on every attempt and channel (receivers dedupe by it).
    pub event_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub site: String,
    pub approval_id: i64,
    /// The approvals page, at this request.
    pub approval_url: String,
    pub run_id: i64,
    pub runbook_id: String,
    pub runbook_title: String,
    pub step_id: String,
    pub step_title: String,
    /// The step's number as the run page shows it (from 1).
    pub step_number: i32,
    /// The attempt of the step the approval would let run.
    pub attempt: i32,
    pub host: Option<String>,
    /// The exact action to approve, as the supervisors see it.
    pub action: String,
    /// The SHA-256 the approval is bound to.
    pub action_hash: String,
    pub requested_by: String,
    pub justification: String,
    /// How many supervisors must approve.
    pub quorum: u8,
}

/// The facts of a request, as read from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub approval_id: i64,
    pub site: String,
    pub run_id: i64,
    pub runbook_id: String,
    pub runbook_title: String,
    pub step_id: String,
    pub step_title: String,
    pub position: i32,
    pub attempt: i32,
    pub host: Option<String>,
    pub action: String,
    pub action_hash: String,
    pub requested_by: String,
    pub justification: String,
    pub quorum: u8,
}

/// The approvals page under the portal's public URL.
pub fn approvals_page(public_url: &str) -> String {
    format!("{}/approvals", public_url.trim_end_matches('/'))
}

/// An event id in the UUID (version 4) format, from 16 random bytes.
pub fn event_id(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl ApprovalNotice {
    /// The notice of request `facts`, made at `at`, linking to `approvals_page`.
    pub fn new(
        facts: RequestFacts,
        event_id: String,
        at: DateTime<Utc>,
        approvals_page: &str,
    ) -> Self {
        Self {
            event: APPROVAL_REQUESTED.to_string(),
            event_id,
            created_at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
            approval_url: format!("{approvals_page}#approval-{}", facts.approval_id),
            site: facts.site,
            approval_id: facts.approval_id,
            run_id: facts.run_id,
            runbook_id: facts.runbook_id,
            runbook_title: facts.runbook_title,
            step_id: facts.step_id,
            step_title: facts.step_title,
            step_number: facts.position.saturating_add(1),
            attempt: facts.attempt,
            host: facts.host,
            action: facts.action,
            action_hash: facts.action_hash,
            requested_by: facts.requested_by,
            justification: facts.justification,
            quorum: facts.quorum,
        }
    }

    /// The webhook's body: these exact bytes are stored, signed and sent.
    pub fn body(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| format!("a notification does not serialise: {e}"))
    }

    /// Reads a stored body back (to write the e-mail from it).
    pub fn from_body(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|e| format!("a stored notification does not read: {e}"))
    }

    /// The e-mail's subject: one line, whatever the titles hold.
    pub fn subject(&self) -> String {
        one_line(&format!(
            "[Recovery Portal] Approval needed: {} on {} (run #{})",
            self.step_title, self.site, self.run_id
        ))
    }

    /// The e-mail's plain text.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let who = one_line(&self.requested_by);
        t.push_str(&format!(
            "{who} asks for approval of a destructive step. Nothing runs until {}.\n\n",
            if self.quorum > 1 {
                format!("{} supervisors other than {who} approve it", self.quorum)
            } else {
                format!("a supervisor other than {who} approves it")
            }
        ));
        let host = self.host.as_deref().unwrap_or("(none: not run on a host)");
        for (label, value) in [
            ("Site", one_line(&self.site)),
            (
                "Run",
                format!(
                    "#{} · {} ({})",
                    self.run_id,
                    one_line(&self.runbook_title),
                    self.runbook_id
                ),
            ),
            (
                "Step",
                format!(
                    "{} · {} ({}), attempt {}",
                    self.step_number,
                    one_line(&self.step_title),
                    self.step_id,
                    self.attempt
                ),
            ),
            ("Host", one_line(host)),
            ("Requested by", who.clone()),
            ("Quorum", format!("{} approval(s)", self.quorum)),
        ] {
            t.push_str(&format!("{label:<14}{value}\n"));
        }
        t.push_str("\nJustification:\n");
        t.push_str(&indented(&self.justification));
        t.push_str(&format!(
            "\nThe exact action to approve (SHA-256 {}):\n",
            self.action_hash
        ));
        t.push_str(&indented(&self.action));
        t.push_str(&format!(
            "\nDecide on the approvals page:\n{}\n\nEvent {} of {}.\n",
            self.approval_url, self.event_id, self.created_at
        ));
        t
    }
}

/// Control characters (line breaks) replaced by spaces: for headers and labels.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Every line indented by four spaces, so the text stands apart from ours.
fn indented(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("    \n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts() -> RequestFacts {
        RequestFacts {
            approval_id: 7,
            site: "fra1".into(),
            run_id: 42,
            runbook_id: "restore-cron".into(),
            runbook_title: "Restore the crontab".into(),
            step_id: "install".into(),
            step_title: "Install the crontab".into(),
            position: 2,
            attempt: 1,
            host: Some("pcrfclient01".into()),
            action: "host=pcrfclient01\ncrontab /var/tmp/crontab.txt".into(),
            action_hash: "ab".repeat(32),
            requested_by: "olga".into(),
            justification: "lost in the rebuild".into(),
            quorum: 2,
        }
    }

    fn notice() -> ApprovalNotice {
        ApprovalNotice::new(
            facts(),
            "0b7e6b1c-2f1a-4c3e-9d4f-5a6b7c8d9e0f".into(),
            Utc.with_ymd_and_hms(2026, 11, 27, 10, 30, 0).unwrap(),
            &approvals_page("https://portal.example.net/"),
        )
    }

    #[test]
    fn the_body_carries_every_fact_and_the_link() {
        let v: serde_json::Value = serde_json::from_str(&notice().body().unwrap()).unwrap();
        assert_eq!(v["event"], "approval.requested");
        assert_eq!(v["event_id"], "0b7e6b1c-2f1a-4c3e-9d4f-5a6b7c8d9e0f");
        assert_eq!(v["created_at"], "2026-11-27T10:30:00Z");
        assert_eq!(v["site"], "fra1");
        assert_eq!(v["run_id"], 42);
        assert_eq!(v["runbook_id"], "restore-cron");
        assert_eq!(v["runbook_title"], "Restore the crontab");
        assert_eq!(v["step_id"], "install");
        assert_eq!(v["step_title"], "Install the crontab");
        assert_eq!(v["step_number"], 3);
        assert_eq!(v["host"], "pcrfclient01");
        assert_eq!(
            v["action"],
            "host=pcrfclient01\ncrontab /var/tmp/crontab.txt"
        );
        assert_eq!(v["action_hash"], "ab".repeat(32));
        assert_eq!(v["requested_by"], "olga");
        assert_eq!(v["justification"], "lost in the rebuild");
        assert_eq!(v["quorum"], 2);
        assert_eq!(
            v["approval_url"],
            "https://portal.example.net/approvals#approval-7"
        );
    }

    #[test]
    fn the_body_is_stable_and_reads_back() {
        let n = notice();
        assert_eq!(
            n.body().unwrap(),
            notice().body().unwrap(),
            "same notice, same bytes"
        );
        assert!(n
            .body()
            .unwrap()
            .starts_with(r#"{"event":"approval.requested","event_id":"#));
        assert_eq!(ApprovalNotice::from_body(&n.body().unwrap()).unwrap(), n);
        assert!(ApprovalNotice::from_body("{").is_err());
    }

    #[test]
    fn the_email_names_the_step_and_shows_the_exact_action_and_link() {
        let n = notice();
        assert_eq!(
            n.subject(),
            "[Recovery Portal] Approval needed: Install the crontab on fra1 (run #42)"
        );
        let text = n.text();
        for expected in [
            "olga asks for approval of a destructive step",
            "2 supervisors other than olga",
            "Site          fra1",
            "Run           #42 · Restore the crontab (restore-cron)",
            "Step          3 · Install the crontab (install), attempt 1",
            "Host          pcrfclient01",
            "    lost in the rebuild\n",
            "    host=pcrfclient01\n    crontab /var/tmp/crontab.txt\n",
            &format!("(SHA-256 {})", "ab".repeat(32)),
            "https://portal.example.net/approvals#approval-7",
            "Event 0b7e6b1c-2f1a-4c3e-9d4f-5a6b7c8d9e0f",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }

    #[test]
    fn headers_stay_on_one_line() {
        let mut f = facts();
        f.step_title = "Install\r\nBcc: someone@example.net".into();
        let n = ApprovalNotice::new(f, "x".into(), Utc::now(), "http://p/approvals");
        assert!(!n.subject().contains(['\r', '\n']), "{}", n.subject());
    }

    #[test]
    fn a_step_without_host_says_so() {
        let mut f = facts();
        f.host = None;
        f.quorum = 1;
        let n = ApprovalNotice::new(f, "x".into(), Utc::now(), "http://p/approvals");
        assert!(n.text().contains("Host          (none"));
        assert!(n.text().contains("a supervisor other than olga"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&n.body().unwrap()).unwrap()["host"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn event_ids_look_like_uuids_v4() {
        let id = event_id([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(event_id([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn the_approvals_page_is_under_the_public_url() {
        assert_eq!(
            approvals_page("http://127.0.0.1:3000/"),
            "http://127.0.0.1:3000/approvals"
        );
        assert_eq!(
            approvals_page("https://p.example.net"),
            "https://p.example.net/approvals"
        );
    }
}
