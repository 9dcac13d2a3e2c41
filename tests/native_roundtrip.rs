//! Defender rows and Zeek log rows read back exactly: every column, with its value and type, in
//! order (the XML and auditd round trips have their own tests).

use proptest::prelude::*;
use purplecov::scenario::render::Native;
use purplecov::telemetry::Value;
use std::path::Path;

fn scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        "[ -~\u{e9}\u{4e2d}\\\\\"]{0,20}".prop_map(serde_json::Value::from),
    ]
}

fn column() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(serde_json::Value::from),
    ]
}

fn row(first: &'static str) -> impl Strategy<Value = serde_json::Map<String, serde_json::Value>> {
    (
        "[A-Za-z][A-Za-z0-9_]{0,12}",
        prop::collection::vec(("[A-Za-z][A-Za-z0-9_.]{0,12}", column()), 1..12),
    )
        .prop_map(move |(kind, cols)| {
            let mut m = serde_json::Map::new();
            m.insert(first.to_string(), kind.into());
            for (k, v) in cols {
                if k != first && !k.ends_with('.') && !k.contains("..") {
                    m.insert(k, v);
                }
            }
            m
        })
}

fn check(native: Native, row: &serde_json::Map<String, serde_json::Value>) {
    let out = native.read_back(Path::new("row.jsonl"));
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events.len(), 1);
    let got: Vec<(String, serde_json::Value)> = out.events[0]
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::to_json(v)))
        .collect();
    let want: Vec<(String, serde_json::Value)> =
        row.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got, want);
}

proptest! {
    #[test]
    fn defender_rows_round_trip(r in row("Table")) {
        check(Native::Mde(r.clone()), &r);
    }

    #[test]
    fn zeek_rows_round_trip(r in row("_path")) {
        check(Native::Zeek(r.clone()), &r);
    }
}
