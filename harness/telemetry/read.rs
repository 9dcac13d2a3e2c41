//! Readers: recorded files to events.
//!
//! Input: one recorded file (a path, text already in memory, or EVTX bytes) and the index of that
//! input among all inputs. Output: a [`ReadOutput`]: the events in file order (EVTX: record order),
//! each with its [`Origin`](super::Origin), the diagnostics for what could not be read (each names
//! the file and, for text, the line and column), and how many records were skipped.
//!
//! The format is chosen from the content: the `ElfFile\0` signature (or an `.evtx` extension) means
//! EVTX, read with the evtx crate; anything else is JSON text (a JSON array of records, JSONL, or
//! concatenated, possibly pretty-printed objects) in UTF-8, with or without a byte-order mark, or
//! UTF-16 with one. Record shapes are described at [`event_from_json`].
//!
//! A reader never panics on its input, never stops at the first bad record (it reports it and goes
//! on), and never drops or renames a field the sensor wrote beyond the naming rules in
//! [`event_from_json`].

use std::path::Path;

use super::Event;
use crate::diag::{Diagnostic, Location};

pub use super::json::event_from_json;

/// What reading one input gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOutput {
    /// The events read, in file order.
    pub events: Vec<Event>,
    /// Problems found, each naming the file (and line for text input).
    pub diagnostics: Vec<Diagnostic>,
    /// Records that could not be turned into events.
    pub skipped: usize,
}

/// The EVTX file signature.
const EVTX_MAGIC: &[u8] = b"ElfFile\0";

/// Reads one input file, choosing the format from the content/extension: `.evtx` (magic
/// `ElfFile\0`) via the evtx crate; otherwise JSON text: a JSON array of records, a stream of
/// concatenated (possibly pretty-printed, multi-line) JSON objects, or JSONL. Never panics; an
/// unreadable file gives one Error diagnostic naming the path. `input` is stored in each event's
/// `Origin.input`.
pub fn read_path(path: &Path, input: usize) -> ReadOutput {
    match load_path(path, input, WHOLE_PART_BYTES) {
        Loaded::Done(out) => out,
        Loaded::Text { text, parts } => {
            concat(parts.into_iter().map(|p| read_part(&text, p, path, input)))
        }
        Loaded::Stream(mut parts) => concat(std::iter::from_fn(|| {
            let (text, first_line, diag) = parts.next_part()?;
            let mut out = read_part_text(&text, first_line, path, input);
            out.diagnostics.splice(0..0, diag);
            Some(out)
        })),
    }
}

/// Part size when a whole file is read into memory anyway.
const WHOLE_PART_BYTES: usize = 16 << 20;

/// The outputs of a file's parts, in order, as one.
fn concat(parts: impl Iterator<Item = ReadOutput>) -> ReadOutput {
    let mut all = ReadOutput::default();
    for mut p in parts {
        all.events.append(&mut p.events);
        all.diagnostics.append(&mut p.diagnostics);
        all.skipped += p.skipped;
    }
    all
}

/// Same for text already in memory (path is only used in diagnostics).
pub fn read_json_text(text: &str, path: &Path, input: usize) -> ReadOutput {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    super::json::read_text(text, path, input)
}

/// Reads EVTX bytes (path only for diagnostics).
pub fn read_evtx_bytes(bytes: Vec<u8>, path: &Path, input: usize) -> ReadOutput {
    super::evtx::read(bytes, path, input)
}

/// An input file loaded for reading in parts.
#[derive(Debug)]
pub enum Loaded {
    /// JSON text, with the byte ranges of its parts (see [`split_records`]).
    Text { text: String, parts: Vec<Part> },
    /// Already read in full (EVTX, or a file that could not be decoded).
    Done(ReadOutput),
    /// A JSON Lines file read part by part from disk (never held whole).
    Stream(Parts),
}

/// A JSON Lines file handed out in line-aligned parts of about `part_bytes`.
#[derive(Debug)]
pub struct Parts {
    file: std::fs::File,
    path: std::path::PathBuf,
    carry: Vec<u8>,
    next_line: usize,
    eof: bool,
    part_bytes: usize,
}

impl Parts {
    /// The next part: its text and the 1-based line it starts on; a part with bytes that are not
    /// UTF-8 comes with a diagnostic (and those bytes replaced).
    pub fn next_part(&mut self) -> Option<(String, usize, Option<Diagnostic>)> {
        use std::io::Read;
        while !self.eof && self.carry.len() < self.part_bytes {
            let old = self.carry.len();
            self.carry
                .resize(old + self.part_bytes.clamp(4096, 8 << 20), 0);
            match self.file.read(&mut self.carry[old..]) {
                Ok(0) => {
                    self.carry.truncate(old);
                    self.eof = true;
                }
                Ok(n) => self.carry.truncate(old + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.carry.truncate(old),
                Err(e) => {
                    self.carry.truncate(old);
                    self.eof = true;
                    let d = Diagnostic::error(
                        Location::new(&self.path, self.next_line, 0),
                        format!("cannot read the rest of the file: {e}"),
                    );
                    let part = std::mem::take(&mut self.carry);
                    let text = String::from_utf8_lossy(&part).into_owned();
                    return Some((text, self.next_line, Some(d)));
                }
            }
        }
        if self.carry.is_empty() {
            return None;
        }
        let cut = if self.eof {
            self.carry.len()
        } else {
            match memchr::memrchr(b'\n', &self.carry) {
                Some(i) => i + 1,
                None => self.carry.len(),
            }
        };
        // The part leaves in an allocation of its own size; the buffer keeps its capacity for the
        // next part (reallocating it each time faulted fresh pages in).
        let part = self.carry[..cut].to_vec();
        self.carry.drain(..cut);
        let first_line = self.next_line;
        self.next_line += memchr::memchr_iter(b'\n', &part).count();
        match String::from_utf8(part) {
            Ok(text) => Some((text, first_line, None)),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let line = first_line + memchr::memchr_iter(b'\n', &bytes[..valid]).count();
                let d = Diagnostic::error(
                    Location::new(&self.path, line, 0),
                    "bytes that are not UTF-8 (JSON text must be UTF-8); they were replaced by U+FFFD",
                );
                Some((
                    String::from_utf8_lossy(&bytes).into_owned(),
                    first_line,
                    Some(d),
                ))
            }
        }
    }
}

/// A line-aligned part of a JSON Lines text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub start: usize,
    pub end: usize,
    /// 1-based line of the text where the part starts.
    pub first_line: usize,
}

/// Loads an input so that a JSON Lines file can be read (and its events evaluated) part by part, in
/// parallel and with bounded memory. Other shapes come back as one part; EVTX is read at once.
pub fn load_path(path: &Path, input: usize, part_bytes: usize) -> Loaded {
    if let Some(parts) = stream_jsonl(path, part_bytes) {
        return Loaded::Stream(parts);
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Loaded::Done(failed(path, format!("cannot read the file: {e}"))),
    };
    let is_evtx_ext = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("evtx"));
    if bytes.starts_with(EVTX_MAGIC) || is_evtx_ext {
        return Loaded::Done(read_evtx_bytes(bytes, path, input));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Loaded::Done(super::archive::read_zip(&bytes, path, input));
    }
    // Plain UTF-8 (the common case) is taken over without a copy.
    let decoded = match decode_text(&bytes) {
        Ok(std::borrow::Cow::Borrowed(_)) => String::from_utf8(bytes).map_err(|e| NotText::Utf8 {
            offset: e.utf8_error().valid_up_to(),
            line: 0,
        }),
        Ok(std::borrow::Cow::Owned(t)) => Ok(t),
        Err(d) => Err(d),
    };
    match decoded {
        Ok(text) => {
            let text = match text.strip_prefix('\u{feff}') {
                Some(t) => t.to_string(),
                None => text,
            };
            match text_kind(&text) {
                TextKind::Json => {
                    let parts = split_records(&text, part_bytes);
                    Loaded::Text { text, parts }
                }
                TextKind::Xml => Loaded::Done(super::xml::read_text(&text, path, input)),
                TextKind::Auditd => Loaded::Done(super::auditd::read_text(&text, path, input)),
            }
        }
        Err(d) => Loaded::Done(ReadOutput {
            diagnostics: vec![d.into_diagnostic(path)],
            ..ReadOutput::default()
        }),
    }
}

/// What a decoded text input holds, judged by its first non-blank characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// JSON or JSON Lines (also the fallback: its diagnostics say what was expected).
    Json,
    /// Windows event XML (`<Event ...>`, `<Events>`, or an `<?xml ...?>` declaration first).
    Xml,
    /// Raw audit log lines (`type=...`, `node=... type=...`, or `ausearch` output starting `----`).
    Auditd,
}

/// Sniffs the kind of a text input.
pub fn text_kind(text: &str) -> TextKind {
    let head = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if head.starts_with('<') {
        TextKind::Xml
    } else if head.starts_with("type=") || head.starts_with("node=") || head.starts_with("----") {
        TextKind::Auditd
    } else {
        TextKind::Json
    }
}

/// Reads a whole text input of any kind (used for archive members; `path` names it in diagnostics).
pub fn read_text_any(text: &str, path: &Path, input: usize) -> ReadOutput {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text_kind(text) {
        TextKind::Json => read_json_text(text, path, input),
        TextKind::Xml => super::xml::read_text(text, path, input),
        TextKind::Auditd => super::auditd::read_text(text, path, input),
    }
}

/// Opens a plain UTF-8 JSON Lines file (no BOM, first line a complete JSON object) for reading in
/// parts; `None` for anything else.
fn stream_jsonl(path: &Path, part_bytes: usize) -> Option<Parts> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = vec![0u8; 1 << 16];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    head.truncate(n);
    let nl = memchr::memchr(b'\n', &head)?;
    let first = std::str::from_utf8(&head[..nl]).ok()?;
    if !first.starts_with('{') || serde_json::from_str::<serde::de::IgnoredAny>(first).is_err() {
        return None;
    }
    Some(Parts {
        file,
        path: path.to_path_buf(),
        carry: head,
        next_line: 1,
        eof: false,
        part_bytes,
    })
}

/// Reads one part given as its own text starting at 1-based `first_line` of the file.
pub fn read_part_text(text: &str, first_line: usize, path: &Path, input: usize) -> ReadOutput {
    read_part(
        text,
        Part {
            start: 0,
            end: text.len(),
            first_line,
        },
        path,
        input,
    )
}

/// Splits a JSON Lines text (its first line is a complete JSON value) into line-aligned parts of
/// about `part_bytes`; any other text (an array, pretty-printed objects) is one part, since a record
/// may span lines there.
pub fn split_records(text: &str, part_bytes: usize) -> Vec<Part> {
    let whole = vec![Part {
        start: 0,
        end: text.len(),
        first_line: 1,
    }];
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let is_jsonl = first_line.trim_start().starts_with('{')
        && serde_json::from_str::<serde::de::IgnoredAny>(first_line).is_ok();
    if !is_jsonl || text.len() <= part_bytes {
        return whole;
    }
    let b = text.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut line) = (0usize, 1usize);
    while start < b.len() {
        let mut end = (start + part_bytes.max(1)).min(b.len());
        if end < b.len() {
            end = match memchr::memchr(b'\n', &b[end..]) {
                Some(i) => end + i + 1,
                None => b.len(),
            };
        }
        parts.push(Part {
            start,
            end,
            first_line: line,
        });
        line += memchr::memchr_iter(b'\n', &b[start..end]).count();
        start = end;
    }
    parts
}

/// Reads one part of a loaded text; lines in events and diagnostics are those of the whole file.
pub fn read_part(text: &str, part: Part, path: &Path, input: usize) -> ReadOutput {
    let slice = text.get(part.start..part.end).unwrap_or("");
    let mut out = super::json::read_text(slice, path, input);
    let shift = part.first_line.saturating_sub(1);
    if shift > 0 {
        for e in out.events.iter_mut() {
            e.origin.record += shift as u64;
        }
        for d in out.diagnostics.iter_mut() {
            if d.location.line > 0 {
                d.location.line += shift;
            }
        }
    }
    out
}

/// One diagnostic for the whole file, nothing read.
fn failed(path: &Path, message: String) -> ReadOutput {
    ReadOutput {
        diagnostics: vec![Diagnostic::error(Location::file(path), message)],
        ..ReadOutput::default()
    }
}

/// Why bytes are not text the JSON reader accepts.
enum NotText {
    /// A compressed or archive format, by its signature.
    Archive(&'static str),
    /// Invalid UTF-8 at this byte offset and 1-based line.
    Utf8 { offset: usize, line: usize },
    /// UTF-16 with a byte-order mark that does not decode.
    Utf16,
}

impl NotText {
    fn into_diagnostic(self, path: &Path) -> Diagnostic {
        const HELP: &str = "the JSON reader takes UTF-8 (with or without a byte-order mark) or \
UTF-16 with a byte-order mark; EVTX files are recognised by their `ElfFile` signature";
        match self {
            NotText::Archive(kind) => Diagnostic::error(
                Location::file(path),
                format!("the file is a {kind}, not JSON or EVTX; nothing was read"),
            )
            .with_help("extract it and pass the files inside"),
            NotText::Utf8 { offset, line } => Diagnostic::error(
                Location::new(path, line, 0),
                format!("the file is not valid UTF-8 (first bad byte at offset {offset}); nothing was read"),
            )
            .with_help(HELP),
            NotText::Utf16 => Diagnostic::error(
                Location::file(path),
                "the file starts with a UTF-16 byte-order mark but is not valid UTF-16; nothing was read",
            )
            .with_help(HELP),
        }
    }
}

/// Bytes to text: UTF-8 (a BOM is removed by [`read_json_text`]) or UTF-16 with a BOM.
fn decode_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, NotText> {
    use std::borrow::Cow;
    const ARCHIVES: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "zip archive"),
        (b"\x1f\x8b", "gzip file"),
        (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
        (b"\xfd7zXZ\x00", "xz file"),
        (b"BZh", "bzip2 file"),
        (b"\x28\xb5\x2f\xfd", "zstd file"),
    ];
    if let Some((_, kind)) = ARCHIVES.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Err(NotText::Archive(kind));
    }
    let utf16 = |le: bool| -> Result<Cow<'_, str>, NotText> {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|c| match (c, le) {
                ([a, b], true) => u16::from_le_bytes([*a, *b]),
                ([a, b], false) => u16::from_be_bytes([*a, *b]),
                // An odd trailing byte cannot be a UTF-16 unit.
                _ => 0xDC00,
            })
            .collect();
        String::from_utf16(&units)
            .map(Cow::Owned)
            .map_err(|_| NotText::Utf16)
    };
    if bytes.starts_with(&[0xFF, 0xFE]) {
        return utf16(true);
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return utf16(false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(e) => {
            let offset = e.valid_up_to();
            let line = 1 + memchr::memchr_iter(b'\n', &bytes[..offset]).count();
            Err(NotText::Utf8 { offset, line })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::telemetry::Value;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("t.json")
    }

    fn read(text: &str) -> ReadOutput {
        read_json_text(text, &p(), 3)
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    fn names(ev: &Event) -> Vec<&str> {
        ev.fields.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn flat_record_keeps_types_and_order() {
        let out = read(r#"{"b": 1, "a": "x", "c": true, "d": null, "e": 1.5, "f": [1, "y"]}"#);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.events.len(), 1);
        let ev = &out.events[0];
        assert_eq!(names(ev), ["b", "a", "c", "d", "e", "f"]);
        assert_eq!(ev.get("b"), Some(&Value::Int(1)));
        assert_eq!(ev.get("a"), Some(&s("x")));
        assert_eq!(ev.get("c"), Some(&Value::Bool(true)));
        assert_eq!(ev.get("d"), Some(&Value::Null));
        assert_eq!(ev.get("e"), Some(&Value::Float(1.5)));
        assert_eq!(ev.get("f"), Some(&Value::List(vec![Value::Int(1), s("y")])));
        assert_eq!(ev.origin.input, 3);
        assert_eq!(ev.origin.record, 1);
        assert_eq!(ev.sensor, None);
    }

    #[test]
    fn nested_objects_become_dotted_names_but_not_inside_arrays() {
        let out = read(
            r#"{"destination": {"ip": "1.2.3.4", "geo": {"cc": "FR"}}, "l": [{"k": 1}], "e": {}}"#,
        );
        let ev = &out.events[0];
        assert_eq!(ev.get("destination.ip"), Some(&s("1.2.3.4")));
        assert_eq!(ev.get("destination.geo.cc"), Some(&s("FR")));
        assert_eq!(
            ev.get("l"),
            Some(&Value::List(vec![Value::Map(vec![(
                "k".to_string(),
                Value::Int(1)
            )])]))
        );
        assert_eq!(ev.get("e"), Some(&Value::Map(vec![])));
        assert_eq!(ev.get("destination"), None);
    }

    const EVTX_SHAPE: &str = r##"{
  "Event": {
    "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
    "System": {
      "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing", "Guid": "{5484}"}},
      "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 4688},
      "Version": 2,
      "TimeCreated": {"#attributes": {"SystemTime": "2024-01-01T00:00:00.000000Z"}},
      "EventRecordID": 77,
      "Correlation": null,
      "Execution": {"#attributes": {"ProcessID": 4, "ThreadID": 8}},
      "Channel": "Security",
      "Computer": "host1",
      "Security": {"#attributes": {"UserID": "S-1-5-18"}}
    },
    "EventData": {
      "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
      "Threat Name": "EICAR",
      "ProcessId": 4242,
      "Version": 9
    }
  }
}"##;

    #[test]
    fn evtx_shape_is_flattened() {
        let out = read(EVTX_SHAPE);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let ev = &out.events[0];
        assert_eq!(ev.get("EventID"), Some(&Value::Int(4688)));
        assert_eq!(ev.get("EventID_Qualifiers"), Some(&Value::Int(16384)));
        assert_eq!(ev.event_id(), Some(4688));
        assert_eq!(
            ev.get("Provider_Name"),
            Some(&s("Microsoft-Windows-Security-Auditing"))
        );
        assert_eq!(ev.get("Provider_Guid"), Some(&s("{5484}")));
        assert_eq!(
            ev.get("TimeCreated_SystemTime"),
            Some(&s("2024-01-01T00:00:00.000000Z"))
        );
        assert_eq!(ev.get("Execution_ProcessID"), Some(&Value::Int(4)));
        assert_eq!(ev.get("Security_UserID"), Some(&s("S-1-5-18")));
        assert_eq!(ev.get("Correlation"), Some(&Value::Null));
        assert_eq!(ev.channel().as_deref(), Some("Security"));
        assert_eq!(ev.host().as_deref(), Some("host1"));
        assert_eq!(
            ev.get("NewProcessName"),
            Some(&s(r"C:\Windows\System32\cmd.exe"))
        );
        // Spaces are stripped from data names.
        assert_eq!(ev.get("ThreatName"), Some(&s("EICAR")));
        assert_eq!(ev.get("Threat Name"), None);
        // A data field never replaces a System field: it is qualified instead.
        assert_eq!(ev.get("Version"), Some(&Value::Int(2)));
        assert_eq!(ev.get("EventData.Version"), Some(&Value::Int(9)));
        // xmlns is dropped, nothing else named after the wrappers.
        assert!(names(ev)
            .iter()
            .all(|n| !n.contains("xmlns") && !n.starts_with("Event_") && !n.starts_with("System")));
        assert_eq!(ev.origin.record, 1);
    }

    #[test]
    fn evtx_shape_unnamed_data_and_event_data_attributes() {
        let ev = event_from_json(&serde_json::json!({"Event": {
            "System": {"EventID": 7, "Channel": "System"},
            "EventData": {"#attributes": {"Name": "TMP", "xmlns": "x"}, "Data": {"#text": ["a", "b"]}, "Binary": "00FF"}
        }}));
        assert_eq!(ev.get("Data"), Some(&Value::List(vec![s("a"), s("b")])));
        assert_eq!(ev.get("Binary"), Some(&s("00FF")));
        assert_eq!(ev.get("EventData_Name"), Some(&s("TMP")));
        let ev = event_from_json(&serde_json::json!({"Event": {
            "System": {"EventID": 7}, "EventData": {"Data": "one"}
        }}));
        assert_eq!(ev.get("Data"), Some(&s("one")));
        let ev = event_from_json(&serde_json::json!({"Event": {
            "System": {"EventID": 7}, "EventData": {"Data": ["x", 2]}
        }}));
        assert_eq!(
            ev.get("Data"),
            Some(&Value::List(vec![s("x"), Value::Int(2)]))
        );
        let ev = event_from_json(&serde_json::json!({"Event": {
            "System": {"EventID": 7}, "EventData": null
        }}));
        assert_eq!(names(&ev), ["EventID"]);
    }

    #[test]
    fn xmltodict_shape_is_read_like_evtx() {
        let ev = event_from_json(&serde_json::json!({"Event": {
            "System": {
                "Provider": {"@Name": "Microsoft-Windows-Sysmon", "@Guid": "{5770}"},
                "EventID": {"@Qualifiers": "0", "#text": "1"},
                "TimeCreated": {"@SystemTime": "2024-10-25 10:03:03.3785422"},
                "Channel": "Microsoft-Windows-Sysmon/Operational"
            },
            "EventData": {"Data": [
                {"@Name": "CommandLine", "#text": "cmd /c whoami"},
                {"@Name": "Target Name"},
                {"@Name": "Channel", "#text": "dup"}
            ]}
        }}));
        assert_eq!(
            ev.get("Provider_Name"),
            Some(&s("Microsoft-Windows-Sysmon"))
        );
        assert_eq!(ev.get("EventID"), Some(&s("1")));
        assert_eq!(ev.event_id(), Some(1));
        assert_eq!(ev.get("EventID_Qualifiers"), Some(&s("0")));
        assert_eq!(
            ev.get("TimeCreated_SystemTime"),
            Some(&s("2024-10-25 10:03:03.3785422"))
        );
        assert_eq!(ev.get("CommandLine"), Some(&s("cmd /c whoami")));
        assert_eq!(ev.get("TargetName"), Some(&s("")));
        assert_eq!(
            ev.get("Channel"),
            Some(&s("Microsoft-Windows-Sysmon/Operational"))
        );
        assert_eq!(ev.get("EventData.Channel"), Some(&s("dup")));
        assert_eq!(ev.get("Data"), None);
    }

    #[test]
    fn evtx_separate_attributes_shape_is_read_the_same() {
        let ev = event_from_json(&serde_json::json!({
            "Event_attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "Event": {
                "System": {
                    "Provider_attributes": {"Name": "EventLog"},
                    "EventID_attributes": {"Qualifiers": 32768},
                    "EventID": 6009,
                    "TimeCreated_attributes": {"SystemTime": "2017-07-12T17:16:28.2141616Z"},
                    "Channel": "System"
                },
                "UserData": {"W_attributes": {"xmlns": "x", "v": 1}, "W": {"Child_attributes": {"a": 2}, "C": 3}}
            }
        }));
        assert_eq!(
            names(&ev),
            [
                "Provider_Name",
                "EventID_Qualifiers",
                "EventID",
                "TimeCreated_SystemTime",
                "Channel",
                "W_v",
                "Child_a",
                "C"
            ]
        );
    }

    #[test]
    fn user_data_wrapper_children_become_fields() {
        let ev = event_from_json(&serde_json::json!({"Event": {
            "#attributes": {"xmlns": "e"},
            "System": {"EventID": 104, "Channel": "System",
                       "Provider": {"#attributes": {"Name": "Microsoft-Windows-Eventlog"}}},
            "UserData": {"LogFileCleared": {
                "#attributes": {"xmlns": "http://manifests", "xmlns:auto-ns3": "y", "upgrade": false},
                "SubjectUserName": "admin",
                "Channel": "Security",
                "Backup Path": null,
                "Service": {"#attributes": {"name": "WpdFs"}},
                "Nested": {"Inner": {"Deep": 1}}
            }}
        }}));
        assert_eq!(ev.get("SubjectUserName"), Some(&s("admin")));
        assert_eq!(ev.get("BackupPath"), Some(&Value::Null));
        assert_eq!(ev.get("Service_name"), Some(&s("WpdFs")));
        assert_eq!(ev.get("Nested.Inner.Deep"), Some(&Value::Int(1)));
        assert_eq!(ev.get("LogFileCleared_upgrade"), Some(&Value::Bool(false)));
        // The System channel keeps its name (routing); the cleared channel is kept too.
        assert_eq!(ev.channel().as_deref(), Some("System"));
        assert_eq!(ev.get("UserData.Channel"), Some(&s("Security")));
        assert!(names(&ev).iter().all(|n| !n.contains("xmlns")));
    }

    #[test]
    fn defender_streaming_shape() {
        let ev = event_from_json(&serde_json::json!({
            "time": "2024-01-01T00:00:00Z",
            "tenantId": "t",
            "operationName": "Publish",
            "category": "AdvancedHunting-DeviceProcessEvents",
            "properties": {
                "DeviceName": "pc1",
                "ProcessCommandLine": "whoami",
                "InitiatingProcessAccountObjectId": null,
                "Extra": {"a": 1}
            }
        }));
        assert_eq!(ev.get("Table"), Some(&s("DeviceProcessEvents")));
        assert_eq!(ev.get("ProcessCommandLine"), Some(&s("whoami")));
        assert_eq!(ev.get("Extra.a"), Some(&Value::Int(1)));
        assert_eq!(ev.host().as_deref(), Some("pc1"));
        assert_eq!(names(&ev)[0], "DeviceName");
        assert_eq!(ev.get("time"), Some(&s("2024-01-01T00:00:00Z")));
        assert_eq!(ev.get("properties"), None);
        // A flat record with its own Table passes through.
        let ev =
            event_from_json(&serde_json::json!({"Table": "DeviceFileEvents", "FileName": "a"}));
        assert_eq!(ev.get("Table"), Some(&s("DeviceFileEvents")));
        assert_eq!(names(&ev), ["Table", "FileName"]);
    }

    #[test]
    fn jsonl_with_a_bad_line_reports_it_and_goes_on() {
        let text =
            "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3,,}\nnot json at all\n{\"a\": 5}\n\n{\"a\": 7}\n";
        let out = read(text);
        let got: Vec<_> = out
            .events
            .iter()
            .map(|e| (e.get("a").cloned(), e.origin.record))
            .collect();
        assert_eq!(
            got,
            [
                (Some(Value::Int(1)), 1),
                (Some(Value::Int(2)), 2),
                (Some(Value::Int(5)), 5),
                (Some(Value::Int(7)), 7)
            ]
        );
        assert_eq!(out.skipped, 2);
        assert_eq!(out.diagnostics.len(), 2, "{:?}", out.diagnostics);
        let d = &out.diagnostics[0];
        assert_eq!(d.severity, Severity::Error);
        assert_eq!((d.location.line, d.location.col), (3, 9));
        assert!(d.to_string().starts_with("t.json:3:9: error: "), "{d}");
        assert!(d.message.contains("expected"), "{}", d.message);
        let d = &out.diagnostics[1];
        assert_eq!((d.location.line, d.location.col), (4, 1));
        assert!(
            d.message.contains("expected a JSON object"),
            "{}",
            d.message
        );
    }

    #[test]
    fn jsonl_with_a_truncated_line() {
        let out = read("{\"a\": 1}\n{\"a\": \"x\", \"b\": [1,\n{\"a\": 3}\n");
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[1].origin.record, 3);
        assert_eq!(out.skipped, 1);
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].location.line, 2);
        assert!(out.diagnostics[0].message.contains("line ends"));
    }

    #[test]
    fn pretty_printed_concatenated_objects() {
        let text = "{\n  \"a\": 1,\n  \"n\": {\"x\": 1}\n}\n{\n  \"a\": 2\n}{\"a\": 3}\n\n{\n  \"a\": 4\n}\n";
        let out = read(text);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let lines: Vec<_> = out.events.iter().map(|e| e.origin.record).collect();
        assert_eq!(lines, [1, 5, 7, 9]);
        assert_eq!(out.events[0].get("n.x"), Some(&Value::Int(1)));
    }

    #[test]
    fn pretty_printed_stream_resyncs_after_an_error() {
        let text = "{\n  \"a\": 1\n}\n{\n  \"a\": oops,\n  \"b\": {\n    \"c\": 1\n  }\n}\n{\n  \"a\": 3\n}\n";
        let out = read(text);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[1].get("a"), Some(&Value::Int(3)));
        assert_eq!(out.events[1].origin.record, 10);
        assert_eq!(out.skipped, 1);
        assert_eq!(out.diagnostics.len(), 1);
        let d = &out.diagnostics[0];
        assert_eq!(d.location.line, 5);
        assert!(d.message.contains("starting at line 4"), "{}", d.message);
    }

    #[test]
    fn json_array_input() {
        let text = "[\n  {\"a\": 1},\n  {\n    \"a\": 2\n  },\n  3,\n  {\"a\": 4}\n]\n";
        let out = read(text);
        let lines: Vec<_> = out.events.iter().map(|e| e.origin.record).collect();
        assert_eq!(lines, [2, 3, 7]);
        assert_eq!(out.skipped, 1);
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].location.line, 6);
        assert!(out.diagnostics[0].message.contains("found a number"));
        assert_eq!(read("[]").events.len(), 0);
        assert!(read("[]").diagnostics.is_empty());
        let out = read("[{\"a\": 1}, {\"a\": 2}]");
        assert_eq!(out.events.len(), 2);
        assert!(out.diagnostics.is_empty());
    }

    #[test]
    fn broken_pretty_array_resyncs_at_the_next_element() {
        let text =
            "[\n  {\n    \"a\": 1\n  },\n  {\n    \"a\": ?\n  },\n  {\n    \"a\": 3\n  }\n]\n";
        let out = read(text);
        assert_eq!(out.events.len(), 2, "{:?}", out.diagnostics);
        assert_eq!(out.events[1].get("a"), Some(&Value::Int(3)));
        assert_eq!(out.skipped, 1);
        assert_eq!(out.diagnostics[0].location.line, 6);
    }

    #[test]
    fn non_object_top_level_values_are_skipped() {
        let out = read("42\n\"s\"\n{\"a\": 1}\nnull\n[1]\n");
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].origin.record, 3);
        assert_eq!(out.skipped, 4);
        assert_eq!(out.diagnostics.len(), 4);
        assert!(out.diagnostics[0].message.contains("found a number"));
        assert_eq!(out.diagnostics[0].location.line, 1);
    }

    #[test]
    fn empty_and_blank_input() {
        for t in ["", "\n\n  \t\r\n", "\u{feff}", "\u{feff}\n"] {
            let out = read(t);
            assert_eq!(out, ReadOutput::default(), "{t:?}");
        }
    }

    #[test]
    fn bom_is_ignored_and_lines_count_from_it() {
        let out = read("\u{feff}{\"a\": 1}\n{\"a\": 2}");
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[1].origin.record, 2);
    }

    #[test]
    fn too_many_bad_lines_are_summarised() {
        let text = format!("{{}}\n{}", "x\n".repeat(200));
        let out = read(&text);
        assert_eq!(out.skipped, 200);
        assert_eq!(
            out.diagnostics.len(),
            super::super::json::MAX_DIAGNOSTICS + 1
        );
        assert!(out
            .diagnostics
            .last()
            .is_some_and(|d| d.message.contains("150 more")));
    }

    #[test]
    fn read_path_formats_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let out = read_path(&missing, 0);
        assert_eq!(out.diagnostics.len(), 1);
        assert!(out.diagnostics[0].to_string().contains("missing.json"));

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{\"a\": 1}\n{\"a\": \"\xff\xfe\"}\n").unwrap();
        let out = read_path(&bad, 0);
        // The record before the bad bytes is read; the bad line is reported (bytes replaced).
        assert_eq!(out.events.len(), 2);
        assert_eq!(
            out.events[0].get("a"),
            Some(&crate::telemetry::Value::Int(1))
        );
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].location.line, 2);
        assert!(out.diagnostics[0].to_string().contains("bad.json"));
        assert!(out.diagnostics[0].message.contains("UTF-8"));

        let u16 = dir.path().join("u16.json");
        let mut b = vec![0xFF, 0xFE];
        for u in "{\"a\": \"é\"}\r\n".encode_utf16() {
            b.extend(u.to_le_bytes());
        }
        std::fs::write(&u16, b).unwrap();
        let out = read_path(&u16, 5);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.events[0].get("a"), Some(&s("é")));
        assert_eq!(out.events[0].origin.input, 5);

        let zip = dir.path().join("x.zip");
        std::fs::write(&zip, b"PK\x03\x04rest").unwrap();
        let out = read_path(&zip, 0);
        assert!(out.diagnostics[0].message.contains("zip"));

        let not_evtx = dir.path().join("x.evtx");
        std::fs::write(&not_evtx, b"{\"a\": 1}").unwrap();
        let out = read_path(&not_evtx, 0);
        assert_eq!(out.events.len(), 0);
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].severity, Severity::Error);
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(t in ".{0,400}") {
            let out = read(&t);
            prop_assert!(out.events.len() + out.skipped <= t.len() + 1);
        }

        #[test]
        fn json_like_strings_never_panic(t in r#"[\[\]{}",:0-9a-z \n\t\\-]{0,300}"#) {
            let out = read(&t);
            for d in &out.diagnostics {
                prop_assert!(d.location.line <= t.lines().count() + 1);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = String::from_utf8_lossy(&b);
            let _ = read(&text);
            let _ = read_evtx_bytes(b, &p(), 0);
        }
    }
}
