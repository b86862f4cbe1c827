//! Drawing laid-out pages with krilla. The fonts are DejaVu (embedded, subset
//! by krilla), so every glyph prints the same on any machine, and text can be
//! extracted again (krilla writes each font's ToUnicode map).

use super::layout::{Face, Item, Measure, Page, Tone, PAGE_HEIGHT, PAGE_WIDTH};
use krilla::color::rgb;
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::text::{Font, TextDirection};
use krilla::Document;

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");
static MONO: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the report's font {0} cannot be read")]
    Font(&'static str),
    #[error("the PDF could not be written: {0}")]
    Write(String),
}

/// The three faces, for drawing and for measuring.
pub struct Fonts {
    regular: (Font, ttf_parser::Face<'static>),
    bold: (Font, ttf_parser::Face<'static>),
    mono: (Font, ttf_parser::Face<'static>),
}

fn load(
    data: &'static [u8],
    name: &'static str,
) -> Result<(Font, ttf_parser::Face<'static>), PdfError> {
    let font = Font::new(data.into(), 0).ok_or(PdfError::Font(name))?;
    let face = ttf_parser::Face::parse(data, 0).map_err(|_| PdfError::Font(name))?;
    Ok((font, face))
}

impl Fonts {
    pub fn load() -> Result<Self, PdfError> {
        Ok(Self {
            regular: load(REGULAR, "DejaVuSans")?,
            bold: load(BOLD, "DejaVuSans-Bold")?,
            mono: load(MONO, "DejaVuSansMono")?,
        })
    }

    fn get(&self, face: Face) -> &(Font, ttf_parser::Face<'static>) {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
            Face::Mono => &self.mono,
        }
    }
}

impl Measure for Fonts {
    fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        let f = &self.get(face).1;
        let units = f32::from(f.units_per_em());
        let advance: u32 = text
            .chars()
            .map(|c| {
                f.glyph_index(c)
                    .and_then(|g| f.glyph_hor_advance(g))
                    .map(u32::from)
                    .unwrap_or(u32::from(f.units_per_em()) / 2)
            })
            .sum();
        advance as f32 * size / units
    }
}

fn colour(tone: Tone) -> rgb::Color {
    match tone {
        Tone::Ink => rgb::Color::new(0x11, 0x11, 0x11),
        Tone::Muted => rgb::Color::new(0x55, 0x55, 0x55),
        Tone::Good => rgb::Color::new(0x0a, 0x6b, 0x2c),
        Tone::Bad => rgb::Color::new(0xb0, 0x10, 0x10),
        Tone::Shade => rgb::Color::new(0xf1, 0xf1, 0xee),
    }
}

fn fill(tone: Tone) -> Fill {
    Fill {
        paint: colour(tone).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

/// What goes into the PDF besides its pages.
pub struct Extras<'a> {
    pub title: &'a str,
    /// The attached file: its name, description and content.
    pub attachment: Option<(&'a str, &'a str, Vec<u8>)>,
}

/// Draws `pages` into a PDF.
pub fn render(fonts: &Fonts, pages: &[Page], extras: Extras<'_>) -> Result<Vec<u8>, PdfError> {
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(extras.title.to_string())
            .creator("Recovery Portal".to_string()),
    );
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| PdfError::Write("bad page size".into()))?;
    for page in pages {
        let mut p = document.start_page_with(settings.clone());
        let mut surface = p.surface();
        for item in &page.items {
            match item {
                Item::Text {
                    x,
                    y,
                    face,
                    size,
                    tone,
                    text,
                } => {
                    if text.is_empty() {
                        continue;
                    }
                    surface.set_fill(Some(fill(*tone)));
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        fonts.get(*face).0.clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Item::Rect { x, y, w, h, tone } => {
                    if let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) {
                        let mut pb = PathBuilder::new();
                        pb.push_rect(rect);
                        if let Some(path) = pb.finish() {
                            surface.set_fill(Some(fill(*tone)));
                            surface.draw_path(&path);
                        }
                    }
                }
                Item::Rule { y } => {
                    if let Some(rect) = Rect::from_xywh(50.0, *y, PAGE_WIDTH - 100.0, 0.6) {
                        let mut pb = PathBuilder::new();
                        pb.push_rect(rect);
                        if let Some(path) = pb.finish() {
                            surface.set_fill(Some(fill(Tone::Muted)));
                            surface.draw_path(&path);
                        }
                    }
                }
            }
        }
        surface.finish();
        p.finish();
    }
    if let Some((name, description, data)) = extras.attachment {
        document.embed_file(EmbeddedFile {
            path: name.to_string(),
            mime_type: MimeType::new("application/x-ndjson"),
            description: Some(description.to_string()),
            association_kind: AssociationKind::Supplement,
            data: data.into(),
            modification_date: None,
            compress: Some(true),
            location: None,
        });
    }
    document
        .finish()
        .map_err(|e| PdfError::Write(e.to_string()))
}
