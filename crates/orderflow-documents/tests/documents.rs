//! What the pipeline gets from this crate, read back the way a printer or a viewer would:
//! packing slips and labels parsed as PDF, labels read as ZPL.

mod support;

use orderflow_documents::{
    DocumentError, PackingSlip, PartyAddress, ShippingLabel, SlipLine, code128, label_pdf,
    label_zpl, packing_slip_pdf,
};
use support::Pdf;

fn warehouse() -> PartyAddress {
    PartyAddress {
        name: "Tienda Sur Bodega".into(),
        line1: "Camino Lo Boza 120".into(),
        line2: None,
        city: "Pudahuel".into(),
        region: Some("RM".into()),
        postal_code: Some("9020000".into()),
        country: "CL".into(),
    }
}

fn customer() -> PartyAddress {
    PartyAddress {
        name: "Ana Pérez".into(),
        line1: "Av. Providencia 1234".into(),
        line2: Some("Depto 56".into()),
        city: "Providencia".into(),
        region: Some("RM".into()),
        postal_code: Some("7500000".into()),
        country: "CL".into(),
    }
}

fn slip(lines: Vec<SlipLine>) -> PackingSlip {
    PackingSlip {
        order_id: "ord_01J9ZX4Q8M".into(),
        store_name: "Tienda Sur".into(),
        placed_at: "2025-03-14T09:26:53-03:00".into(),
        ship_to: customer(),
        shipping_method: Some("Express".into()),
        lines,
    }
}

fn line(sku: &str, quantity: u32) -> SlipLine {
    SlipLine {
        sku: sku.into(),
        quantity,
    }
}

fn label() -> ShippingLabel {
    ShippingLabel {
        tracking_code: "1Z999AA10123456784".into(),
        carrier: "Chilexpress".into(),
        service: "Día hábil siguiente".into(),
        order_id: "ord_01J9ZX4Q8M".into(),
        from: warehouse(),
        to: customer(),
        weight_grams: 1250,
    }
}

fn contains(texts: &[String], wanted: &str) -> bool {
    texts.iter().any(|text| text.contains(wanted))
}

mod packing_slip {
    use super::*;

    #[test]
    fn every_xref_entry_points_at_its_object() {
        let bytes = packing_slip_pdf(&slip(vec![line("TEE-RED-M", 2)]));
        // Pdf::parse checks each offset, stream length and the trailer.
        let pdf = Pdf::parse(&bytes);
        assert_eq!(pdf.pages().len(), 1);
    }

    #[test]
    fn a_slip_is_a4_and_names_the_store_order_address_and_method() {
        let pdf = Pdf::parse(&packing_slip_pdf(&slip(vec![line("TEE-RED-M", 2)])));
        let page = pdf.pages()[0];
        assert_eq!(pdf.media_box(page), "[0 0 595.28 841.89]");
        let text = pdf.text(page);
        for wanted in [
            "Tienda Sur",
            "Order ord_01J9ZX4Q8M",
            "Placed 2025-03-14T09:26:53-03:00",
            "Ana Pérez",
            "Depto 56",
            "Providencia, RM 7500000",
            "Express",
            "Page 1 of 1",
        ] {
            assert!(contains(&text, wanted), "{wanted:?} missing from {text:?}");
        }
    }

    #[test]
    fn every_sku_is_listed_once_in_order_with_its_quantity_and_the_totals_follow() {
        let lines = vec![line("TEE-RED-M", 2), line("MUG-01", 1), line("CAP-BLK", 3)];
        let pdf = Pdf::parse(&packing_slip_pdf(&slip(lines)));
        let text = pdf.all_text();
        let skus: Vec<&str> = text
            .iter()
            .map(String::as_str)
            .filter(|text| ["TEE-RED-M", "MUG-01", "CAP-BLK"].contains(text))
            .collect();
        assert_eq!(skus, ["TEE-RED-M", "MUG-01", "CAP-BLK"]);
        let after_first = text
            .iter()
            .skip_while(|text| *text != "TEE-RED-M")
            .nth(1)
            .expect("a quantity follows the SKU");
        assert_eq!(after_first, "2");
        assert!(contains(&text, "3 lines · 6 units"), "{text:?}");
    }

    #[test]
    fn two_hundred_lines_run_over_several_numbered_pages_without_losing_one() {
        let lines = (1..=200).map(|n| line(&format!("SKU-{n:03}"), n)).collect();
        let pdf = Pdf::parse(&packing_slip_pdf(&slip(lines)));
        let pages = pdf.pages();
        assert!(pages.len() >= 3, "{} pages", pages.len());

        let mut listed = Vec::new();
        for (index, &page) in pages.iter().enumerate() {
            assert_eq!(pdf.media_box(page), "[0 0 595.28 841.89]");
            let text = pdf.text(page);
            let numbering = format!("Page {} of {}", index + 1, pages.len());
            assert!(contains(&text, &numbering), "{numbering:?} on page {index}");
            assert!(
                contains(&text, "Order ord_01J9ZX4Q8M"),
                "header on page {index}"
            );
            listed.extend(text.into_iter().filter(|text| text.starts_with("SKU-")));
        }
        let expected: Vec<String> = (1..=200).map(|n| format!("SKU-{n:03}")).collect();
        assert_eq!(listed, expected);
        // 1 + 2 + … + 200 units.
        assert!(contains(&pdf.all_text(), "200 lines · 20100 units"));
    }

    #[test]
    fn pdf_string_delimiters_in_a_sku_survive_escaping() {
        let sku = r"KIT (2) \ BOX)";
        let bytes = packing_slip_pdf(&slip(vec![line(sku, 1)]));
        assert!(Pdf::parse(&bytes).all_text().iter().any(|text| text == sku));
    }

    #[test]
    fn characters_outside_winansi_are_replaced_not_dropped() {
        let mut slip = slip(vec![line("東京-01", 1)]);
        slip.ship_to.city = "Łódź".into();
        let text = Pdf::parse(&packing_slip_pdf(&slip)).all_text();
        assert!(contains(&text, "??-01"), "{text:?}");
        assert!(contains(&text, "Lódz, RM"), "{text:?}");
    }

    #[test]
    fn an_overlong_sku_is_shortened_to_its_column() {
        let sku = "X".repeat(300);
        let text = Pdf::parse(&packing_slip_pdf(&slip(vec![line(&sku, 1)]))).all_text();
        let shown = text
            .iter()
            .find(|text| text.starts_with("XXX"))
            .expect("the SKU is shown");
        assert!(shown.ends_with("...") && shown.len() < 100, "{shown}");
    }

    #[test]
    fn an_order_without_lines_gets_one_page_saying_so() {
        let pdf = Pdf::parse(&packing_slip_pdf(&slip(Vec::new())));
        assert_eq!(pdf.pages().len(), 1);
        assert!(contains(&pdf.all_text(), "No items on this order."));
    }

    #[test]
    fn the_same_slip_always_renders_to_the_same_bytes() {
        let slip = slip(vec![line("TEE-RED-M", 2)]);
        assert_eq!(packing_slip_pdf(&slip), packing_slip_pdf(&slip));
    }
}

mod label_pdf {
    use super::*;

    fn parsed(label: &ShippingLabel) -> Pdf {
        Pdf::parse(&label_pdf(label).expect("the label renders"))
    }

    #[test]
    fn a_label_is_one_page_of_exactly_four_by_six_inches() {
        let pdf = parsed(&label());
        let pages = pdf.pages();
        assert_eq!(pages.len(), 1);
        assert_eq!(pdf.media_box(pages[0]), "[0 0 288 432]");
    }

    #[test]
    fn the_fonts_are_the_standard_helveticas_in_winansi() {
        let pdf = parsed(&label());
        for (number, font) in [(3, "/Helvetica "), (4, "/Helvetica-Bold ")] {
            let object = pdf.object(number);
            assert!(object.contains("/Subtype /Type1"), "{object}");
            assert!(object.contains(&format!("/BaseFont {font}")), "{object}");
            assert!(object.contains("/Encoding /WinAnsiEncoding"), "{object}");
        }
    }

    #[test]
    fn a_label_shows_carrier_tracking_code_order_and_both_addresses() {
        let pdf = parsed(&label());
        let text = pdf.all_text();
        for wanted in [
            "Chilexpress",
            "Día hábil siguiente",
            "1.25 kg",
            "1Z999AA10123456784",
            "Order ord_01J9ZX4Q8M",
            "FROM",
            "Tienda Sur Bodega",
            "Pudahuel, RM 9020000",
            "SHIP TO",
            "Ana Pérez",
            "Av. Providencia 1234",
            "Providencia, RM 7500000",
        ] {
            assert!(contains(&text, wanted), "{wanted:?} missing from {text:?}");
        }
    }

    #[test]
    fn the_bars_drawn_are_the_code_128_modules_of_the_tracking_code() {
        let label = label();
        let pdf = parsed(&label);
        let page = pdf.pages()[0];
        let tallest = pdf
            .rects(page)
            .iter()
            .map(|rect| rect.height)
            .fold(0.0, f64::max);
        let mut bars: Vec<_> = pdf
            .rects(page)
            .into_iter()
            .filter(|rect| rect.height == tallest)
            .collect();
        bars.sort_by(|a, b| a.x.total_cmp(&b.x));
        let module = bars
            .iter()
            .map(|bar| bar.width)
            .fold(f64::INFINITY, f64::min);

        // Bar, gap, bar, gap, … back in modules, as a scanner measures them.
        let mut widths = Vec::new();
        for pair in bars.windows(2) {
            widths.push(pair[0].width / module);
            widths.push((pair[1].x - pair[0].x - pair[0].width) / module);
        }
        widths.push(bars.last().expect("bars").width / module);
        let widths: Vec<u8> = widths.iter().map(|width| width.round() as u8).collect();
        assert_eq!(
            widths,
            code128::modules(&label.tracking_code).expect("encodes")
        );

        // The quiet zones keep the symbol clear of the label's edges.
        let first = bars.first().expect("bars");
        let last = bars.last().expect("bars");
        assert!(first.x >= 10.0 * module, "left quiet zone");
        assert!(
            288.0 - (last.x + last.width) >= 10.0 * module,
            "right quiet zone"
        );
    }

    #[test]
    fn a_long_tracking_code_is_set_smaller_but_never_cut() {
        let mut label = label();
        label.tracking_code = "WWWWWWWWWWWWWWWWWWWWWWWWWWWWW".into();
        let text = parsed(&label).all_text();
        assert!(text.contains(&label.tracking_code), "{text:?}");
    }

    #[test]
    fn a_tracking_code_code_128_cannot_encode_is_refused() {
        let mut label = label();
        label.tracking_code = "CL-ÑUÑOA-1".into();
        let refusal = DocumentError::UnencodableCharacter {
            character: 'Ñ',
            position: 3,
        };
        assert_eq!(label_pdf(&label), Err(refusal.clone()));
        assert_eq!(label_zpl(&label), Err(refusal));
    }

    #[test]
    fn an_empty_tracking_code_is_refused() {
        let mut label = label();
        label.tracking_code = String::new();
        assert_eq!(label_pdf(&label), Err(DocumentError::EmptyBarcode));
        assert_eq!(label_zpl(&label), Err(DocumentError::EmptyBarcode));
    }

    #[test]
    fn a_tracking_code_too_long_to_scan_from_a_4x6_label_is_refused() {
        let mut label = label();
        label.tracking_code = "ABCDEFGHIJ".repeat(4);
        assert!(matches!(
            label_pdf(&label),
            Err(DocumentError::BarcodeTooWide { .. })
        ));
        assert!(matches!(
            label_zpl(&label),
            Err(DocumentError::BarcodeTooWide { .. })
        ));
    }

    #[test]
    fn pdftotext_reads_the_label_and_slip_when_it_is_installed() {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let documents = [
            (label_pdf(&label()).expect("renders"), "1Z999AA10123456784"),
            (packing_slip_pdf(&slip(vec![line("MUG-01", 1)])), "MUG-01"),
        ];
        for (bytes, wanted) in documents {
            let child = Command::new("pdftotext")
                .args(["-q", "-", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn();
            let mut child = match child {
                Ok(child) => child,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!("skipped: pdftotext (poppler-utils) is not installed");
                    return;
                }
                Err(error) => panic!("running pdftotext: {error}"),
            };
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(&bytes)
                .expect("pdftotext reads the file");
            let output = child.wait_with_output().expect("pdftotext finishes");
            assert!(output.status.success(), "pdftotext failed");
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(text.contains(wanted), "{wanted:?} not in {text:?}");
        }
    }
}

mod label_zpl {
    use super::*;

    fn zpl(label: &ShippingLabel) -> String {
        label_zpl(label).expect("the label renders")
    }

    /// The data of every field, in order.
    fn fields(zpl: &str) -> Vec<&str> {
        zpl.split("^FD")
            .skip(1)
            .map(|rest| rest.split_once("^FS").expect("every field ends").0)
            .collect()
    }

    #[test]
    fn a_label_is_one_format_for_4x6_at_203_dpi_in_utf8() {
        let zpl = zpl(&label());
        assert!(zpl.starts_with("^XA\n"), "{zpl}");
        assert!(zpl.ends_with("^XZ\n"), "{zpl}");
        assert_eq!(zpl.matches("^XA").count(), 1);
        assert_eq!(zpl.matches("^XZ").count(), 1);
        for command in ["^CI28", "^PW812", "^LL1218"] {
            assert!(zpl.contains(command), "{command} missing");
        }
    }

    #[test]
    fn the_barcode_is_a_code_128_of_the_tracking_code() {
        let zpl = zpl(&label());
        let (_, barcode) = zpl.split_once("^BCN,").expect("a Code 128 field");
        let data = barcode
            .split_once("^FD")
            .and_then(|(_, rest)| rest.split_once("^FS"))
            .expect("barcode data")
            .0;
        assert_eq!(data, "1Z999AA10123456784");
        assert!(
            zpl.contains("^BY3,"),
            "18 mixed characters get 3-dot modules"
        );
    }

    #[test]
    fn no_field_can_end_the_format_or_send_a_printer_command() {
        let mut label = label();
        label.to.name = "^XZ^XA~JR".into();
        label.to.line1 = "Calle_Uno ~ 5".into();
        label.tracking_code = "AB^C~D_E".into();
        let zpl = zpl(&label);
        assert_eq!(zpl.matches("^XZ").count(), 1, "{zpl}");
        for data in fields(&zpl) {
            assert!(!data.contains(['^', '~']), "raw prefix in {data:?}");
        }
        assert!(zpl.contains("^FD_5EXZ_5EXA_7EJR^FS"), "{zpl}");
        assert!(zpl.contains("^FDCalle_5FUno _7E 5^FS"), "{zpl}");
        assert!(zpl.contains("^FDAB_5EC_7ED_5FE^FS"), "{zpl}");
    }

    #[test]
    fn every_field_is_hex_escaped_and_non_ascii_goes_as_utf8_hex() {
        let zpl = zpl(&label());
        let field_count = zpl.matches("^FD").count();
        assert_eq!(zpl.matches("^FH^FD").count(), field_count);
        assert!(zpl.contains("^FDAna P_C3_A9rez^FS"), "{zpl}");
        assert!(zpl.is_ascii());
    }

    #[test]
    fn a_backslash_in_text_cannot_become_a_field_block_line_break() {
        let mut label = label();
        label.to.line2 = Some(r"Torre B \& C".into());
        assert!(zpl(&label).contains(r"^FDTorre B \\& C^FS"));
    }

    #[test]
    fn the_zpl_label_matches_its_snapshot() {
        insta::assert_snapshot!(zpl(&label()));
    }
}
