//! Realism of the scenarios against real recordings (needs PURPLECOV_REFERENCE): for every sensor and
//! event id (or audit record type) we have real records of, every field that the real sensor writes in
//! all of them must be in each of our replayed events of that kind too.

use purplecov::scenario::{self, render};
use purplecov::telemetry::read::read_path;
use purplecov::telemetry::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn reference() -> Option<PathBuf> {
    let r = std::env::var_os("PURPLECOV_REFERENCE").map(PathBuf::from);
    if r.is_none() {
        eprintln!("skipped: scenario realism against real recordings (set PURPLECOV_REFERENCE)");
    }
    r
}

/// The kind of an event: Windows `Channel/EventID`, or `auditd/<type>`.
fn kind(ev: &Event) -> Option<String> {
    let get = |k: &str| {
        ev.fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
    };
    if ev.sensor.as_deref() == Some("auditd") {
        return get("type").map(|t| format!("auditd/{t}"));
    }
    Some(format!("{}/{}", get("Channel")?, get("EventID")?))
}

fn names(ev: &Event) -> BTreeSet<String> {
    ev.fields.iter().map(|(k, _)| k.clone()).collect()
}

/// Per kind: the field names present in every real record of that kind, and how many records.
fn real_fields(reference: &Path) -> BTreeMap<String, (BTreeSet<String>, usize, String)> {
    let telemetry = reference.join("telemetry");
    let inventory =
        std::fs::read_to_string(telemetry.join("INVENTORY.tsv")).expect("telemetry/INVENTORY.tsv");
    let mut out: BTreeMap<String, (BTreeSet<String>, usize, String)> = BTreeMap::new();
    for line in inventory.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(path), Some(format)) = (cols.first(), cols.get(5)) else {
            continue;
        };
        if !(*format == "EVTX"
            || format.starts_with("auditd raw")
            || format.starts_with("zip(auditd"))
        {
            continue;
        }
        let file = telemetry.join(path);
        for ev in read_path(&file, 0).events {
            let Some(k) = kind(&ev) else { continue };
            let n = names(&ev);
            match out.get_mut(&k) {
                Some((common, count, _)) => {
                    common.retain(|f| n.contains(f));
                    *count += 1;
                }
                None => {
                    out.insert(k, (n, 1, path.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn replayed_events_carry_every_field_real_sensors_always_write() {
    let Some(reference) = reference() else { return };
    let real = real_fields(&reference);
    let loaded = scenario::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("atomics")]);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let mut compared = BTreeMap::<String, usize>::new();
    let mut problems = Vec::new();
    for s in &loaded.scenarios {
        let args = s.arguments_with(&[]).unwrap();
        let (events, _) = render::events(s, &args);
        for ev in &events {
            let Some(k) = kind(ev) else { continue };
            let Some((common, count, example)) = real.get(&k) else {
                continue;
            };
            *compared.entry(k.clone()).or_default() += 1;
            let ours = names(ev);
            let lacking: Vec<&String> = common.iter().filter(|f| !ours.contains(*f)).collect();
            if !lacking.is_empty() {
                problems.push(format!(
                    "{} record {} ({k}): lacks {lacking:?}, which all {count} real records have (e.g. {example})",
                    s.id, ev.origin.record
                ));
            }
        }
    }
    eprintln!("compared with real records: {compared:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The comparison must not be vacuous: the main kinds have real counterparts.
    for k in [
        "Microsoft-Windows-Sysmon/Operational/1",
        "Microsoft-Windows-Sysmon/Operational/3",
        "Microsoft-Windows-Sysmon/Operational/11",
        "Security/4688",
    ] {
        assert!(
            compared.contains_key(k),
            "nothing compared for {k}: {compared:?}"
        );
    }
}
