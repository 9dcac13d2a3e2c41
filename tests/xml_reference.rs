//! The event XML reader against real recordings: every record of every EVTX file in the reference
//! inventory, rendered to XML and to JSON by the evtx crate, must read to the same event through our
//! XML reader and our JSON reader.
//!
//! Input: `$PURPLECOV_REFERENCE/telemetry/INVENTORY.tsv` and the EVTX files it lists (format `EVTX`).
//! Output: pass/fail, and per file how many records were compared. Without `PURPLECOV_REFERENCE` the
//! test prints that it skipped and passes. Fields must come in the same order with the same names;
//! `System` numbers must be equal in type too (both `Int`); other values are compared as text (the
//! evtx crate's JSON types some data values as numbers or booleans, XML has only text). One known,
//! documented difference is allowed: the evtx crate writes characters XML cannot hold (C0 controls
//! other than tab and line breaks, U+FFFE, U+FFFF) as `_` in XML and as themselves in JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use evtx::{EvtxParser, ParserSettings};
use purplecov::telemetry::read::read_json_text;
use purplecov::telemetry::xml::read_text;
use purplecov::telemetry::Value;

fn reference() -> Option<PathBuf> {
    match std::env::var_os("PURPLECOV_REFERENCE") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipped: PURPLECOV_REFERENCE not set");
            None
        }
    }
}

/// `local_path` of the EVTX rows of the inventory.
fn inventory(reference: &Path) -> Vec<String> {
    let tsv = std::fs::read_to_string(reference.join("telemetry/INVENTORY.tsv"))
        .expect("telemetry/INVENTORY.tsv");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (path_c, format_c) = (col("local_path"), col("format"));
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(format_c) == Some(&"EVTX")).then(|| f[path_c].to_string())
        })
        .collect()
}

/// `System` values that both readers must give as the same type.
fn typed_system_field(name: &str) -> bool {
    matches!(
        name,
        "EventID"
            | "EventID_Qualifiers"
            | "Version"
            | "Level"
            | "Task"
            | "Opcode"
            | "EventRecordID"
    ) || name.starts_with("Execution_")
}

/// What the evtx crate's XML writer makes of a string: characters XML cannot hold become `_`.
fn as_evtx_xml_writes(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '_',
            c => c,
        })
        .collect()
}

/// Compares an XML-read value with a JSON-read one as text; `lossy` counts values that matched
/// only after the evtx crate's `_` replacement.
fn same(x: &Value, j: &Value, lossy: &mut usize) -> bool {
    match (x, j) {
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, j)| same(x, j, lossy))
        }
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, x), (kb, j))| ka == kb && same(x, j, lossy))
        }
        (Value::Null, Value::Null) => true,
        _ => match (x.as_text(), j.as_text()) {
            (Some(a), Some(b)) if a == b => true,
            (Some(a), Some(b)) if a == as_evtx_xml_writes(&b) => {
                *lossy += 1;
                true
            }
            _ => false,
        },
    }
}

/// The first difference between two events' fields, or `None`.
fn first_difference(
    x: &[(String, Value)],
    j: &[(String, Value)],
    lossy: &mut usize,
) -> Option<String> {
    for i in 0..x.len().max(j.len()) {
        match (x.get(i), j.get(i)) {
            (Some((xn, xv)), Some((jn, jv))) => {
                if xn != jn {
                    return Some(format!("field #{i}: XML has `{xn}`, JSON has `{jn}`"));
                }
                let equal = if typed_system_field(xn) {
                    xv == jv
                } else {
                    same(xv, jv, lossy)
                };
                if !equal {
                    return Some(format!("field `{xn}`: XML {xv:?}, JSON {jv:?}"));
                }
            }
            (Some((xn, _)), None) => return Some(format!("field `{xn}` only in XML")),
            (None, Some((jn, _))) => return Some(format!("field `{jn}` only in JSON")),
            (None, None) => {}
        }
    }
    None
}

fn settings() -> ParserSettings {
    ParserSettings::new()
        .num_threads(1)
        .separate_json_attributes(false)
        .validate_checksums(false)
}

/// Record ID -> rendered text, and how many records failed to render.
fn render_all(path: &Path, json: bool) -> (BTreeMap<u64, String>, usize) {
    let mut parser = EvtxParser::from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .with_configuration(settings());
    let mut out = BTreeMap::new();
    let mut failed = 0;
    let records: Box<dyn Iterator<Item = _>> = if json {
        Box::new(parser.records_json())
    } else {
        Box::new(parser.records())
    };
    for r in records {
        match r {
            Ok(r) => {
                out.insert(r.event_record_id, r.data);
            }
            Err(_) => failed += 1,
        }
    }
    (out, failed)
}

#[test]
fn evtx_crate_xml_reads_like_its_json() {
    let Some(root) = reference() else {
        return;
    };
    let files = inventory(&root);
    assert!(!files.is_empty(), "no EVTX rows in the inventory");
    let mut failures = Vec::new();
    let (mut total, mut total_lossy) = (0, 0);
    for rel in &files {
        let path = root.join("telemetry").join(rel);
        let (xmls, xml_failed) = render_all(&path, false);
        let (jsons, json_failed) = render_all(&path, true);
        if xml_failed != json_failed || xmls.keys().ne(jsons.keys()) {
            failures.push(format!(
                "{rel}: the evtx crate rendered different records to XML ({} ok, {xml_failed} \
failed) and JSON ({} ok, {json_failed} failed)",
                xmls.len(),
                jsons.len()
            ));
        }
        // All records of the file as one text, as the evtx crate's XML output writes them (each
        // with its declaration): this also reads a sequence of pretty-printed records.
        let ids: Vec<u64> = xmls.keys().copied().collect();
        let text = xmls
            .values()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        let x = read_text(&text, &path, 0);
        if !x.diagnostics.is_empty() || x.events.len() != ids.len() {
            failures.push(format!(
                "{rel}: {} records gave {} events; diagnostics: {:?}",
                ids.len(),
                x.events.len(),
                x.diagnostics
                    .iter()
                    .take(5)
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
            ));
            continue;
        }
        let (mut compared, mut lossy) = (0, 0);
        for (id, xe) in ids.iter().zip(&x.events) {
            let Some(json) = jsons.get(id) else {
                continue;
            };
            let j = read_json_text(json, &path, 0);
            let [je] = j.events.as_slice() else {
                failures.push(format!("{rel}: record {id}: the JSON reader gave {j:?}"));
                continue;
            };
            compared += 1;
            if let Some(diff) = first_difference(&xe.fields, &je.fields, &mut lossy) {
                failures.push(format!("{rel}: record {id}: {diff}"));
            }
        }
        eprintln!(
            "{rel}: {compared} records compared ({lossy} values with characters XML cannot hold)"
        );
        total += compared;
        total_lossy += lossy;
    }
    eprintln!(
        "{} files, {total} records compared, {total_lossy} values differing only by the evtx \
crate's `_` for characters XML cannot hold, {} failures",
        files.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(total > 0, "no records compared");
}
