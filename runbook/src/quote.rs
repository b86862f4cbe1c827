//! POSIX shell quoting of values inserted into commands.

/// Characters that never need quoting in a POSIX shell word.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '/' | ':' | '=' | '@' | '%' | '+' | ',')
}

/// Quotes `value` as one shell word: unchanged when it holds only safe characters,
/// otherwise in single quotes, with each `'` written as `'\''`. The empty string
/// becomes `''`, so it still counts as an argument.
pub fn shell_quote(value: &str) -> String {
    if !value.is_empty() && value.chars().all(is_safe) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn safe_words_stay_as_they_are() {
        assert_eq!(
            shell_quote("/var/tmp/backup_2026-11-27.tar.gz"),
            "/var/tmp/backup_2026-11-27.tar.gz"
        );
        assert_eq!(shell_quote("sessionmgr01:27718"), "sessionmgr01:27718");
    }

    #[test]
    fn anything_else_is_single_quoted() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell_quote("x; rm -rf /"), "'x; rm -rf /'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("line\nbreak"), "'line\nbreak'");
        assert_eq!(shell_quote("`id`"), "'`id`'");
        assert_eq!(shell_quote("*"), "'*'");
    }
}
