//! Rendering a scenario's telemetry as the sensors' native records, and reading them back.
//!
//! Input: a [`Scenario`] and its effective arguments. Output: native records in time order (Windows
//! records, Defender rows, audit records, Zeek log rows) with every derived value filled in (System
//! element, times, record numbers, device identity), their native texts, and the events the readers
//! parse from those texts. Replays go through the same readers as recordings, so the readers are
//! exercised on every run.

use super::{substitute_value, Record, Scenario};
use crate::diag::Diagnostic;
use crate::telemetry::native::{AuditRecord, AuditValue, WinData, WinRecord};
use crate::telemetry::sensors::{AuditEncoding, RecordSchema, Sensor, SensorKind, Sensors};
use crate::telemetry::{auditd, read, xml, Event, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// System values a record may override with `system:`.
pub const SYSTEM_OVERRIDES: &[&str] = &[
    "Execution_ProcessID",
    "Execution_ThreadID",
    "Correlation_ActivityID",
    "Correlation_RelatedActivityID",
    "Security_UserID",
    "Version",
    "Level",
    "Task",
    "Opcode",
    "Keywords",
    "EventRecordID",
];

/// First record number given per channel / table (record numbers are per log, in order).
const FIRST_RECORD_ID: u64 = 10_001;

/// One native record.
#[derive(Debug, Clone, PartialEq)]
pub enum Native {
    /// A Windows event log record (also Sysmon for Linux, which writes the same XML).
    Win {
        sensor: String,
        record: Box<WinRecord>,
    },
    /// A Defender XDR Advanced Hunting row (`Table` first).
    Mde(serde_json::Map<String, serde_json::Value>),
    /// One audit.log line.
    Audit(AuditRecord),
    /// One Zeek JSON log row (`_path` first).
    Zeek(serde_json::Map<String, serde_json::Value>),
}

impl Native {
    /// The record's native text: event XML, a JSON line or an audit line (no trailing newline).
    pub fn text(&self) -> String {
        match self {
            Native::Win { record, .. } => xml::render(record),
            Native::Mde(row) | Native::Zeek(row) => {
                serde_json::Value::Object(row.clone()).to_string()
            }
            Native::Audit(r) => auditd::render(r),
        }
    }

    /// Reads the native text back into events, as a recording of it would be read.
    pub fn read_back(&self, name: &Path) -> read::ReadOutput {
        let text = self.text();
        match self {
            Native::Win { .. } => xml::read_text(&text, name, 0),
            Native::Audit(_) => auditd::read_text(&text, name, 0),
            Native::Mde(_) | Native::Zeek(_) => read::read_json_text(&text, name, 0),
        }
    }
}

/// Renders every record of `s` with `args` substituted, in the scenario's (time) order.
pub fn render(s: &Scenario, args: &[(String, String)]) -> Vec<Native> {
    let sensors = Sensors::builtin();
    let mut record_ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, r) in s.telemetry.iter().enumerate() {
        let Some(sensor) = sensors.get(&r.sensor) else {
            continue;
        };
        let Some(schema) = sensor.record(&r.kind) else {
            continue;
        };
        let fields: Vec<(String, Value)> = r
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), typed(v, substitute_value(v, args))))
            .collect();
        let time = at(s, r);
        match sensor.kind {
            SensorKind::Windows => {
                let channel = sensor.channel.clone().unwrap_or_default();
                let next = record_ids.entry(channel.clone()).or_insert(FIRST_RECORD_ID);
                let record = windows(s, i, r, sensor, schema, &fields, time, *next);
                *next += 1;
                out.push(Native::Win {
                    sensor: r.sensor.clone(),
                    record: Box::new(record),
                });
            }
            SensorKind::Mde => {
                let next = record_ids
                    .entry(format!("mde:{}", r.kind))
                    .or_insert(FIRST_RECORD_ID);
                out.push(Native::Mde(mde(s, r, schema, &fields, time, *next)));
                *next += 1;
            }
            SensorKind::Auditd => out.push(Native::Audit(audit(r, schema, &fields, time))),
            SensorKind::Zeek => out.push(Native::Zeek(zeek(r, schema, &fields, time))),
        }
    }
    out
}

/// The events a replay of `s` produces: each native record rendered and read back. Diagnostics from
/// reading back mean a renderer and a reader disagree (a bug), and are returned, never hidden.
pub fn events(s: &Scenario, args: &[(String, String)]) -> (Vec<Event>, Vec<Diagnostic>) {
    let mut events = Vec::new();
    let mut diags = Vec::new();
    for (i, n) in render(s, args).iter().enumerate() {
        let name = s.path.with_extension(format!("replay#{}", i + 1));
        let mut out = n.read_back(&name);
        for ev in &mut out.events {
            ev.origin.record = (i + 1) as u64;
        }
        events.append(&mut out.events);
        diags.append(&mut out.diagnostics);
    }
    (events, diags)
}

/// A value that is exactly one placeholder (`'#{port}'`) takes the type of what it stands for: an
/// integer argument stays an integer in typed formats (Defender and Zeek JSON).
fn typed(original: &Value, substituted: Value) -> Value {
    match (original, &substituted) {
        (Value::Str(o), Value::Str(s))
            if o.starts_with("#{") && o.ends_with('}') && o.matches("#{").count() == 1 =>
        {
            s.parse::<i64>().map(Value::Int).unwrap_or(substituted)
        }
        _ => substituted,
    }
}

/// Bytes of a value auditd always writes as hex: a list is an argument vector (NUL-separated); text
/// made only of hex digit pairs is taken as the hex itself (a binary `saddr`); other text is its bytes.
fn hex_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(text).collect();
            parts.join("\0").into_bytes()
        }
        v => {
            let t = text(v);
            let is_hex = !t.is_empty()
                && t.len().is_multiple_of(2)
                && t.bytes().all(|b| b.is_ascii_hexdigit());
            if is_hex {
                (0..t.len())
                    .step_by(2)
                    .filter_map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
                    .collect()
            } else {
                t.into_bytes()
            }
        }
    }
}

/// The record's time.
fn at(s: &Scenario, r: &Record) -> jiff::Timestamp {
    s.start
        .checked_add(jiff::SignedDuration::from_micros(r.at_us))
        .unwrap_or(s.start)
}

/// `2026-03-14T09:26:53.1201234Z`: EVTX's FILETIME rendering (7 fractional digits).
pub fn windows_time(t: jiff::Timestamp) -> String {
    let micros = t.subsec_microsecond();
    format!("{}.{:06}0Z", t.strftime("%Y-%m-%dT%H:%M:%S"), micros)
}

/// `2026-03-14 09:26:53.120`: Sysmon's UtcTime.
pub fn sysmon_time(t: jiff::Timestamp) -> String {
    format!(
        "{}.{:03}",
        t.strftime("%Y-%m-%d %H:%M:%S"),
        t.subsec_millisecond()
    )
}

fn text(v: &Value) -> String {
    v.to_string()
}

/// A GUID derived from the scenario and a record index, so derived ids are stable across runs.
fn derived_guid(seed: &str, index: usize) -> String {
    use std::hash::{Hash, Hasher};
    let mut a = rustc_hash::FxHasher::default();
    (seed, index, 'a').hash(&mut a);
    let mut b = rustc_hash::FxHasher::default();
    (seed, index, 'b').hash(&mut b);
    let (x, y) = (a.finish(), b.finish());
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xffff,
        y >> 48,
        y & 0xffff_ffff_ffff
    )
}

#[allow(clippy::too_many_arguments)]
fn windows(
    s: &Scenario,
    index: usize,
    r: &Record,
    sensor: &Sensor,
    schema: &RecordSchema,
    fields: &[(String, Value)],
    time: jiff::Timestamp,
    record_id: u64,
) -> WinRecord {
    let d = &schema.system;
    let sys = |name: &str| r.system.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let num = |name: &str| sys(name).and_then(|v| v.as_text()?.parse::<u64>().ok());
    let txt = |name: &str| sys(name).map(text);
    let mut data = Vec::new();
    for f in &schema.fields {
        if f.derived {
            if f.name == "UtcTime" {
                data.push((f.name.clone(), sysmon_time(time)));
            }
            continue;
        }
        if let Some((_, v)) = fields.iter().find(|(k, _)| *k == f.name) {
            data.push((f.name.clone(), text(v)));
        }
    }
    for (k, v) in fields {
        if schema.field(k).is_none() {
            data.push((k.clone(), text(v)));
        }
    }
    WinRecord {
        provider_name: sensor.provider_name.clone().unwrap_or_default(),
        provider_guid: sensor.provider_guid.clone(),
        event_id: r.kind.parse().unwrap_or(0),
        version: num("Version").map(|v| v as u8).or(d.version),
        level: num("Level").map(|v| v as u8).or(d.level),
        task: num("Task").map(|v| v as u16).or(d.task),
        opcode: num("Opcode").map(|v| v as u8).or(d.opcode),
        keywords: txt("Keywords").or_else(|| d.keywords.clone()),
        time_created: windows_time(time),
        record_id: num("EventRecordID").unwrap_or(record_id),
        correlation_activity_id: txt("Correlation_ActivityID")
            .or_else(|| d.correlation.then(|| derived_guid(&s.guid, index))),
        correlation_related_activity_id: txt("Correlation_RelatedActivityID"),
        execution_pid: num("Execution_ProcessID")
            .map(|v| v as u32)
            .or(d.execution_pid),
        execution_tid: num("Execution_ThreadID")
            .map(|v| v as u32)
            .or(d.execution_tid),
        channel: sensor.channel.clone().unwrap_or_default(),
        computer: s.host.fqdn.clone(),
        user_sid: txt("Security_UserID").or_else(|| d.user_sid.clone()),
        data: match &d.user_data {
            Some((element, xmlns)) => WinData::UserData {
                element: element.clone(),
                xmlns: xmlns.clone(),
                fields: data,
            },
            None => WinData::EventData(data),
        },
    }
}

fn json(v: &Value) -> serde_json::Value {
    v.to_json()
}

/// Fields in the schema's order (derived ones from `derive`), then any the schema does not list.
fn ordered(
    schema: &RecordSchema,
    fields: &[(String, Value)],
    mut derive: impl FnMut(&str) -> Option<serde_json::Value>,
    row: &mut serde_json::Map<String, serde_json::Value>,
) {
    for f in &schema.fields {
        if f.derived {
            if let Some(v) = derive(&f.name) {
                row.insert(f.name.clone(), v);
            }
        } else if let Some((_, v)) = fields.iter().find(|(k, _)| *k == f.name) {
            row.insert(f.name.clone(), json(v));
        }
    }
    for (k, v) in fields {
        if schema.field(k).is_none() {
            row.insert(k.clone(), json(v));
        }
    }
}

fn mde(
    s: &Scenario,
    r: &Record,
    schema: &RecordSchema,
    fields: &[(String, Value)],
    time: jiff::Timestamp,
    report_id: u64,
) -> serde_json::Map<String, serde_json::Value> {
    let mut row = serde_json::Map::new();
    row.insert("Table".into(), r.kind.clone().into());
    ordered(
        schema,
        fields,
        |name| match name {
            "Timestamp" => Some(windows_time(time).into()),
            "DeviceId" => s.host.mde_device_id.clone().map(Into::into),
            "DeviceName" => Some(s.host.fqdn.to_lowercase().into()),
            "ReportId" => Some(report_id.into()),
            _ => None,
        },
        &mut row,
    );
    row
}

fn zeek(
    r: &Record,
    schema: &RecordSchema,
    fields: &[(String, Value)],
    time: jiff::Timestamp,
) -> serde_json::Map<String, serde_json::Value> {
    let mut row = serde_json::Map::new();
    row.insert("_path".into(), r.kind.clone().into());
    let ts = time.as_microsecond() as f64 / 1e6;
    ordered(
        schema,
        fields,
        |name| (name == "ts").then(|| ts.into()),
        &mut row,
    );
    row
}

fn audit(
    r: &Record,
    schema: &RecordSchema,
    fields: &[(String, Value)],
    time: jiff::Timestamp,
) -> AuditRecord {
    let values = fields
        .iter()
        .map(|(k, v)| {
            let enc = schema.field(k).and_then(|f| f.encoding);
            let av = match (enc, v) {
                // An argument vector of one plain argument has no NUL: the kernel's untrusted-string
                // rule then quotes it (`proctitle="bash"`) instead of writing hex.
                (Some(AuditEncoding::Hex), Value::List(items))
                    if items.len() == 1
                        && text(&items[0])
                            .bytes()
                            .all(|b| b > 0x20 && b < 0x7f && b != b'"') =>
                {
                    AuditValue::Untrusted(text(&items[0]))
                }
                (Some(AuditEncoding::Hex), v) => AuditValue::Hex(hex_bytes(v)),
                (Some(AuditEncoding::Untrusted), v) => AuditValue::Untrusted(text(v)),
                (_, v) => AuditValue::Bare(text(v)),
            };
            (k.clone(), av)
        })
        .collect();
    AuditRecord {
        node: None,
        record_type: r.kind.clone(),
        epoch_ms: time.as_millisecond(),
        serial: r.serial.unwrap_or(0),
        fields: values,
    }
}
