//! Telemetry: the event model and the readers that turn recorded files into events.
//!
//! Input: recorded files (JSON, JSONL, the nested `Event.System`/`Event.EventData` shape the evtx crate
//! writes, `.evtx`). Output: an ordered stream of [`Event`]s plus located diagnostics for records that
//! could not be read. This module never knows about rules or expectations, and never drops or renames a
//! field the sensor wrote: EVTX `<System>` attributes become `Tag_Attribute` (`Provider_Name`) and spaces
//! are stripped from field names, as the Sigma specification's field-naming rules say; nothing else is
//! changed.

mod archive;
pub mod auditd;
mod evtx;
mod json;
pub mod native;
pub mod read;
pub mod sensors;
pub mod xml;

use std::fmt;

/// A field value as the source wrote it. Types are kept where the source has them; Sigma comparison
/// rules (a number matches its string form, `true` matches `'true'`) live in the `sigma` module.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An explicit null (JSON `null`). Distinct from an absent field.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// An array; a matcher matches it when any element matches.
    List(Vec<Value>),
    /// An object inside a list (objects outside lists are flattened into dotted field names).
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The value's text as Sigma compares it: strings as they are, numbers in canonical decimal,
    /// booleans as `true`/`false`. `None` for null, lists and maps.
    pub fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Float(f) => Some(Cow::Owned(format_float(*f))),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Null | Value::List(_) | Value::Map(_) => None,
        }
    }

    /// Converts a JSON value, keeping its type.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    // Larger than i64: keep the exact digits.
                    Value::Str(u.to_string())
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Back to JSON (used by writers and by `eval --format jsonl`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

/// Canonical decimal text of a float: integral values without a fraction (`3.0` -> `3`).
pub fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(t) => f.write_str(&t),
            None => write!(f, "{}", self.to_json()),
        }
    }
}

/// The fields an event's time is read from, first present wins: EVTX `TimeCreated_SystemTime`,
/// Defender `Timestamp`, `@timestamp`, `timestamp`, Sysmon `UtcTime`, Zeek `ts`.
pub const TIME_FIELDS: &[&str] = &[
    "TimeCreated_SystemTime",
    "Timestamp",
    "@timestamp",
    "timestamp",
    "UtcTime",
    "ts",
];

/// One normalized event: a flat, ordered list of fields as the sensor wrote them, plus what the reader
/// knows about where it came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// The sensor or format the reader recognised (`"auditd"`, `"zeek"`, ...) when the fields alone do
    /// not say it; `None` for Windows events, which carry `Channel`.
    pub sensor: Option<String>,
    /// Fields in source order. Names are unique.
    pub fields: Vec<(String, Value)>,
    /// Where the record came from, for diagnostics and reports: input file index and 1-based line
    /// (or record number for EVTX).
    pub origin: Origin,
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Index of the input file in the order given.
    pub input: usize,
    /// 1-based line of the record's start in a text input, or the EVTX record number.
    pub record: u64,
}

impl Event {
    /// An event from `(name, value)` pairs; a repeated name keeps its last value.
    pub fn from_fields<I, K>(fields: I) -> Event
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        let mut ev = Event::default();
        for (k, v) in fields {
            ev.set(k.into(), v);
        }
        ev
    }

    /// The value of a field, `None` when the event does not have it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Sets a field, replacing an existing value of the same name in place.
    pub fn set(&mut self, name: String, value: Value) {
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.fields.push((name, value));
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|v| v.as_text())
            .map(|c| c.into_owned())
    }

    /// `Channel` (Windows event log channel).
    pub fn channel(&self) -> Option<String> {
        self.text("Channel")
    }

    /// `EventID` as a number, when it is one.
    pub fn event_id(&self) -> Option<i64> {
        match self.get("EventID")? {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `Computer` (or `DeviceName` for Defender rows, `hostname` / `node` for others).
    pub fn host(&self) -> Option<String> {
        ["Computer", "DeviceName", "hostname", "node"]
            .iter()
            .find_map(|k| self.text(k))
    }

    /// `Provider_Name`.
    pub fn provider(&self) -> Option<String> {
        self.text("Provider_Name")
    }

    /// The event time as written by the source (EVTX `TimeCreated_SystemTime`, Defender `Timestamp`,
    /// `@timestamp`, `timestamp`, `UtcTime`, Zeek `ts`).
    pub fn timestamp(&self) -> Option<String> {
        TIME_FIELDS.iter().find_map(|k| self.text(k))
    }
}
