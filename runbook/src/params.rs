//! Checking the values an operator enters for a runbook's parameters.

use crate::model::{ParamKind, Parameter, Runbook};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// A value that was refused, with the parameter it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct ParamError {
    pub parameter: String,
    pub message: String,
}

fn valid_host_name(v: &str) -> bool {
    let mut chars = v.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && v.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An absolute path that names exactly what it says: outside a shell (transfer
/// paths, OpenStack arguments) a path is used as typed, so `..` could climb out
/// of the directory a runbook meant, and blanks or `//` would hide what the path
/// really names from whoever reads the command.
fn check_path(value: &str) -> Result<(), String> {
    let Some(rest) = value.strip_prefix('/') else {
        return Err(format!(
            "{value:?} is not an absolute path (it must start with '/')"
        ));
    };
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{value:?} must not contain spaces, tabs or other blank or control characters"
        ));
    }
    // A single trailing '/' (a directory) is fine; an empty segment inside is not.
    let segments: Vec<&str> = rest.strip_suffix('/').unwrap_or(rest).split('/').collect();
    if !rest.is_empty() && segments.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "{value:?} must not contain an empty segment (`//`)"
        ));
    }
    if segments.contains(&"..") {
        return Err(format!(
            "{value:?} must not contain `..`: write the directory it means"
        ));
    }
    Ok(())
}

/// Checks one value against a parameter's type and pattern; returns it normalised.
pub fn check_value(param: &Parameter, value: &str) -> Result<String, String> {
    if value.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters such as line breaks".into());
    }
    let value = match &param.kind {
        ParamKind::String => value.to_string(),
        ParamKind::Integer { min, max } => {
            let n: i64 = value
                .parse()
                .map_err(|_| format!("{value:?} is not a whole number"))?;
            if let Some(min) = min {
                if n < *min {
                    return Err(format!("must be at least {min}"));
                }
            }
            if let Some(max) = max {
                if n > *max {
                    return Err(format!("must be at most {max}"));
                }
            }
            n.to_string()
        }
        ParamKind::Enum(values) => {
            if !values.iter().any(|v| v == value) {
                return Err(format!("must be one of: {}", values.join(", ")));
            }
            value.to_string()
        }
        ParamKind::Host => {
            if !valid_host_name(value) {
                return Err(format!(
                    "{value:?} is not a host name (lower-case letters, digits and '-')"
                ));
            }
            value.to_string()
        }
        ParamKind::Path => {
            check_path(value)?;
            value.to_string()
        }
        ParamKind::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_err(|_| format!("{value:?} is not a date written YYYY-MM-DD"))?
            .format("%Y-%m-%d")
            .to_string(),
    };
    if let Some(pattern) = &param.pattern {
        if !pattern.regex().is_match(&value) {
            return Err(format!(
                "{value:?} does not match the pattern {}",
                pattern.source()
            ));
        }
    }
    Ok(value)
}

/// Resolves the operator's input into the values a run starts with: defaults
/// filled in (`today` for dates), every value checked. All problems are reported
/// at once, each with its parameter.
pub fn resolve(
    runbook: &Runbook,
    input: &BTreeMap<String, String>,
    today: NaiveDate,
) -> Result<BTreeMap<String, String>, Vec<ParamError>> {
    let mut errors = Vec::new();
    for name in input.keys() {
        if runbook.parameter(name).is_none() {
            errors.push(ParamError {
                parameter: name.clone(),
                message: "is not a parameter of this runbook".into(),
            });
        }
    }
    let mut values = BTreeMap::new();
    for param in &runbook.parameters {
        let typed = input
            .get(&param.name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let value = match (typed, &param.default) {
            (Some(v), _) => Some(v.to_string()),
            (None, Some(d)) if param.kind == ParamKind::Date && d == "today" => {
                Some(today.format("%Y-%m-%d").to_string())
            }
            (None, Some(d)) => Some(d.clone()),
            (None, None) => None,
        };
        match value {
            Some(v) => match check_value(param, &v) {
                Ok(v) => {
                    values.insert(param.name.clone(), v);
                }
                Err(message) => errors.push(ParamError {
                    parameter: param.name.clone(),
                    message,
                }),
            },
            None if param.required => errors.push(ParamError {
                parameter: param.name.clone(),
                message: "is required".into(),
            }),
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_str;

    const RUNBOOK: &str = r#"
id = "params-demo"
title = "Parameters"
description = "d"
expected_duration_minutes = 5

[[parameters]]
name = "site"
type = "string"
required = true
pattern = "[a-z0-9-]+"

[[parameters]]
name = "port"
type = "integer"
min = 1024
max = 65535
default = "27718"

[[parameters]]
name = "db"
type = "enum"
values = ["session", "balance"]
required = true

[[parameters]]
name = "vm"
type = "host"

[[parameters]]
name = "backup"
type = "path"

[[parameters]]
name = "date"
type = "date"
default = "today"

[[steps]]
id = "s"
title = "s"
kind = "manual"
"#;

    fn input(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    #[test]
    fn defaults_and_today_are_filled_in() {
        let rb = load_str("p.toml", RUNBOOK).unwrap();
        let v = resolve(&rb, &input(&[("site", "fra1"), ("db", "balance")]), today()).unwrap();
        assert_eq!(v["port"], "27718");
        assert_eq!(v["date"], "2026-11-27");
        assert!(!v.contains_key("vm"));
    }

    #[test]
    fn every_bad_value_is_reported_with_its_parameter() {
        let rb = load_str("p.toml", RUNBOOK).unwrap();
        let errors = resolve(
            &rb,
            &input(&[
                ("site", "Fra 1"),
                ("port", "80"),
                ("db", "users"),
                ("vm", "Cluman;"),
                ("backup", "relative/x.tgz"),
                ("date", "27.11.2026"),
                ("extra", "1"),
            ]),
            today(),
        )
        .unwrap_err();
        let by_param: BTreeMap<_, _> = errors
            .iter()
            .map(|e| (e.parameter.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            by_param["site"],
            "\"Fra 1\" does not match the pattern [a-z0-9-]+"
        );
        assert_eq!(by_param["port"], "must be at least 1024");
        assert_eq!(by_param["db"], "must be one of: session, balance");
        assert!(by_param["vm"].contains("not a host name"));
        assert!(by_param["backup"].contains("not an absolute path"));
        assert!(by_param["date"].contains("YYYY-MM-DD"));
        assert_eq!(by_param["extra"], "is not a parameter of this runbook");
    }

    #[test]
    fn required_values_are_required_and_line_breaks_refused() {
        let rb = load_str("p.toml", RUNBOOK).unwrap();
        let errors = resolve(&rb, &input(&[("site", "a\nb")]), today()).unwrap_err();
        assert!(errors.contains(&ParamError {
            parameter: "db".into(),
            message: "is required".into()
        }));
        assert!(errors
            .iter()
            .any(|e| e.parameter == "site" && e.message.contains("control characters")));
    }

    #[test]
    fn paths_name_exactly_what_they_say() {
        let rb = load_str("p.toml", RUNBOOK).unwrap();
        let backup = rb.parameter("backup").unwrap();
        for good in [
            "/",
            "/var/tmp/backup/x.tgz",
            "/var/tmp/",
            "/var/qps/patches",
            "/a/.hidden/b..c",
        ] {
            assert_eq!(check_value(backup, good).as_deref(), Ok(good), "{good}");
        }
        for (bad, says) in [
            ("/var/tmp/../../etc/cron.d/x", "must not contain `..`"),
            ("/..", "must not contain `..`"),
            ("/var/tmp/..", "must not contain `..`"),
            ("/var//tmp/x", "empty segment (`//`)"),
            ("//etc", "empty segment (`//`)"),
            ("/var/tmp//", "empty segment (`//`)"),
            ("/var/tmp/my file", "blank or control characters"),
            ("/var/tmp/x\u{a0}y", "blank or control characters"),
            ("/var/tmp/x\ty", "control characters"),
            ("var/tmp", "not an absolute path"),
        ] {
            let e = check_value(backup, bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
