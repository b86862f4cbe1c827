//! A run's report as a PDF, made on the server (no browser involved):
//!
//! - [`document`]: what the report says, as blocks (pure);
//! - [`layout`]: the blocks placed on A4 pages (pure, measured through a trait);
//! - [`pdf`]: the pages drawn with krilla, the outputs' JSONL attached.

pub mod document;
pub mod layout;
pub mod pdf;

use app::model::run_report::{jsonl_name, RunReport};

pub use pdf::PdfError;

/// The PDF of `report`, with `jsonl` (every attempt's whole output and the run's
/// audit events) attached.
pub fn render_pdf(report: &RunReport, jsonl: &str) -> Result<Vec<u8>, PdfError> {
    let fonts = pdf::Fonts::load()?;
    let s = &report.run.summary;
    let title = format!("Recovery Portal · run #{} report · {}", s.id, s.site);
    let footer = format!(
        "Run #{} · runbook {} · generated {}",
        s.id, s.runbook_id, report.generated_at
    );
    let pages = layout::layout(&fonts, &title, &footer, &document::blocks(report));
    pdf::render(
        &fonts,
        &pages,
        pdf::Extras {
            title: &title,
            attachment: Some((
                &jsonl_name(s.id),
                "Every attempt's whole output with its length and SHA-256, and the run's audit events with their hashes",
                jsonl.as_bytes().to_vec(),
            )),
        },
    )
}
