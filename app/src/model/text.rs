//! Free text typed by a person (observations, reasons, justifications,
//! comments) and text from outside (remote output, API messages) made fit to
//! store: PostgreSQL's TEXT and JSONB cannot hold a NUL character, and other
//! control characters only hide or garble what a reader sees.

/// `value` with line ends made `\n`, or why it cannot be accepted: any control
/// character other than tab and line ends is refused, naming it, so the person
/// can remove it (nothing is silently dropped from what they wrote).
pub fn free_text(value: &str) -> Result<String, String> {
    let text = value.replace("\r\n", "\n").replace('\r', "\n");
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n'))
    {
        Some(c) => Err(format!(
            "contains the control character U+{:04X}, which cannot be stored; remove it",
            u32::from(c)
        )),
        None => Ok(text),
    }
}

/// `value` with every NUL replaced by U+FFFD, for text that must be stored as it
/// came (captured values, error messages): the rest is kept.
pub fn without_nul(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        std::borrow::Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_passes_with_its_line_ends_made_plain() {
        assert_eq!(free_text("all green").unwrap(), "all green");
        assert_eq!(free_text("a\r\nb\rc\n\td").unwrap(), "a\nb\nc\n\td");
        assert_eq!(free_text("é ✓ 日本").unwrap(), "é ✓ 日本");
    }

    #[test]
    fn control_characters_are_refused_by_name() {
        assert_eq!(
            free_text("a\u{0}b").unwrap_err(),
            "contains the control character U+0000, which cannot be stored; remove it"
        );
        for bad in ["\u{1}", "\u{8}", "\u{1b}[31m", "\u{7f}", "\u{85}"] {
            assert!(free_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nul_is_replaced_in_text_kept_as_it_came() {
        assert_eq!(without_nul("a\u{0}b"), "a\u{FFFD}b");
        assert!(matches!(without_nul("ab"), std::borrow::Cow::Borrowed(_)));
    }
}
