//! ISO 3166-1 country codes.
