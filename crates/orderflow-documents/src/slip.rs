//! The packing slip: what goes in the parcel, for the person packing it, on A4 paper.

use crate::address::PartyAddress;
use crate::pdf::{self, Align, Page, Style};
use crate::text::Font;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipLine {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackingSlip {
    pub order_id: String,
    pub store_name: String,
    /// RFC 3339, printed as given: the caller chooses the time zone the packer reads.
    pub placed_at: String,
    pub ship_to: PartyAddress,
    pub shipping_method: Option<String>,
    pub lines: Vec<SlipLine>,
}

// A4, since slips come out of the office printer; Letter printers scale it to fit.
const WIDTH: f64 = 595.28;
const HEIGHT: f64 = 841.89;
const MARGIN: f64 = 50.0;
const LEFT: f64 = MARGIN;
const RIGHT: f64 = WIDTH - MARGIN;
const TOP: f64 = HEIGHT - MARGIN;
const COLUMN: f64 = 340.0;

const FIRST_TABLE: f64 = TOP - 190.0;
const NEXT_TABLE: f64 = TOP - 90.0;
const ROW: f64 = 16.0;
/// The lowest baseline a row may take, leaving room for the totals under the last one.
const LOWEST_ROW: f64 = MARGIN + 50.0;
const SKU_LEFT: f64 = LEFT + 22.0;
const QUANTITY_WIDTH: f64 = 70.0;

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

/// The slip as a PDF: a header on every page, the address and shipping method on the first, a
/// checklist of lines continued over as many pages as it takes, and the totals at the end.
pub fn packing_slip_pdf(slip: &PackingSlip) -> Vec<u8> {
    let chunks = paginate(&slip.lines);
    let count = chunks.len();
    let pages: Vec<Page> = chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut page = Page::new(WIDTH, HEIGHT);
            header(&mut page, slip, index + 1, count);
            let table_top = if index == 0 {
                delivery(&mut page, slip);
                FIRST_TABLE
            } else {
                NEXT_TABLE
            };
            let last_row = table(&mut page, table_top, chunk);
            if index + 1 == count {
                totals(&mut page, &slip.lines, last_row);
            }
            page
        })
        .collect();
    pdf::render(&format!("Packing slip {}", slip.order_id), &pages)
}

/// Splits the lines into pages; the first page holds fewer, under the address. There is always
/// at least one page, even for an order without lines.
fn paginate(lines: &[SlipLine]) -> Vec<&[SlipLine]> {
    let (first, rest) = lines.split_at(rows_below(FIRST_TABLE).min(lines.len()));
    std::iter::once(first)
        .chain(rest.chunks(rows_below(NEXT_TABLE)))
        .collect()
}

fn rows_below(table_top: f64) -> usize {
    let first_row = table_top - 20.0;
    // A handful of rows; the layout constants keep this positive.
    ((first_row - LOWEST_ROW) / ROW).floor() as usize + 1
}

fn header(page: &mut Page, slip: &PackingSlip, number: usize, count: usize) {
    page.text(
        bold(18.0),
        Align::Left,
        LEFT,
        TOP - 18.0,
        330.0,
        &slip.store_name,
    );
    page.text(
        bold(11.0),
        Align::Right,
        RIGHT,
        TOP - 14.0,
        150.0,
        "PACKING SLIP",
    );
    let order = format!("Order {}", slip.order_id);
    page.text(regular(11.0), Align::Left, LEFT, TOP - 40.0, 330.0, &order);
    let placed = format!("Placed {}", slip.placed_at);
    page.text(regular(9.0), Align::Left, LEFT, TOP - 54.0, 330.0, &placed);
    let numbering = format!("Page {number} of {count}");
    page.text(
        regular(9.0),
        Align::Right,
        RIGHT,
        TOP - 40.0,
        150.0,
        &numbering,
    );
    page.fill_rect(LEFT, TOP - 64.0, RIGHT - LEFT, 0.75);
}

fn delivery(page: &mut Page, slip: &PackingSlip) {
    page.text(bold(9.0), Align::Left, LEFT, TOP - 86.0, 250.0, "SHIP TO");
    let mut baseline = TOP - 102.0;
    for line in slip.ship_to.lines() {
        page.text(
            regular(11.0),
            Align::Left,
            LEFT,
            baseline,
            COLUMN - LEFT - 20.0,
            &line,
        );
        baseline -= 14.0;
    }
    let method = slip
        .shipping_method
        .as_deref()
        .map(str::trim)
        .filter(|method| !method.is_empty())
        .unwrap_or("Not specified");
    let width = RIGHT - COLUMN;
    page.text(
        bold(9.0),
        Align::Left,
        COLUMN,
        TOP - 86.0,
        width,
        "SHIPPING METHOD",
    );
    page.text(
        regular(11.0),
        Align::Left,
        COLUMN,
        TOP - 102.0,
        width,
        method,
    );
}

/// Draws the column headings and `lines`, returning the baseline of the last row.
fn table(page: &mut Page, top: f64, lines: &[SlipLine]) -> f64 {
    page.text(bold(9.0), Align::Left, SKU_LEFT, top, 200.0, "SKU");
    page.text(bold(9.0), Align::Right, RIGHT, top, QUANTITY_WIDTH, "QTY");
    page.fill_rect(LEFT, top - 6.0, RIGHT - LEFT, 0.5);
    let first_row = top - 20.0;
    if lines.is_empty() {
        let note = "No items on this order.";
        page.text(regular(10.0), Align::Left, SKU_LEFT, first_row, 300.0, note);
        return first_row;
    }
    let sku_width = RIGHT - QUANTITY_WIDTH - SKU_LEFT - 10.0;
    let mut baseline = first_row;
    for (index, line) in lines.iter().enumerate() {
        baseline = first_row - ROW * index as f64;
        // A box to tick as the item goes in the parcel.
        page.outline_rect(LEFT, baseline - 1.5, 9.0, 9.0, 0.6);
        page.text(
            regular(10.0),
            Align::Left,
            SKU_LEFT,
            baseline,
            sku_width,
            &line.sku,
        );
        let quantity = line.quantity.to_string();
        page.text(
            bold(10.0),
            Align::Right,
            RIGHT,
            baseline,
            QUANTITY_WIDTH,
            &quantity,
        );
    }
    baseline
}

fn totals(page: &mut Page, lines: &[SlipLine], last_row: f64) {
    let units: u64 = lines.iter().map(|line| u64::from(line.quantity)).sum();
    let lines = u64::try_from(lines.len()).unwrap_or(u64::MAX);
    let summary = format!("{} · {}", counted(lines, "line"), counted(units, "unit"));
    page.fill_rect(LEFT, last_row - 8.0, RIGHT - LEFT, 0.5);
    page.text(
        bold(10.0),
        Align::Right,
        RIGHT,
        last_row - 24.0,
        300.0,
        &summary,
    );
}

fn counted(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(count: usize) -> Vec<SlipLine> {
        (0..count)
            .map(|index| SlipLine {
                sku: format!("SKU-{index}"),
                quantity: 1,
            })
            .collect()
    }

    #[test]
    fn an_order_without_lines_still_gets_one_page() {
        assert_eq!(paginate(&[]).len(), 1);
    }

    #[test]
    fn the_first_page_fills_before_a_second_is_started() {
        let first = rows_below(FIRST_TABLE);
        assert_eq!(paginate(&lines(first)).len(), 1);
        assert_eq!(paginate(&lines(first + 1)).len(), 2);
    }

    #[test]
    fn continuation_pages_hold_more_rows_than_the_first() {
        assert!(rows_below(NEXT_TABLE) > rows_below(FIRST_TABLE));
    }

    #[test]
    fn the_last_row_leaves_room_for_the_totals_above_the_margin() {
        for top in [FIRST_TABLE, NEXT_TABLE] {
            let last = top - 20.0 - ROW * (rows_below(top) - 1) as f64;
            assert!(last >= LOWEST_ROW && last - 24.0 > MARGIN, "{last}");
        }
    }

    #[test]
    fn counts_are_pluralised() {
        assert_eq!(counted(1, "unit"), "1 unit");
        assert_eq!(counted(0, "line"), "0 lines");
        assert_eq!(counted(12, "unit"), "12 units");
    }
}
