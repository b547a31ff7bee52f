//! Code 128 (ISO/IEC 15417) in code sets B and C: the symbol values of a string, with start,
//! mod-103 checksum and stop, and the bar and space widths that draw them.
//!
//! Code set A (ASCII control characters) and the FNC characters are left out on purpose: a
//! tracking code is printable ASCII, and refusing anything else surfaces bad data before a label
//! is printed rather than at the carrier's scanner.

use crate::DocumentError;

const CODE_C: u8 = 99;
const CODE_B: u8 = 100;
const START_B: u8 = 104;
const START_C: u8 = 105;
const STOP: u8 = 106;

/// Bar and space widths in modules for symbol values 0 to 105: bar, space, bar, space, bar,
/// space, eleven modules in all. The stop symbol, with its extra final bar, is [`STOP_PATTERN`].
pub(crate) const PATTERNS: [[u8; 6]; 106] = [
    [2, 1, 2, 2, 2, 2],
    [2, 2, 2, 1, 2, 2],
    [2, 2, 2, 2, 2, 1],
    [1, 2, 1, 2, 2, 3],
    [1, 2, 1, 3, 2, 2],
    [1, 3, 1, 2, 2, 2],
    [1, 2, 2, 2, 1, 3],
    [1, 2, 2, 3, 1, 2],
    [1, 3, 2, 2, 1, 2],
    [2, 2, 1, 2, 1, 3],
    [2, 2, 1, 3, 1, 2],
    [2, 3, 1, 2, 1, 2],
    [1, 1, 2, 2, 3, 2],
    [1, 2, 2, 1, 3, 2],
    [1, 2, 2, 2, 3, 1],
    [1, 1, 3, 2, 2, 2],
    [1, 2, 3, 1, 2, 2],
    [1, 2, 3, 2, 2, 1],
    [2, 2, 3, 2, 1, 1],
    [2, 2, 1, 1, 3, 2],
    [2, 2, 1, 2, 3, 1],
    [2, 1, 3, 2, 1, 2],
    [2, 2, 3, 1, 1, 2],
    [3, 1, 2, 1, 3, 1],
    [3, 1, 1, 2, 2, 2],
    [3, 2, 1, 1, 2, 2],
    [3, 2, 1, 2, 2, 1],
    [3, 1, 2, 2, 1, 2],
    [3, 2, 2, 1, 1, 2],
    [3, 2, 2, 2, 1, 1],
    [2, 1, 2, 1, 2, 3],
    [2, 1, 2, 3, 2, 1],
    [2, 3, 2, 1, 2, 1],
    [1, 1, 1, 3, 2, 3],
    [1, 3, 1, 1, 2, 3],
    [1, 3, 1, 3, 2, 1],
    [1, 1, 2, 3, 1, 3],
    [1, 3, 2, 1, 1, 3],
    [1, 3, 2, 3, 1, 1],
    [2, 1, 1, 3, 1, 3],
    [2, 3, 1, 1, 1, 3],
    [2, 3, 1, 3, 1, 1],
    [1, 1, 2, 1, 3, 3],
    [1, 1, 2, 3, 3, 1],
    [1, 3, 2, 1, 3, 1],
    [1, 1, 3, 1, 2, 3],
    [1, 1, 3, 3, 2, 1],
    [1, 3, 3, 1, 2, 1],
    [3, 1, 3, 1, 2, 1],
    [2, 1, 1, 3, 3, 1],
    [2, 3, 1, 1, 3, 1],
    [2, 1, 3, 1, 1, 3],
    [2, 1, 3, 3, 1, 1],
    [2, 1, 3, 1, 3, 1],
    [3, 1, 1, 1, 2, 3],
    [3, 1, 1, 3, 2, 1],
    [3, 3, 1, 1, 2, 1],
    [3, 1, 2, 1, 1, 3],
    [3, 1, 2, 3, 1, 1],
    [3, 3, 2, 1, 1, 1],
    [3, 1, 4, 1, 1, 1],
    [2, 2, 1, 4, 1, 1],
    [4, 3, 1, 1, 1, 1],
    [1, 1, 1, 2, 2, 4],
    [1, 1, 1, 4, 2, 2],
    [1, 2, 1, 1, 2, 4],
    [1, 2, 1, 4, 2, 1],
    [1, 4, 1, 1, 2, 2],
    [1, 4, 1, 2, 2, 1],
    [1, 1, 2, 2, 1, 4],
    [1, 1, 2, 4, 1, 2],
    [1, 2, 2, 1, 1, 4],
    [1, 2, 2, 4, 1, 1],
    [1, 4, 2, 1, 1, 2],
    [1, 4, 2, 2, 1, 1],
    [2, 4, 1, 2, 1, 1],
    [2, 2, 1, 1, 1, 4],
    [4, 1, 3, 1, 1, 1],
    [2, 4, 1, 1, 1, 2],
    [1, 3, 4, 1, 1, 1],
    [1, 1, 1, 2, 4, 2],
    [1, 2, 1, 1, 4, 2],
    [1, 2, 1, 2, 4, 1],
    [1, 1, 4, 2, 1, 2],
    [1, 2, 4, 1, 1, 2],
    [1, 2, 4, 2, 1, 1],
    [4, 1, 1, 2, 1, 2],
    [4, 2, 1, 1, 1, 2],
    [4, 2, 1, 2, 1, 1],
    [2, 1, 2, 1, 4, 1],
    [2, 1, 4, 1, 2, 1],
    [4, 1, 2, 1, 2, 1],
    [1, 1, 1, 1, 4, 3],
    [1, 1, 1, 3, 4, 1],
    [1, 3, 1, 1, 4, 1],
    [1, 1, 4, 1, 1, 3],
    [1, 1, 4, 3, 1, 1],
    [4, 1, 1, 1, 1, 3],
    [4, 1, 1, 3, 1, 1],
    [1, 1, 3, 1, 4, 1],
    [1, 1, 4, 1, 3, 1],
    [3, 1, 1, 1, 4, 1],
    [4, 1, 1, 1, 3, 1],
    [2, 1, 1, 4, 1, 2],
    [2, 1, 1, 2, 1, 4],
    [2, 1, 1, 2, 3, 2],
];

pub(crate) const STOP_PATTERN: [u8; 7] = [2, 3, 3, 1, 1, 1, 2];

/// The symbol values of `data`: a start symbol, the data (switching between code sets B and C so
/// that runs of digits take half the width), the mod-103 checksum and the stop symbol.
pub fn encode(data: &str) -> Result<Vec<u8>, DocumentError> {
    let bytes = printable_ascii(data)?;
    let digits_from = |at: usize| {
        bytes.get(at..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };

    let leading_digits = digits_from(0);
    // ISO/IEC 15417 Annex E: start in C when that is no longer than B, i.e. for exactly two
    // digits or for four or more leading digits.
    let mut in_c = leading_digits >= 4 || (leading_digits == 2 && bytes.len() == 2);
    let mut symbols = Vec::with_capacity(bytes.len() + 4);
    symbols.push(if in_c { START_C } else { START_B });

    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let run = digits_from(at);
        if in_c {
            match bytes.get(at..at + 2) {
                Some(&[tens, units]) if run >= 2 => {
                    symbols.push((tens - b'0') * 10 + (units - b'0'));
                    at += 2;
                }
                _ => {
                    symbols.push(CODE_B);
                    in_c = false;
                }
            }
            continue;
        }
        // Switching to C and back costs two symbols and saves one per pair, so a run pays off
        // from six digits, or from four when it ends the data and no switch back is needed.
        let worth_switching = run >= 6 || (run >= 4 && at + run == bytes.len());
        if worth_switching && run % 2 == 0 {
            symbols.push(CODE_C);
            in_c = true;
        } else {
            // An odd run leaves its first digit in B; the rest pair up.
            symbols.push(byte - b' ');
            at += 1;
        }
    }

    symbols.push(checksum(&symbols));
    symbols.push(STOP);
    Ok(symbols)
}

/// The bar and space widths, in modules, that draw `data`: they alternate starting and ending
/// with a bar. Quiet zones (ten modules of space either side) are the caller's to leave.
pub fn modules(data: &str) -> Result<Vec<u8>, DocumentError> {
    let symbols = encode(data)?;
    let mut widths = Vec::with_capacity(symbols.len() * 6 + 1);
    for symbol in symbols {
        if symbol == STOP {
            widths.extend_from_slice(&STOP_PATTERN);
        } else {
            let pattern = PATTERNS
                .get(usize::from(symbol))
                .expect("encode only yields symbol values 0 to 106");
            widths.extend_from_slice(pattern);
        }
    }
    Ok(widths)
}

/// The weighted sum of the symbols so far, mod 103: the start symbol weighs 1, and so does the
/// first data symbol, then 2, 3, …
fn checksum(symbols: &[u8]) -> u8 {
    let sum = symbols
        .iter()
        .enumerate()
        .map(|(position, &value)| position.max(1) * usize::from(value))
        .fold(0, |sum, term| (sum + term) % 103);
    u8::try_from(sum).expect("a value mod 103 fits in a byte")
}

fn printable_ascii(data: &str) -> Result<&[u8], DocumentError> {
    if data.is_empty() {
        return Err(DocumentError::EmptyBarcode);
    }
    match data
        .chars()
        .enumerate()
        .find(|(_, c)| !(' '..='~').contains(c))
    {
        Some((position, character)) => Err(DocumentError::UnencodableCharacter {
            character,
            position,
        }),
        None => Ok(data.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// Bars as `1`, spaces as `0`, one character per module, as barcode references print them.
    fn bit_string(widths: &[u8]) -> String {
        widths
            .iter()
            .enumerate()
            .flat_map(|(index, &width)| {
                let module = if index % 2 == 0 { '1' } else { '0' };
                std::iter::repeat_n(module, usize::from(width))
            })
            .collect()
    }

    /// Reads the widths back as a scanner would: pattern by pattern, checking the start symbol,
    /// the checksum and the stop symbol, and following the switches between code sets.
    fn decode(widths: &[u8]) -> Result<String, String> {
        let (body, stop) = widths
            .split_at_checked(widths.len().saturating_sub(7))
            .ok_or("too short")?;
        if stop != STOP_PATTERN {
            return Err("no stop pattern".into());
        }
        if body.len() % 6 != 0 {
            return Err("a partial symbol".into());
        }
        let symbols = body
            .chunks(6)
            .map(|chunk| {
                PATTERNS
                    .iter()
                    .position(|pattern| pattern == chunk)
                    .and_then(|value| u8::try_from(value).ok())
                    .ok_or_else(|| format!("unknown pattern {chunk:?}"))
            })
            .collect::<Result<Vec<u8>, String>>()?;
        let (&check, symbols) = symbols.split_last().ok_or("no checksum")?;
        if checksum(symbols) != check {
            return Err("checksum mismatch".into());
        }
        let (&start, data) = symbols.split_first().ok_or("no start symbol")?;
        let mut in_c = match start {
            START_B => false,
            START_C => true,
            other => return Err(format!("unexpected start symbol {other}")),
        };
        let mut text = String::new();
        for &symbol in data {
            match (in_c, symbol) {
                (true, 0..=99) => text.push_str(&format!("{symbol:02}")),
                (true, CODE_B) => in_c = false,
                (false, 0..=94) => text.push(char::from(symbol + b' ')),
                (false, CODE_C) => in_c = true,
                _ => return Err(format!("symbol {symbol} is not valid here")),
            }
        }
        Ok(text)
    }

    fn encoded(data: &str) -> Vec<u8> {
        encode(data).expect("test data is printable ASCII")
    }

    #[test]
    fn every_symbol_is_eleven_modules_with_an_even_number_of_bar_modules() {
        // The parity rule lets a scanner detect a misread element; a typo in the table breaks it.
        for (value, pattern) in PATTERNS.iter().enumerate() {
            let total: u8 = pattern.iter().sum();
            let bars: u8 = pattern.iter().step_by(2).sum();
            assert_eq!(total, 11, "symbol {value}");
            assert_eq!(bars % 2, 0, "symbol {value}");
        }
        assert_eq!(STOP_PATTERN.iter().sum::<u8>(), 13);
    }

    #[test]
    fn no_two_symbols_share_a_pattern() {
        let distinct: HashSet<_> = PATTERNS.iter().collect();
        assert_eq!(distinct.len(), PATTERNS.len());
    }

    #[test]
    fn the_published_bar_pattern_of_123_is_reproduced() {
        // Start B, "1", "2", "3" and stop are the bit strings zxing's Code128WriterTestCase
        // publishes. The checksum is 104 + 1×17 + 2×18 + 3×19 = 214 ≡ 8 (mod 103), and
        // symbol 8 is 1-3-2-2-1-2.
        let expected = [
            "11010010000",   // start B
            "10011100110",   // 1
            "11001110010",   // 2
            "11001011100",   // 3
            "10001100100",   // checksum 8
            "1100011101011", // stop
        ]
        .concat();
        let widths = modules("123").expect("digits are encodable");
        assert_eq!(bit_string(&widths), expected);
    }

    #[test]
    fn the_checksum_weighs_each_symbol_by_its_position() {
        // P=48 J=42 J=42 1=17 2=18 3=19 C=35 in code set B:
        // 104 + 48 + 2×42 + 3×42 + 4×17 + 5×18 + 6×19 + 7×35 = 879 = 8×103 + 55.
        assert_eq!(
            encoded("PJJ123C"),
            [START_B, 48, 42, 42, 17, 18, 19, 35, 55, STOP]
        );
    }

    #[test]
    fn trailing_digits_are_packed_in_pairs_in_code_set_c() {
        // 104 + 33 + 2×34 + 3×99 + 4×12 + 5×34 + 6×56 + 7×78 = 1602 = 15×103 + 57.
        assert_eq!(
            encoded("AB12345678"),
            [START_B, 33, 34, CODE_C, 12, 34, 56, 78, 57, STOP]
        );
    }

    #[test]
    fn an_odd_run_of_digits_keeps_its_first_digit_in_code_set_b() {
        // 104 + 56 + 2×17 + 3×99 + 4×23 + 5×45 = 808 = 7×103 + 87.
        assert_eq!(
            encoded("X12345"),
            [START_B, 56, 17, CODE_C, 23, 45, 87, STOP]
        );
    }

    #[test]
    fn leading_digits_start_in_code_set_c_and_switch_back_for_the_rest() {
        // 105 + 12 + 2×34 + 3×100 + 4×21 = 569 = 5×103 + 54.
        assert_eq!(encoded("12345"), [START_C, 12, 34, CODE_B, 21, 54, STOP]);
    }

    #[test]
    fn a_short_digit_run_in_the_middle_stays_in_code_set_b() {
        // Four digits followed by letters: switching to C and back would save nothing.
        let symbols = encoded("AB1234CD");
        assert!(!symbols.contains(&CODE_C), "{symbols:?}");
        assert_eq!(symbols.len(), 8 + 3);
    }

    #[test]
    fn an_empty_value_is_refused() {
        assert_eq!(encode(""), Err(DocumentError::EmptyBarcode));
    }

    #[test]
    fn characters_outside_printable_ascii_are_refused_with_their_position() {
        assert_eq!(
            encode("1Zñ9"),
            Err(DocumentError::UnencodableCharacter {
                character: 'ñ',
                position: 2
            })
        );
        assert_eq!(
            modules("AB\tC"),
            Err(DocumentError::UnencodableCharacter {
                character: '\t',
                position: 2
            })
        );
    }

    proptest! {
        #[test]
        fn any_printable_ascii_string_encodes_and_decodes_back(data in "[ -~]{1,48}") {
            let widths = modules(&data).expect("printable ASCII is encodable");
            prop_assert!(widths.iter().all(|&width| (1..=4).contains(&width)));
            prop_assert_eq!(decode(&widths), Ok(data));
        }

        #[test]
        fn digit_heavy_strings_decode_back(data in "[0-9]{1,30}([A-Z][0-9]{1,12}){0,3}") {
            let widths = modules(&data).expect("digits and capitals are encodable");
            prop_assert_eq!(decode(&widths), Ok(data));
        }

        #[test]
        fn code_set_c_never_makes_a_barcode_longer_than_code_set_b_alone(data in "[0-9A-Z]{1,40}") {
            let b_only = data.len() + 3;
            prop_assert!(encoded(&data).len() <= b_only);
        }
    }
}
