//! Rendering a step with a run's values into the exact action that will run: the
//! text an operator sees, a supervisor approves and the executor sends. Rendering
//! never executes anything.

use crate::model::{Endpoint, HostRef, ShellCommand, Step, StepAction};
use crate::quote::shell_quote;
use crate::template::{Context, Undefined};
use std::collections::BTreeMap;

/// A step's action with every value filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenderedAction {
    /// A command on a host (`ssh`, `esc`).
    Shell {
        host: String,
        command: String,
        timeout_seconds: u32,
    },
    /// A check repeated until it passes.
    Wait {
        host: String,
        command: String,
        interval_seconds: u32,
        timeout_seconds: u32,
    },
    /// An OpenStack call.
    OpenStack {
        action: String,
        args: BTreeMap<String, String>,
    },
    /// The operator confirms.
    Manual,
    /// A copy between two ends.
    Transfer {
        from: RenderedEndpoint,
        to: RenderedEndpoint,
    },
}

/// One end of a rendered transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenderedEndpoint {
    Host { host: String, path: String },
    Store { path: String },
}

fn host<'a>(h: &HostRef, lookup: &impl Fn(&str) -> Option<&'a str>) -> Result<String, Undefined> {
    match h {
        HostRef::Named(name) => Ok(name.clone()),
        HostRef::Param(p) => lookup(p)
            .map(str::to_string)
            .ok_or_else(|| Undefined(p.clone())),
    }
}

fn shell<'a>(
    c: &ShellCommand,
    lookup: &impl Fn(&str) -> Option<&'a str>,
) -> Result<(String, String), Undefined> {
    Ok((
        host(&c.host, lookup)?,
        c.command.render(Context::Shell, lookup)?,
    ))
}

fn endpoint<'a>(
    e: &Endpoint,
    lookup: &impl Fn(&str) -> Option<&'a str>,
) -> Result<RenderedEndpoint, Undefined> {
    Ok(match e {
        Endpoint::Host { host: h, path } => RenderedEndpoint::Host {
            host: host(h, lookup)?,
            path: path.render(Context::Plain, lookup)?,
        },
        Endpoint::Store { path } => RenderedEndpoint::Store {
            path: path.render(Context::Plain, lookup)?,
        },
    })
}

/// Renders `step` with the run's values (parameters and captures).
pub fn render<'a>(
    step: &Step,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<RenderedAction, Undefined> {
    Ok(match &step.action {
        StepAction::Ssh(c) | StepAction::Esc(c) => {
            let (host, command) = shell(c, &lookup)?;
            RenderedAction::Shell {
                host,
                command,
                timeout_seconds: c.timeout_seconds,
            }
        }
        StepAction::Wait {
            check,
            interval_seconds,
            timeout_seconds,
        } => {
            let (host, command) = shell(check, &lookup)?;
            RenderedAction::Wait {
                host,
                command,
                interval_seconds: *interval_seconds,
                timeout_seconds: *timeout_seconds,
            }
        }
        StepAction::OpenStack { action, args } => RenderedAction::OpenStack {
            action: action.name().to_string(),
            args: args
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.render(Context::Plain, &lookup)?)))
                .collect::<Result<_, Undefined>>()?,
        },
        StepAction::Manual { .. } => RenderedAction::Manual,
        StepAction::Transfer { from, to } => RenderedAction::Transfer {
            from: endpoint(from, &lookup)?,
            to: endpoint(to, &lookup)?,
        },
    })
}

/// The command line sent to the host: the step's command run by `sh -c` under
/// `timeout`, because closing an SSH channel does not stop a remote command.
pub fn remote_command(command: &str, timeout_seconds: u32) -> String {
    format!(
        "timeout --signal=TERM --kill-after=10 {timeout_seconds} sh -c {}",
        shell_quote(command)
    )
}

impl RenderedAction {
    /// A canonical text of the action and its targets: one `key=value` line per
    /// field, keys in a fixed order, values escaped. Two actions are the same
    /// exactly when their canonical texts are; an approval is tied to its hash.
    pub fn canonical(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
        let mut lines: Vec<String> = Vec::new();
        match self {
            RenderedAction::Shell {
                host,
                command,
                timeout_seconds,
            } => {
                lines.push("kind=shell".into());
                lines.push(format!("host={}", esc(host)));
                lines.push(format!("command={}", esc(command)));
                lines.push(format!("timeout_seconds={timeout_seconds}"));
            }
            RenderedAction::Wait {
                host,
                command,
                interval_seconds,
                timeout_seconds,
            } => {
                lines.push("kind=wait".into());
                lines.push(format!("host={}", esc(host)));
                lines.push(format!("command={}", esc(command)));
                lines.push(format!("interval_seconds={interval_seconds}"));
                lines.push(format!("timeout_seconds={timeout_seconds}"));
            }
            RenderedAction::OpenStack { action, args } => {
                lines.push("kind=openstack".into());
                lines.push(format!("action={}", esc(action)));
                for (k, v) in args {
                    lines.push(format!("arg.{}={}", esc(k), esc(v)));
                }
            }
            RenderedAction::Manual => lines.push("kind=manual".into()),
            RenderedAction::Transfer { from, to } => {
                lines.push("kind=transfer".into());
                for (side, e) in [("from", from), ("to", to)] {
                    match e {
                        RenderedEndpoint::Host { host, path } => {
                            lines.push(format!("{side}.host={}", esc(host)));
                            lines.push(format!("{side}.path={}", esc(path)));
                        }
                        RenderedEndpoint::Store { path } => {
                            lines.push(format!("{side}.store={}", esc(path)))
                        }
                    }
                }
            }
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_str;
    use std::collections::HashMap;

    const RB: &str = r#"
id = "r"
title = "R"
description = "d"
expected_duration_minutes = 5

[[parameters]]
name = "target"
type = "host"
default = "cluman"

[[parameters]]
name = "file"
type = "path"
required = true

[[steps]]
id = "install"
title = "Install"
kind = "ssh"
host = "{{ target }}"
command = "crontab {{ file }}"
timeout_seconds = 30
destructive = true

[[steps]]
id = "copy"
title = "Copy"
kind = "transfer"
from = { store = "site/{{ target }}.txt" }
to = { host = "{{ target }}", path = "{{ file }}" }

[[steps]]
id = "snap"
title = "Snapshot"
kind = "openstack"
action = "server.snapshot"
args = { server = "{{ target }}", name = "{{ target }} snap" }
"#;

    fn values(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn renders_the_exact_action() {
        let rb = load_str("r.toml", RB).unwrap();
        let v = values(&[("target", "pcrfclient01"), ("file", "/var/tmp/my cron.txt")]);
        let lookup = |n: &str| v.get(n).copied();
        assert_eq!(
            render(&rb.steps[0], lookup).unwrap(),
            RenderedAction::Shell {
                host: "pcrfclient01".into(),
                command: "crontab '/var/tmp/my cron.txt'".into(),
                timeout_seconds: 30
            }
        );
        assert_eq!(
            render(&rb.steps[1], lookup).unwrap(),
            RenderedAction::Transfer {
                from: RenderedEndpoint::Store {
                    path: "site/pcrfclient01.txt".into()
                },
                to: RenderedEndpoint::Host {
                    host: "pcrfclient01".into(),
                    path: "/var/tmp/my cron.txt".into()
                },
            }
        );
        let RenderedAction::OpenStack { args, .. } = render(&rb.steps[2], lookup).unwrap() else {
            panic!()
        };
        assert_eq!(args["name"], "pcrfclient01 snap");
    }

    #[test]
    fn a_missing_value_is_named() {
        let rb = load_str("r.toml", RB).unwrap();
        let v = values(&[("target", "cluman")]);
        assert_eq!(
            render(&rb.steps[0], |n| v.get(n).copied()),
            Err(Undefined("file".into()))
        );
    }

    #[test]
    fn canonical_text_changes_with_any_part_of_the_action() {
        let rb = load_str("r.toml", RB).unwrap();
        let a = values(&[("target", "cluman"), ("file", "/a")]);
        let b = values(&[("target", "cluman"), ("file", "/b")]);
        let c = values(&[("target", "pcrfclient01"), ("file", "/a")]);
        let ca = render(&rb.steps[0], |n| a.get(n).copied())
            .unwrap()
            .canonical();
        assert_eq!(
            ca,
            "kind=shell\nhost=cluman\ncommand=crontab /a\ntimeout_seconds=30"
        );
        assert_ne!(
            ca,
            render(&rb.steps[0], |n| b.get(n).copied())
                .unwrap()
                .canonical()
        );
        assert_ne!(
            ca,
            render(&rb.steps[0], |n| c.get(n).copied())
                .unwrap()
                .canonical()
        );
        // A line break in a value cannot forge another field.
        let forged = RenderedAction::Shell {
            host: "cluman".into(),
            command: "x\nhost=evil".into(),
            timeout_seconds: 1,
        };
        assert_eq!(forged.canonical().lines().count(), 4);
    }

    #[test]
    fn remote_commands_are_wrapped_in_timeout() {
        assert_eq!(
            remote_command("statusall.sh | grep 'Not monitored'", 60),
            "timeout --signal=TERM --kill-after=10 60 sh -c 'statusall.sh | grep '\\''Not monitored'\\'''"
        );
    }
}
