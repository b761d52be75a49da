//! OpenAPI 3.1 for the REST shape of annotated methods: one operation per `google.api.http`
//! binding (and `additional_bindings`), with the path, query and body parameters the
//! transcoder binds, the JSON schemas of the messages in protobuf's JSON mapping, and errors as
//! `google.rpc.Status`. What `switchboard::server::Router::rest` serves, described.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use serde_json::{Map, Value as Json, json};

/// The field number of the `google.api.http` method option.
const HTTP_OPTION: u32 = 72_295_728;

/// How deep query parameters follow nested message fields (recursive messages stop there).
const QUERY_DEPTH: usize = 3;

/// The OpenAPI document of the annotated methods of `services` (full names) in `pool`.
pub fn document(pool: &DescriptorPool, services: &[String], title: &str) -> Json {
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    let mut schemas = Schemas::default();
    let mut shapes: BTreeMap<String, String> = BTreeMap::new();
    for service in services {
        let Some(service) = pool.get_service_by_name(service) else {
            continue;
        };
        for method in service.methods() {
            for (index, binding) in bindings(&method).into_iter().enumerate() {
                if method.is_client_streaming() {
                    continue;
                }
                let (path, mut operation) = operation(&method, &binding, index, &mut schemas);
                // Paths that differ only in their parameters' names are one path in OpenAPI:
                // the later operation takes the first one's names (each parameter's
                // description still says which field it fills).
                let shape = path_shape(&path);
                let path = match shapes.get(&shape) {
                    Some(first) if *first != path => {
                        rename_path_parameters(&mut operation, &parameter_names(first));
                        first.clone()
                    }
                    _ => {
                        shapes.insert(shape, path.clone());
                        path
                    }
                };
                paths
                    .entry(path)
                    .or_default()
                    .insert(binding.method.to_ascii_lowercase(), operation);
            }
        }
    }
    let mut components = Map::new();
    schemas.status();
    components.insert("schemas".into(), Json::Object(schemas.done));
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": components,
    })
}

/// A path with its parameters' names left out: `/v1/shelves/{}/books/{}`.
fn path_shape(path: &str) -> String {
    let mut shape = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                shape.push('{');
            }
            '}' => {
                inside = false;
                shape.push('}');
            }
            _ if inside => {}
            c => shape.push(c),
        }
    }
    shape
}

/// The parameters' names of a path, in order.
fn parameter_names(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Renames an operation's path parameters, in order.
fn rename_path_parameters(operation: &mut Json, names: &[String]) {
    let Some(Json::Array(parameters)) = operation.get_mut("parameters") else {
        return;
    };
    let mut renames = Vec::new();
    let mut names = names.iter();
    for parameter in parameters.iter_mut() {
        if parameter["in"] == "path" {
            if let (Some(name), Some(old)) = (names.next(), parameter["name"].as_str()) {
                renames.push((format!("{{{old}}}"), format!("{{{name}}}")));
                parameter["name"] = Json::String(name.clone());
            }
        }
    }
    // The descriptions show the field's shape with the parameters' new names.
    for parameter in parameters {
        if let Some(description) = parameter["description"].as_str() {
            let mut description = description.to_owned();
            for (old, new) in &renames {
                description = description.replace(old, new);
            }
            parameter["description"] = Json::String(description);
        }
    }
}

/// One binding of a method: HTTP method, path template, body and response body rules.
struct Binding {
    method: String,
    template: String,
    body: String,
    response_body: String,
}

fn text(rule: &DynamicMessage, name: &str) -> String {
    match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    }
}

fn bindings(method: &MethodDescriptor) -> Vec<Binding> {
    let options = method.options();
    let Some(rule) = options
        .extensions()
        .find_map(|(extension, value)| match value {
            Value::Message(rule) if extension.number() == HTTP_OPTION => Some(rule.clone()),
            _ => None,
        })
    else {
        return Vec::new();
    };
    let mut rules = vec![rule.clone()];
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
        rules.extend(more.iter().filter_map(|m| match m {
            Value::Message(m) => Some(m.clone()),
            _ => None,
        }));
    }
    rules
        .iter()
        .filter_map(|rule| {
            let mut pattern = None;
            for verb in ["get", "put", "post", "delete", "patch"] {
                if rule.has_field_by_name(verb) {
                    pattern = Some((verb.to_ascii_uppercase(), text(rule, verb)));
                }
            }
            if let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref() {
                if rule.has_field_by_name("custom") {
                    pattern = Some((text(custom, "kind"), text(custom, "path")));
                }
            }
            let (method, template) = pattern?;
            // OpenAPI has no operation for any method or for methods of its own.
            if !["GET", "PUT", "POST", "DELETE", "PATCH"].contains(&method.as_str()) {
                return None;
            }
            Some(Binding {
                method,
                template,
                body: text(rule, "body"),
                response_body: text(rule, "response_body"),
            })
        })
        .collect()
}

/// A path parameter of the OpenAPI path: its name, the request field it fills, and how
/// (`shelves/{name}`: the field's value is the literal text with the parameter in place).
struct PathParameter {
    name: String,
    field: String,
    /// The variable's segments with this parameter in place, e.g. `shelves/{name}`; `None`
    /// when the parameter is the whole value.
    shape: Option<String>,
}

/// A path template as an OpenAPI path. A variable over literal segments is spread out, so
/// every path is its own: `/v1/{name=shelves/*/books/*}` becomes
/// `/v1/shelves/{name.shelves}/books/{name.books}` (one wildcard keeps the variable's name:
/// `/v1/{parent=shelves/*}/books` is `/v1/shelves/{parent}/books`).
fn openapi_path(template: &str) -> (String, Vec<PathParameter>) {
    let mut path = String::new();
    let mut parameters = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        path.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 1..start + end];
        let (field, segments) = match inner.split_once('=') {
            Some((field, segments)) => (field, segments),
            None => (inner, "*"),
        };
        let parts: Vec<&str> = segments.split('/').collect();
        let wildcards = parts.iter().filter(|p| **p == "*" || **p == "**").count();
        let mut shaped = Vec::new();
        let mut names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if *part == "*" || *part == "**" {
                let name = if wildcards == 1 {
                    field.to_owned()
                } else {
                    match i.checked_sub(1).map(|j| parts[j]) {
                        Some(literal) if literal != "*" && literal != "**" => {
                            format!("{field}.{literal}")
                        }
                        _ => format!("{field}.{i}"),
                    }
                };
                shaped.push(format!("{{{name}}}"));
                names.push(name);
            } else {
                shaped.push((*part).to_owned());
            }
        }
        let shape = shaped.join("/");
        path.push_str(&shape);
        let whole = parts.len() == 1;
        for name in names {
            parameters.push(PathParameter {
                name,
                field: field.to_owned(),
                shape: (!whole).then(|| shape.clone()),
            });
        }
        rest = &rest[start + end + 1..];
    }
    path.push_str(rest);
    (path, parameters)
}

fn operation(
    method: &MethodDescriptor,
    binding: &Binding,
    index: usize,
    schemas: &mut Schemas,
) -> (String, Json) {
    let input = method.input();
    let output = method.output();
    let (path, variables) = openapi_path(&binding.template);
    let mut parameters = Vec::new();
    let mut bound: BTreeSet<String> = BTreeSet::new();
    for parameter in &variables {
        bound.insert(parameter.field.clone());
        let schema = match &parameter.shape {
            // A part of a longer value: one segment of text.
            Some(_) => json!({"type": "string"}),
            None => field_at(&input, &parameter.field)
                .map(|field| schemas.field(&field))
                .unwrap_or_else(|| json!({"type": "string"})),
        };
        let description = match &parameter.shape {
            Some(shape) => format!("Fills `{}` as `{shape}`.", parameter.field),
            None => format!("Fills `{}`.", parameter.field),
        };
        parameters.push(json!({
            "name": parameter.name,
            "in": "path",
            "required": true,
            "description": description,
            "schema": schema,
        }));
    }
    if binding.body != "*" {
        if !binding.body.is_empty() {
            bound.insert(binding.body.clone());
        }
        query_parameters(&input, ("", ""), &bound, 0, schemas, &mut parameters);
    }
    let mut operation = Map::new();
    let id = if index == 0 {
        format!("{}_{}", method.parent_service().name(), method.name())
    } else {
        format!(
            "{}_{}{}",
            method.parent_service().name(),
            method.name(),
            index + 1
        )
    };
    operation.insert("operationId".into(), id.into());
    operation.insert("tags".into(), json!([method.parent_service().name()]));
    operation.insert("parameters".into(), Json::Array(parameters));
    if !binding.body.is_empty() {
        let schema = if binding.body == "*" {
            Some(schemas.message(&input))
        } else {
            input
                .get_field_by_name(&binding.body)
                .map(|f| schemas.field(&f))
        };
        let raw = match binding.body.as_str() {
            "*" => is_http_body(&input),
            field => input
                .get_field_by_name(field)
                .is_some_and(|f| matches!(f.kind(), Kind::Message(m) if is_http_body(&m))),
        };
        let content = if raw {
            json!({"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}})
        } else {
            json!({"application/json": {"schema": schema.unwrap_or(json!({}))}})
        };
        operation.insert(
            "requestBody".into(),
            json!({"required": true, "content": content}),
        );
    }
    let response_schema = if binding.response_body.is_empty() || binding.response_body == "*" {
        schemas.message(&output)
    } else {
        output
            .get_field_by_name(&binding.response_body)
            .map(|field| schemas.field(&field))
            .unwrap_or(json!({}))
    };
    let raw_response = is_http_body(&output)
        || output
            .get_field_by_name(&binding.response_body)
            .is_some_and(|f| matches!(f.kind(), Kind::Message(m) if is_http_body(&m)));
    let ok = if raw_response {
        json!({"description": "The raw body, of the type the method sets.",
               "content": {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}})
    } else if method.is_server_streaming() {
        json!({"description": "A stream: one JSON object per line, {\"result\": message}, and on a failure a last line {\"error\": status}.",
        "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {
                "result": response_schema,
                "error": {"$ref": "#/components/schemas/google.rpc.Status"},
            },
        }}}})
    } else {
        json!({"description": "OK", "content": {"application/json": {"schema": response_schema}}})
    };
    operation.insert(
        "responses".into(),
        json!({
            "200": ok,
            "default": {
                "description": "An error: the HTTP status of its code, and a google.rpc.Status.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}},
            },
        }),
    );
    (path, Json::Object(operation))
}

fn is_http_body(message: &MessageDescriptor) -> bool {
    message.full_name() == "google.api.HttpBody"
}

/// The field at a dotted path of proto names.
fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut names = path.split('.').peekable();
    while let Some(name) = names.next() {
        let field = current.get_field_by_name(name)?;
        if names.peek().is_none() {
            return Some(field);
        }
        match field.kind() {
            Kind::Message(inner) => current = inner,
            _ => return None,
        }
    }
    None
}

/// Query parameters: every field not bound by the path or the body, by JSON name, through
/// singular message fields (dotted), scalars and repeated scalars only.
fn query_parameters(
    message: &MessageDescriptor,
    prefixes: (&str, &str),
    bound: &BTreeSet<String>,
    depth: usize,
    schemas: &mut Schemas,
    parameters: &mut Vec<Json>,
) {
    let (proto_prefix, json_prefix) = prefixes;
    for field in message.fields() {
        let proto_path = format!("{proto_prefix}{}", field.name());
        if bound.contains(&proto_path) || field.is_map() {
            continue;
        }
        let json_path = format!("{json_prefix}{}", field.json_name());
        match field.kind() {
            Kind::Message(inner) if !is_query_scalar(&inner) => {
                if field.is_list() || depth + 1 >= QUERY_DEPTH {
                    continue;
                }
                query_parameters(
                    &inner,
                    (&format!("{proto_path}."), &format!("{json_path}.")),
                    bound,
                    depth + 1,
                    schemas,
                    parameters,
                );
            }
            _ => {
                let schema = schemas.field(&field);
                let mut parameter = json!({"name": json_path, "in": "query", "schema": schema});
                if field.is_list() {
                    parameter["explode"] = json!(true);
                }
                parameters.push(parameter);
            }
        }
    }
}

/// Well-known types written as a JSON scalar, which a query parameter can carry.
fn is_query_scalar(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// The component schemas written so far.
#[derive(Default)]
struct Schemas {
    done: Map<String, Json>,
}

impl Schemas {
    /// A reference to a message's schema (written once), or the inline schema of a
    /// well-known type.
    fn message(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            // Placeholder first: recursive messages refer to themselves.
            self.done.insert(name.clone(), json!({}));
            let mut properties = Map::new();
            for field in message.fields() {
                properties.insert(field.json_name().to_owned(), self.field(&field));
            }
            self.done.insert(
                name.clone(),
                json!({"type": "object", "properties": properties}),
            );
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// A field's schema in protobuf's JSON mapping.
    fn field(&mut self, field: &FieldDescriptor) -> Json {
        if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            return json!({"type": "object", "additionalProperties": self.kind(&value)});
        }
        let one = self.kind(&field.kind());
        if field.is_list() {
            json!({"type": "array", "items": one})
        } else {
            one
        }
    }

    fn kind(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u64})
            }
            // 64-bit integers are JSON strings (numbers are accepted too).
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": ["string", "integer"], "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": ["string", "integer"], "format": "uint64"})
            }
            Kind::Float => json!({"type": ["number", "string"], "format": "float"}),
            Kind::Double => json!({"type": ["number", "string"], "format": "double"}),
            Kind::Enum(descriptor) => {
                let names: Vec<String> = descriptor.values().map(|v| v.name().to_owned()).collect();
                json!({"type": "string", "enum": names})
            }
            Kind::Message(message) => self.message(message),
        }
    }

    /// `google.rpc.Status`, the error body.
    fn status(&mut self) {
        self.done.insert(
            "google.rpc.Status".into(),
            json!({
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "format": "int32", "description": "The google.rpc.Code."},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"@type": {"type": "string"}},
                        "additionalProperties": true,
                    }},
                },
                "required": ["code", "message", "details"],
            }),
        );
    }
}

/// The JSON form of a well-known type, inline.
fn well_known(message: &MessageDescriptor) -> Option<Json> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"})
        }
        "google.protobuf.FieldMask" => json!({"type": "string"}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "additionalProperties": true,
        }),
        "google.protobuf.StringValue" => json!({"type": ["string", "null"]}),
        "google.protobuf.BytesValue" => {
            json!({"type": ["string", "null"], "contentEncoding": "base64"})
        }
        "google.protobuf.BoolValue" => json!({"type": ["boolean", "null"]}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({"type": ["integer", "null"]})
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": ["string", "integer", "null"]})
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => {
            json!({"type": ["number", "string", "null"]})
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_openapi_paths_each_its_own() {
        let path = |t: &str| openapi_path(t).0;
        assert_eq!(path("/v1/{name=shelves/*}"), "/v1/shelves/{name}");
        assert_eq!(
            path("/v1/{name=shelves/*/books/*}"),
            "/v1/shelves/{name.shelves}/books/{name.books}"
        );
        assert_eq!(
            path("/v1/{book.name=shelves/*/books/*}:move"),
            "/v1/shelves/{book.name.shelves}/books/{book.name.books}:move"
        );
        assert_eq!(path("/v1/search/{query}"), "/v1/search/{query}");
        assert_eq!(path("/v1/books/{name=**}"), "/v1/books/{name}");
        let (_, parameters) = openapi_path("/v1/{parent=shelves/*}/books");
        assert_eq!(parameters[0].name, "parent");
        assert_eq!(parameters[0].field, "parent");
        assert_eq!(parameters[0].shape.as_deref(), Some("shelves/{parent}"));
        let (_, parameters) = openapi_path("/v1/search/{query}");
        assert_eq!(parameters[0].shape, None);
        assert_eq!(
            path_shape("/v1/shelves/{a.b}/books/{c}:x"),
            "/v1/shelves/{}/books/{}:x"
        );
        assert_eq!(parameter_names("/v1/shelves/{a.b}/books/{c}"), ["a.b", "c"]);
    }

    /// The transcoding suite's library schema, compiled.
    fn library() -> DescriptorPool {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../transcoding/proto");
        let mut compiler = protox::Compiler::new([root]).unwrap();
        compiler
            .open_file("switchboard/library/v1/library.proto")
            .unwrap();
        compiler.descriptor_pool()
    }

    #[test]
    fn every_binding_is_an_operation_with_its_parameters_and_schemas() {
        let pool = library();
        let doc = document(
            &pool,
            &["switchboard.library.v1.LibraryService".to_owned()],
            "library",
        );
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let operations: usize = paths.values().map(|o| o.as_object().unwrap().len()).sum();
        // 28 bindings, less CheckoutBook's custom method (OpenAPI has no operation for it).
        assert_eq!(operations, 27);
        // body: "book" with a path variable: the rest of the request in the query.
        let create = &paths["/v1/shelves/{parent}/books"]["post"];
        assert_eq!(create["operationId"], "LibraryService_CreateBook");
        let names: Vec<&str> = create["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["parent", "bookId"]);
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/switchboard.library.v1.Book"
        );
        // Query parameters by JSON name, through nested messages, and the WKTs as strings.
        let search: Vec<String> = paths["/v1/search"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        for name in [
            "i64",
            "filter.author",
            "filter.nested.minYear",
            "publishedAfter",
            "customJson",
        ] {
            assert!(search.iter().any(|n| n == name), "{name} in {search:?}");
        }
        assert!(
            !search.iter().any(|n| n == "labels" || n == "extra"),
            "{search:?}"
        );
        // A raw body and a raw answer.
        assert!(
            paths["/v1/shelves/{name.shelves}/books/{name.books}/cover"]["get"]["responses"]["200"]
                ["content"]["*/*"]
                .is_object()
        );
        // response_body: a repeated field.
        assert_eq!(
            paths["/v1/shelves/{parent}/titles"]["get"]["responses"]["200"]["content"]["application/json"]
                ["schema"]["type"],
            "array"
        );
        // Errors, and 64-bit integers as strings.
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["google.rpc.Status"]["required"],
            json!(["code", "message", "details"])
        );
        assert_eq!(
            schemas["switchboard.library.v1.Book"]["properties"]["sizeBytes"]["type"],
            json!(["string", "integer"])
        );
    }
}
