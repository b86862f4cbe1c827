//! Terminal colours in command output, turned into styled spans. Only SGR
//! sequences (colours, bold) are understood; every other escape sequence is
//! dropped. The text itself is always shown as text, never as HTML.

/// A run of text with one style.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    /// CSS classes: `ansi-fg-N` (0–15), `ansi-bg-N`, `ansi-bold`.
    pub classes: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Style {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
}

impl Style {
    fn classes(self) -> String {
        let mut c = Vec::new();
        if let Some(f) = self.fg {
            c.push(format!("ansi-fg-{f}"));
        }
        if let Some(b) = self.bg {
            c.push(format!("ansi-bg-{b}"));
        }
        if self.bold {
            c.push("ansi-bold".to_string());
        }
        c.join(" ")
    }

    fn apply(&mut self, params: &str) {
        let codes: Vec<u16> = if params.is_empty() {
            vec![0]
        } else {
            params
                .split(';')
                .map(|p| p.parse::<u16>().unwrap_or(0))
                .collect()
        };
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                c @ 30..=37 => self.fg = Some((c - 30) as u8),
                39 => self.fg = None,
                c @ 40..=47 => self.bg = Some((c - 40) as u8),
                49 => self.bg = None,
                c @ 90..=97 => self.fg = Some((c - 90 + 8) as u8),
                c @ 100..=107 => self.bg = Some((c - 100 + 8) as u8),
                // 256-colour and true-colour forms: skip their arguments.
                38 | 48 => {
                    i += match codes.get(i + 1) {
                        Some(5) => 2,
                        Some(2) => 4,
                        _ => 0,
                    };
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// Splits `text` into styled spans.
pub fn spans(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut style = Style::default();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let flush = |out: &mut Vec<Span>, current: &mut String, style: Style| {
        if !current.is_empty() {
            out.push(Span {
                text: std::mem::take(current),
                classes: style.classes(),
            });
        }
    };
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            // Carriage returns of progress bars would pile up as text; keep lines.
            if c != '\r' || chars.peek() == Some(&'\n') {
                current.push(c);
            }
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                let mut params = String::new();
                let mut last = None;
                for p in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&p) {
                        last = Some(p);
                        break;
                    }
                    params.push(p);
                }
                if last == Some('m') {
                    flush(&mut out, &mut current, style);
                    style.apply(&params);
                }
            }
            // OSC (window titles, links): up to BEL or ST.
            Some(']') => {
                chars.next();
                while let Some(p) = chars.next() {
                    if p == '\u{7}' || (p == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    flush(&mut out, &mut current, style);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_become_classes_and_reset() {
        let s = spans("ok \u{1b}[1;32mPASS\u{1b}[0m done");
        assert_eq!(
            s,
            vec![
                Span {
                    text: "ok ".into(),
                    classes: "".into()
                },
                Span {
                    text: "PASS".into(),
                    classes: "ansi-fg-2 ansi-bold".into()
                },
                Span {
                    text: " done".into(),
                    classes: "".into()
                },
            ]
        );
    }

    #[test]
    fn bright_colours_and_extended_forms() {
        let s = spans("\u{1b}[91mX\u{1b}[38;5;200mY\u{1b}[39mZ");
        assert_eq!(s[0].classes, "ansi-fg-9");
        // The 256-colour form is not mapped, and its arguments are not read as codes.
        assert_eq!(s[1].classes, "ansi-fg-9");
        assert_eq!(s[2].classes, "");
    }

    #[test]
    fn other_sequences_are_dropped_and_markup_stays_text() {
        let s = spans("\u{1b}]0;title\u{7}\u{1b}[2K<b>x</b>\r\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "<b>x</b>\r\n");
    }

    #[test]
    fn a_cut_sequence_does_not_panic() {
        assert_eq!(
            spans("a\u{1b}[3"),
            vec![Span {
                text: "a".into(),
                classes: "".into()
            }]
        );
        assert_eq!(spans("\u{1b}"), vec![]);
    }
}
