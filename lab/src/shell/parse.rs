//! Parsing a POSIX-shell subset into a syntax tree: words with single and double
//! quotes and backslashes, `$VAR`/`${VAR}`/`$?`, `$(...)` and backquotes, `;`,
//! newlines, `&&`, `||`, `|`, `!`, `{ ...; }`, `( ... )`, redirections (`>`,
//! `>>`, `<`, `2>`, `2>&1`, `>&2`, `&>`) and `NAME=value` assignments. That is
//! what the runbooks and an operator at a prompt use; anything else (here
//! documents, `if`, `for`) is refused with a message rather than misread.

use std::fmt;

/// A list of commands run one after the other.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script(pub Vec<AndOr>);

/// Pipelines joined by `&&` and `||`.
#[derive(Clone, Debug, PartialEq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
}

/// `&&` or `||`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    And,
    Or,
}

/// Commands joined by `|`, optionally negated with `!`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub negate: bool,
    pub commands: Vec<Command>,
}

/// One command of a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Simple(Simple),
    /// `{ list; }`
    Group(Script, Vec<Redir>),
    /// `( list )`
    Subshell(Script, Vec<Redir>),
}

/// `NAME=value ... word ... [redirections]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Simple {
    pub assigns: Vec<(String, Word)>,
    pub words: Vec<Word>,
    pub redirs: Vec<Redir>,
}

/// A redirection of file descriptor `fd`.
#[derive(Clone, Debug, PartialEq)]
pub struct Redir {
    pub fd: u32,
    pub op: RedirOp,
}

/// What a redirection does.
#[derive(Clone, Debug, PartialEq)]
pub enum RedirOp {
    /// `> file`
    Write(Word),
    /// `>> file`
    Append(Word),
    /// `< file`
    Read(Word),
    /// `>&N`
    Dup(u32),
    /// `>&-`
    Close,
}

/// A word before expansion: literal, quoted and substituted parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Word(pub Vec<Seg>);

/// A part of a word.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Lit { text: String, quoted: bool },
    Var { name: String, quoted: bool },
    Cmd { script: Script, quoted: bool },
}

impl Word {
    /// The word's text if it has no substitutions, with whether any of it was quoted.
    pub fn literal(&self) -> Option<(String, bool)> {
        let mut s = String::new();
        let mut quoted = false;
        for seg in &self.0 {
            match seg {
                Seg::Lit { text, quoted: q } => {
                    s.push_str(text);
                    quoted |= q;
                }
                _ => return None,
            }
        }
        Some((s, quoted))
    }

    fn is_reserved(&self, word: &str) -> bool {
        matches!(self.literal(), Some((s, false)) if s == word)
    }
}

/// A syntax error, worded like dash's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(Word),
    /// `;` `&` `&&` `||` `|` `(` `)` and newline.
    Op(&'static str),
    Redir(u32, &'static str),
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    _src: &'a str,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            chars: src.chars().collect(),
            pos: 0,
            _src: src,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn tokens(mut self) -> Result<Vec<Tok>, ParseError> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
                self.pos += 1;
            }
            let Some(c) = self.peek() else { break };
            match c {
                '#' => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                '\n' => {
                    self.pos += 1;
                    out.push(Tok::Op("\n"));
                }
                ';' => {
                    self.pos += 1;
                    if self.peek() == Some(';') {
                        return Err(ParseError("Syntax error: \";;\" unexpected".to_string()));
                    }
                    out.push(Tok::Op(";"));
                }
                '&' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('&') => {
                            self.pos += 1;
                            out.push(Tok::Op("&&"));
                        }
                        Some('>') => {
                            self.pos += 1;
                            out.push(Tok::Redir(1, "&>"));
                        }
                        _ => out.push(Tok::Op("&")),
                    }
                }
                '|' => {
                    self.pos += 1;
                    if self.peek() == Some('|') {
                        self.pos += 1;
                        out.push(Tok::Op("||"));
                    } else {
                        out.push(Tok::Op("|"));
                    }
                }
                '(' => {
                    self.pos += 1;
                    out.push(Tok::Op("("));
                }
                ')' => {
                    self.pos += 1;
                    out.push(Tok::Op(")"));
                }
                '<' | '>' => out.push(self.redir(None)?),
                _ => {
                    // An IO number: digits directly followed by < or >.
                    let mut n = 0;
                    while self.peek_at(n).is_some_and(|c| c.is_ascii_digit()) {
                        n += 1;
                    }
                    if n > 0 && matches!(self.peek_at(n), Some('<' | '>')) {
                        let digits: String = self.chars[self.pos..self.pos + n].iter().collect();
                        self.pos += n;
                        let fd = digits.parse().map_err(|_| {
                            ParseError(format!("Syntax error: bad fd number {digits}"))
                        })?;
                        out.push(self.redir(Some(fd))?);
                    } else {
                        out.push(Tok::Word(self.word()?));
                    }
                }
            }
        }
        Ok(out)
    }

    fn redir(&mut self, fd: Option<u32>) -> Result<Tok, ParseError> {
        let c = self.peek().unwrap_or('>');
        self.pos += 1;
        let op = match (c, self.peek()) {
            ('>', Some('>')) => {
                self.pos += 1;
                ">>"
            }
            ('>', Some('&')) => {
                self.pos += 1;
                ">&"
            }
            ('>', Some('|')) => {
                self.pos += 1;
                ">"
            }
            ('<', Some('<')) => {
                return Err(ParseError(
                    "here-documents (<<) are not supported by this shell".to_string(),
                ))
            }
            ('<', Some('&')) => {
                self.pos += 1;
                "<&"
            }
            ('>', _) => ">",
            _ => "<",
        };
        let default_fd = if op.starts_with('<') { 0 } else { 1 };
        Ok(Tok::Redir(fd.unwrap_or(default_fd), op))
    }

    /// Reads up to the matching `)` of a `$(`, honouring quotes and nesting.
    fn command_substitution(&mut self) -> Result<Script, ParseError> {
        let start = self.pos;
        let mut depth = 1;
        while let Some(c) = self.peek() {
            match c {
                '\\' => self.pos += 2,
                '\'' => {
                    self.pos += 1;
                    while !matches!(self.peek(), None | Some('\'')) {
                        self.pos += 1;
                    }
                    self.pos += 1;
                }
                '"' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        if c == '\\' {
                            self.pos += 2;
                        } else if c == '"' {
                            break;
                        } else {
                            self.pos += 1;
                        }
                    }
                    self.pos += 1;
                }
                '(' => {
                    depth += 1;
                    self.pos += 1;
                }
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        let inner: String = self.chars[start..self.pos].iter().collect();
                        self.pos += 1;
                        return parse(&inner);
                    }
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
        Err(ParseError(
            "Syntax error: end of file unexpected (expecting \")\")".to_string(),
        ))
    }

    fn backquote(&mut self) -> Result<Script, ParseError> {
        let mut inner = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '`' => return parse(&inner),
                '\\' => {
                    if let Some(n) = self.peek() {
                        self.pos += 1;
                        if !matches!(n, '`' | '\\' | '$') {
                            inner.push('\\');
                        }
                        inner.push(n);
                    }
                }
                c => inner.push(c),
            }
        }
        Err(ParseError(
            "Syntax error: EOF in backquote substitution".to_string(),
        ))
    }

    /// `$...` after the `$` has been consumed.
    fn dollar(&mut self, quoted: bool) -> Result<Seg, ParseError> {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                if self.peek() == Some('(') {
                    return Err(ParseError(
                        "arithmetic expansion $(( )) is not supported by this shell".to_string(),
                    ));
                }
                Ok(Seg::Cmd {
                    script: self.command_substitution()?,
                    quoted,
                })
            }
            Some('{') => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == '}' {
                        if name.is_empty() || !name.chars().all(is_name_char) && name != "?" {
                            return Err(ParseError(format!("${{{name}}}: Bad substitution")));
                        }
                        return Ok(Seg::Var { name, quoted });
                    }
                    name.push(c);
                }
                Err(ParseError("Syntax error: Missing '}'".to_string()))
            }
            Some(c) if matches!(c, '?' | '$' | '#' | '!' | '@' | '*') || c.is_ascii_digit() => {
                self.pos += 1;
                Ok(Seg::Var {
                    name: c.to_string(),
                    quoted,
                })
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
                Ok(Seg::Var { name, quoted })
            }
            _ => Ok(Seg::Lit {
                text: "$".to_string(),
                quoted,
            }),
        }
    }

    fn word(&mut self) -> Result<Word, ParseError> {
        let mut segs: Vec<Seg> = Vec::new();
        let mut lit = String::new();
        let mut lit_quoted = false;
        // Flushes the pending literal when its quoting changes.
        fn flush(segs: &mut Vec<Seg>, lit: &mut String, quoted: bool) {
            if !lit.is_empty() {
                segs.push(Seg::Lit {
                    text: std::mem::take(lit),
                    quoted,
                });
            }
        }
        let push =
            |segs: &mut Vec<Seg>, lit: &mut String, lit_quoted: &mut bool, c: char, q: bool| {
                if *lit_quoted != q {
                    flush(segs, lit, *lit_quoted);
                    *lit_quoted = q;
                }
                lit.push(c);
            };
        let mut any_quote = false;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\'' => {
                    self.pos += 1;
                    any_quote = true;
                    let mut closed = false;
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == '\'' {
                            closed = true;
                            break;
                        }
                        push(&mut segs, &mut lit, &mut lit_quoted, c, true);
                    }
                    if !closed {
                        return Err(ParseError(
                            "Syntax error: Unterminated quoted string".to_string(),
                        ));
                    }
                }
                '"' => {
                    self.pos += 1;
                    any_quote = true;
                    let mut closed = false;
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' => match self.peek() {
                                Some(n @ ('$' | '`' | '"' | '\\')) => {
                                    self.pos += 1;
                                    push(&mut segs, &mut lit, &mut lit_quoted, n, true);
                                }
                                Some('\n') => self.pos += 1,
                                _ => push(&mut segs, &mut lit, &mut lit_quoted, '\\', true),
                            },
                            '$' => {
                                flush(&mut segs, &mut lit, lit_quoted);
                                segs.push(self.dollar(true)?);
                            }
                            '`' => {
                                flush(&mut segs, &mut lit, lit_quoted);
                                segs.push(Seg::Cmd {
                                    script: self.backquote()?,
                                    quoted: true,
                                });
                            }
                            c => push(&mut segs, &mut lit, &mut lit_quoted, c, true),
                        }
                    }
                    if !closed {
                        return Err(ParseError(
                            "Syntax error: Unterminated quoted string".to_string(),
                        ));
                    }
                }
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(n) => {
                            self.pos += 1;
                            push(&mut segs, &mut lit, &mut lit_quoted, n, true);
                        }
                        None => push(&mut segs, &mut lit, &mut lit_quoted, '\\', false),
                    }
                }
                '$' => {
                    self.pos += 1;
                    flush(&mut segs, &mut lit, lit_quoted);
                    segs.push(self.dollar(false)?);
                }
                '`' => {
                    self.pos += 1;
                    flush(&mut segs, &mut lit, lit_quoted);
                    segs.push(Seg::Cmd {
                        script: self.backquote()?,
                        quoted: false,
                    });
                }
                c => {
                    self.pos += 1;
                    push(&mut segs, &mut lit, &mut lit_quoted, c, false);
                }
            }
        }
        flush(&mut segs, &mut lit, lit_quoted);
        if segs.is_empty() && any_quote {
            // '' is an empty argument, not nothing.
            segs.push(Seg::Lit {
                text: String::new(),
                quoted: true,
            });
        }
        Ok(Word(segs))
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "end of file".to_string(),
        Some(Tok::Op("\n")) => "newline".to_string(),
        Some(Tok::Op(o)) => format!("\"{o}\""),
        Some(Tok::Redir(_, o)) => format!("\"{o}\""),
        Some(Tok::Word(w)) => format!("\"{}\"", w.literal().map(|l| l.0).unwrap_or_default()),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn unexpected(&self) -> ParseError {
        ParseError(format!(
            "Syntax error: {} unexpected",
            describe(self.peek())
        ))
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Op("\n")) {
            self.pos += 1;
        }
    }

    fn at_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(word)) if word.is_reserved(w))
    }

    /// A list, up to the end or a closing `)`/`}`.
    fn list(&mut self, closer: Option<&str>) -> Result<Script, ParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            match self.peek() {
                None => break,
                Some(Tok::Op(")")) if closer == Some(")") => break,
                Some(Tok::Op(";")) => return Err(self.unexpected()),
                _ if closer == Some("}") && self.at_word("}") => break,
                _ => {}
            }
            items.push(self.and_or()?);
            match self.peek() {
                Some(Tok::Op(";" | "&" | "\n")) => self.pos += 1,
                None => break,
                Some(Tok::Op(")")) if closer == Some(")") => break,
                _ if closer == Some("}") && self.at_word("}") => break,
                _ => return Err(self.unexpected()),
            }
        }
        Ok(Script(items))
    }

    fn and_or(&mut self) -> Result<AndOr, ParseError> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let conn = match self.peek() {
                Some(Tok::Op("&&")) => Connector::And,
                Some(Tok::Op("||")) => Connector::Or,
                _ => break,
            };
            self.pos += 1;
            self.skip_newlines();
            rest.push((conn, self.pipeline()?));
        }
        Ok(AndOr { first, rest })
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut negate = false;
        if self.at_word("!") {
            negate = true;
            self.pos += 1;
        }
        let mut commands = vec![self.command()?];
        while self.peek() == Some(&Tok::Op("|")) {
            self.pos += 1;
            self.skip_newlines();
            commands.push(self.command()?);
        }
        Ok(Pipeline { negate, commands })
    }

    fn redirs(&mut self, out: &mut Vec<Redir>) -> Result<bool, ParseError> {
        let Some(Tok::Redir(fd, op)) = self.peek().cloned() else {
            return Ok(false);
        };
        self.pos += 1;
        let target = match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                w
            }
            _ => return Err(self.unexpected()),
        };
        let redir_op = match op {
            ">" => RedirOp::Write(target),
            ">>" => RedirOp::Append(target),
            "<" => RedirOp::Read(target),
            ">&" | "<&" => match target.literal() {
                Some((t, _)) if t == "-" => RedirOp::Close,
                Some((t, _)) if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() => {
                    RedirOp::Dup(
                        t.parse()
                            .map_err(|_| ParseError(format!("Syntax error: Bad fd number {t}")))?,
                    )
                }
                // `>&file` is bash for `&>file`.
                _ if op == ">&" => {
                    out.push(Redir {
                        fd: 1,
                        op: RedirOp::Write(target),
                    });
                    out.push(Redir {
                        fd: 2,
                        op: RedirOp::Dup(1),
                    });
                    return Ok(true);
                }
                _ => return Err(ParseError("Syntax error: Bad fd number".to_string())),
            },
            "&>" => {
                out.push(Redir {
                    fd: 1,
                    op: RedirOp::Write(target),
                });
                out.push(Redir {
                    fd: 2,
                    op: RedirOp::Dup(1),
                });
                return Ok(true);
            }
            _ => return Err(self.unexpected()),
        };
        out.push(Redir { fd, op: redir_op });
        Ok(true)
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        if self.peek() == Some(&Tok::Op("(")) {
            self.pos += 1;
            let body = self.list(Some(")"))?;
            if self.peek() != Some(&Tok::Op(")")) {
                return Err(self.unexpected());
            }
            self.pos += 1;
            let mut redirs = Vec::new();
            while self.redirs(&mut redirs)? {}
            return Ok(Command::Subshell(body, redirs));
        }
        if self.at_word("{") {
            self.pos += 1;
            let body = self.list(Some("}"))?;
            if !self.at_word("}") {
                return Err(ParseError(
                    "Syntax error: end of file unexpected (expecting \"}\")".to_string(),
                ));
            }
            self.pos += 1;
            let mut redirs = Vec::new();
            while self.redirs(&mut redirs)? {}
            return Ok(Command::Group(body, redirs));
        }
        for reserved in [
            "if", "then", "fi", "for", "while", "until", "do", "done", "case", "esac",
        ] {
            if self.at_word(reserved) {
                return Err(ParseError(format!(
                    "\"{reserved}\" (compound commands) is not supported by this shell"
                )));
            }
        }
        let mut simple = Simple::default();
        loop {
            if self.redirs(&mut simple.redirs)? {
                continue;
            }
            match self.peek().cloned() {
                Some(Tok::Word(w)) => {
                    self.pos += 1;
                    if simple.words.is_empty() {
                        if let Some((name, value)) = split_assignment(&w) {
                            simple.assigns.push((name, value));
                            continue;
                        }
                    }
                    simple.words.push(w);
                }
                _ => break,
            }
        }
        if simple.words.is_empty() && simple.assigns.is_empty() && simple.redirs.is_empty() {
            return Err(self.unexpected());
        }
        Ok(Command::Simple(simple))
    }
}

/// `NAME=value` with an unquoted name.
fn split_assignment(w: &Word) -> Option<(String, Word)> {
    let Some(Seg::Lit {
        text,
        quoted: false,
    }) = w.0.first()
    else {
        return None;
    };
    let (name, value) = text.split_once('=')?;
    if name.is_empty() || !name.starts_with(is_name_start) || !name.chars().all(is_name_char) {
        return None;
    }
    let mut segs = Vec::new();
    if !value.is_empty() {
        segs.push(Seg::Lit {
            text: value.to_string(),
            quoted: false,
        });
    }
    segs.extend(w.0[1..].iter().cloned());
    Some((name.to_string(), Word(segs)))
}

/// Parses a command line or script.
pub fn parse(src: &str) -> Result<Script, ParseError> {
    let toks = Lexer::new(src).tokens()?;
    let mut p = Parser { toks, pos: 0 };
    let script = p.list(None)?;
    if p.pos < p.toks.len() {
        return Err(p.unexpected());
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Word {
        Word(vec![Seg::Lit {
            text: s.into(),
            quoted: false,
        }])
    }

    fn simple(script: &Script, i: usize) -> &Simple {
        match &script.0[i].first.commands[0] {
            Command::Simple(s) => s,
            other => panic!("not simple: {other:?}"),
        }
    }

    #[test]
    fn the_portal_wrapper_is_one_command_with_a_quoted_script() {
        let s = parse("timeout --signal=TERM --kill-after=10 60 sh -c 'statusall.sh | grep '\\''Not monitored'\\'''").unwrap();
        let cmd = simple(&s, 0);
        assert_eq!(cmd.words.len(), 7);
        let (script, quoted) = cmd.words[6].literal().unwrap();
        assert!(quoted);
        assert_eq!(script, "statusall.sh | grep 'Not monitored'");
    }

    #[test]
    fn lists_pipes_groups_and_redirections() {
        let s =
            parse("mkdir -p /x && { route -n; cat /a/route-*; } > /x/r.txt 2>&1 || echo no; true")
                .unwrap();
        assert_eq!(s.0.len(), 2);
        assert_eq!(s.0[0].rest.len(), 2);
        let Command::Group(body, redirs) = &s.0[0].rest[0].1.commands[0] else {
            panic!()
        };
        assert_eq!(body.0.len(), 2);
        assert_eq!(
            redirs[0],
            Redir {
                fd: 1,
                op: RedirOp::Write(lit("/x/r.txt"))
            }
        );
        assert_eq!(
            redirs[1],
            Redir {
                fd: 2,
                op: RedirOp::Dup(1)
            }
        );
        let p = parse("sed -n 's#^file://##p' f | xargs -r tar -czf a.tgz").unwrap();
        assert_eq!(p.0[0].first.commands.len(), 2);
    }

    #[test]
    fn quotes_and_substitutions() {
        let s = parse(r#"echo "a $HOME b" 'x"y' \$z $(date +%F) "$(echo "in")""#).unwrap();
        let w = &simple(&s, 0).words;
        assert_eq!(w.len(), 6);
        assert!(matches!(&w[1].0[1], Seg::Var { name, quoted: true } if name == "HOME"));
        assert_eq!(w[2].literal().unwrap().0, "x\"y");
        assert_eq!(w[3].literal().unwrap(), ("$z".to_string(), true));
        assert!(matches!(&w[4].0[0], Seg::Cmd { quoted: false, .. }));
        let a = parse("A=1 B='two words' env").unwrap();
        assert_eq!(simple(&a, 0).assigns.len(), 2);
        assert_eq!(parse("echo ''").unwrap().0.len(), 1);
    }

    #[test]
    fn syntax_errors_are_reported() {
        for bad in [
            "echo 'open",
            "echo a &&",
            "| grep x",
            "{ echo",
            "cat <<EOF",
            "if true; then x; fi",
            "echo $(date",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
        assert_eq!(parse("").unwrap(), Script(vec![]));
        assert_eq!(parse("  # only a comment\n").unwrap(), Script(vec![]));
    }
}
