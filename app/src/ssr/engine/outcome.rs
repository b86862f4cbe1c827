//! Judging a finished command against its step: expectations, captures, and how
//! timeouts, cancellations and failures to connect count. Pure.

use super::executor::{Ending, Finished};
use crate::model::run_view::{ExpectationView, Outcome};
use runbook::model::ShellCommand;

fn ending_name(e: Ending) -> &'static str {
    match e {
        Ending::Exited => "exited",
        Ending::TimedOut => "timed_out",
        Ending::Cancelled => "cancelled",
    }
}

/// The outcome of one run of `command` that produced `stdout` and `stderr`.
pub fn judge(command: &ShellCommand, finished: &Finished, stdout: &str, stderr: &str) -> Outcome {
    let text = format!("{stdout}{stderr}");
    let mut expectations: Vec<ExpectationView> = Vec::new();
    match finished.ending {
        Ending::TimedOut => expectations.push(ExpectationView {
            description: format!("finishes within {} s", command.timeout_seconds),
            passed: false,
        }),
        Ending::Cancelled => expectations.push(ExpectationView {
            description: "runs to its end (it was stopped by the operator)".into(),
            passed: false,
        }),
        Ending::Exited => {}
    }
    expectations.extend(
        command
            .expect
            .check(finished.exit_status, &text)
            .into_iter()
            .map(|r| ExpectationView {
                description: r.description,
                passed: r.passed,
            }),
    );
    let mut captures = std::collections::BTreeMap::new();
    let mut missing_captures = Vec::new();
    for c in &command.captures {
        match c.extract(&text) {
            Some(v) => {
                captures.insert(c.name.clone(), v);
            }
            None if c.optional => {
                captures.insert(c.name.clone(), String::new());
            }
            None => missing_captures.push(c.name.clone()),
        }
    }
    for name in &missing_captures {
        expectations.push(ExpectationView {
            description: format!("output yields the value {name}"),
            passed: false,
        });
    }
    Outcome {
        passed: expectations.iter().all(|e| e.passed),
        exit_status: finished.exit_status,
        ending: ending_name(finished.ending).into(),
        expectations,
        captures,
        missing_captures,
        ..Outcome::default()
    }
}

/// The outcome of a job that could not run at all.
pub fn could_not_run(message: &str) -> Outcome {
    Outcome {
        passed: false,
        ending: "error".into(),
        error: Some(message.to_string()),
        ..Outcome::default()
    }
}

/// The outcome of a wait step that gave up: its last check, marked as timed out.
pub fn gave_up(mut last: Outcome, timeout_seconds: u32, checks: u32) -> Outcome {
    last.passed = false;
    last.checks = Some(checks);
    last.expectations.push(ExpectationView {
        description: format!(
            "the check passes within {timeout_seconds} s (checked {checks} times)"
        ),
        passed: false,
    });
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use runbook::model::{Capture, Expectations, HostRef, Pattern};
    use runbook::template::{Context, Template};

    fn command() -> ShellCommand {
        ShellCommand {
            host: HostRef::Named("pcrfclient01".into()),
            command: Template::parse("svn info", Context::Shell).unwrap(),
            timeout_seconds: 30,
            expect: Expectations {
                exit_status: Some(0),
                output_matches: vec![Pattern::new("UUID").unwrap()],
                output_excludes: vec![Pattern::new("(?i)error").unwrap()],
            },
            captures: vec![Capture {
                name: "uuid".into(),
                pattern: Pattern::new(r"UUID: (\S+)").unwrap(),
                optional: false,
            }],
        }
    }

    fn exited(status: i32) -> Finished {
        Finished {
            ending: Ending::Exited,
            exit_status: Some(status),
            transfer: None,
        }
    }

    #[test]
    fn a_good_run_passes_and_captures() {
        let o = judge(&command(), &exited(0), "Repository UUID: 8f-11\n", "");
        assert!(o.passed, "{o:?}");
        assert_eq!(o.captures.get("uuid").map(String::as_str), Some("8f-11"));
        assert_eq!(o.ending, "exited");
    }

    #[test]
    fn stderr_counts_for_patterns() {
        let o = judge(
            &command(),
            &exited(0),
            "Repository UUID: 1\n",
            "svn: E170013: error\n",
        );
        assert!(!o.passed);
        assert_eq!(
            o.expectations
                .iter()
                .filter(|e| !e.passed)
                .map(|e| e.description.as_str())
                .collect::<Vec<_>>(),
            ["output does not match /(?i)error/"]
        );
    }

    #[test]
    fn a_missing_capture_fails_the_step() {
        let o = judge(&command(), &exited(0), "UUID unknown\n", "");
        assert!(!o.passed);
        assert_eq!(o.missing_captures, ["uuid"]);
        assert!(o
            .expectations
            .iter()
            .any(|e| e.description == "output yields the value uuid" && !e.passed));
    }

    #[test]
    fn a_missing_optional_capture_is_an_empty_value() {
        let mut c = command();
        c.captures[0].optional = true;
        let o = judge(&c, &exited(0), "UUID unknown\n", "");
        assert!(o.passed, "{o:?}");
        assert!(o.missing_captures.is_empty());
        assert_eq!(o.captures.get("uuid").map(String::as_str), Some(""));
    }

    #[test]
    fn timeouts_and_stops_fail_whatever_the_output() {
        let timed_out = Finished {
            ending: Ending::TimedOut,
            exit_status: Some(124),
            transfer: None,
        };
        let o = judge(&command(), &timed_out, "Repository UUID: 1\n", "");
        assert!(!o.passed);
        assert_eq!(o.expectations[0].description, "finishes within 30 s");
        let stopped = Finished {
            ending: Ending::Cancelled,
            exit_status: None,
            transfer: None,
        };
        assert_eq!(judge(&command(), &stopped, "", "").ending, "cancelled");
    }

    #[test]
    fn a_wait_that_gives_up_says_how_often_it_checked() {
        let last = judge(&command(), &exited(1), "", "");
        let o = gave_up(last, 600, 20);
        assert!(!o.passed);
        assert_eq!(o.checks, Some(20));
        assert!(o
            .expectations
            .last()
            .unwrap()
            .description
            .contains("checked 20 times"));
    }
}
