//! The 4×6 in shipping label. It is laid out once, in points from the top left corner, and the
//! layout is rendered either as PDF (for office printers and previews) or as ZPL (for thermal
//! label printers), so that both print the same label.

use crate::address::PartyAddress;
use crate::pdf::{self, Align, Page, Style};
use crate::text::{self, Font};
use crate::{DocumentError, code128};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingLabel {
    pub tracking_code: String,
    pub carrier: String,
    pub service: String,
    pub order_id: String,
    pub from: PartyAddress,
    pub to: PartyAddress,
    pub weight_grams: u32,
}

const WIDTH: f64 = 288.0;
const HEIGHT: f64 = 432.0;
const MARGIN: f64 = 12.0;
const INNER: f64 = WIDTH - 2.0 * MARGIN;

/// Most label printers print 203 dots per inch; the label is 812 × 1218 of them.
const DPI: f64 = 203.0;
const WIDTH_DOTS: usize = 812;
const LENGTH_DOTS: usize = 1218;

/// The barcode gets the label's width less a small margin for paper that feeds askew.
const BARCODE_DOTS: usize = WIDTH_DOTS - 2 * 24;
/// Code 128 wants ten modules of space either side for the scanner to find the edges.
const QUIET_ZONE: usize = 10;
/// Bars are whole printer dots wide, so that a thermal printer does not round neighbouring bars
/// differently. 2 dots (10 mil) is as thin as carriers' scanners reliably read; 4 (20 mil) is
/// as wide as is useful.
const MODULE_DOTS: [usize; 3] = [4, 3, 2];

/// Where the top of the text box sits above the baseline, as a share of the font size.
const ASCENT: f64 = 0.8;

#[derive(Debug)]
enum Mark {
    Text {
        style: Style,
        align: Align,
        left: f64,
        top: f64,
        width: f64,
        text: String,
    },
    Rule {
        top: f64,
        thickness: f64,
    },
    Barcode(Barcode),
}

#[derive(Debug)]
struct Barcode {
    left_dots: usize,
    top: f64,
    height: f64,
    module_dots: usize,
    widths: Vec<u8>,
    data: String,
}

/// The label as a one-page PDF of exactly 4 × 6 inches.
pub fn label_pdf(label: &ShippingLabel) -> Result<Vec<u8>, DocumentError> {
    let mut page = Page::new(WIDTH, HEIGHT);
    for mark in layout(label)? {
        match mark {
            Mark::Text {
                style,
                align,
                left,
                top,
                width,
                text,
            } => {
                let x = match align {
                    Align::Left => left,
                    Align::Center => left + width / 2.0,
                    Align::Right => left + width,
                };
                let baseline = HEIGHT - top - ASCENT * style.size;
                page.text(style, align, x, baseline, width, &text);
            }
            Mark::Rule { top, thickness } => {
                page.fill_rect(MARGIN, HEIGHT - top - thickness, INNER, thickness);
            }
            Mark::Barcode(barcode) => {
                let bottom = HEIGHT - barcode.top - barcode.height;
                let mut at = barcode.left_dots;
                for (index, &modules) in barcode.widths.iter().enumerate() {
                    let width = usize::from(modules) * barcode.module_dots;
                    if index % 2 == 0 {
                        page.rect(points(at), bottom, points(width), barcode.height);
                    }
                    at += width;
                }
                page.fill();
            }
        }
    }
    Ok(pdf::render(
        &format!("Shipping label {}", label.tracking_code),
        &[page],
    ))
}

/// The label as one ZPL II format for a 203 dpi printer loaded with 4×6 labels. Field data is
/// UTF-8 (`^CI28`) with `^FH` hex escapes for `^`, `~`, `_` and everything beyond ASCII, so that
/// no address can end the format early or slip in a printer command.
pub fn label_zpl(label: &ShippingLabel) -> Result<String, DocumentError> {
    let mut zpl = format!("^XA\n^CI28\n^PW{WIDTH_DOTS}\n^LL{LENGTH_DOTS}\n^LH0,0\n");
    for mark in layout(label)? {
        match mark {
            Mark::Text {
                style,
                align,
                left,
                top,
                width,
                text,
            } => {
                let height = dots(style.size);
                let justify = match align {
                    Align::Left => 'L',
                    Align::Center => 'C',
                    Align::Right => 'R',
                };
                zpl.push_str(&format!(
                    "^FO{},{}^A0N,{height},{height}^FB{},1,0,{justify},0^FH^FD{}^FS\n",
                    dots(left),
                    dots(top),
                    dots(width),
                    field_data(&text, true),
                ));
            }
            Mark::Rule { top, thickness } => {
                let thickness = dots(thickness).max(1);
                zpl.push_str(&format!(
                    "^FO{},{}^GB{},{thickness},{thickness}^FS\n",
                    dots(MARGIN),
                    dots(top),
                    dots(INNER),
                ));
            }
            Mark::Barcode(barcode) => {
                let height = dots(barcode.height);
                // Automatic mode (A) lets the printer choose code sets B and C as we do, and
                // takes every printable ASCII character literally.
                zpl.push_str(&format!(
                    "^BY{},3,{height}\n^FO{},{}^BCN,{height},N,N,N,A^FH^FD{}^FS\n",
                    barcode.module_dots,
                    barcode.left_dots,
                    dots(barcode.top),
                    field_data(&barcode.data, false),
                ));
            }
        }
    }
    zpl.push_str("^XZ\n");
    Ok(zpl)
}

fn layout(label: &ShippingLabel) -> Result<Vec<Mark>, DocumentError> {
    let mut marks = Vec::with_capacity(24);
    let mut text = |style: Style, align: Align, left: f64, top: f64, width: f64, value: &str| {
        marks.push(Mark::Text {
            style,
            align,
            left,
            top,
            width,
            text: text::fit(style.font, style.size, width, value),
        });
    };

    let service_width = 170.0;
    text(
        bold(16.0),
        Align::Left,
        MARGIN,
        12.0,
        service_width,
        &label.carrier,
    );
    text(
        regular(10.0),
        Align::Left,
        MARGIN,
        32.0,
        service_width,
        &label.service,
    );
    let weight = kilograms(label.weight_grams);
    let weight_left = MARGIN + service_width;
    text(
        bold(14.0),
        Align::Right,
        weight_left,
        14.0,
        INNER - service_width,
        &weight,
    );

    text(bold(7.0), Align::Left, MARGIN, 58.0, INNER, "FROM");
    for (index, line) in label.from.lines().iter().enumerate() {
        let top = 68.0 + 10.0 * index as f64;
        text(regular(8.0), Align::Left, MARGIN, top, INNER, line);
    }

    text(bold(8.0), Align::Left, MARGIN, 130.0, INNER, "SHIP TO");
    text(
        bold(14.0),
        Align::Left,
        MARGIN,
        142.0,
        INNER,
        &label.to.name,
    );
    for (index, line) in label.to.lines_after_name().iter().enumerate() {
        let top = 162.0 + 15.0 * index as f64;
        text(regular(12.0), Align::Left, MARGIN, top, INNER, line);
    }

    // The human-readable code must never be cut short: a long one is set smaller instead.
    let tracking = label.tracking_code.as_str();
    let tracking_size = 12.0_f64.min(12.0 * INNER / text::width(Font::Bold, 12.0, tracking));
    text(
        bold(tracking_size),
        Align::Center,
        MARGIN,
        356.0,
        INNER,
        tracking,
    );

    let order = format!("Order {}", label.order_id);
    text(regular(10.0), Align::Left, MARGIN, 392.0, INNER, &order);

    for (top, thickness) in [(50.0, 1.5), (122.0, 0.75), (228.0, 1.5), (380.0, 0.75)] {
        marks.push(Mark::Rule { top, thickness });
    }
    marks.push(Mark::Barcode(barcode(tracking, 240.0, 110.0)?));
    Ok(marks)
}

fn barcode(data: &str, top: f64, height: f64) -> Result<Barcode, DocumentError> {
    let widths = code128::modules(data)?;
    let modules: usize = widths.iter().map(|&width| usize::from(width)).sum();
    let module_dots = MODULE_DOTS
        .into_iter()
        .find(|&dots| (modules + 2 * QUIET_ZONE) * dots <= BARCODE_DOTS)
        .ok_or(DocumentError::BarcodeTooWide {
            modules,
            max: BARCODE_DOTS / 2 - 2 * QUIET_ZONE,
        })?;
    Ok(Barcode {
        left_dots: (WIDTH_DOTS - modules * module_dots) / 2,
        top,
        height,
        module_dots,
        widths,
        data: data.to_owned(),
    })
}

fn regular(size: f64) -> Style {
    Style {
        font: Font::Regular,
        size,
    }
}

fn bold(size: f64) -> Style {
    Style {
        font: Font::Bold,
        size,
    }
}

fn dots(points: f64) -> usize {
    // Layout values are small and positive; the cast saturates should one ever not be.
    (points * DPI / 72.0).round() as usize
}

fn points(dots: usize) -> f64 {
    dots as f64 * 72.0 / DPI
}

/// Grams as kilograms to the nearest ten grams, the precision carriers bill by.
fn kilograms(grams: u32) -> String {
    let tens = (u64::from(grams) + 5) / 10;
    format!("{}.{:02} kg", tens / 100, tens % 100)
}

/// Field data for `^FH`: `^` and `~` would start a command and `_` an escape, so they are sent
/// as hex, as is every byte of a non-ASCII character's UTF-8. Inside a `^FB` block `\&` means a
/// line break, so a backslash is doubled there.
fn field_data(text: &str, in_block: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '^' | '~' | '_' => out.push_str(&format!("_{:02X}", u32::from(c))),
            '\\' if in_block => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut buffer = [0; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("_{byte:02X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_printed_in_kilograms_to_ten_grams() {
        assert_eq!(kilograms(0), "0.00 kg");
        assert_eq!(kilograms(84), "0.08 kg");
        assert_eq!(kilograms(1250), "1.25 kg");
        assert_eq!(kilograms(u32::MAX), "4294967.30 kg");
    }

    #[test]
    fn field_data_escapes_command_prefixes_and_the_escape_character() {
        assert_eq!(field_data("a^XZ~JR_b", false), "a_5EXZ_7EJR_5Fb");
    }

    #[test]
    fn field_data_sends_non_ascii_as_utf8_hex() {
        assert_eq!(field_data("Ñuñoa", false), "_C3_91u_C3_B1oa");
        assert_eq!(field_data("東", false), "_E6_9D_B1");
    }

    #[test]
    fn a_backslash_is_doubled_only_inside_a_field_block() {
        assert_eq!(field_data(r"a\&b", true), r"a\\&b");
        assert_eq!(field_data(r"a\b", false), r"a\b");
    }

    #[test]
    fn short_codes_get_wide_bars_and_long_ones_narrower_bars() {
        let short = barcode("1Z999", 0.0, 10.0).expect("fits");
        let long = barcode("ABCDEFGHIJKLMNOPQRSTUVW", 0.0, 10.0).expect("fits");
        assert_eq!(short.module_dots, 4);
        assert_eq!(long.module_dots, 2);
    }

    #[test]
    fn the_barcode_is_centred_on_the_label() {
        let barcode = barcode("1Z999AA10123456784", 0.0, 10.0).expect("fits");
        let modules: usize = barcode.widths.iter().map(|&w| usize::from(w)).sum();
        let right = WIDTH_DOTS - barcode.left_dots - modules * barcode.module_dots;
        assert!(barcode.left_dots.abs_diff(right) <= 1);
        assert!(barcode.left_dots >= QUIET_ZONE * barcode.module_dots);
    }
}
