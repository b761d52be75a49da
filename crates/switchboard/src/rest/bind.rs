//! The request message of a REST call: its body, then its path variables, then its query
//! parameters, each overriding what came before (repeated fields append).

use bytes::Bytes;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, Value,
};

use super::rule::{Binding, BodyRule};
use super::values;
use crate::Error;

/// `google.api.HttpBody`: a raw body and its content type.
pub(crate) const HTTP_BODY: &str = "google.api.HttpBody";

/// Whether `descriptor` is `google.api.HttpBody`.
pub(crate) fn is_http_body(descriptor: &MessageDescriptor) -> bool {
    descriptor.full_name() == HTTP_BODY
}

/// Whether the body of calls through `binding` is raw bytes (an HttpBody) rather than JSON.
pub(crate) fn takes_raw_body(input: &MessageDescriptor, binding: &Binding) -> bool {
    match &binding.body {
        BodyRule::None => false,
        BodyRule::Whole => is_http_body(input),
        BodyRule::Field(name) => input
            .get_field_by_name(name)
            .is_some_and(|field| matches!(field.kind(), Kind::Message(m) if is_http_body(&m))),
    }
}

/// What a REST request brings.
pub(crate) struct RestInput<'a> {
    pub(crate) binding: &'a Binding,
    /// Each path variable's value, in the template's order.
    pub(crate) captures: &'a [String],
    /// The raw query string.
    pub(crate) query: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: Bytes,
    /// Ignore query parameters that name no field, instead of refusing the call.
    pub(crate) discard_unknown_query: bool,
}

/// Builds the request message.
pub(crate) fn request_message(
    input: &MessageDescriptor,
    request: RestInput<'_>,
) -> Result<DynamicMessage, Error> {
    let mut message = DynamicMessage::new(input.clone());
    match &request.binding.body {
        BodyRule::None => {
            if !request.body.is_empty() {
                return Err(Error::invalid_argument(
                    "this method takes no request body over REST",
                ));
            }
        }
        BodyRule::Whole => {
            if is_http_body(input) {
                fill_http_body(&mut message, request.content_type, request.body);
            } else if !request.body.is_empty() {
                message = json_message(input, &request.body)?;
            }
        }
        BodyRule::Field(name) => {
            let field = input
                .get_field_by_name(name)
                .ok_or_else(|| Error::internal(format!("no body field {name}")))?;
            match field.kind() {
                Kind::Message(inner) if is_http_body(&inner) => {
                    let mut body = DynamicMessage::new(inner);
                    fill_http_body(&mut body, request.content_type, request.body);
                    message.set_field(&field, Value::Message(body));
                }
                _ if request.body.is_empty() => {}
                _ => {
                    // `{"<json name>": <body>}`, decoded as the request, gives the field.
                    let mut wrapped = Vec::with_capacity(request.body.len() + 32);
                    wrapped.push(b'{');
                    wrapped.extend_from_slice(
                        serde_json::to_string(field.json_name())
                            .unwrap_or_default()
                            .as_bytes(),
                    );
                    wrapped.push(b':');
                    wrapped.extend_from_slice(&request.body);
                    wrapped.push(b'}');
                    let decoded = json_message(input, &wrapped)?;
                    // `null` leaves the field unset, as in protobuf's JSON.
                    if decoded.has_field(&field) {
                        message.set_field(&field, decoded.get_field(&field).into_owned());
                    }
                }
            }
        }
    }
    for (path, value) in request
        .binding
        .template
        .variables
        .iter()
        .zip(request.captures)
    {
        set_path(&mut message, path, value, Names::Proto).map_err(|why| {
            Error::invalid_argument(format!("invalid path variable {}: {why}", path.join(".")))
        })?;
    }
    if let Some(query) = request.query {
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            match set_path(&mut message, &path, &value, Names::JsonFirst) {
                Ok(()) => {}
                Err(SetError::Unknown(_)) if request.discard_unknown_query => {}
                Err(why) => {
                    return Err(Error::invalid_argument(format!(
                        "invalid query parameter {key:?}: {why}"
                    )));
                }
            }
        }
    }
    Ok(message)
}

fn fill_http_body(message: &mut DynamicMessage, content_type: Option<&str>, body: Bytes) {
    let _ = message.try_set_field_by_name(
        "content_type",
        Value::String(content_type.unwrap_or_default().to_owned()),
    );
    let _ = message.try_set_field_by_name("data", Value::Bytes(body));
}

/// Decodes JSON into a message of `descriptor`; unknown fields are ignored.
fn json_message(descriptor: &MessageDescriptor, json: &[u8]) -> Result<DynamicMessage, Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(false);
    let message =
        DynamicMessage::deserialize_with_options(descriptor.clone(), &mut deserializer, &options)
            .and_then(|message| deserializer.end().map(|()| message))
            .map_err(|e| Error::invalid_argument(format!("invalid JSON request body: {e}")))?;
    Ok(message)
}

/// How the elements of a field path are looked up.
#[derive(Clone, Copy)]
enum Names {
    /// Proto field names (path variables).
    Proto,
    /// JSON names first, then proto names (query parameters).
    JsonFirst,
}

/// Why a value could not be set.
#[derive(Debug)]
enum SetError {
    /// The path names no field.
    Unknown(String),
    Invalid(String),
}

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetError::Unknown(why) | SetError::Invalid(why) => f.write_str(why),
        }
    }
}

fn find(descriptor: &MessageDescriptor, name: &str, names: Names) -> Option<FieldDescriptor> {
    match names {
        Names::Proto => descriptor.get_field_by_name(name),
        Names::JsonFirst => descriptor
            .get_field_by_json_name(name)
            .or_else(|| descriptor.get_field_by_name(name)),
    }
}

/// Sets the field at `path` (through singular message fields) from `text`: a repeated field
/// gets one more element, a singular one is replaced.
fn set_path(
    message: &mut DynamicMessage,
    path: &[String],
    text: &str,
    names: Names,
) -> Result<(), SetError> {
    let (last, through) = path
        .split_last()
        .ok_or_else(|| SetError::Unknown("an empty name".to_owned()))?;
    let mut current = message;
    for name in through {
        let descriptor = current.descriptor();
        let field = find(&descriptor, name, names).ok_or_else(|| {
            SetError::Unknown(format!(
                "{name:?} is not a field of {}",
                descriptor.full_name()
            ))
        })?;
        if field.is_list() || field.is_map() {
            return Err(SetError::Invalid(format!(
                "{name:?} is a repeated field or a map, which cannot be given this way"
            )));
        }
        if !matches!(field.kind(), Kind::Message(_)) {
            return Err(SetError::Invalid(format!("{name:?} is not a message")));
        }
        let Value::Message(inner) = current.get_field_mut(&field) else {
            return Err(SetError::Invalid(format!("{name:?} is not a message")));
        };
        current = inner;
    }
    let descriptor = current.descriptor();
    let field = find(&descriptor, last, names).ok_or_else(|| {
        SetError::Unknown(format!(
            "{last:?} is not a field of {}",
            descriptor.full_name()
        ))
    })?;
    if field.is_map() {
        return Err(SetError::Invalid(format!(
            "{last:?} is a map, which cannot be given this way"
        )));
    }
    let value = values::from_text(&field, text).map_err(SetError::Invalid)?;
    if field.is_list() {
        if let Value::List(list) = current.get_field_mut(&field) {
            list.push(value);
        }
    } else {
        current.set_field(&field, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::rule::BodyRule;
    use crate::rest::template::PathTemplate;

    /// A message of the built-in error-details pool, as a request type.
    fn message(name: &str) -> MessageDescriptor {
        crate::rest::rpc_types::ERROR_DETAILS
            .as_ref()
            .unwrap()
            .get_message_by_name(name)
            .unwrap()
    }

    fn binding(template: &str, body: BodyRule) -> Binding {
        Binding {
            method: "POST".into(),
            template: PathTemplate::parse(template).unwrap(),
            body,
            response_body: None,
        }
    }

    fn bind(
        input: &MessageDescriptor,
        binding: &Binding,
        captures: &[&str],
        query: Option<&str>,
        body: &str,
    ) -> Result<serde_json::Value, Error> {
        let captures: Vec<String> = captures.iter().map(|c| (*c).to_owned()).collect();
        let message = request_message(
            input,
            RestInput {
                binding,
                captures: &captures,
                query,
                content_type: Some("application/json"),
                body: Bytes::from(body.to_owned()),
                discard_unknown_query: false,
            },
        )?;
        Ok(serde_json::to_value(&message).unwrap())
    }

    #[test]
    fn the_query_overrides_the_path_which_overrides_the_body() {
        let info = message("google.rpc.ErrorInfo");
        let rule = binding("/v1/{reason}", BodyRule::Whole);
        let bound = bind(
            &info,
            &rule,
            &["from-path"],
            Some("domain=from-query"),
            r#"{"reason": "from-body", "domain": "from-body", "metadata": {"k": "v"}}"#,
        )
        .unwrap();
        assert_eq!(
            bound,
            serde_json::json!({"reason": "from-path", "domain": "from-query", "metadata": {"k": "v"}})
        );
    }

    #[test]
    fn repeated_fields_collect_and_maps_and_unknown_names_are_refused() {
        let debug = message("google.rpc.DebugInfo");
        let rule = binding("/v1/debug", BodyRule::None);
        let bound = bind(
            &debug,
            &rule,
            &[],
            Some("stackEntries=a&stack_entries=b&detail=d"),
            "",
        )
        .unwrap();
        assert_eq!(
            bound,
            serde_json::json!({"stackEntries": ["a", "b"], "detail": "d"})
        );
        let info = message("google.rpc.ErrorInfo");
        let rule = binding("/v1/info", BodyRule::None);
        for query in ["metadata=x", "metadata.k=x", "nope=1", "reason.inner=1"] {
            let error = bind(&info, &rule, &[], Some(query), "").unwrap_err();
            assert_eq!(error.code(), crate::Code::InvalidArgument, "{query}");
        }
        // Unknown names can be ignored instead.
        let message = request_message(
            &info,
            RestInput {
                binding: &rule,
                captures: &[],
                query: Some("nope=1&reason=r"),
                content_type: None,
                body: Bytes::new(),
                discard_unknown_query: true,
            },
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::json!({"reason": "r"})
        );
    }

    #[test]
    fn a_body_field_takes_its_json_and_a_binding_without_body_takes_none() {
        let bad = message("google.rpc.BadRequest");
        let rule = binding("/v1/bad", BodyRule::Field("field_violations".into()));
        let bound = bind(
            &bad,
            &rule,
            &[],
            None,
            r#"[{"field": "a"}, {"field": "b"}]"#,
        )
        .unwrap();
        assert_eq!(
            bound,
            serde_json::json!({"fieldViolations": [{"field": "a"}, {"field": "b"}]})
        );
        assert!(bind(&bad, &rule, &[], None, r#"{"field": "a"}"#).is_err());
        let rule = binding("/v1/bad", BodyRule::None);
        let error = bind(&bad, &rule, &[], None, "{}").unwrap_err();
        assert_eq!(error.code(), crate::Code::InvalidArgument);
        // Nested fields of the path, 64-bit integers and optional fields from the query.
        let violation = message("google.rpc.QuotaFailure.Violation");
        let rule = binding("/v1/{subject}", BodyRule::None);
        let bound = bind(
            &violation,
            &rule,
            &["s"],
            Some("quotaValue=-5&futureQuotaValue=7"),
            "",
        )
        .unwrap();
        assert_eq!(
            bound,
            serde_json::json!({"subject": "s", "quotaValue": "-5", "futureQuotaValue": "7"})
        );
    }
}
