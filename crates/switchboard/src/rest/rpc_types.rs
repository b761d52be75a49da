//! Descriptors of the standard error details (`google/rpc/error_details.proto`, as
//! [`crate::error_details`] declares them), so an error's details are written as JSON in a
//! REST answer even when the service's own schema does not import them.

use std::sync::LazyLock;

use prost_reflect::DescriptorPool;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, MessageOptions,
    OneofDescriptorProto,
};

/// The pool, built once.
pub(crate) static ERROR_DETAILS: LazyLock<Option<DescriptorPool>> = LazyLock::new(|| {
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos([duration_file(), error_details_file()])
        .ok()?;
    Some(pool)
});

/// A field: `(name, number, type, repeated, message type name)`.
fn field(
    name: &str,
    number: i32,
    kind: Type,
    repeated: bool,
    type_name: &str,
) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(if repeated {
            Label::Repeated
        } else {
            Label::Optional
        } as i32),
        r#type: Some(kind as i32),
        type_name: (!type_name.is_empty()).then(|| type_name.to_owned()),
        json_name: Some(json_name(name)),
        ..Default::default()
    }
}

fn string(name: &str, number: i32) -> FieldDescriptorProto {
    field(name, number, Type::String, false, "")
}

/// `lowerCamelCase` of a field name, as protoc writes it.
pub(crate) fn json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn message(
    name: &str,
    fields: Vec<FieldDescriptorProto>,
    nested: Vec<DescriptorProto>,
) -> DescriptorProto {
    DescriptorProto {
        name: Some(name.to_owned()),
        field: fields,
        nested_type: nested,
        ..Default::default()
    }
}

/// The entry message of a `map<string, string>` field.
fn string_map_entry(entry: &str) -> DescriptorProto {
    DescriptorProto {
        name: Some(entry.to_owned()),
        field: vec![string("key", 1), string("value", 2)],
        options: Some(MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn duration_file() -> FileDescriptorProto {
    FileDescriptorProto {
        name: Some("google/protobuf/duration.proto".to_owned()),
        package: Some("google.protobuf".to_owned()),
        message_type: vec![message(
            "Duration",
            vec![
                field("seconds", 1, Type::Int64, false, ""),
                field("nanos", 2, Type::Int32, false, ""),
            ],
            vec![],
        )],
        syntax: Some("proto3".to_owned()),
        ..Default::default()
    }
}

fn error_details_file() -> FileDescriptorProto {
    let map =
        |name: &str, number: i32, entry: &str| field(name, number, Type::Message, true, entry);
    let mut future_quota_value = field("future_quota_value", 8, Type::Int64, false, "");
    future_quota_value.oneof_index = Some(0);
    future_quota_value.proto3_optional = Some(true);
    let mut quota_violation = message(
        "Violation",
        vec![
            string("subject", 1),
            string("description", 2),
            string("api_service", 3),
            string("quota_metric", 4),
            string("quota_id", 5),
            map(
                "quota_dimensions",
                6,
                ".google.rpc.QuotaFailure.Violation.QuotaDimensionsEntry",
            ),
            field("quota_value", 7, Type::Int64, false, ""),
            future_quota_value,
        ],
        vec![string_map_entry("QuotaDimensionsEntry")],
    );
    quota_violation.oneof_decl = vec![OneofDescriptorProto {
        name: Some("_future_quota_value".to_owned()),
        ..Default::default()
    }];
    FileDescriptorProto {
        name: Some("google/rpc/error_details.proto".to_owned()),
        package: Some("google.rpc".to_owned()),
        dependency: vec!["google/protobuf/duration.proto".to_owned()],
        message_type: vec![
            message(
                "ErrorInfo",
                vec![
                    string("reason", 1),
                    string("domain", 2),
                    map("metadata", 3, ".google.rpc.ErrorInfo.MetadataEntry"),
                ],
                vec![string_map_entry("MetadataEntry")],
            ),
            message(
                "RetryInfo",
                vec![field(
                    "retry_delay",
                    1,
                    Type::Message,
                    false,
                    ".google.protobuf.Duration",
                )],
                vec![],
            ),
            message(
                "DebugInfo",
                vec![
                    field("stack_entries", 1, Type::String, true, ""),
                    string("detail", 2),
                ],
                vec![],
            ),
            message(
                "QuotaFailure",
                vec![field(
                    "violations",
                    1,
                    Type::Message,
                    true,
                    ".google.rpc.QuotaFailure.Violation",
                )],
                vec![quota_violation],
            ),
            message(
                "PreconditionFailure",
                vec![field(
                    "violations",
                    1,
                    Type::Message,
                    true,
                    ".google.rpc.PreconditionFailure.Violation",
                )],
                vec![message(
                    "Violation",
                    vec![
                        string("type", 1),
                        string("subject", 2),
                        string("description", 3),
                    ],
                    vec![],
                )],
            ),
            message(
                "BadRequest",
                vec![field(
                    "field_violations",
                    1,
                    Type::Message,
                    true,
                    ".google.rpc.BadRequest.FieldViolation",
                )],
                vec![message(
                    "FieldViolation",
                    vec![
                        string("field", 1),
                        string("description", 2),
                        string("reason", 3),
                        field(
                            "localized_message",
                            4,
                            Type::Message,
                            false,
                            ".google.rpc.LocalizedMessage",
                        ),
                    ],
                    vec![],
                )],
            ),
            message(
                "RequestInfo",
                vec![string("request_id", 1), string("serving_data", 2)],
                vec![],
            ),
            message(
                "ResourceInfo",
                vec![
                    string("resource_type", 1),
                    string("resource_name", 2),
                    string("owner", 3),
                    string("description", 4),
                ],
                vec![],
            ),
            message(
                "Help",
                vec![field(
                    "links",
                    1,
                    Type::Message,
                    true,
                    ".google.rpc.Help.Link",
                )],
                vec![message(
                    "Link",
                    vec![string("description", 1), string("url", 2)],
                    vec![],
                )],
            ),
            message(
                "LocalizedMessage",
                vec![string("locale", 1), string("message", 2)],
                vec![],
            ),
        ],
        syntax: Some("proto3".to_owned()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_details::{ErrorInfo, QuotaFailure, quota_failure::Violation};

    fn json_of<M: prost::Message + prost::Name>(message: &M) -> serde_json::Value {
        let pool = ERROR_DETAILS.as_ref().expect("the pool builds");
        let descriptor = pool.get_message_by_name(&M::full_name()).unwrap();
        let decoded =
            prost_reflect::DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
                .unwrap();
        serde_json::to_value(&decoded).unwrap()
    }

    #[test]
    fn the_standard_details_decode_as_json() {
        let info = ErrorInfo {
            reason: "FAILED".into(),
            domain: "example".into(),
            metadata: [("k".to_owned(), "v".to_owned())].into(),
        };
        assert_eq!(
            json_of(&info),
            serde_json::json!({"reason": "FAILED", "domain": "example", "metadata": {"k": "v"}})
        );
        let quota = QuotaFailure {
            violations: vec![Violation {
                subject: "s".into(),
                quota_value: 5,
                future_quota_value: Some(7),
                ..Default::default()
            }],
        };
        assert_eq!(
            json_of(&quota),
            serde_json::json!({"violations": [{"subject": "s", "quotaValue": "5", "futureQuotaValue": "7"}]})
        );
    }
}
