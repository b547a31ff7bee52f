//! A small PDF reader for the tests: it checks the file structure byte by byte (header, every
//! cross-reference offset, stream lengths, trailer) and reads back page sizes, the text shown
//! and the rectangles filled, for the uncompressed files this crate writes.

use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Pdf {
    objects: BTreeMap<usize, String>,
    streams: BTreeMap<usize, Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("the structure of the file is ASCII")
}

impl Pdf {
    /// Parses `bytes`, panicking with a description of the first structural error.
    pub fn parse(bytes: &[u8]) -> Pdf {
        assert!(bytes.starts_with(b"%PDF-1.4\n"), "header");
        assert!(bytes.ends_with(b"%%EOF\n"), "end-of-file marker");
        let startxref = rfind(bytes, b"startxref\n").expect("startxref");
        let after = &bytes[startxref + 10..];
        let end = find(after, b"\n", 0).expect("startxref value");
        let xref: usize = ascii(&after[..end]).parse().expect("startxref is a number");

        let table = &bytes[xref..];
        assert!(
            table.starts_with(b"xref\n0 "),
            "startxref points at the xref table"
        );
        let header_end = find(table, b"\n", 5).expect("subsection header");
        let size: usize = ascii(&table[7..header_end]).parse().expect("entry count");
        let entries = &table[header_end + 1..];
        assert_eq!(&entries[..20], b"0000000000 65535 f \n", "free entry 0");

        let mut objects = BTreeMap::new();
        let mut streams = BTreeMap::new();
        for number in 1..size {
            let entry = &entries[number * 20..(number + 1) * 20];
            assert_eq!(&entry[10..], b" 00000 n \n", "entry {number} format");
            let offset: usize = ascii(&entry[..10]).parse().expect("offset");
            let heading = format!("{number} 0 obj\n");
            assert!(
                bytes[offset..].starts_with(heading.as_bytes()),
                "xref entry {number} points at {:?}",
                String::from_utf8_lossy(&bytes[offset..(offset + 12).min(bytes.len())])
            );
            let body_start = offset + heading.len();
            let body_end = find(bytes, b"\nendobj\n", body_start).expect("endobj");
            let body = &bytes[body_start..body_end];
            if let Some(stream_at) = find(body, b"\nstream\n", 0) {
                let dictionary = ascii(&body[..stream_at]);
                let length: usize = dictionary
                    .trim_start_matches("<< /Length ")
                    .trim_end_matches(" >>")
                    .parse()
                    .expect("a direct /Length");
                let data = &body[stream_at + 8..];
                assert_eq!(data.len(), length + 10, "stream {number} /Length");
                assert!(data.ends_with(b"\nendstream"), "stream {number} end");
                streams.insert(number, data[..length].to_vec());
                objects.insert(number, dictionary.to_owned());
            } else {
                objects.insert(number, ascii(body).to_owned());
            }
        }
        let trailer = &entries[size * 20..];
        let expected = format!("trailer\n<< /Size {size} /Root 1 0 R");
        assert!(trailer.starts_with(expected.as_bytes()), "trailer");
        let ending = format!(">>\nstartxref\n{xref}\n%%EOF\n");
        assert!(
            trailer.ends_with(ending.as_bytes()),
            "nothing follows the trailer"
        );
        Pdf { objects, streams }
    }

    pub fn object(&self, number: usize) -> &str {
        self.objects.get(&number).expect("object exists")
    }

    /// Page object numbers in reading order, from the page tree.
    pub fn pages(&self) -> Vec<usize> {
        let catalog = self.object(1);
        assert!(catalog.contains("/Type /Catalog"), "{catalog}");
        let tree = self.object(2);
        let kids = between(tree, "/Kids [", "]");
        let pages: Vec<usize> = kids
            .split(" 0 R")
            .map(str::trim)
            .filter(|kid| !kid.is_empty())
            .map(|kid| kid.parse().expect("page reference"))
            .collect();
        let count: usize = between(tree, "/Count ", " ").parse().expect("count");
        assert_eq!(count, pages.len(), "page count");
        pages
    }

    pub fn media_box(&self, page: usize) -> String {
        format!("[{}]", between(self.object(page), "/MediaBox [", "]"))
    }

    fn content(&self, page: usize) -> &[u8] {
        let contents: usize = between(self.object(page), "/Contents ", " 0 R")
            .parse()
            .expect("contents reference");
        self.streams.get(&contents).expect("content stream")
    }

    /// Every string shown on `page`, in drawing order, decoded from WinAnsi.
    pub fn text(&self, page: usize) -> Vec<String> {
        let content = self.content(page);
        let mut shown = Vec::new();
        let mut at = 0;
        while let Some(open) = find(content, b"(", at) {
            let (bytes, close) = read_literal(content, open);
            assert!(
                content[close..].starts_with(b" Tj"),
                "a string is only ever shown"
            );
            shown.push(bytes.iter().map(|&byte| win_ansi_char(byte)).collect());
            at = close;
        }
        shown
    }

    /// All text of all pages, one string per shown string.
    pub fn all_text(&self) -> Vec<String> {
        self.pages()
            .into_iter()
            .flat_map(|page| self.text(page))
            .collect()
    }

    /// The rectangles added to paths on `page` (`re`), whether filled or outlined.
    pub fn rects(&self, page: usize) -> Vec<Rect> {
        ascii(self.content(page))
            .lines()
            .filter(|line| !line.starts_with("BT "))
            .filter_map(|line| {
                let operands: Vec<&str> = line.split(' ').collect();
                let at = operands.iter().position(|&word| word == "re")?;
                let number =
                    |index: usize| -> f64 { operands[index].parse().expect("a rectangle operand") };
                Some(Rect {
                    x: number(at - 4),
                    y: number(at - 3),
                    width: number(at - 2),
                    height: number(at - 1),
                })
            })
            .collect()
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).expect(start) + start.len();
    let to = text[from..].find(end).expect(end) + from;
    &text[from..to]
}

/// Reads the literal string opening at `open`; returns its bytes and the index after `)`.
fn read_literal(content: &[u8], open: usize) -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    let mut at = open + 1;
    loop {
        match content[at] {
            b')' => return (bytes, at + 1),
            b'\\' => {
                let next = content[at + 1];
                if next.is_ascii_digit() {
                    let octal = ascii(&content[at + 1..at + 4]);
                    bytes.push(u8::from_str_radix(octal, 8).expect("octal escape"));
                    at += 4;
                } else {
                    bytes.push(next);
                    at += 2;
                }
            }
            b'(' => panic!("an unescaped ( inside a string"),
            byte => {
                bytes.push(byte);
                at += 1;
            }
        }
    }
}

fn win_ansi_char(byte: u8) -> char {
    match byte {
        0x80 => '€',
        0x85 => '…',
        0x91 => '\u{2018}',
        0x92 => '\u{2019}',
        0x93 => '\u{201C}',
        0x94 => '\u{201D}',
        0x96 => '–',
        0x97 => '—',
        other => char::from(other),
    }
}
