//! Conversions between wire messages and store types, out of the handlers.
//!
//! Parsing helpers return `StoreError::InvalidArgument` naming the request
//! field, so every RPC reports a bad value the same way.

pub mod agent;
pub mod discovery;
pub mod enums;
pub mod execution;
pub mod task;
pub mod terminal;
pub mod worker;

use chrono::{DateTime, FixedOffset, Utc};
use prost_types::{FieldMask, ListValue, Struct, Timestamp, Value as ProtoValue, value::Kind};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::store::{StoreError, StoreResult, validate::quoted};

/// Most bytes of one reply: gRPC clients refuse replies over 4 MiB by
/// default, so lists are cut to this, with room to spare, and continue on
/// the next page.
pub const REPLY_BUDGET: usize = 3 * 1024 * 1024;

/// Keeps the leading `items` that fit in `budget` bytes on the wire (the
/// first one always: every single record is capped well below it); true
/// when some were left out.
pub fn fit_reply<T: prost::Message>(items: &mut Vec<T>, budget: usize) -> bool {
    let mut used = 0;
    let fits = items
        .iter()
        .position(|item| {
            used += item.encoded_len() + 8;
            used > budget
        })
        .map_or(items.len(), |index| index.max(1));
    let cut = fits < items.len();
    items.truncate(fits);
    cut
}

/// One page of a list as a reply: cut to [`REPLY_BUDGET`] (continuing
/// right after the last record sent), else with the store's next token.
pub fn page_reply<T: prost::Message>(
    mut items: Vec<T>,
    page: crate::store::page::PageRequest,
    next_page_token: String,
) -> (Vec<T>, String) {
    if fit_reply(&mut items, REPLY_BUDGET) {
        let next = page.token_after(items.len());
        (items, next)
    } else {
        (items, next_page_token)
    }
}

/// Parses a required UUID field.
pub fn parse_id(field: &str, value: &str) -> StoreResult<Uuid> {
    if value.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    Uuid::parse_str(value)
        .map_err(|_| StoreError::invalid(field, format!("{} is not a UUID", quoted(value))))
}

/// Parses an optional UUID field: empty means absent.
pub fn parse_optional_id(field: &str, value: &str) -> StoreResult<Option<Uuid>> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse_id(field, value).map(Some)
    }
}

/// A stored time as a protobuf timestamp.
pub fn timestamp(time: &DateTime<FixedOffset>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// An optional stored time as an optional protobuf timestamp.
pub fn optional_timestamp(time: &Option<DateTime<FixedOffset>>) -> Option<Timestamp> {
    time.as_ref().map(timestamp)
}

/// Parses a protobuf timestamp into a UTC time to store.
pub fn parse_timestamp(field: &str, value: &Timestamp) -> StoreResult<DateTime<FixedOffset>> {
    let nanos = u32::try_from(value.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .ok_or_else(|| StoreError::invalid(field, "nanos out of range"))?;
    DateTime::<Utc>::from_timestamp(value.seconds, nanos)
        .map(Into::into)
        .ok_or_else(|| StoreError::invalid(field, "time out of range"))
}

/// A JSON object as a protobuf Struct (anything else becomes an empty Struct).
pub fn json_to_struct(value: &Value) -> Struct {
    match value {
        Value::Object(map) => Struct {
            fields: map
                .iter()
                .map(|(key, value)| (key.clone(), json_to_proto_value(value)))
                .collect(),
        },
        _ => Struct::default(),
    }
}

/// A JSON value as a protobuf Value.
pub fn json_to_proto_value(value: &Value) -> ProtoValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_proto_value).collect(),
        }),
        Value::Object(_) => Kind::StructValue(json_to_struct(value)),
    };
    ProtoValue { kind: Some(kind) }
}

/// A protobuf Struct as a JSON object.
pub fn struct_to_json(value: &Struct) -> Value {
    Value::Object(
        value
            .fields
            .iter()
            .map(|(key, value)| (key.clone(), proto_value_to_json(value)))
            .collect::<Map<_, _>>(),
    )
}

/// An optional Struct as a JSON object; absent means `{}`.
pub fn optional_struct_to_json(value: &Option<Struct>) -> Value {
    value
        .as_ref()
        .map(struct_to_json)
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// A protobuf Value as JSON. Whole numbers come back as integers, so `3`
/// stays `3` (protobuf carries every number as a double).
pub fn proto_value_to_json(value: &ProtoValue) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(proto_value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

fn number_to_json(n: f64) -> Value {
    const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() < EXACT_INTEGER_LIMIT {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// The paths of an update mask, each checked against the updatable fields.
///
/// A missing or empty mask is an error rather than "update everything": a
/// client built against an older contract would otherwise wipe fields it
/// does not know about.
pub fn mask_paths(
    field: &str,
    mask: &Option<FieldMask>,
    updatable: &[&str],
) -> StoreResult<Vec<String>> {
    let paths = mask
        .as_ref()
        .map(|m| m.paths.as_slice())
        .unwrap_or_default();
    if paths.is_empty() {
        return Err(StoreError::invalid(
            field,
            format!(
                "name the fields to change (one of: {})",
                updatable.join(", ")
            ),
        ));
    }
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        if !updatable.contains(&path.as_str()) {
            return Err(StoreError::invalid(
                field,
                format!(
                    "{} cannot be updated (updatable: {})",
                    quoted(path),
                    updatable.join(", ")
                ),
            ));
        }
        if !out.contains(path) {
            out.push(path.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_struct() {
        let json = serde_json::json!({
            "n": 3, "f": 1.5, "s": "x", "b": true, "z": null,
            "list": [1, "two", {"three": 3}], "obj": {"deep": [false]}
        });
        assert_eq!(struct_to_json(&json_to_struct(&json)), json);
    }

    #[test]
    fn ids_and_masks_name_their_field() {
        let err = parse_id("task.id", "nope").unwrap_err();
        assert_eq!(err.to_string(), "task.id: \"nope\" is not a UUID");
        let err = parse_id("task.id", "").unwrap_err();
        assert_eq!(err.to_string(), "task.id: is required");
        let mask = Some(FieldMask {
            paths: vec!["title".into(), "sort_order".into()],
        });
        let err = mask_paths("update_mask", &mask, &["title"]).unwrap_err();
        assert!(err.to_string().contains("\"sort_order\" cannot be updated"));
        assert!(mask_paths("update_mask", &None, &["title"]).is_err());
    }

    #[test]
    fn timestamps_refuse_out_of_range_nanos() {
        let bad = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(parse_timestamp("task.due_at", &bad).is_err());
        let good = Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(timestamp(&parse_timestamp("due_at", &good).unwrap()), good);
    }
}
