//! Shell builtins and the commands that run other commands: `cd`, `exit`,
//! `export`, `echo`, `printf`, `test`/`[`, `sleep`, `timeout`, `sh -c`, `sudo`,
//! `xargs`, `env`, `which`.

use super::Opts;
use crate::shell::{BoxFut, Io, Shell};
use std::time::Duration;

/// Runs a builtin; unknown names are "not found".
pub async fn run(sh: &mut Shell, name: &str, args: &[String], io: &Io) -> i32 {
    match name {
        "true" | ":" => 0,
        "false" => 1,
        "cd" => cd(sh, args, io),
        "pwd" => {
            io.outln(&sh.cwd);
            0
        }
        "exit" => {
            let code = match args.first() {
                None => sh.last_status,
                Some(a) => match a.parse::<i32>() {
                    Ok(n) => n & 0xff,
                    Err(_) => {
                        io.errln(format!("sh: 1: exit: Illegal number: {a}"));
                        2
                    }
                },
            };
            sh.exit = Some(code);
            code
        }
        "export" => {
            for a in args.iter().filter(|a| !a.starts_with('-')) {
                if let Some((k, v)) = a.split_once('=') {
                    sh.vars.insert(k.to_string(), v.to_string());
                }
            }
            0
        }
        "unset" => {
            for a in args {
                sh.vars.remove(a);
            }
            0
        }
        "echo" => echo(args, io),
        "printf" => printf(args, io),
        "test" => test(args, sh, io, false),
        "[" => test(args, sh, io, true),
        "sleep" => sleep(args, io).await,
        "timeout" => timeout(sh, args, io).await,
        "sh" | "bash" => shell(sh, args, io).await,
        "sudo" => sudo(sh, args, io).await,
        "exec" | "nohup" => {
            if args.is_empty() {
                return 0;
            }
            let status = run_argv(sh, args.to_vec(), io).await;
            if name == "exec" {
                sh.exit = Some(status);
            }
            status
        }
        "xargs" => xargs(sh, args, io).await,
        "env" => env(sh, args, io).await,
        "which" => which(sh, args, io),
        _ => {
            io.errln(format!("sh: 1: {name}: not found"));
            127
        }
    }
}

/// Runs an already split command line, boxed for the recursion.
pub fn run_argv<'a>(sh: &'a mut Shell, argv: Vec<String>, io: &'a Io) -> BoxFut<'a, i32> {
    Box::pin(super::run(sh, argv, io))
}

fn cd(sh: &mut Shell, args: &[String], io: &Io) -> i32 {
    let target = args
        .iter()
        .find(|a| !a.starts_with('-') || a.as_str() == "-")
        .cloned()
        .unwrap_or_else(|| "/root".to_string());
    let path = sh.path(&target);
    if sh.with_fs(|fs| fs.is_dir(&path)) {
        sh.cwd = path;
        0
    } else {
        io.errln(format!("sh: 1: cd: can't cd to {target}"));
        2
    }
}

fn unescape(s: &str) -> (String, bool) {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('c') => return (out, true),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    (out, false)
}

fn echo(args: &[String], io: &Io) -> i32 {
    let mut newline = true;
    let mut escapes = false;
    let mut rest = args;
    while let Some(first) = rest.first() {
        match first.as_str() {
            "-n" => newline = false,
            "-e" => escapes = true,
            "-ne" | "-en" => {
                newline = false;
                escapes = true;
            }
            "-E" => escapes = false,
            _ => break,
        }
        rest = &rest[1..];
    }
    let mut text = rest.join(" ");
    if escapes {
        let (t, stop) = unescape(&text);
        text = t;
        if stop {
            newline = false;
        }
    }
    if newline {
        text.push('\n');
    }
    io.out(text);
    0
}

fn printf(args: &[String], io: &Io) -> i32 {
    let Some(format) = args.first() else {
        io.errln("printf: usage: printf format [arguments]");
        return 2;
    };
    let mut values = args[1..].iter();
    let (format, _) = unescape(format);
    let mut out = String::new();
    loop {
        let mut used = false;
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('s') | Some('b') => {
                    used = true;
                    out.push_str(values.next().map(String::as_str).unwrap_or(""));
                }
                Some('d') | Some('i') => {
                    used = true;
                    let v = values.next().map(String::as_str).unwrap_or("0");
                    out.push_str(&v.trim().parse::<i64>().unwrap_or(0).to_string());
                }
                Some(o) => {
                    out.push('%');
                    out.push(o);
                }
                None => out.push('%'),
            }
        }
        if !used || values.len() == 0 {
            break;
        }
    }
    io.out(out);
    0
}

fn test(args: &[String], sh: &Shell, io: &Io, bracket: bool) -> i32 {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    if bracket {
        if args.last() != Some(&"]") {
            io.errln("sh: 1: [: missing ]");
            return 2;
        }
        args.pop();
    }
    match eval_test(&args, sh) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            io.errln(format!("sh: 1: test: {e}"));
            2
        }
    }
}

fn eval_test(args: &[&str], sh: &Shell) -> Result<bool, String> {
    // -a and -o, left to right (what scripts actually use).
    if let Some(i) = args.iter().position(|a| *a == "-o") {
        return Ok(eval_test(&args[..i], sh)? || eval_test(&args[i + 1..], sh)?);
    }
    if let Some(i) = args.iter().position(|a| *a == "-a") {
        return Ok(eval_test(&args[..i], sh)? && eval_test(&args[i + 1..], sh)?);
    }
    match args {
        [] => Ok(false),
        ["!", rest @ ..] => Ok(!eval_test(rest, sh)?),
        [s] => Ok(!s.is_empty()),
        [op, operand] => {
            let path = sh.path(operand);
            let node = sh.with_fs(|fs| fs.get(&path).cloned());
            Ok(match *op {
                "-n" => !operand.is_empty(),
                "-z" => operand.is_empty(),
                "-e" | "-r" | "-w" => node.is_some(),
                "-f" => node.is_some_and(|n| !n.is_dir()),
                "-d" => node.is_some_and(|n| n.is_dir()),
                "-s" => node.is_some_and(|n| !n.is_dir() && n.size() > 0),
                "-x" => node.is_some_and(|n| n.mode() & 0o111 != 0),
                other => return Err(format!("{other}: unexpected operator")),
            })
        }
        [a, op, b] => {
            let num = |s: &str| -> Result<i64, String> {
                s.trim().parse().map_err(|_| format!("Illegal number: {s}"))
            };
            Ok(match *op {
                "=" | "==" => a == b,
                "!=" => a != b,
                "-eq" => num(a)? == num(b)?,
                "-ne" => num(a)? != num(b)?,
                "-lt" => num(a)? < num(b)?,
                "-le" => num(a)? <= num(b)?,
                "-gt" => num(a)? > num(b)?,
                "-ge" => num(a)? >= num(b)?,
                other => return Err(format!("{other}: unexpected operator")),
            })
        }
        _ => Err("too many arguments".to_string()),
    }
}

/// `5`, `1.5`, `2m`, `1h`, `1d` as a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let factor = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64((n * factor).min(1e9)))
}

async fn sleep(args: &[String], io: &Io) -> i32 {
    if args.is_empty() {
        io.errln("sleep: missing operand");
        return 1;
    }
    let mut total = Duration::ZERO;
    for a in args {
        match parse_duration(a) {
            Some(d) => total += d,
            None => {
                io.errln(format!("sleep: invalid time interval '{a}'"));
                return 1;
            }
        }
    }
    tokio::time::sleep(total).await;
    0
}

/// `timeout [-s SIG] [-k DURATION] DURATION COMMAND...`: ends COMMAND after
/// DURATION with status 124, as coreutils does.
async fn timeout(sh: &mut Shell, args: &[String], io: &Io) -> i32 {
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') && args[i] != "-" {
        let a = args[i].as_str();
        i += 1;
        if matches!(a, "-s" | "-k" | "--signal" | "--kill-after") {
            i += 1;
        }
    }
    let Some(limit) = args.get(i) else {
        io.errln("timeout: missing operand");
        return 125;
    };
    let Some(duration) = parse_duration(limit) else {
        io.errln(format!("timeout: invalid time interval '{limit}'"));
        return 125;
    };
    let command = args[i + 1..].to_vec();
    if command.is_empty() {
        io.errln(format!("timeout: missing operand after '{limit}'"));
        return 125;
    }
    if duration.is_zero() {
        return run_argv(sh, command, io).await;
    }
    tokio::time::timeout(duration, run_argv(sh, command, io))
        .await
        .unwrap_or(124)
}

/// `sh -c SCRIPT`, `sh FILE`, or `sh` reading its script from standard input.
async fn shell(sh: &mut Shell, args: &[String], io: &Io) -> i32 {
    let mut i = 0;
    let mut script: Option<String> = None;
    while i < args.len() {
        match args[i].as_str() {
            "-c" => {
                script = args.get(i + 1).cloned();
                if script.is_none() {
                    io.errln("sh: 0: -c requires an argument");
                    return 2;
                }
                break;
            }
            a if a.starts_with('-') => i += 1,
            file => {
                let Some(data) = super::read_file(sh, "sh", file, io) else {
                    return 2;
                };
                script = Some(String::from_utf8_lossy(&data).into_owned());
                break;
            }
        }
    }
    let script = script.unwrap_or_else(|| io.stdin_text());
    let mut sub = sh.clone();
    sub.exit = None;
    sub.run_script(&script, io).await
}

async fn sudo(sh: &mut Shell, args: &[String], io: &Io) -> i32 {
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        if matches!(args[i].as_str(), "-u" | "-g") {
            i += 1;
        }
        i += 1;
    }
    if i >= args.len() {
        io.errln("usage: sudo -h | -K | -k | -V\nusage: sudo [-AbEHknPS] [-u user] command");
        return 1;
    }
    run_argv(sh, args[i..].to_vec(), io).await
}

async fn xargs(sh: &mut Shell, args: &[String], io: &Io) -> i32 {
    let mut i = 0;
    let mut no_run_if_empty = false;
    let mut per_call: Option<usize> = None;
    while i < args.len() && args[i].starts_with('-') {
        match args[i].as_str() {
            "-r" | "--no-run-if-empty" => no_run_if_empty = true,
            "-n" => {
                per_call = args.get(i + 1).and_then(|n| n.parse().ok());
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let command: Vec<String> = if i < args.len() {
        args[i..].to_vec()
    } else {
        vec!["echo".to_string()]
    };
    let items: Vec<String> = io
        .stdin_text()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if items.is_empty() && no_run_if_empty {
        return 0;
    }
    let chunks: Vec<Vec<String>> = match per_call {
        Some(n) if n > 0 => items.chunks(n).map(<[String]>::to_vec).collect(),
        _ => vec![items],
    };
    let mut worst = 0;
    for chunk in chunks {
        let mut argv = command.clone();
        argv.extend(chunk);
        let status = run_argv(sh, argv, io).await;
        if status != 0 {
            worst = 123;
        }
    }
    worst
}

async fn env(sh: &mut Shell, args: &[String], io: &Io) -> i32 {
    let mut i = 0;
    let mut sub = sh.clone();
    while let Some((k, v)) = args.get(i).and_then(|a| a.split_once('=')) {
        sub.vars.insert(k.to_string(), v.to_string());
        i += 1;
    }
    if i >= args.len() {
        for (k, v) in &sub.vars {
            io.outln(format!("{k}={v}"));
        }
        return 0;
    }
    run_argv(&mut sub, args[i..].to_vec(), io).await
}

fn which(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o: Opts = super::getopt(args, "", &[]).unwrap_or_default();
    let path = sh.vars.get("PATH").cloned().unwrap_or_default();
    let mut status = 0;
    for name in &o.args {
        let found = if super::UTILITIES.contains(&name.as_str()) {
            Some(format!("/usr/bin/{name}"))
        } else {
            sh.with_fs(|fs| {
                path.split(':')
                    .map(|d| crate::state::vfs::normalize(d, name))
                    .find(|p| {
                        fs.get(p)
                            .is_some_and(|n| !n.is_dir() && n.mode() & 0o111 != 0)
                    })
            })
        };
        match found {
            Some(p) => io.outln(p),
            None => {
                io.errln(format!("which: no {name} in ({path})"));
                status = 1;
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1"), None);
    }
}
