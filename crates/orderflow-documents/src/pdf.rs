//! A minimal PDF 1.4 writer: pages of Helvetica text, filled and outlined rectangles, and the
//! file structure around them (numbered objects, a cross-reference table with exact byte
//! offsets, the trailer).
//!
//! Content streams are left uncompressed: the documents are a few kilobytes, and plain operators
//! keep the output testable and diffable without a PDF library.

use crate::text::{self, Font};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) font: Font,
    pub(crate) size: f64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

/// One page and its drawing operators, in PDF user space: points, origin at the bottom left.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    width: f64,
    height: f64,
    content: String,
}

impl Page {
    pub(crate) fn new(width: f64, height: f64) -> Self {
        Page {
            width,
            height,
            content: String::new(),
        }
    }

    /// Sets `text` on the baseline `y`, starting at, centred on or ending at `x` as `align`
    /// says, shortened with "..." to at most `max_width` points.
    pub(crate) fn text(
        &mut self,
        style: Style,
        align: Align,
        x: f64,
        y: f64,
        max_width: f64,
        text: &str,
    ) {
        let fitted = text::fit(style.font, style.size, max_width, text);
        if fitted.is_empty() {
            return;
        }
        let width = text::width(style.font, style.size, &fitted);
        let left = match align {
            Align::Left => x,
            Align::Center => x - width / 2.0,
            Align::Right => x - width,
        };
        self.content.push_str(&format!(
            "BT /{} {} Tf {} {} Td {} Tj ET\n",
            style.font.resource(),
            num(style.size),
            num(left),
            num(y),
            literal(&text::win_ansi(&fitted)),
        ));
    }

    /// Adds a rectangle to the current path; [`Page::fill`] paints everything added so far in
    /// one operation, which keeps a barcode of a hundred bars to a hundred short lines.
    pub(crate) fn rect(&mut self, x: f64, y: f64, width: f64, height: f64) {
        self.content.push_str(&format!(
            "{} {} {} {} re\n",
            num(x),
            num(y),
            num(width),
            num(height)
        ));
    }

    pub(crate) fn fill(&mut self) {
        self.content.push_str("f\n");
    }

    pub(crate) fn fill_rect(&mut self, x: f64, y: f64, width: f64, height: f64) {
        self.rect(x, y, width, height);
        self.fill();
    }

    pub(crate) fn outline_rect(&mut self, x: f64, y: f64, width: f64, height: f64, line: f64) {
        self.content.push_str(&format!(
            "q {} w {} {} {} {} re S Q\n",
            num(line),
            num(x),
            num(y),
            num(width),
            num(height)
        ));
    }
}

const CATALOG: usize = 1;
const PAGES: usize = 2;
const REGULAR: usize = 3;
const BOLD: usize = 4;
const INFO: usize = 5;
const FIRST_PAGE: usize = 6;

/// The complete file. Objects are numbered in the order they are written: the catalog, the page
/// tree, the two fonts, the document information, then each page followed by its content.
/// `pages` must not be empty.
pub(crate) fn render(title: &str, pages: &[Page]) -> Vec<u8> {
    let page_object = |index: usize| FIRST_PAGE + 2 * index;
    let kids = (0..pages.len())
        .map(|index| format!("{} 0 R", page_object(index)))
        .collect::<Vec<_>>()
        .join(" ");

    let mut file = File::new();
    file.object(CATALOG, &format!("<< /Type /Catalog /Pages {PAGES} 0 R >>"));
    file.object(
        PAGES,
        &format!("<< /Type /Pages /Kids [{kids}] /Count {} >>", pages.len()),
    );
    for (number, font) in [(REGULAR, Font::Regular), (BOLD, Font::Bold)] {
        file.object(
            number,
            &format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>",
                font.base_font()
            ),
        );
    }
    file.object(
        INFO,
        &format!("<< /Title {} /Producer (orderflow) >>", text_string(title)),
    );
    for (index, page) in pages.iter().enumerate() {
        let number = page_object(index);
        file.object(
            number,
            &format!(
                "<< /Type /Page /Parent {PAGES} 0 R /MediaBox [0 0 {} {}] \
                 /Resources << /Font << /{} {REGULAR} 0 R /{} {BOLD} 0 R >> >> \
                 /Contents {} 0 R >>",
                num(page.width),
                num(page.height),
                Font::Regular.resource(),
                Font::Bold.resource(),
                number + 1
            ),
        );
        file.stream(number + 1, page.content.as_bytes());
    }
    file.finish()
}

struct File {
    bytes: Vec<u8>,
    /// Byte offset of object n at index n - 1.
    offsets: Vec<usize>,
}

impl File {
    fn new() -> Self {
        // The comment of high bytes tells transfer tools that the file is binary.
        File {
            bytes: b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec(),
            offsets: Vec::new(),
        }
    }

    fn begin(&mut self, number: usize) {
        debug_assert_eq!(
            number,
            self.offsets.len() + 1,
            "objects are written in order"
        );
        self.offsets.push(self.bytes.len());
        self.bytes
            .extend_from_slice(format!("{number} 0 obj\n").as_bytes());
    }

    fn object(&mut self, number: usize, body: &str) {
        self.begin(number);
        self.bytes.extend_from_slice(body.as_bytes());
        self.bytes.extend_from_slice(b"\nendobj\n");
    }

    fn stream(&mut self, number: usize, data: &[u8]) {
        self.begin(number);
        self.bytes
            .extend_from_slice(format!("<< /Length {} >>\nstream\n", data.len()).as_bytes());
        self.bytes.extend_from_slice(data);
        self.bytes.extend_from_slice(b"\nendstream\nendobj\n");
    }

    fn finish(mut self) -> Vec<u8> {
        let xref = self.bytes.len();
        let size = self.offsets.len() + 1;
        // Every entry is exactly 20 bytes, end of line included, as readers seek by index.
        let mut table = format!("xref\n0 {size}\n0000000000 65535 f \n");
        for offset in &self.offsets {
            table.push_str(&format!("{offset:010} 00000 n \n"));
        }
        table.push_str(&format!(
            "trailer\n<< /Size {size} /Root {CATALOG} 0 R /Info {INFO} 0 R >>\nstartxref\n{xref}\n%%EOF\n"
        ));
        self.bytes.extend_from_slice(table.as_bytes());
        self.bytes
    }
}

/// A number as PDF writes it: at most two decimals, no exponent, no trailing zeros.
pub(crate) fn num(value: f64) -> String {
    let hundredths = (value * 100.0).round();
    if !hundredths.is_finite() {
        return "0".to_owned();
    }
    // Page coordinates are far inside i64, and the cast saturates rather than wraps anyway.
    let hundredths = hundredths as i64;
    let sign = if hundredths < 0 { "-" } else { "" };
    let magnitude = hundredths.unsigned_abs();
    let (whole, fraction) = (magnitude / 100, magnitude % 100);
    match fraction {
        0 => format!("{sign}{whole}"),
        f if f % 10 == 0 => format!("{sign}{whole}.{}", f / 10),
        f => format!("{sign}{whole}.{f:02}"),
    }
}

/// A literal string of WinAnsi bytes. Delimiters and the backslash are escaped, and bytes
/// outside printable ASCII are written as octal escapes so that content streams stay ASCII.
fn literal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('(');
    for &byte in bytes {
        match byte {
            b'(' | b')' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            b' '..=b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out.push(')');
    out
}

/// A text string for the document information, in UTF-16BE with a byte order mark: unlike page
/// text, metadata is not limited to the font's encoding.
fn text_string(text: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        out.push_str(&format!("{unit:04X}"));
    }
    out.push('>');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_at_most_two_decimals_and_no_trailing_zeros() {
        assert_eq!(num(288.0), "288");
        assert_eq!(num(595.276), "595.28");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(0.05), "0.05");
        assert_eq!(num(-3.25), "-3.25");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(f64::NAN), "0");
    }

    #[test]
    fn string_delimiters_and_backslashes_are_escaped() {
        assert_eq!(literal(b"a(b)c\\d"), r"(a\(b\)c\\d)");
    }

    #[test]
    fn bytes_beyond_ascii_are_written_in_octal() {
        assert_eq!(literal(b"caf\xE9\x85"), r"(caf\351\205)");
    }

    #[test]
    fn metadata_strings_are_utf16_with_a_byte_order_mark() {
        assert_eq!(text_string("Ñ東"), "<FEFF00D16771>");
    }
}
