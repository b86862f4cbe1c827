//! Command templates: text with `{{ name }}` insertions of parameters and captured
//! values.
//!
//! In a shell command every insertion is shell-quoted ([`crate::quote`]) unless the
//! runbook marks it `{{ name | raw }}`, which a reviewer can see in the file. In
//! other places (paths of transfers, OpenStack arguments) no shell is involved and
//! values are inserted as they are; `raw` is refused there because it means nothing.
//! `{{{{` writes a literal `{{`.

use crate::quote::shell_quote;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var { name: String, raw: bool },
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// Where a template is used, which decides how values are inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// A command run by a shell: values are quoted unless marked `raw`.
    Shell,
    /// Anything else: values inserted as they are.
    Plain,
}

/// Why a template could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` at byte {0} is not closed by `}}}}`")]
    Unclosed(usize),
    #[error("empty insertion `{{{{}}}}` at byte {0}")]
    Empty(usize),
    #[error(
        "`{0}` is not a valid name to insert (letters, digits and `_`, starting with a letter)"
    )]
    BadName(String),
    #[error("unknown filter `{0}` (the only filter is `raw`)")]
    UnknownFilter(String),
    #[error("`raw` only applies to shell commands; here values are never quoted")]
    RawOutsideShell,
}

/// A value a template needs was not available.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no value for `{0}`")]
pub struct Undefined(pub String);

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parses a template used in `context`.
    pub fn parse(source: &str, context: Context) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            if let Some(stripped) = after.strip_prefix("{{") {
                // `{{{{` is a literal `{{`.
                text.push_str("{{");
                offset += start + 4;
                rest = stripped;
                continue;
            }
            let Some(end) = after.find("}}") else {
                return Err(TemplateError::Unclosed(offset + start));
            };
            let inner = after[..end].trim();
            if inner.is_empty() {
                return Err(TemplateError::Empty(offset + start));
            }
            let (name, raw) = match inner.split_once('|') {
                Some((name, filter)) => match filter.trim() {
                    "raw" => (name.trim(), true),
                    other => return Err(TemplateError::UnknownFilter(other.to_string())),
                },
                None => (inner, false),
            };
            if !valid_name(name) {
                return Err(TemplateError::BadName(name.to_string()));
            }
            if raw && context == Context::Plain {
                return Err(TemplateError::RawOutsideShell);
            }
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            segments.push(Segment::Var {
                name: name.to_string(),
                raw,
            });
            offset += start + 2 + end + 2;
            rest = &after[end + 2..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Self {
            source: source.to_string(),
            segments,
        })
    }

    /// The names the template inserts, with whether each is `raw`.
    pub fn variables(&self) -> impl Iterator<Item = (&str, bool)> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var { name, raw } => Some((name.as_str(), *raw)),
            Segment::Text(_) => None,
        })
    }

    /// If the whole template is one insertion, its name (a host given by a parameter).
    pub fn single_variable(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [Segment::Var { name, .. }] => Some(name),
            _ => None,
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders with values from `lookup`; in [`Context::Shell`] each value is
    /// quoted unless marked `raw`. Never executes anything.
    pub fn render<'a>(
        &self,
        context: Context,
        lookup: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, Undefined> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Var { name, raw } => {
                    let value = lookup(name).ok_or_else(|| Undefined(name.clone()))?;
                    if context == Context::Shell && !raw {
                        out.push_str(&shell_quote(value));
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn renders_quoted_by_default_and_raw_when_marked() {
        let t = Template::parse(
            "config_br.py -a export --all {{ file }} {{opts|raw}}",
            Context::Shell,
        )
        .unwrap();
        let v = vars(&[
            ("file", "/var/tmp/site a.tgz"),
            ("opts", "--mongo-all --users"),
        ]);
        assert_eq!(
            t.render(Context::Shell, |n| v.get(n).copied()).unwrap(),
            "config_br.py -a export --all '/var/tmp/site a.tgz' --mongo-all --users"
        );
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            [("file", false), ("opts", true)]
        );
    }

    #[test]
    fn an_injection_stays_one_argument() {
        let t = Template::parse("crontab -l -u {{user}}", Context::Shell).unwrap();
        let v = vars(&[("user", "root; rm -rf /")]);
        assert_eq!(
            t.render(Context::Shell, |n| v.get(n).copied()).unwrap(),
            "crontab -l -u 'root; rm -rf /'"
        );
    }

    #[test]
    fn plain_context_inserts_as_is_and_refuses_raw() {
        let t = Template::parse("backups/{{site}} {{date}}.tgz", Context::Plain).unwrap();
        let v = vars(&[("site", "x y"), ("date", "2026-11-27")]);
        assert_eq!(
            t.render(Context::Plain, |n| v.get(n).copied()).unwrap(),
            "backups/x y 2026-11-27.tgz"
        );
        assert_eq!(
            Template::parse("{{a|raw}}", Context::Plain),
            Err(TemplateError::RawOutsideShell)
        );
    }

    #[test]
    fn literal_braces_and_errors() {
        let t = Template::parse("echo {{{{not a var}}", Context::Shell).unwrap();
        assert_eq!(
            t.render(Context::Shell, |_| None).unwrap(),
            "echo {{not a var}}"
        );
        assert_eq!(
            Template::parse("echo {{ x", Context::Shell),
            Err(TemplateError::Unclosed(5))
        );
        assert_eq!(
            Template::parse("echo {{ }}", Context::Shell),
            Err(TemplateError::Empty(5))
        );
        assert_eq!(
            Template::parse("{{1x}}", Context::Shell),
            Err(TemplateError::BadName("1x".into()))
        );
        assert_eq!(
            Template::parse("{{x|upper}}", Context::Shell),
            Err(TemplateError::UnknownFilter("upper".into()))
        );
    }

    #[test]
    fn a_missing_value_is_an_error_not_an_empty_string() {
        let t = Template::parse("rm {{path}}", Context::Shell).unwrap();
        assert_eq!(
            t.render(Context::Shell, |_| None),
            Err(Undefined("path".into()))
        );
    }

    #[test]
    fn single_variable_templates_name_their_variable() {
        assert_eq!(
            Template::parse("{{ vm }}", Context::Plain)
                .unwrap()
                .single_variable(),
            Some("vm")
        );
        assert_eq!(
            Template::parse("x{{vm}}", Context::Plain)
                .unwrap()
                .single_variable(),
            None
        );
    }
}
