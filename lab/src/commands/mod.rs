//! The commands the simulated VMs answer, and how a command name is found.
//!
//! Shell builtins and ordinary utilities ([`builtins`], [`files`], [`text`],
//! [`system`]) exist on every VM. The CPS, mongo, SVN and ESC tools ([`cps`],
//! [`mongo`], [`svn`], [`esc`]) exist only where their file is installed
//! (see [`crate::state::initial::TOOLS`]): a bare name is searched for along
//! `PATH` in the VM's filesystem, a path must name an existing file. What each
//! tool prints is written in [`crate::outputs`].

pub mod builtins;
pub mod cps;
pub mod esc;
pub mod files;
pub mod mongo;
pub mod svn;
pub mod system;
pub mod text;

use crate::shell::{Io, Shell};
use crate::state::vfs::{self, Vfs};

/// Utilities available on every VM, by name.
const UTILITIES: &[&str] = &[
    // shell builtins
    "cd",
    "exit",
    "export",
    "unset",
    "true",
    "false",
    ":",
    "echo",
    "printf",
    "pwd",
    "test",
    "[",
    "sleep",
    "timeout",
    "sh",
    "bash",
    "sudo",
    "xargs",
    "env",
    "which",
    "exec",
    "nohup",
    // files
    "cat",
    "ls",
    "cp",
    "mv",
    "rm",
    "rmdir",
    "mkdir",
    "touch",
    "chmod",
    "chown",
    "tar",
    "find",
    "sha256sum",
    "basename",
    "dirname",
    "stat",
    // text
    "grep",
    "egrep",
    "fgrep",
    "sed",
    "awk",
    "head",
    "tail",
    "wc",
    "cut",
    "sort",
    "uniq",
    "tee",
    // system
    "crontab",
    "systemctl",
    "service",
    "route",
    "hostname",
    "date",
    "df",
    "uptime",
    "whoami",
    "id",
    "uname",
    "free",
];

/// Tools that exist only where their file is installed, by file name.
const TOOLS: &[&str] = &[
    "monit",
    "mongo",
    "mongorestore",
    "mongodump",
    "svn",
    "svnadmin",
    "statusall.sh",
    "runonall.sh",
    "diagnostics.sh",
    "about.sh",
    "list_installed_features.sh",
    "recover_svn_sync.sh",
    "build_set.sh",
    "env_export.sh",
    "vm-init-client",
    "build_all.sh",
    "build_svn.sh",
    "reinit.sh",
    "config_br.py",
    "health.sh",
    "escadm",
    "esc_nc_cli",
    "netconf-console",
];

enum Found {
    Utility(String),
    Tool(String),
    Script(String),
    Missing,
    NotExecutable,
}

fn locate(sh: &Shell, name: &str) -> Found {
    if !name.contains('/') {
        if UTILITIES.contains(&name) {
            return Found::Utility(name.to_string());
        }
        let path = sh.vars.get("PATH").cloned().unwrap_or_default();
        return sh.with_fs(|fs| {
            for dir in path.split(':').filter(|d| !d.is_empty()) {
                let candidate = vfs::normalize(dir, name);
                if let Some(node) = fs.get(&candidate) {
                    if node.is_dir() || node.mode() & 0o111 == 0 {
                        continue;
                    }
                    return if TOOLS.contains(&name) {
                        Found::Tool(name.to_string())
                    } else {
                        Found::Script(candidate)
                    };
                }
            }
            Found::Missing
        });
    }
    let path = sh.path(name);
    let base = vfs::basename(&path).to_string();
    let in_bin = matches!(
        vfs::parent(&path),
        "/bin" | "/usr/bin" | "/sbin" | "/usr/sbin" | "/usr/local/bin"
    );
    if UTILITIES.contains(&base.as_str()) && in_bin {
        return Found::Utility(base);
    }
    sh.with_fs(|fs: &mut Vfs| match fs.get(&path) {
        None => Found::Missing,
        Some(n) if n.is_dir() || n.mode() & 0o111 == 0 => Found::NotExecutable,
        Some(_) if TOOLS.contains(&base.as_str()) => Found::Tool(base.clone()),
        Some(_) => Found::Script(path.clone()),
    })
}

/// Runs one command (already expanded) and returns its exit status.
pub async fn run(sh: &mut Shell, argv: Vec<String>, io: &Io) -> i32 {
    let Some(name) = argv.first().cloned() else {
        return 0;
    };
    let args = &argv[1..];
    match locate(sh, &name) {
        Found::Utility(u) => run_utility(sh, &u, args, io).await,
        Found::Tool(t) => run_tool(sh, &t, args, io).await,
        Found::Script(path) => {
            let text = sh.with_fs(|fs| fs.read_string(&path)).unwrap_or_default();
            let mut sub = sh.clone();
            sub.exit = None;
            sub.run_script(&text, io).await
        }
        Found::Missing => {
            io.errln(format!("sh: 1: {name}: not found"));
            127
        }
        Found::NotExecutable => {
            io.errln(format!("sh: 1: {name}: Permission denied"));
            126
        }
    }
}

async fn run_utility(sh: &mut Shell, name: &str, args: &[String], io: &Io) -> i32 {
    match name {
        "cat" => files::cat(sh, args, io),
        "ls" => files::ls(sh, args, io),
        "cp" => files::cp(sh, args, io),
        "mv" => files::mv(sh, args, io),
        "rm" => files::rm(sh, args, io),
        "rmdir" => files::rmdir(sh, args, io),
        "mkdir" => files::mkdir(sh, args, io),
        "touch" => files::touch(sh, args, io),
        "chmod" => files::chmod(sh, args, io),
        "chown" => 0,
        "tar" => files::tar(sh, args, io),
        "find" => files::find(sh, args, io),
        "sha256sum" => files::sha256sum(sh, args, io),
        "stat" => files::stat(sh, args, io),
        "basename" => files::basename_cmd(args, io),
        "dirname" => files::dirname_cmd(args, io),
        "grep" => text::grep(sh, args, io, None),
        "egrep" => text::grep(sh, args, io, Some('E')),
        "fgrep" => text::grep(sh, args, io, Some('F')),
        "sed" => text::sed(sh, args, io),
        "awk" => text::awk(sh, args, io),
        "head" => text::head_tail(sh, args, io, true),
        "tail" => text::head_tail(sh, args, io, false),
        "wc" => text::wc(sh, args, io),
        "cut" => text::cut(sh, args, io),
        "sort" => text::sort(sh, args, io),
        "uniq" => text::uniq(sh, args, io),
        "tee" => text::tee(sh, args, io),
        "crontab" => system::crontab(sh, args, io),
        "systemctl" => system::systemctl(sh, args, io),
        "service" => system::service(sh, args, io),
        "route" => system::route(sh, args, io),
        "hostname" => system::hostname(sh, args, io),
        "date" => system::date(args, io),
        "df" => system::df(sh, args, io),
        "uptime" => system::uptime(sh, io),
        "whoami" => {
            io.outln("root");
            0
        }
        "id" => {
            io.outln("uid=0(root) gid=0(root) groups=0(root)");
            0
        }
        "uname" => system::uname(sh, args, io),
        "free" => system::free(io),
        _ => builtins::run(sh, name, args, io).await,
    }
}

async fn run_tool(sh: &mut Shell, name: &str, args: &[String], io: &Io) -> i32 {
    match name {
        "monit" => system::monit(sh, args, io),
        "mongo" => mongo::mongo(sh, args, io),
        "mongorestore" => mongo::mongorestore(sh, args, io).await,
        "mongodump" => mongo::mongodump(sh, args, io).await,
        "svn" => svn::svn(sh, args, io),
        "svnadmin" => svn::svnadmin(sh, args, io),
        "statusall.sh" => cps::statusall(sh, io).await,
        "runonall.sh" => cps::runonall(sh, args, io).await,
        "diagnostics.sh" => cps::diagnostics(sh, args, io).await,
        "about.sh" => cps::about(sh, io).await,
        "list_installed_features.sh" => cps::list_installed_features(sh, io).await,
        "recover_svn_sync.sh" => svn::recover_svn_sync(sh, io).await,
        "build_set.sh" => mongo::build_set(sh, args, io).await,
        "env_export.sh" => mongo::env_export(sh, args, io).await,
        "vm-init-client" => cps::vm_init_client(sh, args, io).await,
        "build_all.sh" => cps::build_all(sh, io).await,
        "build_svn.sh" => cps::build_svn(sh, io).await,
        "reinit.sh" => cps::reinit(sh, io).await,
        "config_br.py" => cps::config_br(sh, args, io).await,
        "health.sh" => esc::health(sh, io).await,
        "escadm" => esc::escadm(sh, args, io).await,
        "esc_nc_cli" => esc::esc_nc_cli(sh, args, io).await,
        "netconf-console" => esc::netconf_console(sh, args, io),
        _ => {
            io.errln(format!("sh: 1: {name}: not found"));
            127
        }
    }
}

/// Parsed command-line options: single-letter flags (bundled or not), options
/// that take a value, long options, and the operands.
#[derive(Debug, Default)]
pub struct Opts {
    pub flags: Vec<char>,
    pub values: Vec<(char, String)>,
    pub long: Vec<(String, Option<String>)>,
    pub args: Vec<String>,
}

impl Opts {
    /// Whether a flag was given.
    pub fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
    /// The last value of an option.
    pub fn value(&self, c: char) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of an option, in order.
    pub fn all(&self, c: char) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Whether a long option was given.
    pub fn has_long(&self, name: &str) -> bool {
        self.long.iter().any(|(n, _)| n == name)
    }
    /// A long option's value.
    pub fn long_value(&self, name: &str) -> Option<&str> {
        self.long
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Splits `args` into options and operands. `with_value` lists the letters
/// whose option takes a value; `long_with_value` the long options that do.
/// Options may follow operands (GNU style) unless `--` ends them.
pub fn getopt(args: &[String], with_value: &str, long_with_value: &[&str]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            o.args.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None if long_with_value.contains(&long) => {
                    let v = args
                        .get(i)
                        .cloned()
                        .ok_or_else(|| format!("option '--{long}' requires an argument"))?;
                    i += 1;
                    (long.to_string(), Some(v))
                }
                None => (long.to_string(), None),
            };
            o.long.push((name, value));
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                if with_value.contains(c) {
                    let rest: String = chars[j..].iter().collect();
                    let v = if !rest.is_empty() {
                        rest
                    } else {
                        let v = args
                            .get(i)
                            .cloned()
                            .ok_or_else(|| format!("option requires an argument -- '{c}'"))?;
                        i += 1;
                        v
                    };
                    o.values.push((c, v));
                    break;
                }
                o.flags.push(c);
            }
            continue;
        }
        o.args.push(a.clone());
    }
    Ok(o)
}

/// Reads a file of the shell's VM for a tool, reporting errors as
/// `tool: path: reason`.
pub fn read_file(sh: &Shell, tool: &str, path: &str, io: &Io) -> Option<Vec<u8>> {
    let p = sh.path(path);
    match sh.with_fs(|fs| fs.read(&p).map(<[u8]>::to_vec)) {
        Ok(d) => Some(d),
        Err(e) => {
            io.errln(format!("{tool}: {path}: {e}"));
            None
        }
    }
}

/// The input of a filter: the named files concatenated, or standard input.
pub fn inputs(sh: &Shell, tool: &str, files: &[String], io: &Io) -> (Vec<(String, String)>, bool) {
    if files.is_empty() {
        return (
            vec![("(standard input)".to_string(), io.stdin_text())],
            true,
        );
    }
    let mut ok = true;
    let mut out = Vec::new();
    for f in files {
        if f == "-" {
            out.push(("(standard input)".to_string(), io.stdin_text()));
            continue;
        }
        match read_file(sh, tool, f, io) {
            Some(d) => out.push((f.clone(), String::from_utf8_lossy(&d).into_owned())),
            None => ok = false,
        }
    }
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_bundle_and_take_values() {
        let o = getopt(
            &s(&["-xvzf", "/a.tgz", "-C", "/", "rest", "--mongo", "--port=5"]),
            "fC",
            &[],
        )
        .unwrap();
        assert_eq!(o.flags, vec!['x', 'v', 'z']);
        assert_eq!(o.value('f'), Some("/a.tgz"));
        assert_eq!(o.value('C'), Some("/"));
        assert_eq!(o.args, s(&["rest"]));
        assert!(o.has_long("mongo"));
        assert_eq!(o.long_value("port"), Some("5"));
        assert!(getopt(&s(&["-f"]), "f", &[]).is_err());
        let o = getopt(&s(&["-n5", "--", "-x"]), "n", &[]).unwrap();
        assert_eq!((o.value('n'), o.args.clone()), (Some("5"), s(&["-x"])));
    }
}

#[cfg(test)]
mod tests_shell;
