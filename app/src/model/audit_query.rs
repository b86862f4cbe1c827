//! Which audit events a reader wants: the filters of the audit viewer, of the
//! exports and of `recovery-portal audit export`, read from text (a query
//! string, CLI flags) and checked, with a message per field.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Audit filters; every one that is set must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Events at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Exact actor (`olga`, `cli:root`, `system`).
    pub actor: Option<String>,
    /// An action (`step.run`) or a prefix ending in a dot (`approval.`).
    pub action: Option<String>,
    /// Events of this run (its steps and approvals too).
    pub run: Option<i64>,
    /// Events of runs on this site, and site events naming it.
    pub site: Option<String>,
    /// Events whose details name this host.
    pub host: Option<String>,
    /// Text anywhere in the subject or the details (case-insensitive).
    pub text: Option<String>,
}

/// The filter names, as query parameters and CLI flags.
pub const FILTERS: [&str; 8] = [
    "from", "until", "actor", "action", "run", "site", "host", "text",
];

/// A time as a reader types it: `2026-11-27`, `2026-11-27 10:30`,
/// `2026-11-27T10:30:00`, all UTC, or RFC 3339 with an offset. A bare date
/// means its start; `end_of_day` makes `until` include that whole day.
pub fn parse_time(text: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Some(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(t, format) {
            return Some(Utc.from_utc_datetime(&at));
        }
    }
    let day = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    let day = if end_of_day { day.succ_opt()? } else { day };
    Some(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0)?))
}

impl AuditQuery {
    /// Reads filters from name → text (empty values are unset); unknown names
    /// and bad values are refused, each with a message naming the field.
    pub fn parse(params: &BTreeMap<String, String>) -> Result<Self, Vec<(String, String)>> {
        let mut q = AuditQuery::default();
        let mut errors = Vec::new();
        for (name, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let mut bad = |message: String| errors.push((name.clone(), message));
            match name.as_str() {
                "from" | "until" => match parse_time(value, name == "until") {
                    Some(at) if name == "from" => q.from = Some(at),
                    Some(at) => q.until = Some(at),
                    None => bad(format!(
                        "{name}: {value:?} is not a time; write 2026-11-27, 2026-11-27 10:30 or RFC 3339"
                    )),
                },
                "actor" => q.actor = Some(value.to_lowercase()),
                "action" => {
                    if value.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_') {
                        q.action = Some(value.to_string())
                    } else {
                        bad(format!(
                            "action: {value:?} is not an action (such as step.run) or a prefix (such as approval.)"
                        ))
                    }
                }
                "run" => match value.trim_start_matches('#').parse::<i64>() {
                    Ok(id) if id > 0 => q.run = Some(id),
                    _ => bad(format!("run: {value:?} is not a run number")),
                },
                "site" => q.site = Some(value.to_string()),
                "host" => q.host = Some(value.to_string()),
                "text" => {
                    if value.chars().count() > 200 {
                        bad("text: at most 200 characters".into())
                    } else {
                        q.text = Some(value.to_string())
                    }
                }
                other => bad(format!(
                    "{other}: not a filter (filters: {})",
                    FILTERS.join(", ")
                )),
            }
        }
        if let (Some(from), Some(until)) = (q.from, q.until) {
            if until <= from {
                errors.push(("until".into(), "until: must be later than from".into()));
            }
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(errors)
        }
    }

    /// The filters that are set, as name → text (links, export headers).
    pub fn to_params(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Some(t) = &self.from {
            out.insert("from".into(), time(t));
        }
        if let Some(t) = &self.until {
            out.insert("until".into(), time(t));
        }
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("site", &self.site),
            ("host", &self.host),
            ("text", &self.text),
        ] {
            if let Some(v) = v {
                out.insert(k.into(), v.clone());
            }
        }
        if let Some(r) = self.run {
            out.insert("run".into(), r.to_string());
        }
        out
    }

    /// Whether no filter is set (the whole trail).
    pub fn is_everything(&self) -> bool {
        self == &AuditQuery::default()
    }

    /// The query string of these filters, `&`-joined and percent-encoded.
    pub fn query_string(&self) -> String {
        self.to_params()
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_are_read_and_written_back() {
        let q = AuditQuery::parse(&params(&[
            ("from", "2026-11-27"),
            ("until", "2026-11-27"),
            ("actor", "Olga"),
            ("action", "approval."),
            ("run", "#12"),
            ("host", "pcrfclient01"),
            ("text", "crontab"),
            ("site", ""),
        ]))
        .unwrap();
        assert_eq!(q.actor.as_deref(), Some("olga"));
        assert_eq!(q.run, Some(12));
        assert_eq!(q.site, None);
        assert_eq!(
            q.until.unwrap() - q.from.unwrap(),
            chrono::Duration::days(1),
            "a bare until date includes that day"
        );
        let back = AuditQuery::parse(&q.to_params()).unwrap();
        assert_eq!(back, q);
        assert!(q.query_string().contains("from=2026-11-27T00%3A00%3A00Z"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let errors = AuditQuery::parse(&params(&[
            ("from", "yesterday"),
            ("run", "abc"),
            ("action", "DROP TABLE"),
            ("colour", "red"),
        ]))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["action", "colour", "from", "run"]);
        assert!(errors[2].1.contains("is not a time"), "{errors:?}");
        assert!(errors[1].1.contains("not a filter"), "{errors:?}");
        let errors = AuditQuery::parse(&params(&[
            ("from", "2026-11-28"),
            ("until", "2026-11-27 10:00"),
        ]))
        .unwrap_err();
        assert_eq!(errors[0].0, "until");
    }

    #[test]
    fn times_take_the_usual_forms() {
        let t = |s| parse_time(s, false).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2026-11-27 10:30").as_deref(),
            Some("2026-11-27T10:30:00+00:00")
        );
        assert_eq!(
            t("2026-11-27T10:30:05").as_deref(),
            Some("2026-11-27T10:30:05+00:00")
        );
        assert_eq!(
            t("2026-11-27T11:30:05+01:00").as_deref(),
            Some("2026-11-27T10:30:05+00:00")
        );
        assert_eq!(t("27.11.2026"), None);
        assert!(AuditQuery::default().is_everything());
    }
}
