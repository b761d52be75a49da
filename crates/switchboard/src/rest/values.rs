//! Field values from text: what a path variable or a query parameter says, typed by the
//! field it is bound to.

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

/// The value of `field` (of a singular or repeated field: one element) written as `text`.
///
/// Scalars read as in JSON (numbers in JSON's grammar, `NaN`/`Infinity`/`-Infinity` for
/// floats, `true`/`false`); bytes as base64 (standard or URL-safe, padded or not); enums by
/// value name or number; the well-known types whose JSON form is a string or a scalar
/// (Timestamp, Duration, FieldMask, the wrappers) in that form. Other messages cannot be
/// written as text.
pub(crate) fn from_text(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    kind_from_text(&field.kind(), text)
}

fn kind_from_text(kind: &Kind, text: &str) -> Result<Value, String> {
    let number = |what: &str| format!("{text:?} is not a valid {what}");
    Ok(match kind {
        Kind::String => Value::String(text.to_owned()),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(number("bool")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(integer::<i32>(text).ok_or_else(|| number("int32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(integer::<i64>(text).ok_or_else(|| number("int64"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(integer::<u32>(text).ok_or_else(|| number("uint32"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(integer::<u64>(text).ok_or_else(|| number("uint64"))?)
        }
        Kind::Float => {
            let value = float(text).ok_or_else(|| number("float"))?;
            if value.is_finite() && value.abs() > f64::from(f32::MAX) {
                return Err(format!("{text:?} is out of range for a float"));
            }
            Value::F32(value as f32)
        }
        Kind::Double => Value::F64(float(text).ok_or_else(|| number("double"))?),
        Kind::Bytes => Value::Bytes(bytes(text).ok_or_else(|| number("base64 value"))?.into()),
        Kind::Enum(descriptor) => {
            if let Some(value) = descriptor.get_value_by_name(text) {
                Value::EnumNumber(value.number())
            } else if let Some(number) = integer::<i32>(text) {
                Value::EnumNumber(number)
            } else {
                return Err(format!(
                    "{text:?} is not a value of {}",
                    descriptor.full_name()
                ));
            }
        }
        Kind::Message(descriptor) => Value::Message(well_known_from_text(descriptor, text)?),
    })
}

/// A JSON integer (no fraction, exponent, sign `+` or quotes), in range.
fn integer<T: std::str::FromStr>(text: &str) -> Option<T> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

/// A JSON number, or `NaN`, `Infinity`, `-Infinity`.
fn float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => match serde_json::from_str::<serde_json::Value>(text).ok()? {
            serde_json::Value::Number(number) if text.trim() == text => number.as_f64(),
            _ => None,
        },
    }
}

/// Standard or URL-safe base64, padded or not.
fn bytes(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// A well-known type whose JSON form is a string (or, for wrappers, a scalar), from text.
fn well_known_from_text(
    descriptor: &MessageDescriptor,
    text: &str,
) -> Result<DynamicMessage, String> {
    match descriptor.full_name() {
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask" => {
            if text.is_empty() {
                return Err(format!("an empty {} is not valid", descriptor.name()));
            }
            let json = serde_json::Value::String(text.to_owned());
            DynamicMessage::deserialize(descriptor.clone(), json)
                .map_err(|e| format!("{text:?} is not a valid {}: {e}", descriptor.name()))
        }
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => {
            let field = descriptor
                .get_field_by_name("value")
                .ok_or_else(|| format!("{} has no value field", descriptor.full_name()))?;
            let value = from_text(&field, text)?;
            let mut message = DynamicMessage::new(descriptor.clone());
            message.set_field(&field, value);
            Ok(message)
        }
        other => Err(format!("a {other} cannot be given as text")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_json_grammar_and_range() {
        assert_eq!(integer::<i32>("42"), Some(42));
        assert_eq!(integer::<i32>("-7"), Some(-7));
        assert_eq!(integer::<i32>("-0"), Some(0));
        for bad in [
            "1.0",
            "1e2",
            "0x10",
            "+5",
            "\"5\"",
            "",
            "-",
            "05",
            "2147483648",
            " 1",
        ] {
            assert_eq!(integer::<i32>(bad), None, "{bad}");
        }
        assert_eq!(integer::<u64>("18446744073709551615"), Some(u64::MAX));
        assert_eq!(integer::<u32>("-1"), None);
    }

    #[test]
    fn floats_take_json_numbers_and_the_three_specials() {
        assert_eq!(float("1.5"), Some(1.5));
        assert_eq!(float("1e2"), Some(100.0));
        assert_eq!(float("-0"), Some(0.0));
        assert!(float("NaN").unwrap().is_nan());
        assert_eq!(float("-Infinity"), Some(f64::NEG_INFINITY));
        for bad in ["nan", "inf", "1.", ".5", "abc", " 1"] {
            assert_eq!(float(bad), None, "{bad}");
        }
    }

    #[test]
    fn bytes_take_both_base64_alphabets_with_or_without_padding() {
        assert_eq!(bytes("aGk="), Some(b"hi".to_vec()));
        assert_eq!(bytes("aGk"), Some(b"hi".to_vec()));
        assert_eq!(bytes("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(bytes("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(bytes("!!"), None);
    }
}
