//! The command line of `recovery-portal`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Recovery Portal: guides and records the recovery of Cisco Policy Suite clusters
/// on OpenStack.
///
/// Settings come from an optional TOML file and `PORTAL_<KEY>` environment
/// variables (keys: listen, public_url, database_url, migration_database_url,
/// allow_owner_role, audit_key_file, audit_checkpoint_seconds, session_idle_minutes,
/// session_lifetime_hours, site_root, runbooks_dir, sites_file, log_format; the
/// README lists them all); the database from DATABASE_URL, the schema owner's
/// from MIGRATION_DATABASE_URL.
#[derive(Debug, Parser)]
#[command(name = "recovery-portal", version, propagate_version = true)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, env = "PORTAL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations, then serve the portal.
    ///
    /// With no user in the database, creates `admin` with a random password and
    /// prints it once; it must be changed at the first sign-in.
    Serve {
        /// Address and port to listen on (overrides `listen`). Default 127.0.0.1:3000.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
        /// Also serve the built-in lab site (a simulated CPS cluster on loopback)
        /// and offer it as site `lab`, for rehearsals.
        #[arg(long)]
        lab: bool,
    },
    /// Serve the lab site alone: a simulated Ultra-M CPS cluster whose VMs are SSH
    /// servers on 127.0.0.1. Prints the sites file and how to reach the VMs with
    /// OpenSSH, and serves until stopped (Ctrl-C).
    #[command(args_conflicts_with_subcommands = true)]
    Lab {
        #[command(subcommand)]
        command: Option<LabCommand>,
        #[command(flatten)]
        serve: LabServe,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Work with the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Work with runbooks (the procedures as TOML files).
    #[command(subcommand)]
    Runbook(RunbookCommand),
    /// Work with sites (the clusters' hosts, keys and known host keys).
    #[command(subcommand)]
    Site(SiteCommand),
    /// Benchmarks: figures printed side by side with a reference tool.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Download a generated image from the lab's Glance with the portal's client
    /// and with curl, and print both rates, their ratio and the peak RSS.
    ImageTransfer {
        /// The image's size in MB (10^6 bytes).
        #[arg(long, default_value_t = 2000)]
        size_mb: u64,
    },
    /// On a scratch database: appends with the hash chain from 8 concurrent
    /// writers, then a CSV export of a million events beside PostgreSQL's COPY;
    /// prints rates, times and the peak RSS.
    Audit {
        /// How many events the 8 writers append.
        #[arg(long, default_value_t = 20_000)]
        appends: u64,
        /// How many events the trail holds for the export.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
}

/// Where the lab keeps its state and writes what OpenSSH needs.
#[derive(Debug, clap::Args)]
pub struct LabServe {
    /// The lab's own directory (host keys, client key). Default: `lab_dir` (`.lab`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Write `ssh_config`, `known_hosts`, the client key and `sites.toml` here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Lab commands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Switch a fault of a running lab on or off, or list the active ones.
    ///
    /// Faults: replica-set-unhealthy, svn-not-synced, host-key-changed:HOST,
    /// command-hangs:PATTERN, host-down:HOST; of its OpenStack: snapshot-killed,
    /// server-error:HOST, download-drops, token-expired, over-quota.
    Fault {
        /// `on`, `off` or `list`.
        #[arg(value_parser = ["on", "off", "list"])]
        action: String,
        /// The fault (not for `list`).
        fault: Option<String>,
        /// The running lab's directory. Default: `lab_dir` (`.lab`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Site commands.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Check a sites file (default: `sites_file`, `sites.toml`): its syntax, each
    /// site's key (with its passphrase variable) and known hosts, and which runbook
    /// hosts a site does not define. Exit 0 when usable, 1 when not.
    Check {
        /// The sites file.
        file: Option<PathBuf>,
    },
}

/// Runbook commands.
#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// Check runbook files: each error names file, line and column. With no PATH,
    /// checks the configured runbooks directory (`runbooks_dir`, default `runbooks`).
    /// Exit 0 when all are valid, 1 when not.
    Check {
        /// Files or directories to check.
        paths: Vec<PathBuf>,
    },
}

/// User administration from the command line. Every change is audited with the
/// actor `cli:<OS user>`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Add {
        /// Username: 2 to 32 characters, letters, digits, '.', '_', '-'.
        name: String,
        /// operator, supervisor, auditor or admin.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        password: PasswordInput,
    },
    /// List users.
    List,
    /// Disable a user (they cannot sign in; their sessions end).
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Set a user's password, read from the first line of standard input.
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordInput,
    },
    /// Change a user's role (operator, supervisor, auditor or admin).
    Role { name: String, role: String },
    /// Forget a user's failed sign-ins (from every address), so that no wait is
    /// left for them.
    Unlock { name: String },
    /// Set a user's e-mail address and display name (an empty value clears one);
    /// the Users page warns when an admin and a supervisor account share either.
    Contact {
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long = "display-name", default_value = "")]
        display_name: String,
    },
}

/// How a password is given on the command line: never as an argument, where it
/// would show in the process list and shell history.
#[derive(Debug, Args)]
pub struct PasswordInput {
    /// Read the password from the first line of standard input (required).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Make it a temporary password that must be changed at the next sign-in.
    #[arg(long)]
    pub temporary: bool,
}

/// Audit trail commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole audit chain. Exit 0 with a summary when intact; exit 1 naming
    /// the first event that does not fit when not. With --file, check a JSONL
    /// export offline instead (no database needed).
    ///
    /// The live chain is also compared with the newest signed checkpoint of its
    /// head (from the database and the checkpoint file next to `audit_key_file`):
    /// a chain that ends before it, or holds another hash at its id, is broken.
    Verify {
        /// A JSONL export (from the Audit page or `audit export`) to check.
        #[arg(long, conflicts_with = "expect_head")]
        file: Option<PathBuf>,
        /// A head you kept (printed by an earlier verification, an export or a
        /// report): the chain must still hold event ID with hash HASH.
        #[arg(long, value_name = "ID:HASH", value_parser = parse_head)]
        expect_head: Option<ExpectedHead>,
    },
    /// Write audit events, in id order, as CSV or as JSONL with their hashes;
    /// filters as on the Audit page.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Events at or after this time (2026-11-27, 2026-11-27 10:30, RFC 3339; UTC).
        #[arg(long)]
        from: Option<String>,
        /// Events before this time (a bare date includes that day).
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        /// An action (step.run) or a prefix (approval.).
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        run: Option<String>,
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        host: Option<String>,
        /// Text anywhere in the subject or details.
        #[arg(long)]
        text: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// An event the chain must still hold: `--expect-head ID:HASH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedHead {
    pub id: i64,
    pub hash: String,
}

/// `ID:HASH`: a positive event id and 64 hex digits.
fn parse_head(text: &str) -> Result<ExpectedHead, String> {
    let expected = "expected ID:HASH, an event id and its 64-hex-digit hash (as printed by `audit verify`), such as 100:5e3c…";
    let (id, hash) = text.trim().split_once(':').ok_or(expected)?;
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("{id:?} is not an event id; {expected}"))?;
    let hash = hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{hash:?} is not a 64-hex-digit hash; {expected}"));
    }
    Ok(ExpectedHead { id, hash })
}

/// The formats of `audit export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn expect_head_takes_an_id_and_a_hash() {
        let hash = "Ab".repeat(32);
        assert_eq!(
            parse_head(&format!("100:{hash}")),
            Ok(ExpectedHead {
                id: 100,
                hash: hash.to_ascii_lowercase()
            })
        );
        for bad in [
            "100",
            "x:".to_string().as_str(),
            &format!("0:{hash}"),
            &format!("-3:{hash}"),
            "100:abc",
            &format!("100:{}", "g".repeat(64)),
        ] {
            assert!(parse_head(bad).is_err(), "{bad}");
        }
        let err = Cli::try_parse_from(["recovery-portal", "audit", "verify", "--expect-head", "7"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("expected ID:HASH"), "{err}");
    }

    #[test]
    fn user_add_requires_password_stdin() {
        let err = Cli::try_parse_from([
            "recovery-portal",
            "user",
            "add",
            "bob",
            "--role",
            "operator",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--password-stdin"), "{err}");
        Cli::try_parse_from([
            "recovery-portal",
            "user",
            "add",
            "bob",
            "--role",
            "operator",
            "--password-stdin",
        ])
        .unwrap();
    }
}
