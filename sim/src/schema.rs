//! Structured outputs: a deterministic value valid against a `response_format.json_schema`, and
//! OpenAI's `strict: true` rules on the schema itself.
//!
//! The generator walks the schema the way a well-behaved model fills it in: every property
//! (alphabetical, as `serde_json` keeps objects), the first `enum` value, the first non-null
//! branch of `anyOf`/`oneOf`, numbers inside their bounds, strings derived from the property name
//! and fitted to `minLength`/`maxLength`. `$ref` is followed within the document (`#/$defs/...`,
//! `#/definitions/...`, any `#/` pointer). Recursive schemas are cut off by depth: past
//! [`SOFT_DEPTH`] optional properties, nullable values and arrays allowed to be empty stop
//! growing. Not honoured: `pattern`, `not`, `if`/`then`, `dependentRequired`.
//!
//! The strict check exists so production schemas that OpenAI would reject with a 400 are rejected
//! here too, in tests, instead of in front of a counselor.

use serde_json::{Map, Number, Value, json};

/// Past this depth the generator prefers the smallest valid value, so recursive schemas end.
const SOFT_DEPTH: usize = 8;
/// Past this depth it gives up with `null` (only reachable with unavoidable recursion).
const HARD_DEPTH: usize = 32;
/// Arrays never get more items than this, even if `minItems` asks (the output stays small).
const MAX_ITEMS: u64 = 1000;

/// A value valid against `schema` (for the keywords listed in the module docs).
pub fn generate(schema: &Value) -> Value {
    Generator { root: schema }.value(schema, "value", 0, 0)
}

struct Generator<'a> {
    root: &'a Value,
}

impl Generator<'_> {
    /// `name` is the property the value is for (strings are derived from it); `variant`
    /// distinguishes array items so `uniqueItems` holds.
    fn value(&self, schema: &Value, name: &str, depth: usize, variant: u64) -> Value {
        if depth > HARD_DEPTH {
            return Value::Null;
        }
        let Some(object) = schema.as_object() else {
            // Boolean schema `true` (anything) — or `false`, which nothing satisfies.
            return Value::String(sample_text(name, variant));
        };
        if let Some(target) = object.get("$ref").and_then(Value::as_str).and_then(|r| self.resolve(r)) {
            return self.value(target, name, depth + 1, variant);
        }
        if let Some(value) = object.get("const") {
            return value.clone();
        }
        if let Some(values) = object.get("enum").and_then(Value::as_array)
            && !values.is_empty()
        {
            let index = usize::try_from(variant).unwrap_or(0) % values.len();
            return values[index].clone();
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(branches) = object.get(keyword).and_then(Value::as_array) {
                return self.branch(branches, name, depth, variant);
            }
        }
        if let Some(parts) = object.get("allOf").and_then(Value::as_array) {
            let merged = self.merge_all_of(object, parts);
            return self.value(&merged, name, depth + 1, variant);
        }

        let types = types_of(object);
        let nullable = types.contains(&"null");
        if nullable && depth > SOFT_DEPTH {
            return Value::Null;
        }
        match types.iter().copied().find(|ty| *ty != "null").unwrap_or(if nullable { "null" } else { "string" }) {
            "object" => self.object(object, depth),
            "array" => self.array(object, name, depth),
            "integer" => integer(object, variant),
            "number" => number(object, variant),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            _ => string(object, name, variant),
        }
    }

    fn branch(&self, branches: &[Value], name: &str, depth: usize, variant: u64) -> Value {
        let is_null = |branch: &Value| {
            let branch = self.follow(branch);
            branch.get("type").and_then(Value::as_str) == Some("null")
        };
        let chosen = if depth > SOFT_DEPTH {
            branches.iter().find(|branch| is_null(branch)).or(branches.first())
        } else {
            branches.iter().find(|branch| !is_null(branch)).or(branches.first())
        };
        chosen.map_or(Value::Null, |branch| self.value(branch, name, depth + 1, variant))
    }

    fn object(&self, object: &Map<String, Value>, depth: usize) -> Value {
        let required = required_of(object);
        let mut out = Map::new();
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            for (key, sub) in properties {
                if depth > SOFT_DEPTH && !required.contains(&key.as_str()) {
                    continue;
                }
                out.insert(key.clone(), self.value(sub, key, depth + 1, 0));
            }
        }
        // Required names without a property schema: whatever `additionalProperties` allows.
        for key in required {
            if !out.contains_key(key) {
                let value = match object.get("additionalProperties") {
                    Some(extra @ Value::Object(_)) => self.value(extra, key, depth + 1, 0),
                    _ => Value::String(sample_text(key, 0)),
                };
                out.insert(key.to_owned(), value);
            }
        }
        Value::Object(out)
    }

    fn array(&self, object: &Map<String, Value>, name: &str, depth: usize) -> Value {
        let min = object.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let max = object.get("maxItems").and_then(Value::as_u64);
        let wanted = if depth > SOFT_DEPTH { min } else { min.max(1) };
        let count = max.map_or(wanted, |max| wanted.min(max)).min(MAX_ITEMS);
        let prefix = object.get("prefixItems").and_then(Value::as_array);
        let items = object.get("items");
        let item_name = singular(name);
        (0..count)
            .map(|i| {
                let index = usize::try_from(i).unwrap_or(usize::MAX);
                let schema = prefix.and_then(|prefix| prefix.get(index)).or(match items {
                    // Draft-4..7 tuple form.
                    Some(Value::Array(tuple)) => tuple.get(index).or(object.get("additionalItems")),
                    other => other,
                });
                match schema {
                    Some(schema) => self.value(schema, &item_name, depth + 1, i),
                    None => Value::String(sample_text(&item_name, i)),
                }
            })
            .collect()
    }

    fn follow<'s>(&'s self, schema: &'s Value) -> &'s Value {
        let mut current = schema;
        for _ in 0..HARD_DEPTH {
            match current.get("$ref").and_then(Value::as_str).and_then(|r| self.resolve(r)) {
                Some(next) => current = next,
                None => break,
            }
        }
        current
    }

    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.is_empty() { Some(self.root) } else { self.root.pointer(pointer) }
    }

    /// One object schema from `allOf` parts (and the schema's own keywords): properties united,
    /// `required` concatenated, other keywords first-wins.
    fn merge_all_of(&self, own: &Map<String, Value>, parts: &[Value]) -> Value {
        let mut merged = own.clone();
        merged.remove("allOf");
        let mut properties = merged.remove("properties").and_then(|p| p.as_object().cloned()).unwrap_or_default();
        let mut required: Vec<Value> =
            merged.remove("required").and_then(|r| r.as_array().cloned()).unwrap_or_default();
        for part in parts {
            let Some(part) = self.follow(part).as_object() else { continue };
            for (key, value) in part {
                match key.as_str() {
                    "properties" => {
                        for (name, sub) in value.as_object().into_iter().flatten() {
                            properties.entry(name.clone()).or_insert_with(|| sub.clone());
                        }
                    }
                    "required" => required.extend(value.as_array().into_iter().flatten().cloned()),
                    _ => {
                        merged.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        if !properties.is_empty() {
            merged.insert("properties".into(), Value::Object(properties));
            merged.entry("type").or_insert_with(|| json!("object"));
        }
        if !required.is_empty() {
            merged.insert("required".into(), Value::Array(required));
        }
        Value::Object(merged)
    }
}

/// The declared types (`"type": "x"` or `["x", "null"]`), or ones inferred from the keywords
/// present when `type` is missing.
fn types_of(object: &Map<String, Value>) -> Vec<&str> {
    match object.get("type") {
        Some(Value::String(ty)) => vec![ty.as_str()],
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect(),
        _ => {
            let has = |keys: &[&str]| keys.iter().any(|key| object.contains_key(*key));
            let inferred = if has(&["properties", "required", "additionalProperties"]) {
                "object"
            } else if has(&["items", "prefixItems", "minItems", "maxItems"]) {
                "array"
            } else if has(&["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]) {
                "number"
            } else {
                "string"
            };
            vec![inferred]
        }
    }
}

fn required_of(object: &Map<String, Value>) -> Vec<&str> {
    object.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

/// Inclusive bounds from `minimum`/`maximum` and both forms of `exclusiveMinimum`/`Maximum`
/// (draft-4 booleans, draft-6+ numbers); `step` is how far "exclusive" moves a bound.
fn bounds(object: &Map<String, Value>, step: f64) -> (Option<f64>, Option<f64>) {
    let number = |key: &str| object.get(key).and_then(Value::as_f64);
    let flag = |key: &str| object.get(key).and_then(Value::as_bool).unwrap_or(false);
    let mut low = number("minimum").map(|min| if flag("exclusiveMinimum") { min + step } else { min });
    let mut high = number("maximum").map(|max| if flag("exclusiveMaximum") { max - step } else { max });
    if let Some(min) = number("exclusiveMinimum") {
        low = Some(low.map_or(min + step, |low| low.max(min + step)));
    }
    if let Some(max) = number("exclusiveMaximum") {
        high = Some(high.map_or(max - step, |high| high.min(max - step)));
    }
    (low, high)
}

/// A value in the bounds: the middle of a closed range, else the bound nearest zero, else zero;
/// `variant` steps it up while it stays in range.
fn pick(low: Option<f64>, high: Option<f64>, variant: f64) -> f64 {
    let base = match (low, high) {
        (Some(low), Some(high)) => low + (high - low) / 2.0,
        (Some(low), None) => low.max(0.0),
        (None, Some(high)) => high.min(0.0),
        (None, None) => 0.0,
    };
    let stepped = base + variant;
    if high.is_none_or(|high| stepped <= high) { stepped } else { base }
}

fn integer(object: &Map<String, Value>, variant: u64) -> Value {
    let (low, high) = bounds(object, 1.0);
    let (low, high) = (low.map(f64::ceil), high.map(f64::floor));
    let mut value = pick(low, high, variant as f64).floor();
    if low.is_some_and(|low| value < low) {
        value = low.unwrap_or(value);
    }
    if let Some(step) = object.get("multipleOf").and_then(Value::as_f64).filter(|step| *step > 0.0) {
        let up = (value / step).ceil() * step;
        value = if high.is_none_or(|high| up <= high) { up } else { (value / step).floor() * step };
    }
    // `as` saturates; the value already lies within the schema's own bounds.
    Value::from(value as i64)
}

fn number(object: &Map<String, Value>, variant: u64) -> Value {
    // Exclusive bounds move by a small step so the midpoint stays strictly inside.
    let (low, high) = bounds(object, 0.001);
    let mut value = pick(low, high, variant as f64);
    if let Some(step) = object.get("multipleOf").and_then(Value::as_f64).filter(|step| *step > 0.0) {
        let up = (value / step).ceil() * step;
        value = if high.is_none_or(|high| up <= high) { up } else { (value / step).floor() * step };
    }
    Number::from_f64(value).map_or(Value::from(0), Value::Number)
}

fn string(object: &Map<String, Value>, name: &str, variant: u64) -> Value {
    let format = object.get("format").and_then(Value::as_str);
    let mut text = match format {
        Some("date-time") => format!("2025-01-{:02}T12:00:00Z", variant % 28 + 1),
        Some("date") => format!("2025-01-{:02}", variant % 28 + 1),
        Some("time") => "12:00:00Z".to_owned(),
        Some("duration") => format!("PT{}M", variant + 1),
        Some("email") => format!("caller{}@example.com", variant + 1),
        Some("hostname") => "example.com".to_owned(),
        Some("ipv4") => "127.0.0.1".to_owned(),
        Some("ipv6") => "::1".to_owned(),
        Some("uri" | "url") => format!("https://example.com/{}", variant + 1),
        Some("uuid") => format!("00000000-0000-4000-8000-{:012}", variant + 1),
        _ => sample_text(name, variant),
    };
    let min = object.get("minLength").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
    let max = object.get("maxLength").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
    if let Some(min) = min {
        let filler: Vec<char> = text.chars().chain(" ".chars()).collect();
        let mut length = text.chars().count();
        let mut i = 0;
        while length < min {
            text.push(filler[i % filler.len()]);
            i += 1;
            length += 1;
        }
    }
    if let Some(max) = max {
        text = text.chars().take(max).collect();
    }
    Value::String(text)
}

/// A short readable string from a property name: `risk_level` → "Sample risk level".
fn sample_text(name: &str, variant: u64) -> String {
    let mut words = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' || c == ' ' {
            words.push(' ');
            previous_lower = false;
        } else if c.is_uppercase() && previous_lower {
            words.push(' ');
            words.extend(c.to_lowercase());
            previous_lower = false;
        } else {
            words.extend(c.to_lowercase());
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let words = if words.is_empty() { "value".to_owned() } else { words };
    if variant == 0 { format!("Sample {words}") } else { format!("Sample {words} {}", variant + 1) }
}

/// "strengths" → "strength", so array items get a fitting name.
fn singular(name: &str) -> String {
    name.strip_suffix('s').filter(|stem| !stem.is_empty()).unwrap_or(name).to_owned()
}

/// OpenAI's checks for `strict: true`: the root is an object, and every object schema lists all
/// its properties in `required` and sets `additionalProperties: false`. The message copies
/// OpenAI's wording so logs look the same.
pub fn check_strict(schema: &Value) -> Result<(), String> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("Invalid schema: schema must be a JSON Schema of 'type: \"object\"', got something else.".into());
    }
    check_node(schema, &mut Vec::new())
}

fn check_node(schema: &Value, context: &mut Vec<String>) -> Result<(), String> {
    let Some(object) = schema.as_object() else { return Ok(()) };
    let context_text = || {
        let parts: Vec<String> = context.iter().map(|part| format!("'{part}'")).collect();
        if parts.len() == 1 { format!("({},)", parts[0]) } else { format!("({})", parts.join(", ")) }
    };
    let is_object = types_of(object).contains(&"object") && !object.contains_key("$ref");
    let has_combinator = ["anyOf", "oneOf", "allOf", "enum", "const"].iter().any(|key| object.contains_key(*key));
    if is_object && !has_combinator {
        if object.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(format!(
                "In context={}, 'additionalProperties' is required to be supplied and to be false.",
                context_text()
            ));
        }
        let required = required_of(object);
        if let Some(properties) = object.get("properties").and_then(Value::as_object)
            && let Some(missing) = properties.keys().find(|key| !required.contains(&key.as_str()))
        {
            return Err(format!(
                "In context={}, 'required' is required to be supplied and to be an array including every key in \
                 properties. Missing '{missing}'.",
                context_text()
            ));
        }
    }
    for keyword in ["properties", "$defs", "definitions"] {
        for (key, sub) in object.get(keyword).and_then(Value::as_object).into_iter().flatten() {
            context.extend([keyword.to_owned(), key.clone()]);
            check_node(sub, context)?;
            context.truncate(context.len() - 2);
        }
    }
    for keyword in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        for (index, sub) in object.get(keyword).and_then(Value::as_array).into_iter().flatten().enumerate() {
            context.extend([keyword.to_owned(), index.to_string()]);
            check_node(sub, context)?;
            context.truncate(context.len() - 2);
        }
    }
    if let Some(items) = object.get("items") {
        context.push("items".to_owned());
        check_node(items, context)?;
        context.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generates from `schema` and checks the result with an independent validator.
    fn generate_valid(schema: &Value) -> Value {
        let instance = generate(schema);
        let validator = match jsonschema::validator_for(schema) {
            Ok(validator) => validator,
            Err(error) => panic!("test schema is invalid: {error}"),
        };
        let errors: Vec<String> = validator.iter_errors(&instance).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "{instance:#} is invalid: {errors:?}");
        instance
    }

    /// Shaped like the session evaluation our grader asks for.
    fn evaluation_schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["overall_score", "risk_level", "criteria", "summary", "follow_up", "flags"],
            "properties": {
                "overall_score": {"type": "integer", "minimum": 1, "maximum": 5},
                "risk_level": {"type": "string", "enum": ["low", "moderate", "high", "imminent"]},
                "summary": {"type": "string", "minLength": 40, "maxLength": 400},
                "follow_up": {"type": ["string", "null"]},
                "flags": {"type": "array", "items": {"$ref": "#/$defs/flag"}, "maxItems": 0},
                "criteria": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 8,
                    "items": {"$ref": "#/$defs/criterion"}
                }
            },
            "$defs": {
                "flag": {"type": "string"},
                "criterion": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "score", "evidence", "weight", "note"],
                    "properties": {
                        "name": {"type": "string", "enum": ["rapport", "risk_assessment", "safety_planning"]},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                        "weight": {"type": "integer", "exclusiveMinimum": 0, "multipleOf": 5},
                        "evidence": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 1},
                        "note": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/note"}]}
                    }
                },
                "note": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["text", "kind"],
                    "properties": {"text": {"type": "string"}, "kind": {"const": "coaching"}}
                }
            }
        })
    }

    #[test]
    fn nested_evaluation_schema_yields_a_valid_deterministic_value() {
        let schema = evaluation_schema();
        let value = generate_valid(&schema);
        assert_eq!(value, generate(&schema));
        assert_eq!(value["overall_score"], json!(3));
        assert_eq!(value["risk_level"], json!("low"));
        assert_eq!(value["follow_up"], json!("Sample follow up"));
        assert_eq!(value["flags"], json!([]));
        assert_eq!(value["criteria"].as_array().map(Vec::len), Some(2));
        assert_eq!(value["criteria"][0]["note"]["kind"], json!("coaching"));
        assert!(check_strict(&schema).is_ok());
    }

    #[test]
    fn other_keywords_and_draft7_definitions_are_honoured() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "required": ["id", "when", "ratio", "tags", "pair", "choice", "combined", "flag", "nothing", "extra"],
            "additionalProperties": {"type": "integer", "minimum": 7},
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "when": {"type": "string", "format": "date-time"},
                "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": true},
                "pair": {"type": "array", "items": [{"type": "integer"}, {"type": "boolean"}], "minItems": 2},
                "choice": {"oneOf": [{"$ref": "#/definitions/level"}, {"type": "null"}]},
                "combined": {"allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer", "maximum": -3}}, "required": ["a"]},
                    {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}
                ]},
                "flag": {"type": "boolean"},
                "nothing": {"type": "null"},
                "short": {"type": "string", "maxLength": 3}
            },
            "definitions": {"level": {"type": "integer", "enum": [2, 4]}}
        });
        let value = generate_valid(&schema);
        assert_eq!(value["choice"], json!(2));
        assert_eq!(value["combined"], json!({"a": -3, "b": true}));
        assert_eq!(value["extra"], json!(7));
    }

    #[test]
    fn recursive_schemas_terminate() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "node": {
                    "type": "object",
                    "required": ["label", "children", "parent"],
                    "properties": {
                        "label": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                        "parent": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}
                    }
                }
            },
            "required": ["root"],
            "properties": {"root": {"$ref": "#/$defs/node"}}
        });
        generate_valid(&schema);
    }

    #[test]
    fn sample_strings_come_from_property_names() {
        assert_eq!(sample_text("riskLevel", 0), "Sample risk level");
        assert_eq!(sample_text("next_steps", 1), "Sample next steps 2");
        assert_eq!(singular("strengths"), "strength");
    }

    #[test]
    fn strict_mode_rejects_what_openai_rejects() {
        let open = json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}});
        assert_eq!(
            check_strict(&open),
            Err("In context=(), 'additionalProperties' is required to be supplied and to be false.".into())
        );
        let partial = json!({
            "type": "object", "additionalProperties": false, "required": ["a"],
            "properties": {"a": {"type": "object", "additionalProperties": false, "required": [],
                                 "properties": {"b": {"type": "string"}}}}
        });
        let Err(message) = check_strict(&partial) else { panic!("accepted a missing required key") };
        assert!(message.starts_with("In context=('properties', 'a'), 'required' is required"), "{message}");
        assert!(message.ends_with("Missing 'b'."), "{message}");
        assert!(check_strict(&json!({"anyOf": [{"type": "object"}]})).is_err());
    }
}
