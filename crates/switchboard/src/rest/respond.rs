//! REST answers: a response message as JSON (or raw, for `google.api.HttpBody`), errors as
//! an HTTP status with a `google.rpc.Status` JSON body, and the transcoder's own refusals.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, SerializeOptions, Value,
};

use super::bind::is_http_body;
use crate::Error;
use crate::body::Body;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The `google.rpc.Status` JSON of `error`: `code` (the number), `message`, and `details`
/// (always present), each detail expanded as JSON when `pool` knows its type and otherwise
/// as `{"@type": ..., "value": <base64>}`.
pub(crate) fn status_json(error: &Error, pool: Option<&DescriptorPool>) -> serde_json::Value {
    let details: Vec<serde_json::Value> = error
        .details()
        .iter()
        .map(|detail| {
            let type_url = format!("type.googleapis.com/{}", detail.type_name());
            let expanded = pool
                .and_then(|pool| pool.get_message_by_name(detail.type_name()))
                .or_else(|| {
                    super::rpc_types::ERROR_DETAILS
                        .as_ref()
                        .and_then(|pool| pool.get_message_by_name(detail.type_name()))
                })
                .and_then(|descriptor| {
                    DynamicMessage::decode(descriptor, detail.value().clone()).ok()
                })
                .and_then(|message| serde_json::to_value(&message).ok());
            match expanded {
                Some(serde_json::Value::Object(mut fields)) => {
                    let mut object = serde_json::Map::new();
                    object.insert("@type".into(), type_url.into());
                    object.append(&mut fields);
                    serde_json::Value::Object(object)
                }
                // A well-known type whose JSON is not an object (a wrapper, a Timestamp).
                Some(other) => serde_json::json!({"@type": type_url, "value": other}),
                None => serde_json::json!({
                    "@type": type_url,
                    "value": base64::engine::general_purpose::STANDARD.encode(detail.value()),
                }),
            }
        })
        .collect();
    serde_json::json!({
        "code": error.code().as_i32(),
        "message": error.message(),
        "details": details,
    })
}

/// An error as a REST client reads it: the status of its code and the Status JSON, with the
/// error's metadata as headers.
pub(crate) fn error_response(error: &Error, pool: Option<&DescriptorPool>) -> http::Response<Body> {
    let body = serde_json::to_vec(&status_json(error, pool)).unwrap_or_default();
    let mut response = http::Response::new(Body::full(body));
    // REST's statuses are Connect's (grpc-gateway and vanguard use the same table).
    *response.status_mut() = error.code().http_status();
    for (name, value) in error.metadata() {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// A plain-text refusal of the transcoder itself (no route, wrong method, unsupported media
/// type), as HTTP servers write them.
pub(crate) fn plain(status: StatusCode, text: &str) -> http::Response<Body> {
    let mut response = http::Response::new(Body::full(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// How a response message is written.
pub(crate) enum Rendered {
    /// Raw bytes with their content type (an HttpBody).
    Raw(HeaderValue, Bytes),
    /// JSON.
    Json(Vec<u8>),
}

/// Renders one response message (its binary encoding) as the binding says: the whole
/// message, or its `response_body` field.
pub(crate) fn render(
    output: &MessageDescriptor,
    response_body: Option<&str>,
    payload: Bytes,
) -> Result<Rendered, Error> {
    let message = DynamicMessage::decode(output.clone(), payload)
        .map_err(|e| Error::internal(format!("the response does not decode: {e}")))?;
    let Some(field_name) = response_body else {
        if is_http_body(output) {
            return Ok(raw(&message));
        }
        return to_json(&message, SerializeOptions::new());
    };
    let field = output
        .get_field_by_name(field_name)
        .ok_or_else(|| Error::internal(format!("no response field {field_name}")))?;
    if let prost_reflect::Kind::Message(inner) = field.kind() {
        if is_http_body(&inner) && !field.is_list() {
            return Ok(match message.get_field(&field).as_ref() {
                Value::Message(body) => raw(body),
                _ => Rendered::Raw(JSON, Bytes::new()),
            });
        }
    }
    // The field alone, with its default values written out (a bare array, scalar or object)
    // and, as protobuf's JSON does when asked to emit unpopulated fields, unset message
    // fields as `null`.
    let value = message.get_field(&field);
    let json = match (value.as_ref(), field.kind()) {
        (Value::Message(inner), _) if !field.is_list() && !field.is_map() => {
            message_json_unpopulated(inner)?
        }
        _ => {
            let whole = message
                .serialize_with_options(
                    serde_json::value::Serializer,
                    &SerializeOptions::new().skip_default_fields(false),
                )
                .map_err(|e| {
                    Error::internal(format!("the response does not encode as JSON: {e}"))
                })?;
            whole
                .get(field.json_name())
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        }
    };
    serde_json::to_vec(&json)
        .map(Rendered::Json)
        .map_err(|e| Error::internal(format!("the response does not encode as JSON: {e}")))
}

/// A message's JSON with every field written: defaults, and `null` for unset message fields
/// (outside oneofs), recursively.
fn message_json_unpopulated(message: &DynamicMessage) -> Result<serde_json::Value, Error> {
    let mut json = message
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|e| Error::internal(format!("the response does not encode as JSON: {e}")))?;
    fill_unset_messages(&mut json, message);
    Ok(json)
}

fn fill_unset_messages(json: &mut serde_json::Value, message: &DynamicMessage) {
    let serde_json::Value::Object(object) = json else {
        return;
    };
    for field in message.descriptor().fields() {
        if field.is_list() || field.is_map() || field.containing_oneof().is_some() {
            continue;
        }
        let prost_reflect::Kind::Message(_) = field.kind() else {
            continue;
        };
        if !message.has_field(&field) {
            object
                .entry(field.json_name().to_owned())
                .or_insert(serde_json::Value::Null);
        } else if let (Value::Message(inner), Some(nested)) = (
            message.get_field(&field).as_ref(),
            object.get_mut(field.json_name()),
        ) {
            fill_unset_messages(nested, inner);
        }
    }
}

fn raw(body: &DynamicMessage) -> Rendered {
    let content_type = match body.get_field_by_name("content_type").as_deref() {
        Some(Value::String(text)) if !text.is_empty() => {
            HeaderValue::from_str(text).unwrap_or(JSON)
        }
        _ => JSON,
    };
    let data = match body.get_field_by_name("data").as_deref() {
        Some(Value::Bytes(data)) => data.clone(),
        _ => Bytes::new(),
    };
    Rendered::Raw(content_type, data)
}

fn to_json(message: &DynamicMessage, options: SerializeOptions) -> Result<Rendered, Error> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut serializer, &options)
        .map_err(|e| Error::internal(format!("the response does not encode as JSON: {e}")))?;
    Ok(Rendered::Json(out))
}

/// A successful unary answer: the rendered message, the handler's headers (and trailers:
/// REST has nowhere else to put them).
pub(crate) fn success(
    rendered: Rendered,
    headers: HeaderMap,
    trailers: HeaderMap,
) -> http::Response<Body> {
    let (content_type, body) = match rendered {
        Rendered::Raw(content_type, data) => (content_type, data),
        Rendered::Json(json) => (JSON, Bytes::from(json)),
    };
    answer(
        Body::full(body),
        content_type,
        headers.iter().chain(trailers.iter()),
    )
}

/// A 200 answer: `body` with the handler's headers (REST has no trailers: they join the
/// headers) and its content type.
pub(crate) fn answer<'h>(
    body: Body,
    content_type: HeaderValue,
    headers: impl IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    let out = response.headers_mut();
    for (name, value) in headers {
        out.append(name.clone(), value.clone());
    }
    out.insert(header::CONTENT_TYPE, content_type);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[test]
    fn codes_map_to_the_statuses_rest_clients_expect() {
        let status = |code: Code| error_response(&Error::new(code, "x"), None).status();
        assert_eq!(status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(status(Code::FailedPrecondition), StatusCode::BAD_REQUEST);
        assert_eq!(status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status(Code::Canceled).as_u16(), 499);
        assert_eq!(
            status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(status(Code::DeadlineExceeded), StatusCode::GATEWAY_TIMEOUT);
    }

    #[test]
    fn status_json_always_has_details() {
        let error = Error::new(Code::NotFound, "gone");
        assert_eq!(
            status_json(&error, None),
            serde_json::json!({"code": 5, "message": "gone", "details": []})
        );
    }
}
