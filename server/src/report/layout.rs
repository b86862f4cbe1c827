//! Blocks placed on A4 pages: prose wrapped at word boundaries, monospace output
//! wrapped at the column (a continuation mark in the margin, never reflowed),
//! page breaks, and a running header and footer. Pure: the text widths come from
//! a [`Measure`], so layout is tested without fonts.

use super::document::Block;

/// A4 in PDF points.
pub const PAGE_WIDTH: f32 = 595.28;
pub const PAGE_HEIGHT: f32 = 841.89;
const MARGIN_X: f32 = 50.0;
const TOP: f32 = 62.0;
const BOTTOM: f32 = PAGE_HEIGHT - 56.0;
const LABEL_WIDTH: f32 = 118.0;
const BODY_SIZE: f32 = 9.0;
const MONO_SIZE: f32 = 7.6;
const MONO_PAD: f32 = 4.0;

/// The faces the report uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    Regular,
    Bold,
    Mono,
}

/// Colours, chosen to stay readable when printed in black and white.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Ink,
    Muted,
    Good,
    Bad,
    /// The light background of monospace output.
    Shade,
}

/// How wide text is.
pub trait Measure {
    fn width(&self, face: Face, size: f32, text: &str) -> f32;
}

/// Something drawn on a page. `y` is the text's baseline, from the top.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Text {
        x: f32,
        y: f32,
        face: Face,
        size: f32,
        tone: Tone,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        tone: Tone,
    },
    Rule {
        y: f32,
    },
}

/// One laid-out page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
}

impl Page {
    /// The page's text, in drawing order (for tests).
    pub fn text(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Splits `text` into lines no wider than `width`, at spaces where it can and
/// inside a word where a word alone is too wide.
pub fn wrap(m: &dyn Measure, face: Face, size: f32, text: &str, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if m.width(face, size, &candidate) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word wider than the line is broken where it must be.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if m.width(face, size, &piece) > width && piece.chars().count() > 1 {
                    piece.pop();
                    lines.push(std::mem::take(&mut piece));
                    piece.push(c);
                }
            }
            line = piece;
        }
        lines.push(line);
    }
    lines
}

/// Splits a monospace line into pieces of at most `columns` characters.
pub fn wrap_columns(line: &str, columns: usize) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(columns.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

struct Cursor<'a> {
    m: &'a dyn Measure,
    pages: Vec<Page>,
    y: f32,
}

impl Cursor<'_> {
    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Page::default());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Makes room for `height` more, starting a page when this one is full.
    fn room(&mut self, height: f32) {
        if self.pages.is_empty() || self.y + height > BOTTOM {
            self.pages.push(Page::default());
            self.y = TOP;
        }
    }

    fn text(&mut self, x: f32, face: Face, size: f32, tone: Tone, text: String) {
        let y = self.y;
        self.page().items.push(Item::Text {
            x,
            y,
            face,
            size,
            tone,
            text,
        });
    }
}

/// Lays `blocks` out on pages, each with a header naming `title` and a footer
/// with the page number.
pub fn layout(m: &dyn Measure, title: &str, footer: &str, blocks: &[Block]) -> Vec<Page> {
    let width = PAGE_WIDTH - 2.0 * MARGIN_X;
    let mut c = Cursor {
        m,
        pages: Vec::new(),
        y: TOP,
    };
    for block in blocks {
        match block {
            Block::Title(t) => {
                for line in wrap(m, Face::Bold, 16.0, t, width) {
                    c.room(22.0);
                    c.y += 16.0;
                    c.text(MARGIN_X, Face::Bold, 16.0, Tone::Ink, line);
                    c.y += 6.0;
                }
                c.y += 6.0;
            }
            Block::Heading(t) => {
                // A heading never ends a page: keep room for a line after it.
                c.room(40.0);
                c.y += 10.0;
                let y = c.y;
                c.page().items.push(Item::Rule { y });
                for line in wrap(m, Face::Bold, 11.5, t, width) {
                    c.room(16.0);
                    c.y += 14.0;
                    c.text(MARGIN_X, Face::Bold, 11.5, Tone::Ink, line);
                }
                c.y += 5.0;
            }
            Block::Subheading(t) => {
                c.room(30.0);
                c.y += 4.0;
                for line in wrap(m, Face::Bold, 9.5, t, width) {
                    c.room(13.0);
                    c.y += 12.0;
                    c.text(MARGIN_X, Face::Bold, 9.5, Tone::Ink, line);
                }
                c.y += 3.0;
            }
            Block::Field { label, value } => {
                let labels = wrap(m, Face::Bold, BODY_SIZE, label, LABEL_WIDTH - 8.0);
                let values = wrap(m, Face::Regular, BODY_SIZE, value, width - LABEL_WIDTH);
                for i in 0..labels.len().max(values.len()) {
                    c.room(12.0);
                    c.y += 11.5;
                    if let Some(l) = labels.get(i) {
                        c.text(MARGIN_X, Face::Bold, BODY_SIZE, Tone::Muted, l.clone());
                    }
                    if let Some(v) = values.get(i) {
                        c.text(
                            MARGIN_X + LABEL_WIDTH,
                            Face::Regular,
                            BODY_SIZE,
                            Tone::Ink,
                            v.clone(),
                        );
                    }
                }
            }
            Block::Note(t) => {
                c.y += 3.0;
                for line in wrap(m, Face::Regular, 8.0, t, width) {
                    c.room(11.0);
                    c.y += 10.0;
                    c.text(MARGIN_X, Face::Regular, 8.0, Tone::Muted, line);
                }
            }
            Block::Verdict { good, text } => {
                let tone = if *good { Tone::Good } else { Tone::Bad };
                c.y += 2.0;
                for line in wrap(m, Face::Bold, BODY_SIZE, text, width) {
                    c.room(12.0);
                    c.y += 11.5;
                    c.text(MARGIN_X, Face::Bold, BODY_SIZE, tone, line);
                }
            }
            Block::Mono(lines) => mono(&mut c, lines, width),
        }
    }
    if c.pages.is_empty() {
        c.pages.push(Page::default());
    }
    let total = c.pages.len();
    for (i, page) in c.pages.iter_mut().enumerate() {
        let header = [
            Item::Text {
                x: MARGIN_X,
                y: 34.0,
                face: Face::Bold,
                size: 8.0,
                tone: Tone::Muted,
                text: title.to_string(),
            },
            Item::Text {
                x: MARGIN_X,
                y: PAGE_HEIGHT - 30.0,
                face: Face::Regular,
                size: 7.5,
                tone: Tone::Muted,
                text: footer.to_string(),
            },
        ];
        let number = format!("Page {} of {total}", i + 1);
        let number_x = PAGE_WIDTH - MARGIN_X - m.width(Face::Regular, 7.5, &number);
        page.items.splice(0..0, header);
        page.items.push(Item::Text {
            x: number_x,
            y: PAGE_HEIGHT - 30.0,
            face: Face::Regular,
            size: 7.5,
            tone: Tone::Muted,
            text: number,
        });
    }
    c.pages
}

/// Monospace lines on a shaded band, split across pages where they must be.
fn mono(c: &mut Cursor<'_>, lines: &[String], width: f32) {
    let advance = c.m.width(Face::Mono, MONO_SIZE, "M").max(1.0);
    let columns = ((width - 2.0 * MONO_PAD) / advance).floor() as usize;
    let leading = MONO_SIZE * 1.28;
    c.y += 3.0;
    let mut band: Option<(usize, f32)> = None;
    let close = |c: &mut Cursor<'_>, band: &mut Option<(usize, f32)>| {
        if let Some((page, top)) = band.take() {
            let h = c.y - top + MONO_PAD;
            c.pages[page].items.insert(
                0,
                Item::Rect {
                    x: MARGIN_X,
                    y: top,
                    w: width,
                    h,
                    tone: Tone::Shade,
                },
            );
        }
    };
    for line in lines {
        for (i, piece) in wrap_columns(line, columns).into_iter().enumerate() {
            if c.pages.is_empty() || c.y + leading + MONO_PAD > BOTTOM {
                close(c, &mut band);
                c.room(f32::MAX / 4.0);
            }
            if band.is_none() {
                band = Some((c.pages.len() - 1, c.y));
                c.y += MONO_PAD;
            }
            c.y += leading;
            if i > 0 {
                // The line goes on: marked in the margin, so a reader never takes
                // a wrapped line for two.
                c.text(
                    MARGIN_X - 9.0,
                    Face::Mono,
                    MONO_SIZE,
                    Tone::Muted,
                    "↳".into(),
                );
            }
            c.text(MARGIN_X + MONO_PAD, Face::Mono, MONO_SIZE, Tone::Ink, piece);
        }
    }
    c.y += 2.0;
    close(c, &mut band);
    c.y += 3.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character as wide as 0.6 of the size.
    struct Fixed;
    impl Measure for Fixed {
        fn width(&self, _: Face, size: f32, text: &str) -> f32 {
            text.chars().count() as f32 * size * 0.6
        }
    }

    #[test]
    fn prose_wraps_at_spaces_and_breaks_long_words() {
        let lines = wrap(&Fixed, Face::Regular, 10.0, "aaa bbb ccc", 42.0);
        assert_eq!(lines, vec!["aaa bbb", "ccc"]);
        let lines = wrap(&Fixed, Face::Regular, 10.0, "abcdefghij", 31.0);
        assert_eq!(lines, vec!["abcde", "fghij"]);
    }

    #[test]
    fn monospace_lines_wrap_at_the_column() {
        assert_eq!(wrap_columns("abcdefg", 3), vec!["abc", "def", "g"]);
        assert_eq!(wrap_columns("", 3), vec![""]);
    }

    #[test]
    fn long_output_flows_onto_numbered_pages() {
        let lines: Vec<String> = (0..300).map(|i| format!("line {i}")).collect();
        let pages = layout(
            &Fixed,
            "Run #1",
            "footer",
            &[Block::Title("Run".into()), Block::Mono(lines)],
        );
        assert!(pages.len() >= 3, "{} pages", pages.len());
        let all: Vec<&str> = pages.iter().flat_map(|p| p.text()).collect();
        for i in [0, 150, 299] {
            assert!(all.contains(&format!("line {i}").as_str()));
        }
        assert!(pages[0]
            .text()
            .contains(&format!("Page 1 of {}", pages.len()).as_str()));
        for page in &pages {
            for item in &page.items {
                if let Item::Text { y, .. } = item {
                    assert!(*y <= PAGE_HEIGHT - 20.0 && *y >= 20.0);
                }
            }
            // Every page with output has its shaded band behind it.
            assert!(matches!(
                page.items.first(),
                Some(Item::Rect { .. }) | Some(Item::Text { .. })
            ));
        }
    }

    #[test]
    fn a_wrapped_output_line_is_marked_as_going_on() {
        let long = "x".repeat(300);
        let pages = layout(&Fixed, "t", "f", &[Block::Mono(vec![long])]);
        let text = pages[0].text();
        assert!(text.contains(&"↳"));
    }
}
