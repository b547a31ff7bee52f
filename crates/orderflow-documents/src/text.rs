//! Text in the standard Helvetica fonts: WinAnsiEncoding, glyph widths, and cutting text down to
//! the width of a box.
//!
//! The 14 standard PDF fonts need no embedding, which keeps documents small and the writer
//! simple, but they only cover WinAnsiEncoding (Latin-1 plus a few typographic characters).
//! Everything else is replaced here, readably where a Latin letter is close enough.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Font {
    Regular,
    Bold,
}

impl Font {
    pub(crate) fn base_font(self) -> &'static str {
        match self {
            Font::Regular => "Helvetica",
            Font::Bold => "Helvetica-Bold",
        }
    }

    /// The name the page resources give the font.
    pub(crate) fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
        }
    }

    /// The advance width of a WinAnsi byte in thousandths of the font size.
    fn advance(self, byte: u8) -> u16 {
        let table = match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        };
        match byte {
            b' '..=b'~' => table[usize::from(byte - b' ')],
            // Æ æ Œ œ … ‰ — ™ are the widest glyphs beyond ASCII.
            0xC6 | 0xE6 | 0x8C | 0x9C | 0x85 | 0x89 | 0x97 | 0x99 => 1000,
            // The accented capitals are the next widest; overestimating the rest only means
            // that text is shortened a little earlier than it has to be.
            _ => 778,
        }
    }
}

/// Helvetica's widths for ASCII 32 to 126 (Adobe's AFM, with WinAnsi's quotesingle and grave).
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // space to /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0 to ?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @ to O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P to _
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // ` to o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p to ~
];

const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278,
    278, // space to /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // 0 to ?
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // @ to O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // P to _
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // ` to o
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, // p to ~
];

/// The base letter of each character from U+0100 to U+017F (Latin Extended-A), for the
/// Central European names WinAnsi lacks: "Łódź" prints as "Lódz" rather than "?ód?".
const LATIN_EXTENDED_A: &[u8; 128] = b"AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIiIiJjKkkLlLlLlLlLlNnNnNnnNnOoOoOoOoRrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";

/// Appends the WinAnsi bytes that print `c`: the character itself when the encoding has it, a
/// close Latin letter or punctuation mark when it does not, and `?` as a last resort.
fn push_win_ansi(c: char, out: &mut Vec<u8>) {
    let code = u32::from(c);
    let byte = match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => u8::try_from(code).ok(),
        // Line breaks and tabs in a field would be invisible in a PDF string anyway.
        c if c.is_control() => Some(b' '),
        '€' => Some(0x80),
        '‚' => Some(0x82),
        'ƒ' => Some(0x83),
        '„' => Some(0x84),
        '…' => Some(0x85),
        '†' => Some(0x86),
        '‡' => Some(0x87),
        'ˆ' => Some(0x88),
        '‰' => Some(0x89),
        'Š' => Some(0x8A),
        '‹' => Some(0x8B),
        'Œ' => Some(0x8C),
        'Ž' => Some(0x8E),
        '\u{2018}' => Some(0x91),
        '\u{2019}' => Some(0x92),
        '\u{201C}' => Some(0x93),
        '\u{201D}' => Some(0x94),
        '•' => Some(0x95),
        '–' => Some(0x96),
        '—' => Some(0x97),
        '˜' => Some(0x98),
        '™' => Some(0x99),
        'š' => Some(0x9A),
        '›' => Some(0x9B),
        'œ' => Some(0x9C),
        'ž' => Some(0x9E),
        'Ÿ' => Some(0x9F),
        'Ĳ' => return out.extend_from_slice(b"IJ"),
        'ĳ' => return out.extend_from_slice(b"ij"),
        '\u{100}'..='\u{17F}' => usize::try_from(code - 0x100)
            .ok()
            .and_then(|index| LATIN_EXTENDED_A.get(index).copied()),
        '\u{2010}'..='\u{2015}' | '\u{2212}' => Some(b'-'),
        '\u{2032}' => Some(b'\''),
        '\u{2033}' => Some(b'"'),
        '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => Some(b' '),
        // Zero-width characters have nothing to print.
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => None,
        _ => Some(b'?'),
    };
    out.extend(byte);
}

/// `text` in WinAnsiEncoding, the encoding the fonts are declared with.
pub(crate) fn win_ansi(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        push_win_ansi(c, &mut out);
    }
    out
}

/// The width of `text` in points when set in `font` at `size` points.
pub(crate) fn width(font: Font, size: f64, text: &str) -> f64 {
    advance_sum(font, &win_ansi(text)) * size / 1000.0
}

fn advance_sum(font: Font, bytes: &[u8]) -> f64 {
    bytes
        .iter()
        .map(|&byte| f64::from(font.advance(byte)))
        .sum()
}

const ELLIPSIS: &str = "...";

/// `text` with control characters made spaces, cut at a character boundary and ended with "..."
/// when it would be wider than `max_width` points. Three periods rather than "…" because label
/// printers' built-in fonts do not all have the ellipsis.
pub(crate) fn fit(font: Font, size: f64, max_width: f64, text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if width(font, size, &cleaned) <= max_width {
        return cleaned;
    }
    let budget = max_width * 1000.0 / size - advance_sum(font, ELLIPSIS.as_bytes());
    let mut used = 0.0;
    let mut kept = String::new();
    let mut bytes = Vec::with_capacity(4);
    for c in cleaned.chars() {
        bytes.clear();
        push_win_ansi(c, &mut bytes);
        used += advance_sum(font, &bytes);
        if used > budget {
            break;
        }
        kept.push(c);
    }
    let mut shortened = kept.trim_end().to_owned();
    shortened.push_str(ELLIPSIS);
    shortened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_1_passes_through_as_single_bytes() {
        assert_eq!(win_ansi("Ñuñoa café"), b"\xD1u\xF1oa caf\xE9");
    }

    #[test]
    fn typographic_characters_use_the_winansi_extras() {
        assert_eq!(win_ansi("€5 – “ok”"), b"\x805 \x96 \x93ok\x94");
    }

    #[test]
    fn central_european_letters_lose_only_their_accent() {
        assert_eq!(win_ansi("Łódź Čapek Ĳssel"), b"L\xF3dz Capek IJssel");
    }

    #[test]
    fn characters_with_no_close_latin_form_become_question_marks() {
        assert_eq!(win_ansi("東京 ok"), b"?? ok");
    }

    #[test]
    fn control_characters_become_spaces_and_zero_width_ones_vanish() {
        assert_eq!(win_ansi("a\nb\tc\u{200B}d"), b"a b cd");
    }

    #[test]
    fn the_extended_a_table_covers_the_whole_block() {
        assert_eq!(win_ansi("\u{100}\u{17F}"), b"As");
        assert_eq!(win_ansi("\u{141}\u{142}\u{17D}"), b"Ll\x8E");
    }

    #[test]
    fn widths_follow_the_helvetica_metrics() {
        // W is 944, i is 222: 1166 thousandths at 10 pt.
        assert!((width(Font::Regular, 10.0, "Wi") - 11.66).abs() < 1e-9);
        assert!((width(Font::Bold, 10.0, "Wi") - 12.22).abs() < 1e-9);
    }

    #[test]
    fn text_that_fits_is_left_alone() {
        assert_eq!(fit(Font::Regular, 10.0, 100.0, "SKU-1"), "SKU-1");
    }

    #[test]
    fn text_that_does_not_fit_is_cut_and_marked() {
        let long = "A very long product code that never ends";
        let cut = fit(Font::Regular, 10.0, 80.0, long);
        assert!(cut.ends_with("..."), "{cut}");
        assert!(width(Font::Regular, 10.0, &cut) <= 80.0, "{cut}");
        assert!(long.starts_with(cut.trim_end_matches("...")), "{cut}");
    }

    #[test]
    fn cutting_never_splits_a_multibyte_character() {
        let cut = fit(Font::Bold, 12.0, 40.0, "ÑÑÑÑÑÑÑÑÑÑ東京東京");
        assert!(cut.starts_with('Ñ') && cut.ends_with("..."), "{cut}");
    }
}
