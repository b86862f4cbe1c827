//! Text filters: `grep`, `sed`, `awk`, `head`, `tail`, `wc`, `cut`, `sort`,
//! `uniq`, `tee`. Regular expressions are the `regex` crate's; POSIX basic
//! expressions (grep and sed without `-E`) are translated first.

use super::{getopt, inputs};
use crate::shell::{Io, Shell};
use regex::Regex;

fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.split('\n').collect();
    if v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// Translates a POSIX basic regular expression into the extended syntax:
/// `\(`, `\)`, `\{`, `\}`, `\|`, `\+`, `\?` are operators and their bare forms
/// literals; `\<` and `\>` become word boundaries.
pub fn bre_to_ere(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut at_start = true;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let n = chars[i + 1];
                match n {
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' => out.push(n),
                    '<' | '>' => out.push_str("\\b"),
                    n if n.is_ascii_alphanumeric() => {
                        out.push('\\');
                        out.push(n);
                    }
                    n => {
                        out.push_str(&regex::escape(&n.to_string()));
                    }
                }
                at_start = n == '(';
                i += 2;
                continue;
            }
            '(' | ')' | '{' | '}' | '|' | '+' | '?' => out.push_str(&regex::escape(&c.to_string())),
            '*' if at_start => out.push_str("\\*"),
            '[' => {
                // Copy a bracket expression as it is.
                let start = i;
                i += 1;
                if i < chars.len() && chars[i] == '^' {
                    i += 1;
                }
                if i < chars.len() && chars[i] == ']' {
                    i += 1;
                }
                while i < chars.len() && chars[i] != ']' {
                    if chars[i] == '[' && i + 1 < chars.len() && chars[i + 1] == ':' {
                        while i < chars.len() && !(chars[i] == ']' && chars[i - 1] == ':') {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                let end = i.min(chars.len().saturating_sub(1));
                out.extend(&chars[start..=end]);
                i = end + 1;
                at_start = false;
                continue;
            }
            c => out.push(c),
        }
        at_start = c == '^' && out.len() == 1;
        i += 1;
    }
    out
}

/// Compiles grep/sed patterns.
fn compile(
    patterns: &[String],
    extended: bool,
    fixed: bool,
    icase: bool,
    whole_line: bool,
    word: bool,
) -> Result<Regex, regex::Error> {
    let parts: Vec<String> = patterns
        .iter()
        .map(|p| {
            let body = if fixed {
                regex::escape(p)
            } else if extended {
                p.clone()
            } else {
                bre_to_ere(p)
            };
            let body = if whole_line {
                format!("^(?:{body})$")
            } else if word {
                format!("\\b(?:{body})\\b")
            } else {
                body
            };
            format!("(?:{body})")
        })
        .collect();
    let flags = if icase { "(?i)" } else { "" };
    Regex::new(&format!("{flags}{}", parts.join("|")))
}

pub fn grep(sh: &Shell, args: &[String], io: &Io, forced: Option<char>) -> i32 {
    let o = match getopt(args, "efmABC", &["regexp"]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("grep: {e}"));
            io.errln("Usage: grep [OPTION]... PATTERNS [FILE]...");
            return 2;
        }
    };
    let mut operands = o.args.clone();
    let mut patterns: Vec<String> = o.all('e').into_iter().map(str::to_string).collect();
    if let Some(p) = o.long_value("regexp") {
        patterns.push(p.to_string());
    }
    if patterns.is_empty() {
        if operands.is_empty() {
            io.errln("Usage: grep [OPTION]... PATTERNS [FILE]...");
            io.errln("Try 'grep --help' for more information.");
            return 2;
        }
        patterns.push(operands.remove(0));
    }
    // One pattern per line, as grep reads them.
    let patterns: Vec<String> = patterns
        .iter()
        .flat_map(|p| p.split('\n').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let extended = forced == Some('E') || o.has('E');
    let fixed = forced == Some('F') || o.has('F');
    let re = match compile(
        &patterns,
        extended,
        fixed,
        o.has('i'),
        o.has('x'),
        o.has('w'),
    ) {
        Ok(r) => r,
        Err(_) => {
            io.errln("grep: Invalid regular expression");
            return 2;
        }
    };
    let max = o.value('m').and_then(|m| m.parse::<usize>().ok());
    let (texts, ok) = inputs(sh, "grep", &operands, io);
    let many = texts.len() > 1 && !o.has('h') || o.has('H');
    let mut any = false;
    for (name, text) in &texts {
        let mut count = 0;
        for (n, line) in lines(text).iter().enumerate() {
            if max.is_some_and(|m| count >= m) {
                break;
            }
            let hit = re.is_match(line) != o.has('v');
            if !hit {
                continue;
            }
            count += 1;
            any = true;
            if o.has('q') {
                return 0;
            }
            if o.has('c') || o.has('l') {
                continue;
            }
            let prefix = format!(
                "{}{}",
                if many {
                    format!("{name}:")
                } else {
                    String::new()
                },
                if o.has('n') {
                    format!("{}:", n + 1)
                } else {
                    String::new()
                }
            );
            if o.has('o') && !o.has('v') {
                for m in re.find_iter(line) {
                    io.outln(format!("{prefix}{}", m.as_str()));
                }
            } else {
                io.outln(format!("{prefix}{line}"));
            }
        }
        if o.has('c') {
            io.outln(if many {
                format!("{name}:{count}")
            } else {
                count.to_string()
            });
        }
        if o.has('l') && count > 0 {
            io.outln(name);
        }
    }
    if !(ok || o.has('q') && any) {
        return 2;
    }
    if any {
        0
    } else {
        1
    }
}

#[derive(Debug)]
enum Addr {
    Line(usize),
    Last,
    Re(Regex),
}

#[derive(Debug)]
enum SedCmd {
    Subst {
        re: Regex,
        replacement: String,
        global: bool,
        print: bool,
        nth: usize,
    },
    Print,
    Delete,
    Quit,
}

/// Reads `<d>...<d>` with `\<d>` as a literal delimiter; returns the text and
/// the rest after the closing delimiter.
fn delimited(s: &str, d: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, n)) if n == d => out.push(n),
                Some((_, 'n')) => out.push('\n'),
                Some((_, n)) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else if c == d {
            return Some((out, &s[i + c.len_utf8()..]));
        } else {
            out.push(c);
        }
    }
    None
}

fn sed_regex(p: &str, extended: bool, icase: bool) -> Result<Regex, String> {
    let body = if extended {
        p.to_string()
    } else {
        bre_to_ere(p)
    };
    let flags = if icase { "(?i)" } else { "" };
    Regex::new(&format!("{flags}{body}"))
        .map_err(|_| format!("-e expression #1, char 0: invalid regular expression: {p}"))
}

fn parse_sed(script: &str, extended: bool) -> Result<Vec<(Option<Addr>, SedCmd)>, String> {
    let mut cmds = Vec::new();
    let mut rest = script.trim_start();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([';', '\n', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let mut addr = None;
        if let Some(r) = rest.strip_prefix('/') {
            let (re, after) = delimited(r, '/').ok_or("unterminated address regex")?;
            addr = Some(Addr::Re(sed_regex(&re, extended, false)?));
            rest = after;
        } else if let Some(r) = rest.strip_prefix('$') {
            addr = Some(Addr::Last);
            rest = r;
        } else {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() {
                addr = Some(Addr::Line(digits.parse().map_err(|_| "bad line number")?));
                rest = &rest[digits.len()..];
            }
        }
        rest = rest.trim_start();
        let mut chars = rest.chars();
        let cmd = chars.next().ok_or("missing command")?;
        rest = chars.as_str();
        let parsed = match cmd {
            's' => {
                let d = rest.chars().next().ok_or("unterminated `s' command")?;
                let (re, after) =
                    delimited(&rest[d.len_utf8()..], d).ok_or("unterminated `s' command")?;
                let (replacement, after) = delimited(after, d).ok_or("unterminated `s' command")?;
                let flag_len = after
                    .find(|c: char| c == ';' || c == '\n' || c == '}' || c.is_whitespace())
                    .unwrap_or(after.len());
                let flags = &after[..flag_len];
                rest = &after[flag_len..];
                let nth = flags
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(1);
                SedCmd::Subst {
                    re: sed_regex(&re, extended, flags.contains('I') || flags.contains('i'))?,
                    replacement,
                    global: flags.contains('g'),
                    print: flags.contains('p'),
                    nth,
                }
            }
            'p' => SedCmd::Print,
            'd' => SedCmd::Delete,
            'q' => SedCmd::Quit,
            other => {
                return Err(format!(
                    "-e expression #1, char 1: unknown command: `{other}'"
                ))
            }
        };
        cmds.push((addr, parsed));
    }
    Ok(cmds)
}

/// Expands `&`, `\1`..`\9` in a sed replacement.
fn replacement(rep: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::new();
    let mut chars = rep.chars();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str(caps.get(0).map(|m| m.as_str()).unwrap_or("")),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let i = d.to_digit(10).unwrap_or(0) as usize;
                    out.push_str(caps.get(i).map(|m| m.as_str()).unwrap_or(""));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

pub fn sed(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "ef", &["expression"]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("sed: {e}"));
            return 1;
        }
    };
    let mut operands = o.args.clone();
    let mut scripts: Vec<String> = o.all('e').into_iter().map(str::to_string).collect();
    if scripts.is_empty() {
        if operands.is_empty() {
            io.errln("Usage: sed [OPTION]... {script-only-if-no-other-script} [input-file]...");
            return 1;
        }
        scripts.push(operands.remove(0));
    }
    let extended = o.has('E') || o.has('r');
    let cmds = match parse_sed(&scripts.join("\n"), extended) {
        Ok(c) => c,
        Err(e) => {
            io.errln(format!("sed: {e}"));
            return 1;
        }
    };
    let quiet = o.has('n');
    let in_place = o.has('i');
    let (texts, ok) = inputs(sh, "sed", &operands, io);
    for (name, text) in texts {
        let all = lines(&text);
        let mut out = String::new();
        'lines: for (n, line) in all.iter().enumerate() {
            let mut line = line.to_string();
            let mut deleted = false;
            let mut quit = false;
            for (addr, cmd) in &cmds {
                let applies = match addr {
                    None => true,
                    Some(Addr::Line(l)) => n + 1 == *l,
                    Some(Addr::Last) => n + 1 == all.len(),
                    Some(Addr::Re(re)) => re.is_match(&line),
                };
                if !applies {
                    continue;
                }
                match cmd {
                    SedCmd::Subst {
                        re,
                        replacement: rep,
                        global,
                        print,
                        nth,
                    } => {
                        let mut changed = false;
                        let mut result = String::new();
                        let mut last = 0;
                        for (i, caps) in re.captures_iter(&line).enumerate() {
                            if i + 1 < *nth {
                                continue;
                            }
                            let Some(m) = caps.get(0) else { continue };
                            result.push_str(&line[last..m.start()]);
                            result.push_str(&replacement(rep, &caps));
                            last = m.end();
                            changed = true;
                            if !global {
                                break;
                            }
                        }
                        if changed {
                            result.push_str(&line[last..]);
                            line = result;
                            if *print {
                                out.push_str(&line);
                                out.push('\n');
                            }
                        }
                    }
                    SedCmd::Print => {
                        out.push_str(&line);
                        out.push('\n');
                    }
                    SedCmd::Delete => {
                        deleted = true;
                        break;
                    }
                    SedCmd::Quit => {
                        quit = true;
                        break;
                    }
                }
            }
            if !deleted && !quiet {
                out.push_str(&line);
                out.push('\n');
            }
            if quit {
                break 'lines;
            }
        }
        if in_place && name != "(standard input)" {
            let p = sh.path(&name);
            let _ = sh.with_fs(|fs| fs.write(&p, out.as_bytes(), false));
        } else {
            io.out(out);
        }
    }
    if ok {
        0
    } else {
        2
    }
}

#[derive(Debug, Clone)]
enum AwkItem {
    Field(Option<usize>),
    Str(String),
    Nr,
    Nf,
}

#[derive(Debug)]
enum AwkPattern {
    All,
    Re(Regex),
    NrEq(usize),
    FieldEq(usize, String),
}

/// A pattern and, unless it is a bare pattern, its `print` statements.
type AwkProgram = (AwkPattern, Option<Vec<Vec<AwkItem>>>);

fn parse_awk(prog: &str) -> Result<AwkProgram, String> {
    let prog = prog.trim();
    let (pattern_src, action) = match prog.find('{') {
        Some(i) => {
            let end = prog
                .rfind('}')
                .filter(|end| *end > i)
                .ok_or("syntax error: missing }")?;
            (prog[..i].trim(), Some(prog[i + 1..end].trim()))
        }
        None => (prog, None),
    };
    let pattern = if pattern_src.is_empty() {
        AwkPattern::All
    } else if let Some(re) = pattern_src
        .strip_prefix('/')
        .and_then(|r| r.strip_suffix('/'))
    {
        AwkPattern::Re(Regex::new(re).map_err(|e| e.to_string())?)
    } else if let Some(n) = pattern_src.strip_prefix("NR==") {
        AwkPattern::NrEq(n.trim().parse().map_err(|_| "syntax error")?)
    } else if let Some((f, v)) = pattern_src.split_once("==") {
        let f = f.trim().strip_prefix('$').ok_or("syntax error")?;
        AwkPattern::FieldEq(
            f.parse().map_err(|_| "syntax error")?,
            v.trim().trim_matches('"').to_string(),
        )
    } else {
        return Err(format!("syntax error at source line 1: {pattern_src}"));
    };
    let Some(action) = action else {
        return Ok((pattern, None));
    };
    let mut prints = Vec::new();
    for stmt in action.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let rest = stmt
            .strip_prefix("print")
            .ok_or_else(|| format!("syntax error at source line 1: {stmt}"))?;
        // Items separated by commas (joined with a space); inside an item,
        // juxtaposed parts are concatenated.
        let mut items: Vec<AwkItem> = Vec::new();
        let mut chars = rest.trim().chars().peekable();
        let mut first = true;
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => {
                    chars.next();
                }
                ',' => {
                    chars.next();
                    items.push(AwkItem::Str(" ".to_string()));
                }
                '"' => {
                    chars.next();
                    let mut s = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => match chars.next() {
                                Some('t') => s.push('\t'),
                                Some('n') => s.push('\n'),
                                Some(o) => s.push(o),
                                None => {}
                            },
                            c => s.push(c),
                        }
                    }
                    items.push(AwkItem::Str(s));
                }
                '$' => {
                    chars.next();
                    let mut name = String::new();
                    while let Some(&c) = chars.peek() {
                        if c.is_ascii_alphanumeric() {
                            name.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    items.push(if name == "NF" {
                        AwkItem::Field(None)
                    } else {
                        AwkItem::Field(Some(
                            name.parse().map_err(|_| format!("syntax error: ${name}"))?,
                        ))
                    });
                }
                _ => {
                    let word: String =
                        std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric()))
                            .collect();
                    match word.as_str() {
                        "NR" => items.push(AwkItem::Nr),
                        "NF" => items.push(AwkItem::Nf),
                        _ => return Err(format!("syntax error at source line 1: {stmt}")),
                    }
                }
            }
            first = false;
        }
        if first {
            items.push(AwkItem::Field(Some(0)));
        }
        prints.push(items);
    }
    Ok((pattern, Some(prints)))
}

pub fn awk(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "Fv", &[]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("awk: {e}"));
            return 2;
        }
    };
    let mut operands = o.args.clone();
    if operands.is_empty() {
        io.errln("usage: awk [-F fs][-v var=value][prog | -f progfile][file ...]");
        return 2;
    }
    let prog = operands.remove(0);
    let (pattern, prints) = match parse_awk(&prog) {
        Ok(p) => p,
        Err(e) => {
            io.errln(format!("awk: {e}"));
            io.errln(" source line number 1");
            return 2;
        }
    };
    let sep = o.value('F').map(|s| {
        if s == "\\t" {
            "\t".to_string()
        } else {
            s.to_string()
        }
    });
    let (texts, ok) = inputs(sh, "awk", &operands, io);
    let mut nr = 0;
    for (_, text) in texts {
        for line in lines(&text) {
            nr += 1;
            let fields: Vec<&str> = match &sep {
                Some(s) if !s.is_empty() && s != " " => line.split(s.as_str()).collect(),
                _ => line.split_whitespace().collect(),
            };
            let field = |i: usize| -> String {
                if i == 0 {
                    line.to_string()
                } else {
                    fields.get(i - 1).map(|s| s.to_string()).unwrap_or_default()
                }
            };
            let matched = match &pattern {
                AwkPattern::All => true,
                AwkPattern::Re(re) => re.is_match(line),
                AwkPattern::NrEq(n) => nr == *n,
                AwkPattern::FieldEq(i, v) => field(*i) == *v,
            };
            if !matched {
                continue;
            }
            match &prints {
                None => io.outln(line),
                Some(prints) => {
                    for items in prints {
                        let text: String = items
                            .iter()
                            .map(|it| match it {
                                AwkItem::Field(Some(i)) => field(*i),
                                AwkItem::Field(None) => field(fields.len()),
                                AwkItem::Str(s) => s.clone(),
                                AwkItem::Nr => nr.to_string(),
                                AwkItem::Nf => fields.len().to_string(),
                            })
                            .collect();
                        io.outln(text);
                    }
                }
            }
        }
    }
    if ok {
        0
    } else {
        2
    }
}

pub fn head_tail(sh: &Shell, args: &[String], io: &Io, head: bool) -> i32 {
    let tool = if head { "head" } else { "tail" };
    // `-5` is `-n 5`.
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix('-') {
            Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => format!("-n{n}"),
            _ => a.clone(),
        })
        .collect();
    let o = match getopt(&args, "nc", &["lines"]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("{tool}: {e}"));
            return 1;
        }
    };
    let spec = o
        .value('n')
        .or(o.long_value("lines"))
        .unwrap_or("10")
        .to_string();
    let from_start = !head && spec.starts_with('+');
    let Ok(n) = spec.trim_start_matches(['+', '-']).parse::<usize>() else {
        io.errln(format!("{tool}: invalid number of lines: '{spec}'"));
        return 1;
    };
    let (texts, ok) = inputs(sh, tool, &o.args, io);
    let many = texts.len() > 1;
    for (i, (name, text)) in texts.iter().enumerate() {
        if many {
            if i > 0 {
                io.outln("");
            }
            io.outln(format!("==> {name} <=="));
        }
        let all = lines(text);
        let chosen: &[&str] = if head {
            &all[..n.min(all.len())]
        } else if from_start {
            &all[n.saturating_sub(1).min(all.len())..]
        } else {
            &all[all.len().saturating_sub(n)..]
        };
        for l in chosen {
            io.outln(l);
        }
    }
    if ok {
        0
    } else {
        1
    }
}

pub fn wc(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "", &[]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("wc: {e}"));
            return 1;
        }
    };
    let (texts, ok) = inputs(sh, "wc", &o.args, io);
    let only = o.has('l') || o.has('w') || o.has('c') || o.has('m');
    let mut totals = (0, 0, 0);
    let stdin = o.args.is_empty();
    for (name, text) in &texts {
        let counts = (
            text.matches('\n').count(),
            text.split_whitespace().count(),
            text.len(),
        );
        totals = (
            totals.0 + counts.0,
            totals.1 + counts.1,
            totals.2 + counts.2,
        );
        let mut cols = Vec::new();
        if !only || o.has('l') {
            cols.push(counts.0);
        }
        if !only || o.has('w') {
            cols.push(counts.1);
        }
        if !only || o.has('c') || o.has('m') {
            cols.push(counts.2);
        }
        let nums: Vec<String> = if cols.len() == 1 && stdin {
            cols.iter().map(|c| c.to_string()).collect()
        } else {
            cols.iter().map(|c| format!("{c:>7}")).collect()
        };
        let line = nums.join(" ");
        io.outln(if stdin {
            line
        } else {
            format!("{line} {name}")
        });
    }
    if texts.len() > 1 {
        io.outln(format!(
            "{:>7} {:>7} {:>7} total",
            totals.0, totals.1, totals.2
        ));
    }
    if ok {
        0
    } else {
        1
    }
}

/// `1,3-5,7-` as a predicate on 1-based positions.
fn ranges(spec: &str) -> Option<Vec<(usize, usize)>> {
    spec.split(',')
        .map(|part| {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let a = if a.is_empty() { 1 } else { a.parse().ok()? };
            let b = if b.is_empty() {
                usize::MAX
            } else {
                b.parse().ok()?
            };
            Some((a, b))
        })
        .collect()
}

pub fn cut(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "dfc", &["delimiter", "fields"]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("cut: {e}"));
            return 1;
        }
    };
    let delim = o.value('d').unwrap_or("\t").to_string();
    let (spec, by_char) = match (o.value('f'), o.value('c')) {
        (Some(f), _) => (f, false),
        (None, Some(c)) => (c, true),
        _ => {
            io.errln("cut: you must specify a list of bytes, characters, or fields");
            return 1;
        }
    };
    let Some(list) = ranges(spec) else {
        io.errln(format!("cut: invalid field value '{spec}'"));
        return 1;
    };
    let keep = |i: usize| list.iter().any(|(a, b)| *a <= i && i <= *b);
    let (texts, ok) = inputs(sh, "cut", &o.args, io);
    for (_, text) in texts {
        for line in lines(&text) {
            if by_char {
                io.outln(
                    line.chars()
                        .enumerate()
                        .filter(|(i, _)| keep(i + 1))
                        .map(|(_, c)| c)
                        .collect::<String>(),
                );
            } else if !line.contains(delim.as_str()) {
                io.outln(line);
            } else {
                let parts: Vec<&str> = line
                    .split(delim.as_str())
                    .enumerate()
                    .filter(|(i, _)| keep(i + 1))
                    .map(|(_, p)| p)
                    .collect();
                io.outln(parts.join(&delim));
            }
        }
    }
    if ok {
        0
    } else {
        1
    }
}

pub fn sort(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = match getopt(args, "ktT", &[]) {
        Ok(o) => o,
        Err(e) => {
            io.errln(format!("sort: {e}"));
            return 2;
        }
    };
    let (texts, ok) = inputs(sh, "sort", &o.args, io);
    let key = o
        .value('k')
        .and_then(|k| k.split(',').next()?.parse::<usize>().ok());
    let mut all: Vec<String> = texts
        .iter()
        .flat_map(|(_, t)| lines(t).into_iter().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let field = |l: &String| -> String {
        match key {
            Some(k) => l
                .split_whitespace()
                .nth(k.saturating_sub(1))
                .unwrap_or("")
                .to_string(),
            None => l.clone(),
        }
    };
    if o.has('n') {
        all.sort_by(|a, b| {
            let num = |s: &str| {
                s.trim()
                    .split(|c: char| !c.is_ascii_digit() && c != '.' && c != '-')
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            num(&field(a)).total_cmp(&num(&field(b)))
        });
    } else {
        all.sort_by_key(|a| field(a));
    }
    if o.has('r') {
        all.reverse();
    }
    if o.has('u') {
        all.dedup();
    }
    for l in all {
        io.outln(l);
    }
    if ok {
        0
    } else {
        2
    }
}

pub fn uniq(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = getopt(args, "", &[]).unwrap_or_default();
    let (texts, ok) = inputs(sh, "uniq", &o.args, io);
    let mut groups: Vec<(String, usize)> = Vec::new();
    for (_, t) in &texts {
        for l in lines(t) {
            match groups.last_mut() {
                Some((last, n)) if last == l => *n += 1,
                _ => groups.push((l.to_string(), 1)),
            }
        }
    }
    for (l, n) in groups {
        if o.has('d') && n < 2 || o.has('u') && n > 1 {
            continue;
        }
        if o.has('c') {
            io.outln(format!("{n:>7} {l}"));
        } else {
            io.outln(l);
        }
    }
    if ok {
        0
    } else {
        1
    }
}

pub fn tee(sh: &Shell, args: &[String], io: &Io) -> i32 {
    let o = getopt(args, "", &[]).unwrap_or_default();
    let mut status = 0;
    for f in &o.args {
        let p = sh.path(f);
        if let Err(e) = sh.with_fs(|fs| fs.write(&p, &io.stdin, o.has('a'))) {
            io.errln(format!("tee: {f}: {e}"));
            status = 1;
        }
    }
    io.out.write(&io.stdin);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_regular_expressions_are_translated() {
        assert_eq!(bre_to_ere("^file://"), "^file://");
        assert_eq!(bre_to_ere("a\\(b\\)*c"), "a(b)*c");
        assert_eq!(bre_to_ere("x|y"), "x\\|y");
        assert_eq!(bre_to_ere("*star"), "\\*star");
        assert_eq!(bre_to_ere("[a-z]\\+"), "[a-z]+");
        assert!(Regex::new(&bre_to_ere("a\\.b")).unwrap().is_match("a.b"));
    }

    #[test]
    fn sed_scripts_parse() {
        let cmds = parse_sed("s#^file://##p", false).unwrap();
        assert_eq!(cmds.len(), 1);
        assert!(parse_sed("s/a/b/g; /x/d; 3p; $q", false).unwrap().len() == 4);
        assert!(parse_sed("y/a/b/", false).is_err());
        assert!(parse_sed("s/a/b", false).is_err());
    }

    #[test]
    fn awk_programs_parse() {
        assert!(parse_awk("{print $2}").is_ok());
        assert!(parse_awk("/UUID/ {print $3, $NF}").is_ok());
        assert!(parse_awk("NR==2").is_ok());
        assert!(parse_awk("{ system(\"x\") }").is_err());
        assert!(parse_awk("}{").is_err());
    }
}
