//! Readers against real recordings.
//!
//! Input: the reference data under `$PURPLECOV_REFERENCE` (SigmaHQ regression JSON, real EVTX files
//! listed in `telemetry/INVENTORY.tsv`). Output: pass/fail. Without the variable every test prints
//! "skipped: PURPLECOV_REFERENCE not set" and passes. These tests only read the reference data;
//! damaged copies are written to a temporary directory, never next to the originals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use purplecov::telemetry::read::{read_path, ReadOutput};
use purplecov::telemetry::Event;
use purplecov::Severity;

fn reference() -> Option<PathBuf> {
    match std::env::var_os("PURPLECOV_REFERENCE") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipped: PURPLECOV_REFERENCE not set");
            None
        }
    }
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
}

fn errors(out: &ReadOutput) -> Vec<String> {
    out.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

/// `local_path` -> `records` for the EVTX rows of the inventory.
fn inventory(reference: &Path) -> BTreeMap<String, usize> {
    let tsv = std::fs::read_to_string(reference.join("telemetry/INVENTORY.tsv"))
        .expect("telemetry/INVENTORY.tsv");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (path_c, format_c, records_c) = (col("local_path"), col("format"), col("records"));
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(format_c) == Some(&"EVTX")).then(|| {
                (
                    f[path_c].to_string(),
                    f[records_c].parse().expect("records is a number"),
                )
            })
        })
        .collect()
}

#[test]
fn regression_json_reads_cleanly() {
    let Some(reference) = reference() else { return };
    let mut files = Vec::new();
    walk(&reference.join("sigma/regression_data"), "json", &mut files);
    assert!(
        files.len() >= 200,
        "found {} regression JSON files",
        files.len()
    );
    let mut events = 0;
    for f in &files {
        let out = read_path(f, 0);
        assert!(
            out.diagnostics.is_empty(),
            "{}: {:?}",
            f.display(),
            out.diagnostics
        );
        assert_eq!(out.skipped, 0, "{}", f.display());
        assert!(!out.events.is_empty(), "{}: no events", f.display());
        for ev in &out.events {
            assert!(ev.channel().is_some(), "{}: no Channel", f.display());
            assert!(ev.event_id().is_some(), "{}: no EventID", f.display());
            assert!(ev.provider().is_some(), "{}: no Provider_Name", f.display());
            assert!(ev.origin.record >= 1);
        }
        events += out.events.len();
    }
    eprintln!("{} regression files, {events} events", files.len());
}

/// The regression cases that have both an `.evtx` and a `.json` give the same fields either way.
#[test]
fn regression_evtx_and_json_twins_agree() {
    let Some(reference) = reference() else { return };
    let mut files = Vec::new();
    walk(
        &reference.join("telemetry/sigma/regression_data"),
        "evtx",
        &mut files,
    );
    let mut compared = 0;
    for evtx in &files {
        let json = evtx.with_extension("json");
        if !json.exists() {
            continue;
        }
        let a = read_path(evtx, 0);
        let b = read_path(&json, 0);
        assert!(
            a.diagnostics.is_empty(),
            "{}: {:?}",
            evtx.display(),
            a.diagnostics
        );
        assert_eq!(a.events.len(), b.events.len(), "{}", evtx.display());
        for (x, y) in a.events.iter().zip(&b.events) {
            let names = |e: &Event| e.fields.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
            assert_eq!(names(x), names(y), "{}", evtx.display());
            for ((k, v), (_, w)) in x.fields.iter().zip(&y.fields) {
                // Same type, and the same text up to how SigmaHQ's converter writes GUIDs
                // (upper case, no braces), times (6 digits) and trailing blanks (trimmed).
                assert_eq!(
                    std::mem::discriminant(v),
                    std::mem::discriminant(w),
                    "{}: {k}",
                    evtx.display()
                );
                let norm = |v: &purplecov::telemetry::Value| {
                    let t = v.as_text().unwrap_or_default();
                    let t = t.trim().trim_matches(|c| c == '{' || c == '}');
                    let mut t = t.to_uppercase();
                    if k == "TimeCreated_SystemTime" {
                        t.truncate(26);
                    }
                    t
                };
                assert_eq!(norm(v), norm(w), "{}: {k}", evtx.display());
            }
        }
        compared += 1;
    }
    assert!(compared > 0, "no .evtx/.json twins found");
    eprintln!("{compared} evtx/json twins agree");
}

/// A few real files across sources, each with the record count the inventory states.
const EVTX_SAMPLES: &[&str] = &[
    "EVTX-ATTACK-SAMPLES/AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
    "EVTX-ATTACK-SAMPLES/Command and Control/bits_openvpn.evtx",
    "EVTX-ATTACK-SAMPLES/Execution/temp_scheduled_task_4698_4699.evtx",
    "EVTX-ATTACK-SAMPLES/Lateral Movement/smbmap_upload_exec_sysmon.evtx",
    "EVTX-to-MITRE-Attack/TA0002-Execution/T1059.001-PowerShell/ID4103-4104-Payload download via PowerShell.evtx",
    "atomic-evtx/attacks_by_category_unfiltered/collection/Automated Collection Command Prompt/T1119-1_Microsoft-Windows-Sysmon_Operational.evtx",
    "atomic-evtx/attacks_by_category_unfiltered/collection/Automated Collection Command Prompt/T1119-1_Security.evtx",
    "atomic-evtx/attacks_by_category_unfiltered/collection/Automated Collection Command Prompt/T1119-1_Windows PowerShell.evtx",
    "evtx/samples/security.evtx",
    "evtx/samples/system.evtx",
    "evtx/samples/post-Security.evtx",
];

fn check_record_order(path: &Path, events: &[Event]) {
    for w in events.windows(2) {
        assert!(
            w[0].origin.record < w[1].origin.record,
            "{}: record {} before {}",
            path.display(),
            w[0].origin.record,
            w[1].origin.record
        );
    }
}

#[test]
fn evtx_samples_read_with_inventory_counts() {
    let Some(reference) = reference() else { return };
    let inv = inventory(&reference);
    for rel in EVTX_SAMPLES {
        let expected = *inv
            .get(*rel)
            .unwrap_or_else(|| panic!("{rel} not in inventory"));
        let path = reference.join("telemetry").join(rel);
        let out = read_path(&path, 7);
        assert_eq!(errors(&out), Vec::<String>::new(), "{rel}");
        assert!(out.diagnostics.is_empty(), "{rel}: {:?}", out.diagnostics);
        assert_eq!(out.events.len(), expected, "{rel}");
        assert_eq!(out.skipped, 0, "{rel}");
        check_record_order(&path, &out.events);
        for ev in &out.events {
            assert_eq!(ev.origin.input, 7);
            assert!(ev.channel().is_some() && ev.event_id().is_some(), "{rel}");
            assert_eq!(ev.sensor, None);
            assert!(ev
                .fields
                .iter()
                .all(|(k, _)| !k.contains("xmlns") && !k.contains(' ')));
        }
    }
}

/// Every EVTX file of the inventory: the stated record count, no errors. `evtx/samples/sysmon.evtx`
/// has garbage past its last chunk, which is a warning, not an error.
#[test]
fn every_inventory_evtx_reads() {
    let Some(reference) = reference() else { return };
    let inv = inventory(&reference);
    let mut total = 0;
    for (rel, &expected) in &inv {
        let path = reference.join("telemetry").join(rel);
        let out = read_path(&path, 0);
        assert_eq!(errors(&out), Vec::<String>::new(), "{rel}");
        assert_eq!(out.events.len(), expected, "{rel}");
        check_record_order(&path, &out.events);
        total += out.events.len();
    }
    eprintln!("{} EVTX files, {total} records", inv.len());
}

/// A multi-chunk file and a one-chunk file, damaged three ways.
#[test]
fn damaged_evtx_copies_read_what_they_can() {
    let Some(reference) = reference() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for rel in [
        "evtx/samples/security.evtx",
        "EVTX-ATTACK-SAMPLES/Lateral Movement/smbmap_upload_exec_sysmon.evtx",
        "atomic-evtx/attacks_by_category_unfiltered/collection/Automated Collection Command Prompt/T1119-1_Microsoft-Windows-Sysmon_Operational.evtx",
    ] {
        let path = reference.join("telemetry").join(rel);
        let bytes = std::fs::read(&path).expect("read sample");
        let full = read_path(&path, 0);
        assert!(full.diagnostics.is_empty(), "{rel}");

        // Cut at 50%, inside the record area of the first chunk, and inside the file header.
        let mut cuts = vec![bytes.len() / 2, 4096 + 100, 4096 + 20_000, 4096 + 65_536 / 2];
        cuts.push(2000);
        for cut in cuts {
            if cut >= bytes.len() {
                continue;
            }
            let damaged = dir.path().join(format!("cut_{cut}.evtx"));
            std::fs::write(&damaged, &bytes[..cut]).expect("write");
            let out = read_path(&damaged, 0);
            let what = format!("{rel} cut at {cut}");
            assert!(out.events.len() <= full.events.len(), "{what}");
            // What was read is exactly the start of the undamaged file.
            for (i, (a, b)) in out.events.iter().zip(&full.events).enumerate() {
                assert!(a == b, "{what}: event {i} (record {}) differs", a.origin.record);
            }
            // The cut is reported; an error when records were lost.
            assert!(!out.diagnostics.is_empty(), "{what}: cut not reported");
            if out.events.len() < full.events.len() {
                assert!(
                    out.diagnostics.iter().any(|d| d.severity == Severity::Error),
                    "{what}: {:?}",
                    out.diagnostics
                );
            }
            // Records lost inside the chunk that was cut are counted.
            let chunk_start = 4096 + (cut.saturating_sub(4096) / 65_536) * 65_536;
            if cut > 4096 && chunk_start + 512 < cut {
                assert!(
                    out.skipped > 0 || out.events.len() == full.events.len(),
                    "{what}: nothing counted as skipped"
                );
            }
            eprintln!(
                "{what}: {} of {} events, {} skipped, {} diagnostics, first: {}",
                out.events.len(),
                full.events.len(),
                out.skipped,
                out.diagnostics.len(),
                out.diagnostics.first().map(|d| d.to_string()).unwrap_or_default()
            );
        }

        // Flipped bytes in the middle of the file, and in the middle of the first chunk.
        for (name, at, len) in [
            ("mid", bytes.len() / 2, 64),
            ("chunk0", 4096 + 30_000, 200),
            ("chunk0-head", 4096 + 600, 300),
        ] {
            let mut b = bytes.clone();
            for x in b.iter_mut().skip(at).take(len) {
                *x ^= 0x5A;
            }
            let damaged = dir.path().join(format!("flip_{name}.evtx"));
            std::fs::write(&damaged, &b).expect("write");
            let out = read_path(&damaged, 0);
            let what = format!("{rel} flipped {name}");
            assert!(out.events.len() <= full.events.len(), "{what}");
            // Damage in unused space changes nothing and needs no report; otherwise it is reported.
            if out.events != full.events {
                assert!(!out.diagnostics.is_empty(), "{what}: damage not reported");
            }
            for d in &out.diagnostics {
                eprintln!("  {d}");
            }
            eprintln!(
                "{what}: {} of {} events, {} skipped, {} diagnostics, first: {}",
                out.events.len(),
                full.events.len(),
                out.skipped,
                out.diagnostics.len(),
                out.diagnostics.first().map(|d| d.to_string()).unwrap_or_default()
            );
        }
    }
}

/// Pseudo-random damage (a fixed seed, so failures reproduce): never a panic, never more events.
#[test]
fn randomly_damaged_evtx_never_panics() {
    let Some(reference) = reference() else { return };
    let path = reference
        .join("telemetry")
        .join("EVTX-ATTACK-SAMPLES/Lateral Movement/smbmap_upload_exec_sysmon.evtx");
    let bytes = std::fs::read(&path).expect("read sample");
    let full = read_path(&path, 0).events.len();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut b = bytes.clone();
        let flips = 1 + next() % 40;
        for _ in 0..flips {
            // Mostly inside the used part of the chunk.
            let at = 4096 + (next() as usize) % 40_000;
            b[at] = next() as u8;
        }
        let out = purplecov::telemetry::read::read_evtx_bytes(b, &path, 0);
        assert!(out.events.len() <= full + 1);
    }
}

/// The JSON exports next to the atomic EVTX files (xmltodict shape, BOM, all values strings).
#[test]
fn atomic_evtx_json_exports_read() {
    let Some(reference) = reference() else { return };
    let mut files = Vec::new();
    walk(&reference.join("telemetry/atomic-evtx"), "json", &mut files);
    assert!(!files.is_empty());
    let mut events = 0;
    for f in &files {
        let out = read_path(f, 0);
        assert!(
            out.diagnostics.is_empty(),
            "{}: {:?}",
            f.display(),
            out.diagnostics
        );
        for ev in &out.events {
            assert!(
                ev.channel().is_some() && ev.event_id().is_some(),
                "{}",
                f.display()
            );
            assert!(ev.provider().is_some(), "{}", f.display());
            assert!(
                ev.fields
                    .iter()
                    .all(|(k, _)| !k.contains('@') && !k.contains('#')),
                "{}: {:?}",
                f.display(),
                ev.fields
            );
        }
        events += out.events.len();
    }
    eprintln!("{} atomic JSON exports, {events} events", files.len());
}
