//! Webhook signatures, verified over the exact bytes received and compared in constant time.
//!
//! Shopify, WooCommerce and Jumpseller send base64(HMAC-SHA256(secret, raw body)) in a header
//! of their own; orderflow's own deliveries and the `custom` platform use Standard Webhooks.
//! Every check takes a list of secrets so that a store can rotate its secret without a gap.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac
}

/// base64(HMAC-SHA256(secret, body)), as Shopify, WooCommerce and Jumpseller sign.
pub fn base64_hmac_sha256(secret: &[u8], body: &[u8]) -> String {
    BASE64.encode(mac(secret, &[body]).finalize().into_bytes())
}

/// Whether `header` is base64(HMAC-SHA256(secret, body)) for one of `secrets`.
pub fn verify_base64_hmac_sha256<'a>(
    secrets: impl IntoIterator<Item = &'a [u8]>,
    body: &[u8],
    header: &str,
) -> bool {
    let Ok(claimed) = BASE64.decode(header.trim()) else {
        return false;
    };
    secrets
        .into_iter()
        .any(|secret| mac(secret, &[body]).verify_slice(&claimed).is_ok())
}

/// Equality whose running time does not depend on where the inputs differ, for shared
/// secrets sent as they are (VTEX's configured hook header).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// The Standard Webhooks scheme (v1, symmetric): `webhook-signature` holds space-separated
/// `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>` entries.
pub mod standard {
    use super::*;

    /// How far a `webhook-timestamp` may be from now, either way, as the reference libraries
    /// allow: a replayed old delivery is refused even with a valid signature.
    pub const TOLERANCE_SECONDS: i64 = 5 * 60;

    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum SignatureError {
        #[error("the secret must be whsec_ followed by base64")]
        Secret,
        #[error("the {0} header is missing")]
        MissingHeader(&'static str),
        #[error("webhook-timestamp must be Unix seconds")]
        Timestamp,
        #[error("webhook-timestamp is more than five minutes away from now")]
        Expired,
        #[error("no signature in webhook-signature matches")]
        Mismatch,
    }

    /// A signing key: the bytes after `whsec_`, base64-decoded.
    #[derive(Clone, PartialEq, Eq)]
    pub struct Secret(Vec<u8>);

    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Secret(..)")
        }
    }

    impl Secret {
        pub fn parse(text: &str) -> Result<Self, SignatureError> {
            let encoded = text.strip_prefix("whsec_").unwrap_or(text);
            BASE64
                .decode(encoded)
                .ok()
                .filter(|key| !key.is_empty())
                .map(Secret)
                .ok_or(SignatureError::Secret)
        }

        pub fn from_bytes(key: Vec<u8>) -> Self {
            Secret(key)
        }

        /// The `whsec_…` form that is shown once to whoever configures the receiver.
        pub fn encoded(&self) -> String {
            format!("whsec_{}", BASE64.encode(&self.0))
        }

        /// The `webhook-signature` value for one message.
        pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
            let timestamp = timestamp.to_string();
            let signature = mac(
                &self.0,
                &[
                    message_id.as_bytes(),
                    b".",
                    timestamp.as_bytes(),
                    b".",
                    body,
                ],
            )
            .finalize()
            .into_bytes();
            format!("v1,{}", BASE64.encode(signature))
        }
    }

    /// The three headers of a delivery, as received.
    #[derive(Debug, Clone, Copy)]
    pub struct Headers<'a> {
        pub id: Option<&'a str>,
        pub timestamp: Option<&'a str>,
        pub signature: Option<&'a str>,
    }

    /// Verifies a delivery against any of `secrets`, refusing timestamps outside
    /// [`TOLERANCE_SECONDS`] of `now` (Unix seconds).
    pub fn verify(
        secrets: &[Secret],
        headers: Headers<'_>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let id = headers
            .id
            .ok_or(SignatureError::MissingHeader("webhook-id"))?;
        let timestamp_text = headers
            .timestamp
            .ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
        let signatures = headers
            .signature
            .ok_or(SignatureError::MissingHeader("webhook-signature"))?;
        let timestamp: i64 = timestamp_text
            .trim()
            .parse()
            .map_err(|_| SignatureError::Timestamp)?;
        if (now - timestamp).abs() > TOLERANCE_SECONDS {
            return Err(SignatureError::Expired);
        }
        let claimed: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .collect();
        let matches = secrets.iter().any(|secret| {
            let expected = mac(
                &secret.0,
                &[
                    id.as_bytes(),
                    b".",
                    timestamp_text.trim().as_bytes(),
                    b".",
                    body,
                ],
            );
            claimed
                .iter()
                .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
        });
        if matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// EasyPost's legacy tracking-webhook signature: `X-Hmac-Signature: hmac-sha256-hex=<hex>`,
/// keyed with the NFKD-normalised secret.
pub fn verify_easypost(secret: &str, body: &[u8], header: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let Some(hex) = header.trim().strip_prefix("hmac-sha256-hex=") else {
        return false;
    };
    let Some(claimed) = decode_hex(hex) else {
        return false;
    };
    let key: String = secret.nfkd().collect();
    mac(key.as_bytes(), &[body]).verify_slice(&claimed).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::standard::{Headers, Secret, SignatureError, verify};
    use super::*;

    /// The test vector of the Standard Webhooks specification (PLATFORMS.md §7).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec_headers(signature: &str) -> Headers<'_> {
        Headers {
            id: Some(SPEC_ID),
            timestamp: Some("1614265330"),
            signature: Some(signature),
        }
    }

    #[test]
    fn the_standard_webhooks_test_vector_signs_and_verifies() {
        let secret = Secret::parse(SPEC_SECRET).expect("the spec's secret");
        assert_eq!(
            secret.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
        assert_eq!(secret.encoded(), SPEC_SECRET);
        let rotated = [Secret::from_bytes(b"old".to_vec()), secret];
        let listed = format!("v1,bm90IGl0 {SPEC_SIGNATURE}");
        assert_eq!(
            verify(
                &rotated,
                spec_headers(&listed),
                SPEC_BODY,
                SPEC_TIMESTAMP + 60
            ),
            Ok(())
        );
    }

    #[test]
    fn a_standard_webhook_is_refused_when_anything_differs() {
        let secrets = [Secret::parse(SPEC_SECRET).expect("the spec's secret")];
        let now = SPEC_TIMESTAMP;
        assert_eq!(
            verify(
                &secrets,
                spec_headers(SPEC_SIGNATURE),
                br#"{"test": 2432232315}"#,
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets, spec_headers(SPEC_SIGNATURE), SPEC_BODY, now + 301),
            Err(SignatureError::Expired)
        );
        let unsigned = Headers {
            signature: None,
            ..spec_headers("")
        };
        assert_eq!(
            verify(&secrets, unsigned, SPEC_BODY, now),
            Err(SignatureError::MissingHeader("webhook-signature"))
        );
        let other = [Secret::from_bytes(b"another key".to_vec())];
        assert_eq!(
            verify(&other, spec_headers(SPEC_SIGNATURE), SPEC_BODY, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn shop_hmacs_verify_with_the_current_or_the_previous_secret_only() {
        let body = br#"{"id":820982911946154508}"#;
        let header = base64_hmac_sha256(b"current", body);
        assert!(verify_base64_hmac_sha256(
            [&b"previous"[..], b"current"],
            body,
            &header
        ));
        assert!(!verify_base64_hmac_sha256([&b"another"[..]], body, &header));
        assert!(!verify_base64_hmac_sha256(
            [&b"current"[..]],
            b"{}",
            &header
        ));
        assert!(!verify_base64_hmac_sha256(
            [&b"current"[..]],
            body,
            "not base64!"
        ));
    }

    /// EasyPost's published vector: the fixture without its final newline, secret "sécret".
    #[test]
    fn the_easypost_test_vector_verifies() {
        let fixture = include_bytes!("../tests/fixtures/easypost/event_tracker_updated.json");
        let body = fixture.strip_suffix(b"\n").unwrap_or(fixture);
        let header =
            "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db";
        assert!(verify_easypost("sécret", body, header));
        assert!(!verify_easypost("secret", body, header));
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokem"));
        assert!(!constant_time_eq(b"token", b"tok"));
    }
}
