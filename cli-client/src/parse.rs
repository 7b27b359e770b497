//! Parsers of command-line values that are not plain strings: `k=v`
//! arguments, `K=V` environment pairs, times, durations, JSON documents.
//! Each returns `Result<_, String>` so clap can use it as a value parser and
//! report a bad value as a usage error.

use serde_json::Value;

/// `--arg k=v`: the value is JSON when it parses as JSON (`n=42`,
/// `flag=true`, `opts={"a":1}`, `list=[1,2]`, `x=null`), else the raw text
/// as a string (`pattern=foo bar`). To pass a string that looks like JSON,
/// quote it as JSON: `n='"42"'`. Only the first `=` splits, so values may
/// contain `=`.
pub fn key_json_value(input: &str) -> Result<(String, Value), String> {
    let (key, raw) = input
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got '{input}'"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("missing key in '{input}' (expected KEY=VALUE)"));
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}

/// `--env K=V`: a variable name and its value, taken verbatim.
pub fn env_pair(input: &str) -> Result<(String, String), String> {
    let (key, value) = input
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{input}'"))?;
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("bad variable name in '{input}'"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// A time: RFC 3339 (`2024-05-01T17:00:00Z`, `2024-05-01T19:00:00+02:00`)
/// or a bare date (`2024-05-01`, midnight UTC).
pub fn timestamp(input: &str) -> Result<prost_types::Timestamp, String> {
    let input = input.trim();
    let time = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(input) {
        t.with_timezone(&chrono::Utc)
    } else if let Ok(date) = chrono::NaiveDate::parse_from_str(input, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("bad date '{input}'"))?
    } else {
        return Err(format!(
            "bad time '{input}' (expected RFC 3339 like 2024-05-01T17:00:00Z, or a date like 2024-05-01)"
        ));
    };
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    })
}

/// A duration: a number with an optional unit `ms`, `s` (the default), `m`
/// or `h` (`90`, `1.5s`, `2m`, `250ms`, `1h`).
pub fn duration(input: &str) -> Result<prost_types::Duration, String> {
    let text = input.trim();
    let bad = || format!("bad duration '{input}' (expected e.g. 90s, 2m, 1.5s, 250ms, 1h)");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let total_nanos = (number * scale * 1e9).round();
    if !total_nanos.is_finite() || total_nanos > 1e9 * 315_576_000_000.0 {
        return Err(bad());
    }
    let total_nanos = total_nanos as i128;
    Ok(prost_types::Duration {
        seconds: (total_nanos / 1_000_000_000) as i64,
        nanos: (total_nanos % 1_000_000_000) as i32,
    })
}

/// A JSON document given inline, or read from a file with `@PATH`, or from
/// standard input with `@-`.
pub fn json_document(input: &str) -> Result<Value, String> {
    let (text, origin) = match input.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            (text, "standard input".to_string())
        }
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?,
            path.to_string(),
        ),
        None => (input.to_string(), "the argument".to_string()),
    };
    serde_json::from_str(&text).map_err(|e| format!("bad JSON in {origin}: {e}"))
}

/// A JSON object (for `Struct` fields), inline, `@PATH` or `@-`.
pub fn json_object(input: &str) -> Result<serde_json::Map<String, Value>, String> {
    match json_document(input)? {
        Value::Object(map) => Ok(map),
        _ => Err("expected a JSON object ({...})".to_string()),
    }
}

/// `true`/`false` and the usual spellings (`yes`, `no`, `1`, `0`, `on`, `off`).
pub fn boolean(input: &str) -> Result<bool, String> {
    match input.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "on" => Ok(true),
        "false" | "no" | "n" | "0" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got '{input}'")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arg_values_are_json_when_they_parse() {
        let kv = |s| key_json_value(s).unwrap();
        assert_eq!(kv("n=42"), ("n".into(), json!(42)));
        assert_eq!(kv("ratio=0.5"), ("ratio".into(), json!(0.5)));
        assert_eq!(kv("flag=true"), ("flag".into(), json!(true)));
        assert_eq!(kv("x=null"), ("x".into(), Value::Null));
        assert_eq!(kv(r#"opts={"a":1}"#), ("opts".into(), json!({"a": 1})));
        assert_eq!(kv("list=[1,2]"), ("list".into(), json!([1, 2])));
        assert_eq!(kv(r#"s="42""#), ("s".into(), json!("42")));
    }

    #[test]
    fn arg_values_fall_back_to_strings() {
        let kv = |s| key_json_value(s).unwrap();
        assert_eq!(kv("pattern=foo bar"), ("pattern".into(), json!("foo bar")));
        assert_eq!(kv("empty="), ("empty".into(), json!("")));
        assert_eq!(kv("expr=a=b"), ("expr".into(), json!("a=b")));
        assert_eq!(kv("word=True"), ("word".into(), json!("True")));
        assert_eq!(kv("v=1.2.3"), ("v".into(), json!("1.2.3")));
        assert_eq!(kv("brace={oops"), ("brace".into(), json!("{oops")));
    }

    #[test]
    fn arg_needs_a_key_and_an_equals_sign() {
        assert!(key_json_value("novalue").is_err());
        assert!(key_json_value("=3").is_err());
    }

    #[test]
    fn env_pairs() {
        assert_eq!(env_pair("A=1").unwrap(), ("A".into(), "1".into()));
        assert_eq!(env_pair("A=").unwrap(), ("A".into(), "".into()));
        assert_eq!(env_pair("A=x=y").unwrap(), ("A".into(), "x=y".into()));
        assert_eq!(env_pair("A=42").unwrap().1, "42");
        assert!(env_pair("A").is_err());
        assert!(env_pair("=1").is_err());
    }

    #[test]
    fn timestamps() {
        let t = timestamp("2024-05-01T12:00:00Z").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_714_564_800, 0));
        let t = timestamp("2024-05-01T14:00:00.5+02:00").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_714_564_800, 500_000_000));
        let t = timestamp("2024-05-01").unwrap();
        assert_eq!(t.seconds, 1_714_521_600);
        assert!(timestamp("tomorrow").is_err());
        assert!(timestamp("2024-13-01").is_err());
    }

    #[test]
    fn durations() {
        let d = |s| {
            let d = duration(s).unwrap();
            (d.seconds, d.nanos)
        };
        assert_eq!(d("90"), (90, 0));
        assert_eq!(d("90s"), (90, 0));
        assert_eq!(d("1.5s"), (1, 500_000_000));
        assert_eq!(d("2m"), (120, 0));
        assert_eq!(d("250ms"), (0, 250_000_000));
        assert_eq!(d("1h"), (3600, 0));
        for bad in ["", "s", "-1s", "1d", "abc", "1..2s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_documents() {
        assert_eq!(json_document(r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        assert!(json_document("{nope").unwrap_err().contains("bad JSON"));
        assert!(json_object("[1]").is_err());
        let dir = std::env::temp_dir().join(format!("amon-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("schema.json");
        std::fs::write(&path, r#"{"type":"object"}"#).unwrap();
        let doc = json_object(&format!("@{}", path.display())).unwrap();
        assert_eq!(doc["type"], "object");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            json_document("@/definitely/not/here.json")
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean("true"), Ok(true));
        assert_eq!(boolean("No"), Ok(false));
        assert!(boolean("maybe").is_err());
    }
}
