//! Running a parsed script against the simulated site: expansion (variables,
//! command substitution, field splitting, globbing against the VM's files),
//! redirections into the VM's files, pipelines, `&&`/`||`, and dispatch of each
//! simple command to [`crate::commands`].
//!
//! Pipelines run their stages one after the other, each reading the previous
//! one's whole output: simpler than concurrency, and the only difference an
//! operator could notice is that `tool | grep` shows its lines at the end.

use super::parse::{self, AndOr, Command, Connector, Pipeline, RedirOp, Script, Seg, Simple, Word};
use crate::faults::Faults;
use crate::state::vfs::{self, normalize};
use crate::state::SiteState;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Which output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Output as it is produced, for a live consumer (an SSH channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// Where a command's output goes.
#[derive(Clone)]
pub enum Sink {
    /// To a live consumer, tagged with the stream it is shown as.
    Live {
        tx: UnboundedSender<Chunk>,
        stream: Stream,
    },
    /// Collected (pipes, command substitution, tests).
    Buffer(Arc<Mutex<Vec<u8>>>),
    /// Appended to a file of a VM (a redirection).
    File {
        state: SiteState,
        host: String,
        path: String,
    },
    /// `/dev/null`.
    Null,
}

impl Sink {
    /// A new empty buffer.
    pub fn buffer() -> Self {
        Sink::Buffer(Arc::new(Mutex::new(Vec::new())))
    }

    /// Writes bytes; a gone consumer or a vanished file is not an error for
    /// the writer, as with a closed pipe that nobody checks.
    pub fn write(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match self {
            Sink::Live { tx, stream } => {
                let _ = tx.send(Chunk {
                    stream: *stream,
                    data: data.to_vec(),
                });
            }
            Sink::Buffer(b) => b
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(data),
            Sink::File { state, host, path } => {
                state.with(|s| {
                    if let Some(h) = s.host_mut(host) {
                        let _ = h.fs.write(path, data, true);
                    }
                });
            }
            Sink::Null => {}
        }
    }

    /// What a buffer holds (empty for other sinks).
    pub fn contents(&self) -> Vec<u8> {
        match self {
            Sink::Buffer(b) => b.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            _ => Vec::new(),
        }
    }
}

/// A command's standard input and outputs.
#[derive(Clone)]
pub struct Io {
    pub stdin: Arc<Vec<u8>>,
    pub out: Sink,
    pub err: Sink,
}

impl Io {
    /// Collects both streams separately, with no input.
    pub fn buffered() -> Self {
        Self {
            stdin: Arc::new(Vec::new()),
            out: Sink::buffer(),
            err: Sink::buffer(),
        }
    }

    /// Sends both streams to `tx`.
    pub fn live(tx: UnboundedSender<Chunk>) -> Self {
        Self {
            stdin: Arc::new(Vec::new()),
            out: Sink::Live {
                tx: tx.clone(),
                stream: Stream::Stdout,
            },
            err: Sink::Live {
                tx,
                stream: Stream::Stderr,
            },
        }
    }

    /// Writes text to standard output.
    pub fn out(&self, s: impl AsRef<str>) {
        self.out.write(s.as_ref().as_bytes());
    }

    /// Writes a line to standard output.
    pub fn outln(&self, s: impl AsRef<str>) {
        self.out(format!("{}\n", s.as_ref()));
    }

    /// Writes a line to standard error.
    pub fn errln(&self, s: impl AsRef<str>) {
        self.err.write(format!("{}\n", s.as_ref()).as_bytes());
    }

    /// Standard input as text.
    pub fn stdin_text(&self) -> String {
        String::from_utf8_lossy(&self.stdin).into_owned()
    }
}

/// How fast long tools print their lines, so live streaming can be watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub min: Duration,
    pub max: Duration,
}

impl Pace {
    /// About 50–150 ms per line, like a tool doing real work.
    pub fn realistic() -> Self {
        Self {
            min: Duration::from_millis(50),
            max: Duration::from_millis(150),
        }
    }

    /// No delay at all (fast tests).
    pub fn instant() -> Self {
        Self {
            min: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    /// One line's delay.
    pub fn delay(&self) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let span = (self.max - self.min).as_millis() as u64;
        self.min + Duration::from_millis(rand::random::<u64>() % (span + 1))
    }
}

/// A shell on one VM: where it is, its variables, and the site it acts on.
#[derive(Clone)]
pub struct Shell {
    pub host: String,
    pub state: SiteState,
    pub faults: Faults,
    pub cwd: String,
    pub vars: BTreeMap<String, String>,
    pub last_status: i32,
    pub pace: Pace,
    /// Set by `exit`: the script stops with this status.
    pub exit: Option<i32>,
}

/// A boxed future, for the recursion between scripts and commands.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Commands that only run another command: a hang fault matches the command
/// they run, not them (so `timeout` can still end a hanging command).
const WRAPPERS: &[&str] = &[
    "timeout", "sh", "bash", "sudo", "xargs", "exec", "nohup", "env",
];

impl Shell {
    /// A root login shell on `host`, in `/root`.
    pub fn new(host: &str, state: SiteState, faults: Faults, pace: Pace) -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("HOME".to_string(), "/root".to_string());
        vars.insert("USER".to_string(), "root".to_string());
        vars.insert("LOGNAME".to_string(), "root".to_string());
        vars.insert("HOSTNAME".to_string(), host.to_string());
        vars.insert("SHELL".to_string(), "/bin/bash".to_string());
        let role = crate::state::topology::vm(host).map(|v| v.role);
        if let Some(role) = role {
            vars.insert(
                "PATH".to_string(),
                crate::state::initial::path_dirs(role).join(":"),
            );
        }
        Self {
            host: host.to_string(),
            state,
            faults,
            cwd: "/root".to_string(),
            vars,
            last_status: 0,
            pace,
            exit: None,
        }
    }

    /// Runs `f` on this VM's filesystem (locked for the call).
    pub fn with_fs<R>(&self, f: impl FnOnce(&mut vfs::Vfs) -> R) -> R {
        let host = self.host.clone();
        self.state.with(|s| match s.host_mut(&host) {
            Some(h) => f(&mut h.fs),
            None => f(&mut vfs::Vfs::new()),
        })
    }

    /// Resolves a path typed by the user against the working directory.
    pub fn path(&self, p: &str) -> String {
        normalize(&self.cwd, p)
    }

    /// Prints a line and waits the pace's delay (long tools' output).
    pub async fn line(&self, io: &Io, line: impl AsRef<str>) {
        io.outln(line);
        let d = self.pace.delay();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Parses and runs `src`; syntax errors are reported like dash's (status 2).
    pub fn run_script<'a>(&'a mut self, src: &'a str, io: &'a Io) -> BoxFut<'a, i32> {
        Box::pin(async move {
            match parse::parse(src) {
                Ok(script) => self.run_list(&script, io).await,
                Err(e) => {
                    io.errln(format!("sh: 1: {e}"));
                    self.last_status = 2;
                    2
                }
            }
        })
    }

    /// Runs a parsed list.
    pub fn run_list<'a>(&'a mut self, script: &'a Script, io: &'a Io) -> BoxFut<'a, i32> {
        Box::pin(async move {
            let mut status = 0;
            for item in &script.0 {
                status = self.run_and_or(item, io).await;
                self.last_status = status;
                if let Some(code) = self.exit {
                    return code;
                }
            }
            status
        })
    }

    async fn run_and_or(&mut self, item: &AndOr, io: &Io) -> i32 {
        let mut status = self.run_pipeline(&item.first, io).await;
        for (conn, p) in &item.rest {
            if self.exit.is_some() {
                break;
            }
            self.last_status = status;
            let run = match conn {
                Connector::And => status == 0,
                Connector::Or => status != 0,
            };
            if run {
                status = self.run_pipeline(p, io).await;
            }
        }
        status
    }

    async fn run_pipeline(&mut self, p: &Pipeline, io: &Io) -> i32 {
        let mut stdin = io.stdin.clone();
        let mut status = 0;
        let n = p.commands.len();
        for (i, cmd) in p.commands.iter().enumerate() {
            let last = i + 1 == n;
            let stage = Io {
                stdin: stdin.clone(),
                out: if last { io.out.clone() } else { Sink::buffer() },
                err: io.err.clone(),
            };
            status = if n > 1 {
                // Every stage of a real pipeline runs in a subshell.
                let mut sub = self.clone();
                sub.run_command(cmd, &stage).await
            } else {
                self.run_command(cmd, &stage).await
            };
            if !last {
                stdin = Arc::new(stage.out.contents());
            }
        }
        if p.negate {
            i32::from(status == 0)
        } else {
            status
        }
    }

    fn run_command<'a>(&'a mut self, cmd: &'a Command, io: &'a Io) -> BoxFut<'a, i32> {
        Box::pin(async move {
            match cmd {
                Command::Simple(s) => self.run_simple(s, io).await,
                Command::Group(body, redirs) => match self.redirect(redirs, io).await {
                    Ok(io) => self.run_list(body, &io).await,
                    Err(status) => status,
                },
                Command::Subshell(body, redirs) => match self.redirect(redirs, io).await {
                    Ok(io) => {
                        let mut sub = self.clone();
                        let status = sub.run_list(body, &io).await;
                        status
                    }
                    Err(status) => status,
                },
            }
        })
    }

    async fn run_simple(&mut self, s: &Simple, io: &Io) -> i32 {
        let mut assigns = Vec::new();
        for (name, value) in &s.assigns {
            assigns.push((name.clone(), self.expand_one(value, io).await));
        }
        let mut argv = Vec::new();
        for w in &s.words {
            argv.extend(self.expand(w, io).await);
        }
        let io = match self.redirect(&s.redirs, io).await {
            Ok(io) => io,
            Err(status) => return status,
        };
        if argv.is_empty() {
            for (name, value) in assigns {
                self.vars.insert(name, value);
            }
            return self.last_status;
        }
        // `NAME=value cmd`: the values hold for this command only.
        let saved: Vec<(String, Option<String>)> = assigns
            .iter()
            .map(|(n, _)| (n.clone(), self.vars.get(n).cloned()))
            .collect();
        for (name, value) in assigns {
            self.vars.insert(name, value);
        }
        let status = if !WRAPPERS.contains(&argv[0].as_str()) {
            match self.faults.hangs(&argv.join(" ")) {
                Some(_) => {
                    io.outln(format!(
                        "{}: waiting for a response...",
                        vfs::basename(&argv[0])
                    ));
                    std::future::pending::<i32>().await
                }
                None => crate::commands::run(self, argv, &io).await,
            }
        } else {
            crate::commands::run(self, argv, &io).await
        };
        for (name, old) in saved {
            match old {
                Some(v) => self.vars.insert(name, v),
                None => self.vars.remove(&name),
            };
        }
        status
    }

    /// Applies redirections; on failure the command does not run (status 2,
    /// or 1 for a missing input file, as dash does).
    async fn redirect(&mut self, redirs: &[parse::Redir], io: &Io) -> Result<Io, i32> {
        let mut io = io.clone();
        for r in redirs {
            let sink = match &r.op {
                RedirOp::Write(w) | RedirOp::Append(w) => {
                    let target = self.expand_one(w, &io).await;
                    if target == "/dev/null" {
                        Sink::Null
                    } else {
                        let path = self.path(&target);
                        let append = matches!(r.op, RedirOp::Append(_));
                        let host = self.host.clone();
                        let result = self.state.with(|s| match s.host_mut(&host) {
                            Some(h) => h.fs.write(&path, b"", append),
                            None => Err(vfs::FsError::NotFound),
                        });
                        if let Err(e) = result {
                            let why = match e {
                                vfs::FsError::NotFound => "Directory nonexistent".to_string(),
                                other => other.to_string(),
                            };
                            io.errln(format!("sh: 1: cannot create {target}: {why}"));
                            return Err(2);
                        }
                        Sink::File {
                            state: self.state.clone(),
                            host,
                            path,
                        }
                    }
                }
                RedirOp::Read(w) => {
                    let target = self.expand_one(w, &io).await;
                    if target == "/dev/null" {
                        io.stdin = Arc::new(Vec::new());
                        continue;
                    }
                    let path = self.path(&target);
                    let host = self.host.clone();
                    match self.state.with(|s| {
                        s.host(&host)
                            .ok_or(vfs::FsError::NotFound)
                            .and_then(|h| h.fs.read(&path).map(<[u8]>::to_vec))
                    }) {
                        Ok(data) => io.stdin = Arc::new(data),
                        Err(_) => {
                            io.errln(format!("sh: 1: cannot open {target}: No such file"));
                            return Err(2);
                        }
                    }
                    continue;
                }
                RedirOp::Dup(1) => io.out.clone(),
                RedirOp::Dup(2) => io.err.clone(),
                RedirOp::Dup(_) | RedirOp::Close => Sink::Null,
            };
            match r.fd {
                1 => io.out = sink,
                2 => io.err = sink,
                _ => {}
            }
        }
        Ok(io)
    }

    fn var(&self, name: &str) -> String {
        match name {
            "?" => self.last_status.to_string(),
            "$" => "4242".to_string(),
            "#" => "0".to_string(),
            "0" => "sh".to_string(),
            "PWD" => self.cwd.clone(),
            _ => self.vars.get(name).cloned().unwrap_or_default(),
        }
    }

    async fn substitute(&mut self, script: &Script, io: &Io) -> String {
        let sub_io = Io {
            stdin: Arc::new(Vec::new()),
            out: Sink::buffer(),
            err: io.err.clone(),
        };
        let mut sub = self.clone();
        let status = sub.run_list(script, &sub_io).await;
        self.last_status = status;
        let mut text = String::from_utf8_lossy(&sub_io.out.contents()).into_owned();
        while text.ends_with('\n') {
            text.pop();
        }
        text
    }

    /// Expands a word into one string: no field splitting or globbing
    /// (assignments, redirection targets).
    pub async fn expand_one(&mut self, w: &Word, io: &Io) -> String {
        let mut s = String::new();
        for seg in &w.0 {
            match seg {
                Seg::Lit { text, .. } => s.push_str(text),
                Seg::Var { name, .. } => s.push_str(&self.var(name)),
                Seg::Cmd { script, .. } => s.push_str(&self.substitute(script, io).await),
            }
        }
        s
    }

    /// Expands a word into fields: substitutions, splitting of unquoted
    /// results on blanks, and globbing of unquoted `*`, `?` and `[`.
    pub async fn expand(&mut self, w: &Word, io: &Io) -> Vec<String> {
        // Each field is its characters with whether each was quoted.
        let mut fields: Vec<(Vec<(char, bool)>, bool)> = vec![(Vec::new(), false)];
        for seg in &w.0 {
            let (value, quoted) = match seg {
                Seg::Lit { text, quoted } => {
                    let cur = fields.last_mut();
                    if let Some((chars, any_quoted)) = cur {
                        chars.extend(text.chars().map(|c| (c, *quoted)));
                        *any_quoted |= *quoted;
                    }
                    continue;
                }
                Seg::Var { name, quoted } => (self.var(name), *quoted),
                Seg::Cmd { script, quoted } => (self.substitute(script, io).await, *quoted),
            };
            if quoted {
                if let Some((chars, any_quoted)) = fields.last_mut() {
                    chars.extend(value.chars().map(|c| (c, true)));
                    *any_quoted = true;
                }
            } else {
                let starts_blank = value.starts_with(char::is_whitespace);
                let ends_blank = value.ends_with(char::is_whitespace);
                let pieces: Vec<&str> = value.split_whitespace().collect();
                if pieces.is_empty() {
                    if !value.is_empty() {
                        fields.push((Vec::new(), false));
                    }
                    continue;
                }
                if starts_blank {
                    fields.push((Vec::new(), false));
                }
                for (i, p) in pieces.iter().enumerate() {
                    if i > 0 {
                        fields.push((Vec::new(), false));
                    }
                    if let Some((chars, _)) = fields.last_mut() {
                        chars.extend(p.chars().map(|c| (c, false)));
                    }
                }
                if ends_blank {
                    fields.push((Vec::new(), false));
                }
            }
        }
        let mut out = Vec::new();
        for (chars, any_quoted) in fields {
            if chars.is_empty() && !any_quoted {
                continue;
            }
            let is_glob = chars
                .iter()
                .any(|(c, q)| !q && matches!(c, '*' | '?' | '['));
            if is_glob {
                let matches = self.glob(&chars);
                if !matches.is_empty() {
                    out.extend(matches);
                    continue;
                }
            }
            out.push(chars.into_iter().map(|(c, _)| c).collect());
        }
        out
    }

    /// Paths matching a pattern, sorted; empty when none match.
    fn glob(&self, pattern: &[(char, bool)]) -> Vec<String> {
        let absolute = pattern.first().is_some_and(|(c, _)| *c == '/');
        let mut comps: Vec<Vec<(char, bool)>> = vec![Vec::new()];
        for &(c, q) in pattern {
            if c == '/' {
                comps.push(Vec::new());
            } else if let Some(last) = comps.last_mut() {
                last.push((c, q));
            }
        }
        let comps: Vec<Vec<(char, bool)>> = comps.into_iter().filter(|c| !c.is_empty()).collect();
        let host = self.host.clone();
        let cwd = self.cwd.clone();
        self.state.with(|s| {
            let Some(h) = s.host(&host) else {
                return Vec::new();
            };
            // (real path, path as the user will see it)
            let mut current: Vec<(String, String)> = vec![if absolute {
                ("/".to_string(), "/".to_string())
            } else {
                (cwd.clone(), String::new())
            }];
            for (i, comp) in comps.iter().enumerate() {
                let last = i + 1 == comps.len();
                let wild = comp.iter().any(|(c, q)| !q && matches!(c, '*' | '?' | '['));
                let mut next = Vec::new();
                for (real, shown) in &current {
                    let join = |base: &str, name: &str| {
                        if base.is_empty() {
                            name.to_string()
                        } else if base.ends_with('/') {
                            format!("{base}{name}")
                        } else {
                            format!("{base}/{name}")
                        }
                    };
                    if wild {
                        let Ok(children) = h.fs.list(real) else {
                            continue;
                        };
                        for (name, node) in children {
                            if name.starts_with('.') && comp.first().map(|c| c.0) != Some('.') {
                                continue;
                            }
                            if !last && !node.is_dir() {
                                continue;
                            }
                            if glob_match(comp, &name) {
                                next.push((join(real, &name), join(shown, &name)));
                            }
                        }
                    } else {
                        let name: String = comp.iter().map(|(c, _)| *c).collect();
                        let r = join(real, &name);
                        if h.fs.get(&normalize("/", &r)).is_some() {
                            next.push((r, join(shown, &name)));
                        }
                    }
                }
                current = next;
            }
            let mut found: Vec<String> = current.into_iter().map(|(_, shown)| shown).collect();
            found.sort();
            found
        })
    }
}

/// Matches one path component against a pattern whose quoted characters are literal.
pub fn glob_match(pattern: &[(char, bool)], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    fn go(p: &[(char, bool)], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(('*', false)) => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(('?', false)) => !n.is_empty() && go(&p[1..], &n[1..]),
            Some(('[', false)) => {
                let Some(end) = p.iter().skip(1).position(|(c, _)| *c == ']') else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let class = &p[1..=end];
                let (negate, class) = match class.first() {
                    Some(('!' | '^', _)) => (true, &class[1..]),
                    _ => (false, class),
                };
                let Some(&c) = n.first() else { return false };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1].0 == '-' {
                        hit |= class[i].0 <= c && c <= class[i + 2].0;
                        i += 3;
                    } else {
                        hit |= class[i].0 == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 2..], &n[1..])
            }
            Some((c, _)) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unquoted(s: &str) -> Vec<(char, bool)> {
        s.chars().map(|c| (c, false)).collect()
    }

    #[test]
    fn glob_patterns() {
        assert!(glob_match(&unquoted("route-*"), "route-eth1"));
        assert!(glob_match(&unquoted("*.conf"), "00-a.conf"));
        assert!(!glob_match(&unquoted("*.conf"), "a.confx"));
        assert!(glob_match(&unquoted("qns0[1-4]"), "qns03"));
        assert!(!glob_match(&unquoted("qns0[!1-4]"), "qns03"));
        assert!(glob_match(&unquoted("a?c"), "abc"));
        assert!(!glob_match(&[('*', true)], "x"));
    }
}
