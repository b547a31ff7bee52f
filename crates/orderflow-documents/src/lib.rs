//! Printable fulfilment documents: packing slips (PDF), 4×6 in shipping labels (PDF and ZPL) and
//! the Code 128 barcodes on them.
//!
//! Every document is a pure function of its description: no I/O, no clock, no randomness. The
//! same input always renders to the same bytes, so a label can be reprinted at any time and come
//! out identical to the first one.

mod address;
pub mod code128;
mod label;
mod pdf;
mod slip;
mod text;

pub use address::PartyAddress;
pub use label::{ShippingLabel, label_pdf, label_zpl};
pub use slip::{PackingSlip, SlipLine, packing_slip_pdf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("a Code 128 barcode needs at least one character")]
    EmptyBarcode,
    /// `position` counts characters, not bytes, from 0.
    #[error(
        "Code 128 cannot encode {character:?} at position {position}: only printable ASCII is supported"
    )]
    UnencodableCharacter { character: char, position: usize },
    #[error("the barcode is {modules} modules wide but a 4x6 label has room for at most {max}")]
    BarcodeTooWide { modules: usize, max: usize },
}
