//! gRPC and gRPC-Web (binary and text): enveloped messages with the status in trailers —
//! HTTP trailers for gRPC, a final `0x80` envelope for gRPC-Web. One module serves all three
//! variants; they differ only in content types, how trailers travel, and (for text) a base64
//! layer over the body.

pub(crate) mod base64_body;
pub(crate) mod client;
pub(crate) mod server;
pub(crate) mod status;

use std::time::Duration;

use http::HeaderValue;

use crate::Error;
use crate::codec::Codec;

/// `grpc-timeout`.
pub(crate) const TIMEOUT_HEADER: &str = "grpc-timeout";
/// Message compression.
pub(crate) const ENCODING_HEADER: &str = "grpc-encoding";
/// Accepted message compressions.
pub(crate) const ACCEPT_ENCODING_HEADER: &str = "grpc-accept-encoding";
/// The status code trailer.
pub(crate) const STATUS_HEADER: &str = "grpc-status";
/// The status message trailer (percent-encoded).
pub(crate) const MESSAGE_HEADER: &str = "grpc-message";
/// The `google.rpc.Status` trailer (binary).
pub(crate) const DETAILS_HEADER: &str = "grpc-status-details-bin";
/// Flag of the gRPC-Web trailers envelope.
pub(crate) const FLAG_TRAILERS: u8 = 0b1000_0000;

/// Which of the three wire variants a call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variant {
    /// gRPC over HTTP/2, status in HTTP trailers.
    Grpc,
    /// gRPC-Web, status in a trailers envelope.
    Web,
    /// gRPC-Web with the whole body base64-encoded (`application/grpc-web-text`).
    WebText,
}

impl Variant {
    /// Reads the variant and codec from a content type; `None` when it is not gRPC or the
    /// codec is unknown.
    pub(crate) fn from_content_type(content_type: &str) -> Option<(Variant, Option<Codec>)> {
        // Matched case-insensitively in place: this runs twice on every call, so it must not
        // allocate a lowercased copy.
        let content_type = content_type.trim();
        let (variant, rest) = if let Some(rest) =
            strip_prefix_ignore_case(content_type, "application/grpc-web-text")
        {
            (Variant::WebText, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(content_type, "application/grpc-web") {
            (Variant::Web, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(content_type, "application/grpc") {
            (Variant::Grpc, rest)
        } else {
            return None;
        };
        let codec = if rest.is_empty() || rest.eq_ignore_ascii_case("+proto") {
            Some(Codec::Proto)
        } else if rest.eq_ignore_ascii_case("+json") {
            Some(Codec::Json)
        } else {
            rest.strip_prefix('+')
                .and_then(|name| Codec::from_name(&name.to_ascii_lowercase()))
        };
        Some((variant, codec))
    }

    /// The content type of a codec in this variant.
    pub(crate) fn content_type(self, codec: Codec) -> HeaderValue {
        HeaderValue::from_static(match (self, codec) {
            (Variant::Grpc, Codec::Proto) => "application/grpc+proto",
            (Variant::Grpc, Codec::Json) => "application/grpc+json",
            (Variant::Web, Codec::Proto) => "application/grpc-web+proto",
            (Variant::Web, Codec::Json) => "application/grpc-web+json",
            (Variant::WebText, Codec::Proto) => "application/grpc-web-text+proto",
            (Variant::WebText, Codec::Json) => "application/grpc-web-text+json",
        })
    }

    pub(crate) fn protocol(self) -> crate::Protocol {
        match self {
            Variant::Grpc => crate::Protocol::Grpc,
            Variant::Web | Variant::WebText => crate::Protocol::GrpcWeb,
        }
    }
}

/// Parses `grpc-timeout`: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub(crate) fn parse_timeout(value: &HeaderValue) -> Result<Duration, Error> {
    let text = value.as_bytes();
    let invalid = || {
        Error::invalid_argument(format!(
            "protocol error: invalid grpc-timeout {:?}",
            String::from_utf8_lossy(text)
        ))
    };
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let amount: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(invalid)?;
    Ok(match unit {
        b"H" => Duration::from_secs(amount.saturating_mul(3600)),
        b"M" => Duration::from_secs(amount.saturating_mul(60)),
        b"S" => Duration::from_secs(amount),
        b"m" => Duration::from_millis(amount),
        b"u" => Duration::from_micros(amount),
        b"n" => Duration::from_nanos(amount),
        _ => return Err(invalid()),
    })
}

/// Formats a timeout in the finest unit that fits in 8 digits.
pub(crate) fn format_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos().max(1);
    let choices: [(u128, &str); 6] = [
        (1, "n"),
        (1_000, "u"),
        (1_000_000, "m"),
        (1_000_000_000, "S"),
        (60_000_000_000, "M"),
        (3_600_000_000_000, "H"),
    ];
    for (per_unit, unit) in choices {
        let amount = nanos.div_ceil(per_unit);
        if amount <= MAX {
            return HeaderValue::try_from(format!("{amount}{unit}"))
                .unwrap_or(HeaderValue::from_static("99999999H"));
        }
    }
    HeaderValue::from_static("99999999H")
}

/// `text` without `prefix`, compared ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            Variant::from_content_type("application/grpc"),
            Some((Variant::Grpc, Some(Codec::Proto)))
        );
        assert_eq!(
            Variant::from_content_type("application/grpc+json"),
            Some((Variant::Grpc, Some(Codec::Json)))
        );
        assert_eq!(
            Variant::from_content_type("application/grpc-web-text+proto"),
            Some((Variant::WebText, Some(Codec::Proto)))
        );
        assert_eq!(
            Variant::from_content_type("application/grpc-web+xml"),
            Some((Variant::Web, None))
        );
        assert_eq!(Variant::from_content_type("application/json"), None);
    }

    #[test]
    fn timeouts_round_trip_in_every_unit() {
        for (text, expected) in [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("45m", Duration::from_millis(45)),
            ("7u", Duration::from_micros(7)),
            ("99999999n", Duration::from_nanos(99_999_999)),
        ] {
            assert_eq!(
                parse_timeout(&HeaderValue::from_static(text)).unwrap(),
                expected
            );
        }
        for bad in ["", "S", "123456789S", "10x", "-1S", "1.5S"] {
            assert!(
                parse_timeout(&HeaderValue::from_static(bad)).is_err(),
                "{bad}"
            );
        }
        let formatted = format_timeout(Duration::from_millis(1500));
        assert_eq!(
            parse_timeout(&formatted).unwrap(),
            Duration::from_millis(1500)
        );
        let long = format_timeout(Duration::from_secs(86_400 * 365));
        assert!(parse_timeout(&long).unwrap() >= Duration::from_secs(86_400 * 365));
    }
}
