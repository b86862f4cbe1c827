//! What a runbook is, once loaded and checked.

use crate::condition::Condition;
use crate::template::Template;
use regex::Regex;
use std::collections::BTreeMap;
use std::fmt;

/// A recovery procedure.
#[derive(Clone, Debug)]
pub struct Runbook {
    /// Stable identifier, such as `cps-backup`.
    pub id: String,
    pub title: String,
    /// Markdown.
    pub description: String,
    pub expected_duration_minutes: u32,
    pub parameters: Vec<Parameter>,
    pub steps: Vec<Step>,
    /// The file it was loaded from, kept whole so a run can record exactly what it ran.
    pub source: Source,
}

/// The text a runbook was loaded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The path as given.
    pub path: String,
    pub text: String,
    /// Hex SHA-256 of `text`.
    pub sha256: String,
}

impl Runbook {
    /// Steps marked destructive.
    pub fn destructive_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.destructive).count()
    }

    /// The parameter named `name`.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

/// A value the operator enters when starting a run.
#[derive(Clone, Debug)]
pub struct Parameter {
    pub name: String,
    pub label: String,
    pub kind: ParamKind,
    pub required: bool,
    /// Used when the operator leaves the field empty; for dates `today` is allowed.
    pub default: Option<String>,
    pub pattern: Option<Pattern>,
    pub help: String,
}

/// The type of a parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamKind {
    String,
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Enum(Vec<String>),
    /// A VM of the site, by name.
    Host,
    /// An absolute path.
    Path,
    /// `YYYY-MM-DD`.
    Date,
}

impl ParamKind {
    /// The name used in runbook files.
    pub fn name(&self) -> &'static str {
        match self {
            ParamKind::String => "string",
            ParamKind::Integer { .. } => "integer",
            ParamKind::Enum(_) => "enum",
            ParamKind::Host => "host",
            ParamKind::Path => "path",
            ParamKind::Date => "date",
        }
    }
}

/// A compiled regular expression that remembers how it was written.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles a pattern.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            source: source.to_string(),
            regex: Regex::new(source)?,
        })
    }
    /// Compiles a pattern that must match a whole value (parameter patterns).
    pub fn whole(source: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            source: source.to_string(),
            regex: Regex::new(&format!("^(?:{source})$"))?,
        })
    }
    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The compiled expression.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// One step of a runbook.
#[derive(Clone, Debug)]
pub struct Step {
    /// Unique within the runbook.
    pub id: String,
    pub title: String,
    /// Markdown shown to the operator.
    pub instructions: String,
    /// Needs a supervisor's approval before it runs.
    pub destructive: bool,
    /// How many different supervisors must approve it: 0 for a step that is not
    /// destructive, else 1 or 2.
    pub approvals: u8,
    /// The step applies only when this holds; otherwise it is skipped.
    pub when: Option<Condition>,
    pub action: StepAction,
}

/// What a step does, by kind.
#[derive(Clone, Debug)]
pub enum StepAction {
    /// A command on a host over SSH.
    Ssh(ShellCommand),
    /// A command on an ESC VM over SSH.
    Esc(ShellCommand),
    /// An OpenStack API call made by the portal.
    OpenStack {
        action: OpenStackAction,
        args: BTreeMap<String, Template>,
    },
    /// The operator does or checks something and confirms it.
    Manual {
        observation: Observation,
        /// The observation is kept under this name for later `when` conditions.
        records: Option<String>,
    },
    /// Repeat a check until it passes or time runs out.
    Wait {
        check: ShellCommand,
        interval_seconds: u32,
        timeout_seconds: u32,
    },
    /// Copy a file, streamed through the portal over SFTP.
    Transfer { from: Endpoint, to: Endpoint },
}

impl StepAction {
    /// The kind's name as written in runbook files.
    pub fn kind(&self) -> &'static str {
        match self {
            StepAction::Ssh(_) => "ssh",
            StepAction::Esc(_) => "esc",
            StepAction::OpenStack { .. } => "openstack",
            StepAction::Manual { .. } => "manual",
            StepAction::Wait { .. } => "wait",
            StepAction::Transfer { .. } => "transfer",
        }
    }

    /// Names of the values this step captures.
    pub fn captures(&self) -> Vec<&str> {
        match self {
            StepAction::Ssh(c) | StepAction::Esc(c) | StepAction::Wait { check: c, .. } => {
                c.captures.iter().map(|c| c.name.as_str()).collect()
            }
            StepAction::Manual {
                records: Some(name),
                ..
            } => vec![name.as_str()],
            _ => Vec::new(),
        }
    }
}

/// A command run on a host.
#[derive(Clone, Debug)]
pub struct ShellCommand {
    pub host: HostRef,
    pub command: Template,
    /// The remote command is ended after this long (wrapped in `timeout`).
    pub timeout_seconds: u32,
    pub expect: Expectations,
    pub captures: Vec<Capture>,
}

/// Which host a step runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostRef {
    /// A fixed host name of the site.
    Named(String),
    /// The host named by a `host` parameter.
    Param(String),
}

/// What a command's result must look like for the step to succeed.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectations {
    /// Required exit status; `None` accepts any.
    pub exit_status: Option<i32>,
    /// Each must match somewhere in the output (stdout, then stderr).
    pub output_matches: Vec<Pattern>,
    /// None may match anywhere in the output.
    pub output_excludes: Vec<Pattern>,
}

impl Default for Expectations {
    fn default() -> Self {
        Self {
            exit_status: Some(0),
            output_matches: Vec::new(),
            output_excludes: Vec::new(),
        }
    }
}

/// The outcome of one expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectationResult {
    pub description: String,
    pub passed: bool,
}

impl Expectations {
    /// Checks a finished command.
    pub fn check(&self, exit_status: Option<i32>, output: &str) -> Vec<ExpectationResult> {
        let mut results = Vec::new();
        if let Some(want) = self.exit_status {
            results.push(ExpectationResult {
                description: match exit_status {
                    Some(got) => format!("exit status {want} (was {got})"),
                    None => format!("exit status {want} (the command was ended by a signal)"),
                },
                passed: exit_status == Some(want),
            });
        }
        for p in &self.output_matches {
            results.push(ExpectationResult {
                description: format!("output matches /{}/", p.source()),
                passed: p.regex().is_match(output),
            });
        }
        for p in &self.output_excludes {
            results.push(ExpectationResult {
                description: format!("output does not match /{}/", p.source()),
                passed: !p.regex().is_match(output),
            });
        }
        results
    }
}

/// A value taken from a command's output: the first group of the first match.
#[derive(Clone, Debug, PartialEq)]
pub struct Capture {
    pub name: String,
    pub pattern: Pattern,
    /// No match is an answer too (the value is then empty), not a failure:
    /// `when = { var = ..., empty = true }` steps on it.
    pub optional: bool,
}

impl Capture {
    /// The captured value, if the pattern matches.
    pub fn extract(&self, output: &str) -> Option<String> {
        self.pattern
            .regex()
            .captures(output)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string())
    }
}

/// An OpenStack action; executed by the OpenStack executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenStackAction {
    ServerList,
    ServerShow,
    ServerStop,
    ServerStart,
    ServerReboot,
    ServerSnapshot,
    ServerRebuild,
    ServerCreate,
    ServerDelete,
    ServerWaitStatus,
    ImageList,
    ImageShow,
    ImageDelete,
    ImageDownload,
    ImageUpload,
    ImageWaitStatus,
    StackList,
    StackShow,
    StackResources,
    CapacityCheck,
}

impl OpenStackAction {
    /// Every action with its name in runbook files.
    pub const ALL: [(OpenStackAction, &'static str); 20] = [
        (OpenStackAction::ServerList, "server.list"),
        (OpenStackAction::ServerShow, "server.show"),
        (OpenStackAction::ServerStop, "server.stop"),
        (OpenStackAction::ServerStart, "server.start"),
        (OpenStackAction::ServerReboot, "server.reboot"),
        (OpenStackAction::ServerSnapshot, "server.snapshot"),
        (OpenStackAction::ServerRebuild, "server.rebuild"),
        (OpenStackAction::ServerCreate, "server.create"),
        (OpenStackAction::ServerDelete, "server.delete"),
        (OpenStackAction::ServerWaitStatus, "server.wait_status"),
        (OpenStackAction::ImageList, "image.list"),
        (OpenStackAction::ImageShow, "image.show"),
        (OpenStackAction::ImageDelete, "image.delete"),
        (OpenStackAction::ImageDownload, "image.download"),
        (OpenStackAction::ImageUpload, "image.upload"),
        (OpenStackAction::ImageWaitStatus, "image.wait_status"),
        (OpenStackAction::StackList, "stack.list"),
        (OpenStackAction::StackShow, "stack.show"),
        (OpenStackAction::StackResources, "stack.resources"),
        (OpenStackAction::CapacityCheck, "capacity.check"),
    ];

    /// The arguments the action takes: (required, optional).
    pub fn args(self) -> (&'static [&'static str], &'static [&'static str]) {
        use OpenStackAction as A;
        match self {
            A::ServerList => (&[], &["name", "status"]),
            A::ServerShow | A::ServerStop | A::ServerStart | A::ServerDelete => (&["server"], &[]),
            A::ServerReboot => (&["server"], &["hard"]),
            A::ServerSnapshot => (&["server", "name"], &["timeout_seconds"]),
            // Without `image`, from the image the server runs (a redeploy).
            A::ServerRebuild => (&["server"], &["image", "timeout_seconds"]),
            A::ServerCreate => (
                &["name", "image", "flavor", "networks"],
                &[
                    "availability_zone",
                    "config_drive",
                    "block_device",
                    "security_groups",
                    "user_data",
                    "timeout_seconds",
                ],
            ),
            A::ServerWaitStatus => (&["server", "status"], &["timeout_seconds"]),
            A::ImageList => (&[], &["name", "status"]),
            A::ImageShow | A::ImageDelete => (&["image"], &[]),
            A::ImageDownload => (&["image", "store"], &[]),
            A::ImageUpload => (
                &["store", "name"],
                &["disk_format", "container_format", "timeout_seconds"],
            ),
            A::ImageWaitStatus => (&["image", "status"], &["timeout_seconds"]),
            A::StackList => (&[], &[]),
            A::StackShow | A::StackResources => (&["stack"], &[]),
            A::CapacityCheck => (&[], &["server", "image", "flavor"]),
        }
    }

    /// Looks an action up by its name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }

    /// The action's name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, n)| *n)
            .unwrap_or("unknown")
    }
}

/// Whether a manual step asks the operator to write what they saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    None,
    Optional,
    Required,
}

/// One end of a transfer.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// A file on a VM.
    Host { host: HostRef, path: Template },
    /// A file in the portal's backup store, relative to its root.
    Store { path: Template },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_report_each_check() {
        let e = Expectations {
            exit_status: Some(0),
            output_matches: vec![Pattern::new("Not monitored").unwrap()],
            output_excludes: vec![Pattern::new("(?i)error").unwrap()],
        };
        let ok = e.check(Some(0), "qns01 Not monitored\n");
        assert!(ok.iter().all(|r| r.passed), "{ok:?}");
        let bad = e.check(Some(1), "ERROR: Running\n");
        assert_eq!(bad.iter().filter(|r| !r.passed).count(), 3);
        assert_eq!(bad[0].description, "exit status 0 (was 1)");
        assert_eq!(
            e.check(None, "")[0].description,
            "exit status 0 (the command was ended by a signal)"
        );
    }

    #[test]
    fn captures_take_the_first_group() {
        let c = Capture {
            name: "uuid".into(),
            pattern: Pattern::new(r"UUID: (\S+)").unwrap(),
            optional: false,
        };
        assert_eq!(
            c.extract("Path: x\nRepository UUID: 8f0e-11\n").as_deref(),
            Some("8f0e-11")
        );
        assert_eq!(c.extract("nothing"), None);
    }

    #[test]
    fn openstack_action_names_round_trip() {
        for (action, name) in OpenStackAction::ALL {
            assert_eq!(OpenStackAction::from_name(name), Some(action));
            assert_eq!(action.name(), name);
        }
        assert_eq!(OpenStackAction::from_name("server.explode"), None);
    }
}
