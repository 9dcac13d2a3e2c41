//! JSON text to events: record framing and record flattening.
//!
//! Input: UTF-8 text holding JSON records in one of three framings (a JSON array of records, JSONL,
//! or a stream of concatenated, possibly pretty-printed objects), or one already parsed record.
//! Output: one [`Event`] per object record, in file order, with `Origin.record` set to the 1-based
//! line where the record starts, plus a located [`Diagnostic`] for every record that could not be
//! read; reading goes on after a bad record.
//!
//! Record shapes (see [`event_from_json`]): flat records pass through (nested objects become dotted
//! names); the nested `Event.System`/`Event.EventData`/`Event.UserData` shape that the evtx crate
//! and SigmaHQ's regression data use is flattened to the names Sigma rules use (`Provider_Name`,
//! `EventID`, `CommandLine`); the xmltodict variant of that shape (`@Name` attributes, `Data` as a
//! list of `{"@Name", "#text"}`) and the evtx crate's `separate_json_attributes` variant
//! (`"Provider_attributes": {..}`) are read the same way; Microsoft Defender streaming rows
//! (`category: AdvancedHunting-<Table>`) become their `properties` plus `Table`.
//!
//! This module never panics on input, never drops a field the source wrote (only `xmlns`
//! declarations), and never changes a value's type.

use std::path::Path;

use serde_json::Value as Json;
use std::borrow::Cow;

use super::read::ReadOutput;
use super::{Event, Value};
use crate::diag::{Diagnostic, Location};

/// After this many diagnostics for one file, the rest are counted in one summary diagnostic.
pub(super) const MAX_DIAGNOSTICS: usize = 50;

/// The help line attached to record-framing errors.
const FRAMING_HELP: &str =
    "records must be JSON objects: one per line (JSONL), elements of one JSON \
array, or concatenated objects (pretty-printed ones start with `{` at the start of a line)";

// ---------------------------------------------------------------------------------------------
// Record flattening
// ---------------------------------------------------------------------------------------------

/// A parsed JSON value that borrows unescaped strings from the text it was read from and keeps
/// object members in source order without hashing them: reading builds one of these per record and
/// turns it into an [`Event`] at once, which is much cheaper than a `serde_json::Value` (whose
/// objects are hashed maps here, because the evtx crate turns on `preserve_order`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`, kept as its exact digits.
    Big(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<J<'a>>),
    Object(Vec<(Cow<'a, str>, J<'a>)>),
}

impl<'a> J<'a> {
    fn is_object(&self) -> bool {
        matches!(self, J::Object(_))
    }

    /// A `serde_json::Value` as a `J` (for records the evtx crate has already parsed).
    fn from_value(v: &'a Json) -> J<'a> {
        match v {
            Json::Null => J::Null,
            Json::Bool(b) => J::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => J::Int(i),
                (None, Some(u)) => J::Big(u),
                _ => J::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => J::Str(Cow::Borrowed(s)),
            Json::Array(a) => J::Array(a.iter().map(J::from_value).collect()),
            Json::Object(o) => J::Object(
                o.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), J::from_value(v)))
                    .collect(),
            ),
        }
    }
}

/// Member lookup on an object's members (first member of that name).
trait Members<'a> {
    fn field(&self, key: &str) -> Option<&J<'a>>;
}

impl<'a> Members<'a> for [(Cow<'a, str>, J<'a>)] {
    fn field(&self, key: &str) -> Option<&J<'a>> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A `J` as an event value (types kept, as [`Value::from_json`] does).
fn from_j(v: &J<'_>) -> Value {
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Int(i) => Value::Int(*i),
        J::Big(u) => Value::Str(u.to_string()),
        J::Float(f) => Value::Float(*f),
        J::Str(s) => Value::Str(s.to_string()),
        J::Array(a) => Value::List(a.iter().map(from_j).collect()),
        J::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.to_string(), from_j(v))).collect()),
    }
}

impl<'de> serde::Deserialize<'de> for J<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = J<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<J<'de>, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J<'de>, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J<'de>, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<J<'de>, E> {
                Ok(J::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<J<'de>, E> {
                Ok(i64::try_from(u).map_or(J::Big(u), J::Int))
            }
            fn visit_f64<E>(self, f: f64) -> Result<J<'de>, E> {
                Ok(J::Float(f))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<J<'de>, E> {
                Ok(J::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<J<'de>, E> {
                Ok(J::Str(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<J<'de>, E> {
                Ok(J::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<J<'de>, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(v) = a.next_element::<J<'de>>()? {
                    out.push(v);
                }
                Ok(J::Array(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<J<'de>, A::Error> {
                // serde_json gives no size hint; most objects of a record are small.
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(16));
                while let Some(k) = a.next_key::<CowKey<'de>>()? {
                    let v = a.next_value::<J<'de>>()?;
                    out.push((k.0, v));
                }
                Ok(J::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// An object key, borrowed when it has no escapes.
struct CowKey<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for CowKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CowKey<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<CowKey<'de>, E> {
                Ok(CowKey(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One JSON record (already parsed as a `serde_json::Value`) to an [`Event`]; see [`event_from_j`]
/// for the shapes.
pub fn event_from_json(v: &Json) -> Event {
    event_from_j(&J::from_value(v))
}

/// One JSON record to an [`Event`].
///
/// - Nested EVTX shape (`{"Event": {"System": {..}, "EventData": {..} | "UserData": {..}}}`):
///   `System` children become fields by name; an element with attributes gives one field
///   `<Element>_<Attribute>` per attribute and, with a `#text`, the field `<Element>` itself
///   (`Provider_Name`, `TimeCreated_SystemTime`, `EventID` + `EventID_Qualifiers`). `EventData`
///   children become fields with every space removed from the name; unnamed `Data` becomes the
///   field `Data` (a list or a string). `UserData` holds one wrapper element whose children become
///   top-level fields. Attributes written `@Name` (xmltodict exports) or as a sibling
///   `<Element>_attributes` object (evtx `separate_json_attributes`) are read like `#attributes`.
///   `xmlns` declarations are dropped. A data field whose name a `System` field already has keeps
///   the `System` field under the plain name and is itself stored as `EventData.<Name>` /
///   `UserData.<Name>` (event 104 has `UserData.Channel`, the channel that was cleared).
/// - Defender streaming shape (`{"category": "AdvancedHunting-<Table>", "properties": {..}}`):
///   the fields of `properties`, then `Table` = `<Table>` unless `properties` has one, then the
///   other envelope keys (`time`, `tenantId`, ...) that `properties` does not already have.
/// - Anything else is a flat record: each key is a field, nested objects (not inside arrays) are
///   flattened into dotted names, arrays stay lists.
///
/// A value that is not an object gives an event without fields.
pub(crate) fn event_from_j(v: &J<'_>) -> Event {
    let J::Object(obj) = v else {
        return Event::default();
    };
    let mut f = Fields::with_capacity(obj.len().max(48));
    if let Some(J::Object(ev)) = obj.field("Event") {
        if ev.field("System").is_some_and(J::is_object) {
            evtx_event(&mut f, ev);
            for (k, v) in obj {
                match separate_attributes(k, v) {
                    _ if k == "Event" => {}
                    Some(base) => attributes(&mut f, base, v, Put::Set),
                    None => flat(&mut f, k.to_string(), v, Put::Set),
                }
            }
            return f.into_event();
        }
    }
    if let (Some(J::Str(cat)), Some(J::Object(props))) =
        (obj.field("category"), obj.field("properties"))
    {
        if let Some(table) = strip_prefix_ignore_case(cat, "AdvancedHunting-") {
            for (k, v) in props {
                flat(&mut f, k.to_string(), v, Put::Set);
            }
            if !f.has("Table") {
                f.set("Table".to_string(), Value::Str(table.to_string()));
            }
            for (k, v) in obj {
                if k != "properties" && !f.has(k) {
                    flat(&mut f, k.to_string(), v, Put::Set);
                }
            }
            return f.into_event();
        }
    }
    for (k, v) in obj {
        flat(&mut f, k.to_string(), v, Put::Set);
    }
    f.into_event()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Fields being collected. Names stay unique: each is found through a small open-addressing table
/// of field positions keyed by a hash of the name (no name is copied or hashed twice).
#[derive(Default)]
struct Fields {
    fields: Vec<(String, Value)>,
    /// Power-of-two table of `position + 1` (0 = empty), at most half full.
    table: Vec<u32>,
}

/// The table hash of a field name (Fx: a word at a time, no setup cost).
fn name_hash(name: &str) -> usize {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(name.as_bytes());
    h.finish() as usize
}

/// `a`, `sep`, `b` as one new string (what `format!("{a}{sep}{b}")` gives, without formatting).
fn join(a: &str, sep: char, b: &str) -> String {
    let mut s = String::with_capacity(a.len() + 1 + b.len());
    s.push_str(a);
    s.push(sep);
    s.push_str(b);
    s
}

/// How a field is stored.
#[derive(Clone, Copy)]
enum Put<'a> {
    /// Under its name, replacing an earlier value of that name.
    Set,
    /// Under its name unless an earlier field has it; then as `<container>.<name>`.
    Data(&'a str),
}

impl Fields {
    fn with_capacity(n: usize) -> Fields {
        Fields {
            fields: Vec::with_capacity(n),
            table: vec![0; (2 * n).next_power_of_two().max(16)],
        }
    }

    /// The table slot of `name`: the one holding it, or the empty one where it would go.
    fn slot(&self, name: &str) -> usize {
        let mask = self.table.len() - 1;
        let mut i = name_hash(name) & mask;
        loop {
            match self.table[i] {
                0 => return i,
                p if self.fields[p as usize - 1].0 == name => return i,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        match self.table[self.slot(name)] {
            0 => None,
            p => Some(p as usize - 1),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    fn set(&mut self, name: String, value: Value) {
        self.grow_for_one();
        let i = self.slot(&name);
        self.set_at(i, name, value);
    }

    /// Stores `name` at table slot `i` (its [`Fields::slot`]): a new field, or a new value.
    fn set_at(&mut self, i: usize, name: String, value: Value) {
        match self.table[i] {
            0 => {
                self.fields.push((name, value));
                self.table[i] = self.fields.len() as u32;
            }
            p => self.fields[p as usize - 1].1 = value,
        }
    }

    /// Makes room for one more name (the table stays at most half full).
    fn grow_for_one(&mut self) {
        if 2 * (self.fields.len() + 1) > self.table.len() {
            self.grow();
        }
    }

    /// Doubles the table (at least 16 slots) and re-inserts every name.
    fn grow(&mut self) {
        let size = (self.table.len() * 2).max(16);
        self.table = vec![0; size];
        for k in 0..self.fields.len() {
            let i = self.slot(&self.fields[k].0);
            self.table[i] = k as u32 + 1;
        }
    }

    fn put(&mut self, how: Put<'_>, name: String, value: Value) {
        self.grow_for_one();
        let i = self.slot(&name);
        match how {
            Put::Data(container) if self.table[i] != 0 => {
                self.set(join(container, '.', &name), value)
            }
            _ => self.set_at(i, name, value),
        }
    }

    fn into_event(self) -> Event {
        // `replay --format jsonl` writes the sensor name as a `sensor` field. auditd records are
        // routed by that name (their fields alone do not identify them), so it is read back.
        let sensor = self
            .fields
            .iter()
            .find(|(k, _)| k == "sensor")
            .and_then(|(_, v)| match v {
                Value::Str(s) if s == crate::telemetry::auditd::SENSOR => Some(s.clone()),
                _ => None,
            });
        Event {
            sensor,
            fields: self.fields,
            origin: Default::default(),
        }
    }
}

/// Flat flattening: nested objects become dotted names; everything else (arrays included) is one
/// field. An empty object stays a field holding an empty map, so the name is not lost.
fn flat(f: &mut Fields, name: String, v: &J<'_>, how: Put<'_>) {
    match v {
        J::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                flat(f, join(&name, '.', k), c, how);
            }
        }
        _ => f.put(how, name, from_j(v)),
    }
}

/// `xmlns` and `xmlns:prefix` declarations are markup, not data.
fn is_xmlns(attr: &str) -> bool {
    attr == "xmlns" || attr.starts_with("xmlns:")
}

/// Sigma's field names have no spaces (`Threat Name` -> `ThreatName`).
fn strip_spaces(name: &str) -> String {
    if name.contains(' ') {
        name.replace(' ', "")
    } else {
        name.to_string()
    }
}

/// The element whose attributes a key holds, in the evtx crate's `separate_json_attributes`
/// output (`"Provider_attributes": {"Name": ..}` next to, or instead of, `"Provider"`).
fn separate_attributes<'k>(key: &'k str, v: &J<'_>) -> Option<&'k str> {
    key.strip_suffix("_attributes")
        .filter(|base| !base.is_empty() && v.is_object())
}

/// The attribute name of a key, if the key holds one attribute (`@Name`, xmltodict style).
fn at_attribute(key: &str) -> Option<&str> {
    key.strip_prefix('@').filter(|a| !a.is_empty())
}

/// Stores the attributes of element `name` as `<name>_<attribute>`, dropping `xmlns`.
fn attributes(f: &mut Fields, name: &str, attrs: &J<'_>, how: Put<'_>) {
    match attrs {
        J::Object(m) => {
            for (a, v) in m {
                if !is_xmlns(a) {
                    flat(f, join(name, '_', a), v, how);
                }
            }
        }
        J::Null => {}
        other => f.put(how, format!("{name}_attributes"), from_j(other)),
    }
}

/// One XML element rendered as JSON, stored under `name`: attributes become `<name>_<attr>`, a
/// `#text` becomes `<name>`, child elements become `<name>.<child>` (recursively), and a scalar,
/// a list or null is the value of `<name>`.
fn element(f: &mut Fields, name: String, v: &J<'_>, how: Put<'_>) {
    let J::Object(m) = v else {
        f.put(how, name, from_j(v));
        return;
    };
    if m.is_empty() {
        f.put(how, name, Value::Map(Vec::new()));
        return;
    }
    for (k, c) in m {
        if k == "#attributes" {
            attributes(f, &name, c, how);
        } else if let Some(a) = at_attribute(k) {
            if !is_xmlns(a) {
                flat(f, join(&name, '_', a), c, how);
            }
        } else if k == "#text" {
            f.put(how, name.clone(), from_j(c));
        } else if let Some(base) = separate_attributes(k, c) {
            attributes(f, &join(&name, '.', &strip_spaces(base)), c, how);
        } else {
            element(f, join(&name, '.', &strip_spaces(k)), c, how);
        }
    }
}

/// The `Event` object of the nested EVTX shape.
fn evtx_event(f: &mut Fields, ev: &[(Cow<'_, str>, J<'_>)]) {
    for (k, v) in ev {
        match k.as_ref() {
            "#attributes" => attributes(f, "Event", v, Put::Set),
            "System" => system(f, v),
            "EventData" => event_data(f, v),
            "UserData" => user_data(f, v),
            _ => {
                if let Some(base) = separate_attributes(k, v) {
                    attributes(f, base, v, Put::Data("Event"));
                } else if let Some(a) = at_attribute(k) {
                    if !is_xmlns(a) {
                        flat(f, format!("Event_{a}"), v, Put::Set);
                    }
                } else {
                    // RenderingInfo, ProcessingErrorData, ...: kept under their own dotted names.
                    element(f, k.to_string(), v, Put::Data("Event"));
                }
            }
        }
    }
}

fn system(f: &mut Fields, v: &J<'_>) {
    match v {
        J::Object(m) => {
            for (k, c) in m {
                match at_attribute(k) {
                    Some(a) if is_xmlns(a) => {}
                    Some(a) => flat(f, join("System", '_', a), c, Put::Set),
                    None if k == "#attributes" => attributes(f, "System", c, Put::Set),
                    None => match separate_attributes(k, c) {
                        Some(base) => attributes(f, base, c, Put::Set),
                        None => element(f, k.to_string(), c, Put::Set),
                    },
                }
            }
        }
        other => f.set("System".to_string(), from_j(other)),
    }
}

fn event_data(f: &mut Fields, v: &J<'_>) {
    const HOW: Put<'static> = Put::Data("EventData");
    let m = match v {
        J::Null => return,
        J::Object(m) => m,
        other => {
            f.put(HOW, "EventData".to_string(), from_j(other));
            return;
        }
    };
    for (k, c) in m {
        if k == "#attributes" {
            attributes(f, "EventData", c, HOW);
        } else if let Some(a) = at_attribute(k) {
            if !is_xmlns(a) {
                flat(f, join("EventData", '_', a), c, HOW);
            }
        } else if k == "#text" {
            f.put(HOW, "EventData".to_string(), from_j(c));
        } else if k == "Data" {
            data(f, c);
        } else {
            element(f, strip_spaces(k), c, HOW);
        }
    }
}

/// The name and value of a named `<Data Name="..">` element in xmltodict (`@Name`) or
/// `#attributes` form; a missing `#text` is the empty string (the element was empty).
fn named_data(m: &[(Cow<'_, str>, J<'_>)]) -> Option<(String, Value)> {
    let name = match (m.field("@Name"), m.field("#attributes")) {
        (Some(J::Str(n)), _) => n,
        (_, Some(J::Object(a))) => match a.field("Name") {
            Some(J::Str(n)) => n,
            _ => return None,
        },
        _ => return None,
    };
    let value = m
        .field("#text")
        .map(from_j)
        .unwrap_or_else(|| Value::Str(String::new()));
    Some((strip_spaces(name), value))
}

/// `EventData.Data`: unnamed values (evtx: `{"#text": [..]}` or a list or a string) become the
/// field `Data`; named elements (xmltodict: `[{"@Name": "CommandLine", "#text": ".."}]`) become
/// fields of their own.
fn data(f: &mut Fields, v: &J<'_>) {
    const HOW: Put<'static> = Put::Data("EventData");
    match v {
        J::Array(items) => {
            let mut unnamed = Vec::new();
            for item in items {
                match item {
                    J::Object(m) => match named_data(m) {
                        Some((name, value)) => f.put(HOW, name, value),
                        None => match m.field("#text") {
                            Some(t) if m.len() == 1 => unnamed.push(from_j(t)),
                            _ => unnamed.push(from_j(item)),
                        },
                    },
                    _ => unnamed.push(from_j(item)),
                }
            }
            if !unnamed.is_empty() || items.is_empty() {
                f.put(HOW, "Data".to_string(), Value::List(unnamed));
            }
        }
        J::Object(m) => match named_data(m) {
            Some((name, value)) => f.put(HOW, name, value),
            None => element(f, "Data".to_string(), v, HOW),
        },
        _ => f.put(HOW, "Data".to_string(), from_j(v)),
    }
}

fn user_data(f: &mut Fields, v: &J<'_>) {
    const HOW: Put<'static> = Put::Data("UserData");
    let m = match v {
        J::Null => return,
        J::Object(m) => m,
        other => {
            f.put(HOW, "UserData".to_string(), from_j(other));
            return;
        }
    };
    for (wrapper, wv) in m {
        if wrapper == "#attributes" {
            attributes(f, "UserData", wv, HOW);
            continue;
        }
        if let Some(a) = at_attribute(wrapper) {
            if !is_xmlns(a) {
                flat(f, format!("UserData_{a}"), wv, HOW);
            }
            continue;
        }
        if let Some(base) = separate_attributes(wrapper, wv) {
            attributes(f, &strip_spaces(base), wv, HOW);
            continue;
        }
        let wname = strip_spaces(wrapper);
        let J::Object(children) = wv else {
            f.put(HOW, wname, from_j(wv));
            continue;
        };
        for (k, c) in children {
            if k == "#attributes" {
                attributes(f, &wname, c, HOW);
            } else if let Some(a) = at_attribute(k) {
                if !is_xmlns(a) {
                    flat(f, format!("{wname}_{a}"), c, HOW);
                }
            } else if k == "#text" {
                f.put(HOW, wname.clone(), from_j(c));
            } else if let Some(base) = separate_attributes(k, c) {
                attributes(f, &strip_spaces(base), c, HOW);
            } else {
                element(f, strip_spaces(k), c, HOW);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fast path: the evtx crate's shape read straight into fields
// ---------------------------------------------------------------------------------------------

/// A record of exactly the shape the evtx crate writes (`{"Event": {"#attributes": {..},
/// "System": {..}, "EventData": {..}}}` with scalar values), read straight into fields without an
/// intermediate tree. Every `put` happens in the order, and with the names and values,
/// [`event_from_j`] gives for the same record, so the event is the same (tested on every JSON
/// recording of the reference data). Anything else (another top-level key, `UserData`, xmltodict
/// `@` attributes, `Data` lists, arrays, empty elements, ...) fails with [`NOT_FAST`] and the record
/// is read the general way.
struct FastEvent(Fields);

/// The error that sends a record to the general path.
const NOT_FAST: &str = "not the evtx crate's plain shape";

fn not_fast<E: serde::de::Error>() -> E {
    E::custom(NOT_FAST)
}

impl<'de> serde::Deserialize<'de> for FastEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = FastEvent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an evtx record")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<FastEvent, A::Error> {
                let mut f = Fields::with_capacity(48);
                let Some(k) = a.next_key::<CowKey<'de>>()? else {
                    return Err(not_fast());
                };
                if k.0 != "Event" {
                    return Err(not_fast());
                }
                a.next_value_seed(EventSeed(&mut f))?;
                if a.next_key::<CowKey<'de>>()?.is_some() {
                    return Err(not_fast());
                }
                Ok(FastEvent(f))
            }
        }
        d.deserialize_map(Top)
    }
}

/// A seed that is its own visitor: `DeserializeSeed` hands the JSON value, whatever its kind, to the
/// seed's `Visitor` impl, which gives the same `Value`.
macro_rules! seed_is_its_visitor {
    ($seed:ty) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $seed {
            type Value = <Self as serde::de::Visitor<'de>>::Value;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

/// The `Event` object: `#attributes`, `System` (an object, required), `EventData`.
struct EventSeed<'f>(&'f mut Fields);

seed_is_its_visitor!(EventSeed<'_>);

impl<'de> serde::de::Visitor<'de> for EventSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an Event object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let f = self.0;
        let mut system = false;
        while let Some(k) = a.next_key::<CowKey<'de>>()? {
            match k.0.as_ref() {
                "#attributes" => a.next_value_seed(AttrSeed(f, "Event", Put::Set))?,
                "System" => {
                    a.next_value_seed(ChildrenSeed {
                        f,
                        name: None,
                        how: Put::Set,
                    })?;
                    system = true;
                }
                "EventData" => a.next_value_seed(EventDataSeed(f))?,
                _ => return Err(not_fast()),
            }
        }
        if system {
            Ok(())
        } else {
            Err(not_fast())
        }
    }
}

/// A scalar JSON value as an event value (as [`from_j`] gives it); anything else is not fast.
struct ScalarSeed;

seed_is_its_visitor!(ScalarSeed);

impl<'de> serde::de::Visitor<'de> for ScalarSeed {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a scalar")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or_else(|_| Value::Str(u.to_string()), Value::Int))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(x))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
}

/// An element's `#attributes`: each attribute (but `xmlns`) as `<name>_<attribute>`; null: none.
struct AttrSeed<'f, 'n>(&'f mut Fields, &'n str, Put<'static>);

seed_is_its_visitor!(AttrSeed<'_, '_>);

impl<'de> serde::de::Visitor<'de> for AttrSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("attributes")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let AttrSeed(f, name, how) = self;
        while let Some(k) = a.next_key::<CowKey<'de>>()? {
            if is_xmlns(&k.0) {
                a.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let v = a.next_value_seed(ScalarSeed)?;
            f.put(how, join(name, '_', &k.0), v);
        }
        Ok(())
    }
}

/// The `EventData` object: `#attributes`, then each named child as an element (spaces stripped
/// from its name), stored as `EventData.<name>` where a `System` field has the name; null: nothing.
struct EventDataSeed<'f>(&'f mut Fields);

seed_is_its_visitor!(EventDataSeed<'_>);

impl<'de> serde::de::Visitor<'de> for EventDataSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("EventData")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        const HOW: Put<'static> = Put::Data("EventData");
        let f = self.0;
        while let Some(k) = a.next_key::<CowKey<'de>>()? {
            let k = k.0;
            if k == "#attributes" {
                a.next_value_seed(AttrSeed(f, "EventData", HOW))?;
            } else if k == "#text" || k == "Data" || at_attribute(&k).is_some() {
                return Err(not_fast());
            } else {
                a.next_value_seed(ElementSeed {
                    f,
                    name: strip_spaces(&k),
                    how: HOW,
                })?;
            }
        }
        Ok(())
    }
}

/// One element stored under `name` (see [`element`]): a scalar is its value; an object gives its
/// `#attributes`, its `#text` and its children `<name>.<child>`.
struct ElementSeed<'f> {
    f: &'f mut Fields,
    name: String,
    how: Put<'static>,
}

seed_is_its_visitor!(ElementSeed<'_>);

impl ElementSeed<'_> {
    fn scalar<E>(self, v: Value) -> Result<(), E> {
        self.f.put(self.how, self.name, v);
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for ElementSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an element")
    }
    // Scalars convert as `ScalarSeed` converts them (one place for the number rules).
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_unit()?)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_none()?)
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_bool(b)?)
    }
    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_i64(i)?)
    }
    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_u64(u)?)
    }
    fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_f64(x)?)
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_str(s)?)
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<(), E> {
        self.scalar(ScalarSeed.visit_string(s)?)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<(), A::Error> {
        ChildrenSeed {
            f: self.f,
            name: Some(&self.name),
            how: self.how,
        }
        .visit_map(a)
    }
}

/// The members of an element object (`name: Some`) or of `System` (`name: None`: children are
/// top-level fields, attributes `System_<attr>`). An empty element is not fast.
struct ChildrenSeed<'f, 'n> {
    f: &'f mut Fields,
    name: Option<&'n str>,
    how: Put<'static>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ChildrenSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ChildrenSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let ChildrenSeed { f, name, how } = self;
        let mut empty = true;
        while let Some(k) = a.next_key::<CowKey<'de>>()? {
            empty = false;
            let k = k.0;
            if at_attribute(&k).is_some() || k.ends_with("_attributes") {
                return Err(not_fast());
            }
            if k == "#attributes" {
                a.next_value_seed(AttrSeed(f, name.unwrap_or("System"), how))?;
                continue;
            }
            match name {
                None => a.next_value_seed(ElementSeed {
                    f: &mut *f,
                    name: k.to_string(),
                    how,
                })?,
                Some(n) if k == "#text" => {
                    let v = a.next_value_seed(ScalarSeed)?;
                    f.put(how, n.to_string(), v);
                }
                Some(n) => a.next_value_seed(ElementSeed {
                    f: &mut *f,
                    name: join(n, '.', &strip_spaces(&k)),
                    how,
                })?,
            }
        }
        if empty && name.is_some() {
            return Err(not_fast());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Record framing
// ---------------------------------------------------------------------------------------------

/// Byte offsets of line starts, to turn offsets into 1-based lines and columns.
struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Lines { text, starts }
    }

    /// 0-based index of the line holding byte `off`.
    fn line_index(&self, off: usize) -> usize {
        match self.starts.binary_search(&off) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// 1-based line and 1-based column (in characters) of byte `off`.
    fn line_col(&self, off: usize) -> (usize, usize) {
        let li = self.line_index(off);
        let start = self.starts.get(li).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..off)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (li + 1, col + 1)
    }

    /// Byte offset of the start of 1-based `line` (the text's end past the last line).
    fn line_start(&self, line: usize) -> usize {
        self.starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// End of the line holding byte `off` (the offset of its `\n`, or the text's end).
    fn line_end(&self, off: usize) -> usize {
        let li = self.line_index(off);
        self.starts
            .get(li + 1)
            .map(|s| s - 1)
            .unwrap_or(self.text.len())
    }

    /// Byte offset of an error that serde_json located at `line`/`column` (1-based, column in
    /// bytes) in the slice starting at `base`.
    fn error_offset(&self, base: usize, line: usize, column: usize) -> usize {
        let abs_line = self.line_index(base) + line; // 1-based
        let line_start = if line <= 1 {
            base
        } else {
            self.line_start(abs_line)
        };
        let mut off = (line_start + column.saturating_sub(1)).min(self.text.len());
        while !self.text.is_char_boundary(off) {
            off -= 1;
        }
        off
    }
}

/// How records are laid out, as learnt from the first record that parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Nothing parsed yet.
    Unknown,
    /// One record per line: each line is parsed on its own.
    Lines,
    /// Records may span lines.
    Stream,
}

struct Reader<'t, 'p> {
    text: &'t str,
    lines: Lines<'t>,
    path: &'p Path,
    input: usize,
    out: ReadOutput,
    framing: Framing,
    unreported: usize,
    /// Whether records of the evtx crate's plain shape take the fast path.
    fast: bool,
}

/// Reads JSON records from text (no BOM). See the module documentation.
pub(super) fn read_text(text: &str, path: &Path, input: usize) -> ReadOutput {
    read_text_with(text, path, input, true)
}

fn read_text_with(text: &str, path: &Path, input: usize, fast: bool) -> ReadOutput {
    let mut r = Reader {
        text,
        lines: Lines::new(text),
        path,
        input,
        out: ReadOutput::default(),
        framing: Framing::Unknown,
        unreported: 0,
        fast,
    };
    r.run();
    r.finish()
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while let Some(c) = b.get(pos) {
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            pos += 1;
        } else {
            break;
        }
    }
    pos
}

/// serde_json's message without its " at line L column C" suffix, said as what was expected.
fn bare_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let bare = match s.rfind(" at line ") {
        Some(i) if e.line() > 0 => &s[..i],
        _ => s.as_str(),
    };
    let said = match bare {
        "key must be a string" => "expected a key (a string in double quotes)",
        "EOF while parsing an object" => "expected `}`, found the end of the input",
        "EOF while parsing a list" => "expected `]`, found the end of the input",
        "EOF while parsing a string" => "expected `\"`, found the end of the input",
        "EOF while parsing a value" => "expected a value, found the end of the input",
        "trailing comma" => "expected a value after `,` (trailing comma)",
        "trailing characters" => "expected the end of the record, found more characters",
        "control character (\\u0000-\\u001F) found while parsing a string" => {
            "expected `\"` or an escape, found a raw control character (a line break?) in a string"
        }
        other => other,
    };
    said.to_string()
}

/// What a JSON value is, for messages.
fn kind(v: &J<'_>) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Int(_) | J::Float(_) | J::Big(_) => "a number",
        J::Str(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}

impl<'t> Reader<'t, '_> {
    fn run(&mut self) {
        let b = self.text.as_bytes();
        let mut pos = skip_ws(b, 0);
        while pos < b.len() {
            pos = if b.get(pos) == Some(&b'[') {
                self.array(pos)
            } else {
                self.record(pos)
            };
            pos = skip_ws(b, pos);
        }
    }

    fn finish(mut self) -> ReadOutput {
        if self.unreported > 0 {
            let d = Diagnostic::error(
                Location::file(self.path),
                format!(
                    "{} more records could not be read (not listed one by one)",
                    self.unreported
                ),
            );
            self.out.diagnostics.push(d);
        }
        self.out
    }

    fn diag(&mut self, d: Diagnostic) {
        if self.out.diagnostics.len() < MAX_DIAGNOSTICS {
            self.out.diagnostics.push(d);
        } else {
            self.unreported += 1;
        }
    }

    fn loc(&self, off: usize) -> Location {
        let (line, col) = self.lines.line_col(off);
        Location::new(self.path, line, col)
    }

    /// Parses one JSON value starting at `pos` (no leading whitespace) within `text[..limit]`;
    /// returns it and the offset just past it.
    fn parse_at(&self, pos: usize, limit: usize) -> Result<(J<'t>, usize), serde_json::Error> {
        let slice = self.text.get(pos..limit).unwrap_or("");
        let mut it = serde_json::Deserializer::from_str(slice).into_iter::<J<'t>>();
        match it.next() {
            Some(Ok(v)) => Ok((v, pos + it.byte_offset())),
            Some(Err(e)) => Err(e),
            None => Err(<serde_json::Error as serde::de::Error>::custom(
                "expected a JSON value",
            )),
        }
    }

    /// The record at `pos` (ending before `limit`) read by the fast path, and where it ends; `None`
    /// when it is not of the evtx crate's plain shape (or not valid JSON: the general path says why).
    fn fast_at(&self, pos: usize, limit: usize) -> Option<(Event, usize)> {
        if !self.fast {
            return None;
        }
        let slice = self.text.get(pos..limit)?;
        let inner = slice.strip_prefix('{')?.trim_start();
        if !inner.starts_with("\"Event\"") {
            return None;
        }
        let mut it = serde_json::Deserializer::from_str(slice).into_iter::<FastEvent>();
        match it.next() {
            Some(Ok(FastEvent(f))) => Some((f.into_event(), pos + it.byte_offset())),
            _ => None,
        }
    }

    /// Adds an event read from the record at `start`.
    fn push_event(&mut self, mut ev: Event, start: usize) {
        ev.origin.input = self.input;
        // The line only: a column would cost a scan of the line (long for one-line arrays).
        ev.origin.record = self.lines.line_index(start) as u64 + 1;
        self.out.events.push(ev);
    }

    /// Turns a parsed top-level value into an event (or a diagnostic when it is not an object).
    fn accept(&mut self, v: J<'t>, start: usize) {
        if v.is_object() {
            self.push_event(event_from_j(&v), start);
        } else {
            self.out.skipped += 1;
            let d = Diagnostic::error(
                self.loc(start),
                format!("expected a JSON object (one record), found {}", kind(&v)),
            )
            .with_help(FRAMING_HELP);
            self.diag(d);
        }
    }

    /// Reports a record that did not parse, counts it as skipped.
    fn parse_error(&mut self, start: usize, e: &serde_json::Error, err_off: usize) {
        self.out.skipped += 1;
        let rest = self
            .text
            .get(start..self.lines.line_end(start))
            .unwrap_or("");
        if !rest.starts_with(['{', '[']) {
            // Not even the start of an object: say what is there instead.
            let mut excerpt: String = rest.chars().take(24).collect();
            if excerpt.len() < rest.trim_end().len() {
                excerpt.push_str("...");
            }
            let d = Diagnostic::error(
                self.loc(start),
                format!(
                    "expected a JSON object (`{{`), found `{}`",
                    excerpt.trim_end()
                ),
            )
            .with_help(FRAMING_HELP);
            self.diag(d);
            return;
        }
        let start_line = self.lines.line_col(start).0;
        let err_line = self.lines.line_col(err_off).0;
        let mut msg = format!("invalid JSON: {}", bare_message(e));
        if err_line != start_line {
            msg.push_str(&format!(" (in the record starting at line {start_line})"));
        }
        let d = Diagnostic::error(self.loc(err_off), msg).with_help(FRAMING_HELP);
        self.diag(d);
    }

    /// Where to go on after a bad record that started at `start`: the next line whose first
    /// non-blank character is `{` in the same column as the bad record's start.
    fn resync(&self, start: usize) -> usize {
        let b = self.text.as_bytes();
        let li = self.lines.line_index(start);
        let col = start - self.lines.starts.get(li).copied().unwrap_or(0);
        for &ls in self.lines.starts.iter().skip(li + 1) {
            let first = skip_ws_inline(b, ls);
            if first - ls == col && b.get(first) == Some(&b'{') {
                return first;
            }
        }
        b.len()
    }

    /// One top-level record (or value) at `start`; returns where to go on.
    fn record(&mut self, start: usize) -> usize {
        if self.framing != Framing::Stream {
            // First try the record on its own line (JSONL), in the evtx crate's shape first.
            let eol = self.lines.line_end(start);
            if let Some((ev, end)) = self.fast_at(start, eol) {
                if self.framing == Framing::Unknown {
                    self.framing = Framing::Lines;
                }
                self.push_event(ev, start);
                return end;
            }
            match self.parse_at(start, eol) {
                Ok((v, end)) => {
                    if self.framing == Framing::Unknown {
                        self.framing = Framing::Lines;
                    }
                    self.accept(v, start);
                    return end;
                }
                Err(e) if !e.is_eof() => {
                    let err_off = self.lines.error_offset(start, e.line(), e.column());
                    self.parse_error(start, &e, err_off);
                    return if self.framing == Framing::Lines {
                        self.next_line(start)
                    } else {
                        self.resync(start)
                    };
                }
                Err(_) => {}
            }
            // The line ends inside the value: it may span lines (pretty-printed).
            return match self.parse_at(start, self.text.len()) {
                Ok((v, end)) => {
                    if self.framing == Framing::Unknown {
                        self.framing = Framing::Stream;
                    }
                    self.accept(v, start);
                    end
                }
                Err(e) if self.framing == Framing::Lines => {
                    // JSONL: the record is cut short on its line; the next line is the next record.
                    self.parse_error(start, &e, eol);
                    if self.unreported == 0 {
                        if let Some(d) = self.out.diagnostics.last_mut() {
                            d.message = "invalid JSON: the line ends before the record does".into();
                        }
                    }
                    self.next_line(start)
                }
                Err(e) => {
                    let err_off = self.lines.error_offset(start, e.line(), e.column());
                    self.parse_error(start, &e, err_off);
                    self.resync(start)
                }
            };
        }
        match self.parse_at(start, self.text.len()) {
            Ok((v, end)) => {
                self.accept(v, start);
                end
            }
            Err(e) => {
                let err_off = self.lines.error_offset(start, e.line(), e.column());
                self.parse_error(start, &e, err_off);
                self.resync(start)
            }
        }
    }

    /// The start of the line after the one holding `off`.
    fn next_line(&self, off: usize) -> usize {
        let li = self.lines.line_index(off);
        self.lines.line_start(li + 2)
    }

    /// A top-level JSON array at `open` (the `[`): each element is one record.
    fn array(&mut self, open: usize) -> usize {
        self.framing = Framing::Stream;
        let b = self.text.as_bytes();
        let mut pos = skip_ws(b, open + 1);
        if b.get(pos) == Some(&b']') {
            return pos + 1;
        }
        loop {
            if pos >= b.len() {
                self.out.skipped += 1;
                let d = Diagnostic::error(
                    self.loc(b.len()),
                    "invalid JSON: the file ends inside the array (expected `]`)",
                )
                .with_help(FRAMING_HELP);
                self.diag(d);
                return pos;
            }
            let start = pos;
            match self.parse_at(start, b.len()) {
                Ok((v, end)) => {
                    self.accept(v, start);
                    pos = skip_ws(b, end);
                    match b.get(pos) {
                        Some(b',') => pos = skip_ws(b, pos + 1),
                        Some(b']') => return pos + 1,
                        None => {
                            let d = Diagnostic::error(
                                self.loc(pos),
                                "invalid JSON: the file ends inside the array (expected `,` or `]`)",
                            );
                            self.diag(d);
                            return pos;
                        }
                        Some(_) => {
                            let d = Diagnostic::error(
                                self.loc(pos),
                                "invalid JSON: expected `,` or `]` after an array element",
                            )
                            .with_help(FRAMING_HELP);
                            self.diag(d);
                            match self.resync_element(start) {
                                Some(p) => pos = p,
                                None => return b.len(),
                            }
                        }
                    }
                }
                Err(e) => {
                    let err_off = self.lines.error_offset(start, e.line(), e.column());
                    self.parse_error(start, &e, err_off);
                    match self.resync_element(start) {
                        Some(p) => pos = p,
                        None => {
                            if let Some(d) = self.out.diagnostics.last_mut() {
                                d.message.push_str("; the rest of the array was not read");
                            }
                            return b.len();
                        }
                    }
                }
            }
        }
    }

    /// Resync inside an array: only when elements start lines (pretty-printed arrays), at the next
    /// line starting with `{` in the same column.
    fn resync_element(&self, start: usize) -> Option<usize> {
        let b = self.text.as_bytes();
        let li = self.lines.line_index(start);
        let ls = self.lines.starts.get(li).copied().unwrap_or(0);
        if skip_ws_inline(b, ls) != start {
            return None;
        }
        let p = self.resync(start);
        (p < b.len()).then_some(p)
    }
}

/// Skips spaces and tabs (not newlines).
fn skip_ws_inline(b: &[u8], mut pos: usize) -> usize {
    while matches!(b.get(pos), Some(b' ' | b'\t' | b'\r')) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// Reads `text` with and without the fast path and requires the same events and diagnostics;
    /// returns how many records the fast path took.
    fn same_both_ways(text: &str, name: &str) -> usize {
        let path = Path::new(name);
        let fast = read_text_with(text, path, 0, true);
        let general = read_text_with(text, path, 0, false);
        assert_eq!(fast.events, general.events, "{name}");
        assert_eq!(fast.skipped, general.skipped, "{name}");
        let msgs = |o: &ReadOutput| {
            o.diagnostics
                .iter()
                .map(|d| format!("{}:{} {}", d.location.line, d.location.col, d.message))
                .collect::<Vec<_>>()
        };
        assert_eq!(msgs(&fast), msgs(&general), "{name}");
        text.lines()
            .filter(|l| {
                let lines = Lines::new(l);
                let r = Reader {
                    text: l,
                    lines,
                    path,
                    input: 0,
                    out: ReadOutput::default(),
                    framing: Framing::Unknown,
                    unreported: 0,
                    fast: true,
                };
                r.fast_at(0, l.len()).is_some()
            })
            .count()
    }

    #[test]
    fn the_evtx_shape_reads_the_same_both_ways() {
        let text = concat!(
            r##"{"Event":{"#attributes":{"xmlns":"http://x"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"{5770}"}},"EventID":1,"Level":4,"Keywords":"0x8000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2025-12-06T21:11:02Z"}},"Correlation":null,"Execution":{"#attributes":{"ProcessID":3904}},"Channel":"Microsoft-Windows-Sysmon/Operational","Big":18446744073709551615,"F":1.5,"B":true},"EventData":{"Image":"C:\\Windows\\cmd.exe","Threat Name":"x","Channel":"dup","Nested":{"#attributes":{"A":"1"},"#text":"t","Inner Child":{"Leaf":2}}}}}"##,
            "
",
            // Not fast: UserData, xmltodict attributes, Data lists, arrays, empty elements,
            // another top-level key, no System, invalid JSON.
            r##"{"Event":{"System":{"Channel":"System","EventID":104},"UserData":{"LogFileCleared":{"Channel":"System"}}}}"##,
            "
",
            r##"{"Event":{"System":{"Provider":{"@Name":"P"},"EventID":"1"}}}"##,
            "
",
            r##"{"Event":{"System":{"EventID":1},"EventData":{"Data":[{"@Name":"A","#text":"1"}]}}}"##,
            "
",
            r##"{"Event":{"System":{"EventID":1},"EventData":{"List":[1,2]}}}"##,
            "
",
            r##"{"Event":{"System":{"EventID":1,"Empty":{}}}}"##,
            "
",
            r##"{"Event":{"System":{"EventID":1}},"sensor":"x"}"##,
            "
",
            r##"{"Event":{"EventData":{"A":"1"}}}"##,
            "
",
            r##"{"Event":{"System":{"EventID":1}"##,
            "
",
            r##"{"Event":{"System":{"EventID":1}}} {"Event":{"System":{"EventID":2}}}"##,
            "
",
        );
        assert_eq!(same_both_ways(text, "shapes.jsonl"), 2);
    }

    /// Every JSON file of the reference data (SigmaHQ regression events in the evtx crate's shape,
    /// telemetry recordings in xmltodict's) reads the same both ways.
    #[test]
    fn reference_json_reads_the_same_both_ways() {
        let Some(reference) = std::env::var_os("PURPLECOV_REFERENCE") else {
            eprintln!("skipped: PURPLECOV_REFERENCE not set");
            return;
        };
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("json" | "jsonl")
                ) {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(Path::new(&reference), &mut files);
        assert!(files.len() > 300, "{} JSON files", files.len());
        let mut fast = 0;
        for f in &files {
            let Ok(text) = std::fs::read_to_string(f) else {
                continue;
            };
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            fast += same_both_ways(text, &f.display().to_string());
            // The same records as JSON Lines (one compact record per line, as the evtx crate and
            // `replay` write them), where the fast path applies.
            let mut lines = String::new();
            for v in serde_json::Deserializer::from_str(text)
                .into_iter::<serde_json::Value>()
                .flatten()
            {
                let one = |v: &serde_json::Value, out: &mut String| {
                    out.push_str(&v.to_string());
                    out.push('\n');
                };
                match &v {
                    serde_json::Value::Array(items) => {
                        items.iter().for_each(|i| one(i, &mut lines))
                    }
                    v => one(v, &mut lines),
                }
            }
            fast += same_both_ways(&lines, &format!("{} (as JSONL)", f.display()));
        }
        // The regression events are in the evtx crate's shape: the fast path must take them.
        assert!(fast > 200, "fast path took {fast} records");
    }
}
