//! Reading runbook files and checking them into the [`crate::model`].
//!
//! A runbook file is TOML:
//!
//! ```toml
//! id = "cron-restore"                 # lower-case letters, digits and '-'
//! title = "Restore cron jobs"
//! description = "Markdown."
//! expected_duration_minutes = 15
//! approvals = 1                       # supervisors who must approve each destructive step (1 or 2)
//!
//! [[parameters]]
//! name = "host"                       # used as {{ host }}
//! type = "host"                       # string | integer | enum | host | path | date
//! label = "VM"
//! required = true
//! default = "cluman"                  # dates may default to "today"
//! pattern = "[a-z0-9]+"               # must match the whole value
//! values = ["a", "b"]                 # enum only; min/max for integers
//! help = "Which VM's crontab to restore."
//!
//! [[steps]]
//! id = "install"                      # unique in the file
//! title = "Install the crontab"
//! kind = "ssh"                        # ssh | esc | openstack | manual | wait | transfer
//! instructions = "Markdown shown to the operator."
//! destructive = true                  # waits for a supervisor's approval
//! approvals = 2                       # this step needs two supervisors (destructive steps only)
//! when = { var = "x", equals = "y" }  # or not_equals, empty = true/false, all = [..], any = [..]
//! host = "{{ host }}"                 # a site host name, or a host parameter
//! command = "crontab {{ file }}"      # values are shell-quoted; {{ x | raw }} (enum parameters only) is not
//! timeout_seconds = 60
//! expect = { exit_status = 0, output_matches = ["..."], output_excludes = ["..."] }
//! captures = [{ name = "uuid", regex = "UUID: (\\S+)" }]  # optional = true: no match gives ""
//! ```
//!
//! `wait` steps add `interval_seconds` (and `timeout_seconds` is the whole wait);
//! `openstack` steps have `action` and `args` (each action's required and optional
//! args are in `OpenStackAction::args`; literal statuses, timeouts, booleans, disk
//! formats and store paths are checked here); `manual` steps may have
//! `observation = "none" | "optional" | "required"` and `records = "name"`;
//! `transfer` steps have `from` and `to`, each `{ host = "...", path = "..." }` or
//! `{ store = "relative/path" }` (the portal's backup store).

use crate::condition::Condition;
use crate::hosts;
use crate::model::*;
use crate::params::check_value;
use crate::template::{Context, Template};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// A problem in a runbook file, at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// The default timeout of a command.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 300;
/// The longest any step may run.
pub const MAX_TIMEOUT_SECONDS: i64 = 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    id: Spanned<String>,
    title: String,
    description: String,
    expected_duration_minutes: Spanned<i64>,
    approvals: Option<Spanned<i64>>,
    #[serde(default)]
    parameters: Vec<RawParameter>,
    steps: Spanned<Vec<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    label: Option<String>,
    #[serde(default)]
    required: bool,
    default: Option<Spanned<String>>,
    pattern: Option<Spanned<String>>,
    values: Option<Spanned<Vec<String>>>,
    min: Option<Spanned<i64>>,
    max: Option<Spanned<i64>>,
    #[serde(default)]
    help: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    title: String,
    kind: Spanned<String>,
    #[serde(default)]
    instructions: String,
    #[serde(default)]
    destructive: bool,
    approvals: Option<Spanned<i64>>,
    when: Option<Spanned<RawCondition>>,
    host: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    timeout_seconds: Option<Spanned<i64>>,
    interval_seconds: Option<Spanned<i64>>,
    expect: Option<Spanned<RawExpect>>,
    captures: Option<Vec<RawCapture>>,
    action: Option<Spanned<String>>,
    args: Option<Spanned<BTreeMap<String, String>>>,
    observation: Option<Spanned<String>>,
    records: Option<Spanned<String>>,
    from: Option<Spanned<RawEndpoint>>,
    to: Option<Spanned<RawEndpoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    var: Option<String>,
    equals: Option<String>,
    not_equals: Option<String>,
    empty: Option<bool>,
    all: Option<Vec<RawCondition>>,
    any: Option<Vec<RawCondition>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    exit_status: Option<i64>,
    #[serde(default)]
    output_matches: Vec<String>,
    #[serde(default)]
    output_excludes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapture {
    name: Spanned<String>,
    regex: Spanned<String>,
    optional: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    host: Option<String>,
    path: Option<String>,
    store: Option<String>,
}

/// Collects diagnostics with positions computed from byte offsets.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
    /// The enum parameters: the only names `{{ name | raw }}` may insert, since
    /// their values are a fixed list in the runbook. A raw string parameter or
    /// capture would let typed input or remote output into the shell.
    raw_allowed: HashSet<String>,
}

impl Checker<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        self.diagnostics.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }
}

fn valid_identifier(s: &str, dashes: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || if dashes { c == '-' } else { c == '_' }
        })
}

/// Loads a runbook from text; `file` names it in diagnostics.
pub fn load_str(file: &str, text: &str) -> Result<Runbook, Vec<Diagnostic>> {
    let mut ck = Checker {
        file,
        text,
        diagnostics: Vec::new(),
        raw_allowed: HashSet::new(),
    };
    let raw: RawRunbook = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let message = e.message().to_string();
            ck.at(e.span().unwrap_or(0..0), message);
            return Err(ck.diagnostics);
        }
    };
    let runbook = check(&mut ck, raw);
    match runbook {
        Some(rb) if ck.diagnostics.is_empty() => Ok(rb),
        _ => Err(ck.diagnostics),
    }
}

fn check(ck: &mut Checker<'_>, raw: RawRunbook) -> Option<Runbook> {
    if !valid_identifier(raw.id.get_ref(), true) {
        ck.at(
            raw.id.span(),
            format!(
                "runbook id {:?} must be lower-case letters, digits and '-'",
                raw.id.get_ref()
            ),
        );
    }
    let minutes = *raw.expected_duration_minutes.get_ref();
    if !(1..=24 * 60).contains(&minutes) {
        ck.at(
            raw.expected_duration_minutes.span(),
            "expected_duration_minutes must be from 1 to 1440",
        );
    }

    let mut parameters = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    for p in raw.parameters {
        if let Some(param) = check_parameter(ck, p, &mut names) {
            parameters.push(param);
        }
    }
    ck.raw_allowed = parameters
        .iter()
        .filter(|p| matches!(p.kind, ParamKind::Enum(_)))
        .map(|p| p.name.clone())
        .collect();

    if raw.steps.get_ref().is_empty() {
        ck.at(raw.steps.span(), "a runbook needs at least one step");
    }
    let default_approvals = check_approvals(ck, &raw.approvals).unwrap_or(1);
    let mut steps = Vec::new();
    let mut step_ids: HashSet<String> = HashSet::new();
    for s in raw.steps.into_inner() {
        let approvals = if s.destructive {
            check_approvals(ck, &s.approvals).unwrap_or(default_approvals)
        } else {
            if let Some(a) = &s.approvals {
                ck.at(
                    a.span(),
                    "`approvals` belongs only on destructive steps: other steps need no approval",
                );
            }
            0
        };
        if let Some(mut step) = check_step(ck, s, &parameters, &mut names, &mut step_ids) {
            step.approvals = approvals;
            steps.push(step);
        }
    }

    Some(Runbook {
        id: raw.id.into_inner(),
        title: raw.title,
        description: raw.description,
        expected_duration_minutes: minutes.clamp(1, 24 * 60) as u32,
        parameters,
        steps,
        source: Source {
            path: ck.file.to_string(),
            text: ck.text.to_string(),
            sha256: hex::encode(Sha256::digest(ck.text.as_bytes())),
        },
    })
}

/// How many supervisors must approve: 1, or 2 for the most dangerous steps.
fn check_approvals(ck: &mut Checker<'_>, a: &Option<Spanned<i64>>) -> Option<u8> {
    let a = a.as_ref()?;
    match *a.get_ref() {
        n @ 1..=2 => Some(n as u8),
        _ => {
            ck.at(
                a.span(),
                "approvals must be 1 or 2 (the number of supervisors who approve)",
            );
            None
        }
    }
}

fn check_parameter(
    ck: &mut Checker<'_>,
    p: RawParameter,
    names: &mut HashSet<String>,
) -> Option<Parameter> {
    let name = p.name.get_ref().clone();
    if !valid_identifier(&name, false) {
        ck.at(
            p.name.span(),
            format!("parameter name {name:?} must be lower-case letters, digits and '_'"),
        );
    } else if !names.insert(name.clone()) {
        ck.at(p.name.span(), format!("duplicate parameter {name:?}"));
    }
    let int_bound = |b: &Option<Spanned<i64>>| b.as_ref().map(|b| *b.get_ref());
    let kind = match p.kind.get_ref().as_str() {
        "string" => ParamKind::String,
        "integer" => ParamKind::Integer {
            min: int_bound(&p.min),
            max: int_bound(&p.max),
        },
        "enum" => match &p.values {
            Some(v) if !v.get_ref().is_empty() => ParamKind::Enum(v.get_ref().clone()),
            _ => {
                ck.at(
                    p.kind.span(),
                    format!("enum parameter {name:?} needs a non-empty `values` list"),
                );
                return None;
            }
        },
        "host" => ParamKind::Host,
        "path" => ParamKind::Path,
        "date" => ParamKind::Date,
        other => {
            ck.at(
                p.kind.span(),
                format!("unknown parameter type {other:?}: expected string, integer, enum, host, path or date"),
            );
            return None;
        }
    };
    if let (Some(values), false) = (&p.values, matches!(kind, ParamKind::Enum(_))) {
        ck.at(values.span(), "`values` is only for enum parameters");
    }
    for bound in [&p.min, &p.max].into_iter().flatten() {
        if !matches!(kind, ParamKind::Integer { .. }) {
            ck.at(
                bound.span(),
                "`min` and `max` are only for integer parameters",
            );
        }
    }
    let pattern = match &p.pattern {
        Some(src) => match Pattern::whole(src.get_ref()) {
            Ok(pat) => Some(pat),
            Err(e) => {
                ck.at(src.span(), format!("bad pattern: {e}"));
                None
            }
        },
        None => None,
    };
    let param = Parameter {
        label: p.label.unwrap_or_else(|| name.replace('_', " ")),
        name,
        kind,
        required: p.required,
        default: p.default.as_ref().map(|d| d.get_ref().clone()),
        pattern,
        help: p.help,
    };
    if let Some(default) = &p.default {
        let is_today = param.kind == ParamKind::Date && default.get_ref() == "today";
        if !is_today {
            if let Err(message) = check_value(&param, default.get_ref()) {
                ck.at(
                    default.span(),
                    format!("default of {:?}: {message}", param.name),
                );
            }
        }
    }
    Some(param)
}

/// Names defined so far: parameters, and captures of earlier steps.
fn check_template(
    ck: &mut Checker<'_>,
    src: &Spanned<String>,
    context: Context,
    defined: &HashSet<String>,
) -> Option<Template> {
    match Template::parse(src.get_ref(), context) {
        Ok(t) => {
            for (name, raw) in t.variables() {
                if !defined.contains(name) {
                    ck.at(
                        src.span(),
                        format!("undefined parameter or capture {name:?} (captures are usable after the step that makes them)"),
                    );
                } else if raw && !ck.raw_allowed.contains(name) {
                    ck.at(
                        src.span(),
                        format!("`{{{{ {name} | raw }}}}`: only enum parameters may be inserted unquoted, and {name:?} is not one; remove `| raw` (the value is then shell-quoted)"),
                    );
                }
            }
            Some(t)
        }
        Err(e) => {
            ck.at(src.span(), format!("bad template: {e}"));
            None
        }
    }
}

fn check_host(
    ck: &mut Checker<'_>,
    host: &Spanned<String>,
    params: &[Parameter],
    esc: bool,
) -> Option<HostRef> {
    let value = host.get_ref().trim();
    if value.contains("{{") {
        let var = Template::parse(value, Context::Plain)
            .ok()
            .and_then(|t| t.single_variable().map(str::to_string));
        match var {
            Some(var) => match params.iter().find(|p| p.name == var) {
                Some(p) if p.kind == ParamKind::Host => Some(HostRef::Param(var)),
                Some(_) => {
                    ck.at(
                        host.span(),
                        format!("host parameter {var:?} must have type \"host\""),
                    );
                    None
                }
                None => {
                    ck.at(host.span(), format!("undefined host parameter {var:?}"));
                    None
                }
            },
            None => {
                ck.at(
                    host.span(),
                    "a host is a site host name or exactly one `{{ parameter }}`",
                );
                None
            }
        }
    } else if esc && !hosts::ESC_HOSTS.contains(&value) {
        ck.at(
            host.span(),
            format!(
                "unknown ESC host {value:?}: expected one of {}",
                hosts::ESC_HOSTS.join(", ")
            ),
        );
        None
    } else if !hosts::is_known(value) {
        ck.at(
            host.span(),
            format!(
                "unknown host {value:?}: expected one of {}",
                hosts::KNOWN_HOSTS.join(", ")
            ),
        );
        None
    } else {
        Some(HostRef::Named(value.to_string()))
    }
}

fn check_condition(
    ck: &mut Checker<'_>,
    c: &RawCondition,
    span: Range<usize>,
    defined: &HashSet<String>,
) -> Option<Condition> {
    let composite = c.all.is_some() || c.any.is_some();
    if composite {
        if c.var.is_some()
            || c.equals.is_some()
            || c.not_equals.is_some()
            || c.empty.is_some()
            || (c.all.is_some() && c.any.is_some())
        {
            ck.at(
                span,
                "a condition is either `all`, `any`, or one test on `var`",
            );
            return None;
        }
        let (list, all) = match (&c.all, &c.any) {
            (Some(l), _) => (l, true),
            (_, Some(l)) => (l, false),
            _ => return None,
        };
        let inner: Vec<Condition> = list
            .iter()
            .filter_map(|c| check_condition(ck, c, span.clone(), defined))
            .collect();
        if inner.len() != list.len() {
            return None;
        }
        return Some(if all {
            Condition::All(inner)
        } else {
            Condition::Any(inner)
        });
    }
    let Some(var) = &c.var else {
        ck.at(span, "a condition needs `var` (or `all` / `any`)");
        return None;
    };
    if !defined.contains(var) {
        ck.at(
            span.clone(),
            format!("condition on undefined parameter or capture {var:?}"),
        );
    }
    let tests = [
        c.equals.is_some(),
        c.not_equals.is_some(),
        c.empty.is_some(),
    ];
    if tests.iter().filter(|t| **t).count() != 1 {
        ck.at(
            span,
            "a condition on `var` needs exactly one of `equals`, `not_equals`, `empty`",
        );
        return None;
    }
    let var = var.clone();
    Some(match (&c.equals, &c.not_equals, c.empty) {
        (Some(v), _, _) => Condition::Equals {
            var,
            value: v.clone(),
        },
        (_, Some(v), _) => Condition::NotEquals {
            var,
            value: v.clone(),
        },
        (_, _, Some(true)) => Condition::Empty { var },
        _ => Condition::NotEmpty { var },
    })
}

fn check_timeout(ck: &mut Checker<'_>, t: &Option<Spanned<i64>>, what: &str) -> u32 {
    match t {
        Some(t) if (1..=MAX_TIMEOUT_SECONDS).contains(t.get_ref()) => *t.get_ref() as u32,
        Some(t) => {
            ck.at(
                t.span(),
                format!("{what} must be from 1 to {MAX_TIMEOUT_SECONDS} seconds"),
            );
            DEFAULT_TIMEOUT_SECONDS
        }
        None => DEFAULT_TIMEOUT_SECONDS,
    }
}

fn check_shell(
    ck: &mut Checker<'_>,
    s: &RawStep,
    params: &[Parameter],
    defined: &HashSet<String>,
    esc: bool,
) -> Option<ShellCommand> {
    let step_span = s.kind.span();
    let host = match &s.host {
        Some(h) => check_host(ck, h, params, esc),
        None => {
            ck.at(
                step_span.clone(),
                format!("a {} step needs `host`", s.kind.get_ref()),
            );
            None
        }
    };
    let command = match &s.command {
        Some(c) => check_template(ck, c, Context::Shell, defined),
        None => {
            ck.at(
                step_span,
                format!("a {} step needs `command`", s.kind.get_ref()),
            );
            None
        }
    };
    let timeout_seconds = check_timeout(ck, &s.timeout_seconds, "timeout_seconds");
    let mut expect = Expectations::default();
    if let Some(e) = &s.expect {
        let raw = e.get_ref();
        expect.exit_status = match raw.exit_status {
            Some(code) if (0..=255).contains(&code) => Some(code as i32),
            Some(_) => {
                ck.at(e.span(), "exit_status must be from 0 to 255");
                None
            }
            None => Some(0),
        };
        for (list, target) in [
            (&raw.output_matches, &mut expect.output_matches),
            (&raw.output_excludes, &mut expect.output_excludes),
        ] {
            for src in list {
                match Pattern::new(src) {
                    Ok(p) => target.push(p),
                    Err(err) => ck.at(e.span(), format!("bad pattern {src:?}: {err}")),
                }
            }
        }
    }
    let mut captures = Vec::new();
    for c in s.captures.iter().flatten() {
        match Pattern::new(c.regex.get_ref()) {
            Ok(p) if p.regex().captures_len() >= 2 => captures.push(Capture {
                name: c.name.get_ref().clone(),
                pattern: p,
                optional: c.optional.unwrap_or(false),
            }),
            Ok(_) => ck.at(
                c.regex.span(),
                "a capture's regex needs a group `( )` around the value to keep",
            ),
            Err(err) => ck.at(c.regex.span(), format!("bad capture regex: {err}")),
        }
    }
    Some(ShellCommand {
        host: host?,
        command: command?,
        timeout_seconds,
        expect,
        captures,
    })
}

fn check_endpoint(
    ck: &mut Checker<'_>,
    e: &Spanned<RawEndpoint>,
    params: &[Parameter],
    defined: &HashSet<String>,
) -> Option<Endpoint> {
    let raw = e.get_ref();
    let path_of = |ck: &mut Checker<'_>, p: &str| {
        check_template(
            ck,
            &Spanned::new(e.span(), p.to_string()),
            Context::Plain,
            defined,
        )
    };
    match (&raw.host, &raw.path, &raw.store) {
        (Some(host), Some(path), None) => {
            let host = check_host(ck, &Spanned::new(e.span(), host.clone()), params, false);
            if !path.starts_with('/') && !path.starts_with("{{") {
                ck.at(
                    e.span(),
                    format!("path {path:?} on a host must be absolute"),
                );
            }
            let path = path_of(ck, path);
            Some(Endpoint::Host {
                host: host?,
                path: path?,
            })
        }
        (None, None, Some(store)) => {
            if store.starts_with('/') || store.split('/').any(|seg| seg == "..") {
                ck.at(
                    e.span(),
                    format!("store path {store:?} must be relative and stay inside the store"),
                );
                return None;
            }
            Some(Endpoint::Store {
                path: path_of(ck, store)?,
            })
        }
        _ => {
            ck.at(
                e.span(),
                "a transfer end is `{ host = \"...\", path = \"...\" }` or `{ store = \"...\" }`",
            );
            None
        }
    }
}

/// An OpenStack step's arguments against its action: every required one present,
/// no unknown one, and literal values of the typed ones well-formed (templated
/// values are checked when the step renders).
fn check_openstack_args(
    ck: &mut Checker<'_>,
    action: OpenStackAction,
    raw: &Spanned<BTreeMap<String, String>>,
) {
    let (required, optional) = action.args();
    let args = raw.get_ref();
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !args.contains_key(*r))
        .collect();
    if !missing.is_empty() {
        ck.at(
            raw.span(),
            format!("{} needs args: {}", action.name(), missing.join(", ")),
        );
    }
    for (k, v) in args {
        if !required.contains(&k.as_str()) && !optional.contains(&k.as_str()) {
            let known: Vec<&str> = required.iter().chain(optional).copied().collect();
            ck.at(
                raw.span(),
                format!(
                    "{} takes no arg {k:?}; it takes {}",
                    action.name(),
                    known.join(", ")
                ),
            );
            continue;
        }
        if v.contains("{{") {
            continue;
        }
        let problem = match k.as_str() {
            "timeout_seconds" => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_TIMEOUT_SECONDS).contains(&n) => None,
                _ => Some(format!(
                    "must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECONDS}"
                )),
            },
            "status" if matches!(action, OpenStackAction::ServerWaitStatus) => {
                (!["ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "DELETED"].contains(&v.as_str()))
                    .then(|| {
                        "must be a Nova status: ACTIVE, SHUTOFF, PAUSED, SUSPENDED or DELETED"
                            .to_string()
                    })
            }
            "status" if matches!(action, OpenStackAction::ImageWaitStatus) => {
                (!["active", "deleted"].contains(&v.as_str()))
                    .then(|| "must be a Glance status to wait for: active or deleted".to_string())
            }
            "config_drive" | "hard" => (!["true", "false"].contains(&v.as_str()))
                .then(|| "must be true or false".to_string()),
            "store" => (v.starts_with('/') || v.split('/').any(|seg| seg == ".."))
                .then(|| "must be relative and stay inside the backup store".to_string()),
            "disk_format" => (![
                "qcow2", "raw", "vmdk", "vdi", "iso", "vhd", "vhdx", "ami", "ari", "aki",
            ]
            .contains(&v.as_str()))
            .then(|| "must be a Glance disk format such as qcow2 or raw".to_string()),
            _ => None,
        };
        if let Some(p) = problem {
            ck.at(raw.span(), format!("{}: arg {k} {v:?} {p}", action.name()));
        }
    }
}

/// Fields each kind of step may have (beyond id, title, kind, instructions,
/// destructive, when).
fn allowed_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "ssh" | "esc" => &["host", "command", "timeout_seconds", "expect", "captures"],
        "wait" => &[
            "host",
            "command",
            "timeout_seconds",
            "interval_seconds",
            "expect",
            "captures",
        ],
        "openstack" => &["action", "args"],
        "manual" => &["observation", "records"],
        "transfer" => &["from", "to"],
        _ => &[],
    }
}

fn present_fields(s: &RawStep) -> Vec<(&'static str, Range<usize>)> {
    let mut out = Vec::new();
    macro_rules! field {
        ($name:ident) => {
            if let Some(v) = &s.$name {
                out.push((stringify!($name), v.span()));
            }
        };
    }
    field!(host);
    field!(command);
    field!(timeout_seconds);
    field!(interval_seconds);
    field!(expect);
    field!(action);
    field!(args);
    field!(observation);
    field!(records);
    field!(from);
    field!(to);
    if s.captures.is_some() {
        out.push(("captures", s.id.span()));
    }
    out
}

fn check_step(
    ck: &mut Checker<'_>,
    s: RawStep,
    params: &[Parameter],
    names: &mut HashSet<String>,
    step_ids: &mut HashSet<String>,
) -> Option<Step> {
    let id = s.id.get_ref().clone();
    if !valid_identifier(&id, true) {
        ck.at(
            s.id.span(),
            format!("step id {id:?} must be lower-case letters, digits and '-'"),
        );
    } else if !step_ids.insert(id.clone()) {
        ck.at(s.id.span(), format!("duplicate step id {id:?}"));
    }
    let kind = s.kind.get_ref().as_str();
    if !["ssh", "esc", "openstack", "manual", "wait", "transfer"].contains(&kind) {
        ck.at(s.kind.span(), format!("unknown step kind {kind:?}: expected ssh, esc, openstack, manual, wait or transfer"));
        return None;
    }
    for (field, span) in present_fields(&s) {
        if !allowed_fields(kind).contains(&field) {
            ck.at(span, format!("`{field}` does not belong in a {kind} step"));
        }
    }
    // The names this step may use: parameters and earlier captures.
    let defined = names.clone();
    let when = s
        .when
        .as_ref()
        .and_then(|w| check_condition(ck, w.get_ref(), w.span(), &defined));
    let action = match kind {
        "ssh" => check_shell(ck, &s, params, &defined, false).map(StepAction::Ssh),
        "esc" => check_shell(ck, &s, params, &defined, true).map(StepAction::Esc),
        "wait" => {
            let check = check_shell(ck, &s, params, &defined, false);
            let interval = match &s.interval_seconds {
                Some(i) if (1..=3600).contains(i.get_ref()) => *i.get_ref() as u32,
                Some(i) => {
                    ck.at(i.span(), "interval_seconds must be from 1 to 3600");
                    10
                }
                None => 10,
            };
            check.map(|check| {
                // For a wait, timeout_seconds is the whole wait; each check gets the interval.
                let timeout_seconds = check.timeout_seconds;
                if interval >= timeout_seconds {
                    ck.at(
                        s.kind.span(),
                        "interval_seconds must be shorter than timeout_seconds",
                    );
                }
                StepAction::Wait {
                    check: ShellCommand {
                        timeout_seconds: interval,
                        ..check
                    },
                    interval_seconds: interval,
                    timeout_seconds,
                }
            })
        }
        "openstack" => {
            let action = match &s.action {
                Some(a) => match OpenStackAction::from_name(a.get_ref()) {
                    Some(action) => Some(action),
                    None => {
                        let known: Vec<&str> =
                            OpenStackAction::ALL.iter().map(|(_, n)| *n).collect();
                        ck.at(
                            a.span(),
                            format!(
                                "unknown OpenStack action {:?}: expected one of {}",
                                a.get_ref(),
                                known.join(", ")
                            ),
                        );
                        None
                    }
                },
                None => {
                    ck.at(s.kind.span(), "an openstack step needs `action`");
                    None
                }
            };
            let mut args = BTreeMap::new();
            if let (Some(action), Some(raw)) = (action, &s.args) {
                check_openstack_args(ck, action, raw);
            } else if let (Some(action), None) = (action, &s.args) {
                let (required, _) = action.args();
                if !required.is_empty() {
                    ck.at(
                        s.kind.span(),
                        format!("{} needs args: {}", action.name(), required.join(", ")),
                    );
                }
            }
            if let Some(raw) = &s.args {
                for (k, v) in raw.get_ref() {
                    if let Some(t) = check_template(
                        ck,
                        &Spanned::new(raw.span(), v.clone()),
                        Context::Plain,
                        &defined,
                    ) {
                        args.insert(k.clone(), t);
                    }
                }
            }
            action.map(|action| StepAction::OpenStack { action, args })
        }
        "manual" => {
            let observation = match s
                .observation
                .as_ref()
                .map(|o| (o.get_ref().as_str(), o.span()))
            {
                None | Some(("none", _)) => Observation::None,
                Some(("optional", _)) => Observation::Optional,
                Some(("required", _)) => Observation::Required,
                Some((other, span)) => {
                    ck.at(
                        span,
                        format!("observation {other:?}: expected none, optional or required"),
                    );
                    Observation::None
                }
            };
            let records = s.records.as_ref().map(|r| r.get_ref().clone());
            if records.is_some() && observation == Observation::None {
                ck.at(
                    s.kind.span(),
                    "`records` needs `observation = \"required\"` (or \"optional\")",
                );
            }
            Some(StepAction::Manual {
                observation,
                records,
            })
        }
        "transfer" => match (&s.from, &s.to) {
            (Some(from), Some(to)) => {
                let from = check_endpoint(ck, from, params, &defined);
                let to = check_endpoint(ck, to, params, &defined);
                Some(StepAction::Transfer {
                    from: from?,
                    to: to?,
                })
            }
            _ => {
                ck.at(s.kind.span(), "a transfer step needs `from` and `to`");
                None
            }
        },
        _ => None,
    };
    // Captures become usable by the steps after this one.
    if let Some(action) = &action {
        for name in action.captures() {
            if !valid_identifier(name, false) {
                ck.at(
                    s.id.span(),
                    format!("capture name {name:?} must be lower-case letters, digits and '_'"),
                );
            } else if !names.insert(name.to_string()) {
                ck.at(
                    s.id.span(),
                    format!("{name:?} is already a parameter or an earlier capture"),
                );
            }
        }
    }
    Some(Step {
        id,
        title: s.title,
        instructions: s.instructions,
        destructive: s.destructive,
        approvals: 0,
        when,
        action: action?,
    })
}

/// Loads one file.
pub fn load_file(path: &Path) -> Result<Runbook, Vec<Diagnostic>> {
    let label = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&label, &text),
        Err(e) => Err(vec![Diagnostic {
            file: label,
            line: 1,
            column: 1,
            message: format!("cannot be read: {e}"),
        }]),
    }
}

/// The `*.toml` files of a directory, in name order.
pub fn runbook_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir).map_err(|e| Diagnostic {
        file: dir.display().to_string(),
        line: 1,
        column: 1,
        message: format!("cannot be read: {e}"),
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every `*.toml` file of a directory, in name order; runbook ids must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Runbook>, Vec<Diagnostic>> {
    load_files(&runbook_files(dir).map_err(|d| vec![d])?)
}

/// Loads the given files; runbook ids must be unique across them.
pub fn load_files(files: &[impl AsRef<Path>]) -> Result<Vec<Runbook>, Vec<Diagnostic>> {
    let mut runbooks: Vec<Runbook> = Vec::new();
    let mut diagnostics = Vec::new();
    for f in files {
        match load_file(f.as_ref()) {
            Ok(rb) => {
                if let Some(other) = runbooks.iter().find(|o| o.id == rb.id) {
                    diagnostics.push(Diagnostic {
                        file: rb.source.path.clone(),
                        line: 1,
                        column: 1,
                        message: format!(
                            "runbook id {:?} is also used by {}",
                            rb.id, other.source.path
                        ),
                    });
                } else {
                    runbooks.push(rb);
                }
            }
            Err(d) => diagnostics.extend(d),
        }
    }
    if diagnostics.is_empty() {
        Ok(runbooks)
    } else {
        Err(diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "id = \"t\"\ntitle = \"T\"\ndescription = \"d\"\nexpected_duration_minutes = 5\n";

    fn errors(body: &str) -> Vec<String> {
        match load_str("t.toml", &format!("{HEAD}{body}")) {
            Ok(_) => vec![],
            Err(d) => d.into_iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_good_runbook_loads() {
        let rb = load_str(
            "t.toml",
            &format!(
                "{HEAD}
[[parameters]]
name = \"vm\"
type = \"host\"
default = \"cluman\"

[[steps]]
id = \"uuid\"
title = \"Read the UUID\"
kind = \"ssh\"
host = \"{{{{ vm }}}}\"
command = \"svn info http://pcrfclient02/repos | grep UUID\"
captures = [{{ name = \"uuid\", regex = 'UUID: (\\S+)' }}]

[[steps]]
id = \"set\"
title = \"Set it\"
kind = \"ssh\"
host = \"pcrfclient01\"
command = \"svnadmin setuuid /var/www/svn/repos/ {{{{uuid}}}}\"
destructive = true
when = {{ var = \"uuid\", empty = false }}
"
            ),
        )
        .unwrap();
        assert_eq!(rb.steps.len(), 2);
        assert_eq!(rb.destructive_steps(), 1);
        assert_eq!(rb.source.sha256.len(), 64);
        let StepAction::Ssh(cmd) = &rb.steps[0].action else {
            panic!("ssh")
        };
        assert_eq!(cmd.host, HostRef::Param("vm".into()));
        assert_eq!(cmd.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
    }

    #[test]
    fn destructive_steps_need_one_approval_unless_the_runbook_or_step_asks_for_two() {
        let step = |extra: &str, id: &str| {
            format!(
                "[[steps]]\nid = \"{id}\"\ntitle = \"T\"\nkind = \"ssh\"\nhost = \"cluman\"\ncommand = \"true\"\n{extra}\n"
            )
        };
        let body = format!(
            "{}{}{}",
            step("", "plain"),
            step("destructive = true", "one"),
            step("destructive = true\napprovals = 2", "two")
        );
        let rb = load_str("t.toml", &format!("{HEAD}{body}")).unwrap();
        let approvals: Vec<u8> = rb.steps.iter().map(|s| s.approvals).collect();
        assert_eq!(approvals, [0, 1, 2]);

        let rb = load_str("t.toml", &format!("{HEAD}approvals = 2\n{body}")).unwrap();
        let approvals: Vec<u8> = rb.steps.iter().map(|s| s.approvals).collect();
        assert_eq!(approvals, [0, 2, 2]);

        assert_eq!(
            errors(&step("approvals = 2", "x")),
            ["t.toml:11:13: `approvals` belongs only on destructive steps: other steps need no approval"]
        );
        assert_eq!(
            errors(&step("destructive = true\napprovals = 3", "x")),
            ["t.toml:12:13: approvals must be 1 or 2 (the number of supervisors who approve)"]
        );
    }

    #[test]
    fn openstack_args_are_checked_against_their_action() {
        let step = |args: &str| {
            format!(
                "[[steps]]\nid = \"s\"\ntitle = \"S\"\nkind = \"openstack\"\naction = \"server.wait_status\"\nargs = {args}\n"
            )
        };
        assert_eq!(
            errors(&step(
                "{ server = \"cluman\", status = \"ACTIVE\", timeout_seconds = \"600\" }"
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(&step("{ server = \"cluman\" }")),
            ["t.toml:10:8: server.wait_status needs args: status"]
        );
        assert_eq!(
            errors(&step("{ server = \"cluman\", status = \"active\", timout = \"5\" }")),
            [
                "t.toml:10:8: server.wait_status: arg status \"active\" must be a Nova status: ACTIVE, SHUTOFF, PAUSED, SUSPENDED or DELETED",
                "t.toml:10:8: server.wait_status takes no arg \"timout\"; it takes server, status, timeout_seconds"
            ]
        );
        assert_eq!(
            errors(&step("{ server = \"cluman\", status = \"ACTIVE\", timeout_seconds = \"soon\" }")),
            ["t.toml:10:8: server.wait_status: arg timeout_seconds \"soon\" must be a whole number of seconds from 1 to 86400"]
        );
    }

    #[test]
    fn unknown_keys_are_reported_at_their_line_and_column() {
        let e =
            errors("\n[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"manual\"\ncommnd = \"x\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:10:1: unknown field `commnd`"),
            "{e:?}"
        );
    }

    #[test]
    fn semantic_errors_name_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"ssh\"\nhost = \"db01\"\ncommand = \"true\"\n", "t.toml:9:8: unknown host \"db01\""),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"ssh\"\nhost = \"cluman\"\ncommand = \"rm {{ f }}\"\n", "t.toml:10:11: undefined parameter or capture \"f\""),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"manual\"\n[[steps]]\nid = \"a\"\ntitle = \"B\"\nkind = \"manual\"\n", "t.toml:10:6: duplicate step id \"a\""),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"ssh\"\nhost = \"cluman\"\ncommand = \"x\"\ncaptures = [{ name = \"v\", regex = \"(unclosed\" }]\n", "t.toml:11:35: bad capture regex"),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"reboot\"\n", "t.toml:8:8: unknown step kind \"reboot\""),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"manual\"\ncommand = \"x\"\n", "t.toml:9:11: `command` does not belong in a manual step"),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"openstack\"\naction = \"server.explode\"\n", "t.toml:9:10: unknown OpenStack action \"server.explode\""),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"manual\"\nwhen = { var = \"later\", equals = \"x\" }\n", "condition on undefined parameter or capture \"later\""),
            ("[[parameters]]\nname = \"d\"\ntype = \"date\"\ndefault = \"yesterday\"\n[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"manual\"\n", "t.toml:8:11: default of \"d\": \"yesterday\" is not a date written YYYY-MM-DD"),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"esc\"\nhost = \"cluman\"\ncommand = \"health.sh\"\n", "unknown ESC host \"cluman\""),
            ("[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"transfer\"\nfrom = { host = \"cluman\", path = \"/etc/x\" }\nto = { store = \"../etc\" }\n", "must be relative and stay inside the store"),
        ];
        for (body, want) in cases {
            let e = errors(body);
            assert!(e.iter().any(|m| m.contains(want)), "want {want:?} in {e:?}");
        }
    }

    #[test]
    fn a_capture_is_usable_only_after_its_step() {
        let e = errors(
            "[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"ssh\"\nhost = \"cluman\"\ncommand = \"echo {{v}}\"\ncaptures = [{ name = \"v\", regex = \"(x)\" }]\n",
        );
        assert!(
            e.iter()
                .any(|m| m.contains("undefined parameter or capture \"v\"")),
            "{e:?}"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = load_str("bad.toml", "id = \"x\"\ntitle = \n").unwrap_err();
        assert_eq!((e[0].file.as_str(), e[0].line), ("bad.toml", 2));
    }

    #[test]
    fn raw_inserts_only_enum_parameters() {
        let params = "[[parameters]]\nname = \"db\"\ntype = \"enum\"\nvalues = [\"session\", \"balance\"]\ndefault = \"session\"\n\n[[parameters]]\nname = \"note\"\ntype = \"string\"\ndefault = \"x\"\n\n";
        let step = |command: &str| {
            format!("{params}[[steps]]\nid = \"a\"\ntitle = \"A\"\nkind = \"ssh\"\nhost = \"cluman\"\ncommand = \"{command}\"\ncaptures = [{{ name = \"out\", regex = '(\\S+)' }}]\n\n[[steps]]\nid = \"b\"\ntitle = \"B\"\nkind = \"ssh\"\nhost = \"cluman\"\ncommand = \"echo {{{{ out | raw }}}}\"\n")
        };
        // An enum parameter may be raw; a string parameter and a capture may not.
        let e = errors(&step("mongo --db {{ db | raw }}"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0],
            "t.toml:29:11: `{{ out | raw }}`: only enum parameters may be inserted unquoted, and \"out\" is not one; remove `| raw` (the value is then shell-quoted)"
        );
        let e = errors(&step("echo {{ note|raw }} {{ db | raw }}"));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:21:11: `{{ note | raw }}`: only enum parameters"),
            "{e:?}"
        );
        // Quoted, both are fine.
        let ok = step("echo {{ note }}").replace("{{ out | raw }}", "{{ out }}");
        assert_eq!(errors(&ok), Vec::<String>::new());
    }
}
