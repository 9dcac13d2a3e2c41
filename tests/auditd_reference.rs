//! The auditd reader and the zip reader against real recordings.
//!
//! Input: the reference data under `$PURPLECOV_REFERENCE`: go-libaudit's parser test data (raw
//! audit logs with the records go-libaudit parses from them, and the raw messages of its
//! coalescing tests) and Security-Datasets' zipped recordings. Output: pass/fail. Without the
//! variable every test prints "skipped: PURPLECOV_REFERENCE not set" and passes. These tests only
//! read the reference data.
//!
//! go-libaudit interprets some values (syscall numbers become names, `auid=4294967295` becomes
//! `unset`, `success`/`res` become `result`, SELinux contexts are split, ...); the reader keeps
//! the raw values. Each such key is listed below with how it is compared; every other key
//! go-libaudit reports must equal ours exactly, hex-decoded strings (`exe`, `proctitle`, `cmd`,
//! `name`, `cwd`, `data`, `acct`, EXECVE `aN`) included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use purplecov::telemetry::read::{read_path, ReadOutput};
use purplecov::telemetry::{Event, Value};
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

fn text(ev: &Event, key: &str) -> Option<String> {
    ev.get(key)
        .and_then(|v| v.as_text())
        .map(|t| t.into_owned())
}

/// One record of an auparse `.golden` file (`null` where go-libaudit could not parse the line).
#[derive(serde::Deserialize)]
struct Golden {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    record_type: String,
    sequence: i64,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

/// Keys go-libaudit rewrites through tables the reader does not carry: syscall numbers to names
/// (`syscall=59` -> `execve`), errno numbers to names (`exit=-13` -> `EACCES`), signal numbers to
/// names (`sig=31` -> `SIGSYS`). Compared only where go-libaudit left the raw number.
const TABLE_INTERPRETED: &[&str] = &["syscall", "exit", "sig"];

/// `arch` as go-libaudit names it: the kernel's `AUDIT_ARCH_*` value in hex -> its name.
const ARCHES: &[(&str, &str)] = &[
    ("c000003e", "x86_64"),
    ("40000003", "i386"),
    ("c00000b7", "aarch64"),
];

/// Where the reader's value for a go-libaudit key comes from.
#[derive(Debug, PartialEq)]
enum Check {
    /// Compared and equal (or mapped and equal).
    Equal,
    /// An interpreted value from a table the reader does not carry.
    Excluded,
}

/// Compares go-libaudit's `key: want` with the event; `Err` describes a mismatch.
fn check(ev: &Event, record_type: &str, key: &str, want: &str) -> Result<Check, String> {
    // go-libaudit lets a `msg='...'` pair overwrite the record's own pair of the same name; the
    // reader keeps both, the inner one as `msg.<key>`.
    let ours = |k: &str| text(ev, &format!("msg.{k}")).or_else(|| text(ev, k));
    let equal = |got: Option<String>, want: &str| -> Result<Check, String> {
        match got {
            Some(g) if g == want => Ok(Check::Equal),
            other => Err(format!("{key}: go-libaudit {want:?}, reader {other:?}")),
        }
    };
    if TABLE_INTERPRETED.contains(&key) {
        return if want.parse::<i64>().is_ok() {
            equal(ours(key), want)
        } else {
            Ok(Check::Excluded)
        };
    }
    match key {
        // `AUDIT_ARCH_*` hex -> name.
        "arch" => {
            let raw = ours("arch").unwrap_or_default();
            let name = ARCHES
                .iter()
                .find(|(hex, _)| *hex == raw)
                .map(|(_, n)| n.to_string());
            equal(name.or(Some(raw)), want)
        }
        // go-libaudit's `normalizeUnsetID`: 4294967295 and -1 are "unset".
        "auid" | "ses" | "old-auid" => {
            let raw = ours(key);
            let shown = match raw.as_deref() {
                Some("4294967295" | "-1") => Some("unset".to_string()),
                _ => raw,
            };
            equal(shown, want)
        }
        // Derived from `success` (SYSCALL) or `res` (others); both are kept raw by the reader.
        "result" => {
            let raw = ours("success").or_else(|| ours("res")).unwrap_or_default();
            let v = raw.to_lowercase();
            let r = if v == "yes" || v == "1" || v.starts_with("suc") {
                "success"
            } else {
                "fail"
            };
            equal(Some(r.to_string()), want)
        }
        _ => {
            // SELinux contexts split into user:role:domain:level:category.
            for ctx in ["subj", "obj"] {
                if let Some(part) = key.strip_prefix(ctx).and_then(|p| p.strip_prefix('_')) {
                    let i = ["user", "role", "domain", "level", "category"]
                        .iter()
                        .position(|p| *p == part);
                    if let Some(i) = i {
                        let raw = ours(ctx).unwrap_or_default();
                        let got = raw.splitn(5, ':').nth(i).map(str::to_string);
                        return equal(got, want);
                    }
                }
            }
            // go-libaudit's sockaddr fields are the reader's `saddr_*` helpers.
            if record_type == "SOCKADDR" {
                let helper = match key {
                    "family" => Some("saddr_family"),
                    "addr" => Some("saddr_addr"),
                    "port" => Some("saddr_port"),
                    "path" => Some("saddr_path"),
                    _ => None,
                };
                if let Some(h) = helper {
                    return equal(ours(h), want);
                }
            }
            equal(ours(key), want)
        }
    }
}

/// The rule keys go-libaudit reports as `tags`, from the reader's `key`.
fn tags(ev: &Event) -> Vec<String> {
    match ev.get("key") {
        Some(Value::List(l)) => l
            .iter()
            .filter_map(|v| v.as_text())
            .map(|t| t.into_owned())
            .collect(),
        Some(Value::Str(s)) if s == "(null)" => Vec::new(),
        // go-libaudit drops the `key=` of `key="key=net"`.
        Some(Value::Str(s)) => vec![s.split_once('=').map_or(s.as_str(), |(_, k)| k).to_string()],
        _ => Vec::new(),
    }
}

/// Epoch milliseconds of the reader's `timestamp` (`1490995752.404`).
fn epoch_ms(ev: &Event) -> Option<i64> {
    let t = text(ev, "timestamp")?;
    let (s, ms) = t.split_once('.')?;
    Some(s.parse::<i64>().ok()? * 1000 + ms.parse::<i64>().ok()?)
}

#[test]
fn go_libaudit_auparse_goldens() {
    let Some(reference) = reference() else { return };
    let dir = reference.join("telemetry/go-libaudit/auparse/testdata");
    let mut logs = Vec::new();
    walk(&dir, "log", &mut logs);
    assert!(
        logs.len() >= 7,
        "found {} logs in {}",
        logs.len(),
        dir.display()
    );
    let (mut records, mut compared, mut excluded, mut unparsable) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for log in &logs {
        let golden_path = PathBuf::from(format!("{}.golden", log.display()));
        let golden: Vec<Option<Golden>> =
            serde_json::from_str(&std::fs::read_to_string(&golden_path).expect("golden"))
                .expect("golden JSON");
        let out = read_path(log, 0);
        let lines: Vec<usize> = std::fs::read_to_string(log)
            .expect("log")
            .split('\n')
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(
            lines.len(),
            golden.len(),
            "{}: lines vs golden records",
            log.display()
        );
        assert_eq!(
            out.events.len(),
            golden.iter().filter(|g| g.is_some()).count(),
            "{}: events vs golden records; diagnostics {:?}",
            log.display(),
            out.diagnostics
        );
        let mut events = out.events.iter();
        for (g, line) in golden.iter().zip(&lines) {
            let here = format!("{}:{line}", log.display());
            let Some(g) = g else {
                // go-libaudit could not parse this line: neither can the reader, and it says so.
                unparsable += 1;
                assert!(
                    out.diagnostics
                        .iter()
                        .any(|d| d.severity == Severity::Error && d.location.line == *line),
                    "{here}: no error for a line go-libaudit rejects: {:?}",
                    out.diagnostics
                );
                continue;
            };
            let ev = events.next().expect("one event per golden record");
            records += 1;
            assert_eq!(ev.origin.record, *line as u64, "{here}");
            assert_eq!(ev.sensor.as_deref(), Some("auditd"), "{here}");
            let record_type = text(ev, "type").unwrap_or_default();
            assert_eq!(record_type.to_lowercase(), g.record_type, "{here}");
            assert_eq!(ev.get("serial"), Some(&Value::Int(g.sequence)), "{here}");
            let want_ms = g
                .timestamp
                .parse::<jiff::Timestamp>()
                .expect("golden @timestamp")
                .as_millisecond();
            assert_eq!(epoch_ms(ev), Some(want_ms), "{here}");
            if !g.keys.is_empty() {
                assert_eq!(tags(ev), g.keys, "{here}: rule keys");
            }
            for (k, want) in &g.data {
                match check(ev, &record_type, k, want) {
                    Ok(Check::Equal) => compared += 1,
                    Ok(Check::Excluded) => excluded += 1,
                    Err(e) => failures.push(format!("{here}: {e}")),
                }
            }
        }
        // Warnings only where the line itself is malformed (ubuntu17: a stray quote after the
        // key's hex value).
        for d in &out.diagnostics {
            let line = std::fs::read_to_string(log)
                .ok()
                .and_then(|t| {
                    t.split('\n')
                        .nth(d.location.line.saturating_sub(1))
                        .map(str::to_string)
                })
                .unwrap_or_default();
            if d.severity == Severity::Warning {
                assert!(line.contains("974\""), "unexpected warning {d}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} logs, {records} records, {compared} values equal, {excluded} interpreted values not compared, {unparsable} unparsable lines",
        logs.len()
    );
    assert!(
        records >= 80 && compared >= 950,
        "{records} records, {compared} values"
    );
}

/// One test of an aucoalesce `.json.golden` file.
#[derive(serde::Deserialize)]
struct Coalesced {
    test_name: String,
    event: CoalescedEvent,
}

#[derive(serde::Deserialize)]
struct CoalescedEvent {
    sequence: i64,
    #[serde(default)]
    process: BTreeMap<String, serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct CoalesceTests {
    tests: BTreeMap<String, String>,
}

/// The raw messages of go-libaudit's coalescing tests read cleanly, one event per line, and the
/// process go-libaudit puts together from them is the one in the records.
#[test]
fn go_libaudit_aucoalesce_messages() {
    let Some(reference) = reference() else { return };
    let dir = reference.join("telemetry/go-libaudit/aucoalesce/testdata");
    let mut files = Vec::new();
    walk(&dir, "yaml", &mut files);
    assert!(files.len() >= 8, "found {} yaml files", files.len());
    let (mut tests, mut events, mut compared) = (0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let yaml: CoalesceTests =
            serde_norway::from_str(&std::fs::read_to_string(f).expect("yaml")).expect("tests");
        let golden_path = f.with_extension("json.golden");
        let golden: Vec<Coalesced> =
            serde_json::from_str(&std::fs::read_to_string(&golden_path).expect("golden"))
                .expect("golden JSON");
        for (name, raw) in &yaml.tests {
            tests += 1;
            let here = format!("{} {name:?}", f.display());
            let out = purplecov::telemetry::auditd::read_text(raw, f, 0);
            assert!(errors(&out).is_empty(), "{here}: {:?}", out.diagnostics);
            // One test message is cut short (`msg='unit=rsyslog ... res=success` has no closing
            // quote): a warning, and the pairs are still read.
            for d in &out.diagnostics {
                let line = raw.split('\n').nth(d.location.line - 1).unwrap_or("");
                assert!(
                    d.message.contains("not closed") && line.matches('\'').count() % 2 == 1,
                    "{here}: {d}"
                );
            }
            let lines = raw.lines().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(out.events.len(), lines, "{here}");
            events += out.events.len();
            let Some(g) = golden.iter().find(|g| g.test_name == *name) else {
                continue;
            };
            for ev in &out.events {
                assert_eq!(
                    ev.get("serial"),
                    Some(&Value::Int(g.event.sequence)),
                    "{here}"
                );
            }
            // Where go-libaudit takes each process attribute from.
            let first = |record: Option<&str>, key: &str| {
                out.events
                    .iter()
                    .filter(|e| record.is_none_or(|r| text(e, "type").as_deref() == Some(r)))
                    .find_map(|e| text(e, key))
            };
            let from_syscall = |key: &str| first(Some("SYSCALL"), key).or_else(|| first(None, key));
            for (attr, want) in &g.event.process {
                let got = match attr.as_str() {
                    "pid" => from_syscall("pid").map(Value::Str),
                    "ppid" => from_syscall("ppid").map(Value::Str),
                    "exe" => from_syscall("exe").map(Value::Str),
                    "name" => from_syscall("comm").map(Value::Str),
                    "cwd" => first(Some("CWD"), "cwd")
                        .or_else(|| first(None, "cwd"))
                        .map(Value::Str),
                    "title" => first(Some("PROCTITLE"), "proctitle").map(Value::Str),
                    "args" => out
                        .events
                        .iter()
                        .find(|e| text(e, "type").as_deref() == Some("EXECVE"))
                        .map(|e| {
                            let argc: usize =
                                text(e, "argc").and_then(|a| a.parse().ok()).unwrap_or(0);
                            Value::List(
                                (0..argc)
                                    .filter_map(|i| e.get(&format!("a{i}")).cloned())
                                    .collect(),
                            )
                        }),
                    other => panic!("{here}: process.{other} is not compared yet"),
                };
                compared += 1;
                let want = Value::from_json(want);
                if got.as_ref() != Some(&want) {
                    failures.push(format!(
                        "{here}: process.{attr}: go-libaudit {want:?}, reader {got:?}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} files, {tests} tests, {events} records, {compared} process values equal",
        files.len()
    );
    assert!(
        tests >= 40 && compared >= 100,
        "{tests} tests, {compared} values"
    );
}

/// The members of a zip archive with their line counts (blank lines left out).
fn zip_lines(path: &Path) -> Vec<(String, usize)> {
    use std::io::Read;
    let bytes = std::fs::read(path).expect("zip");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    (0..z.len())
        .filter_map(|i| {
            let mut f = z.by_index(i).expect("member");
            if f.is_dir() {
                return None;
            }
            let mut s = String::new();
            f.read_to_string(&mut s).expect("UTF-8 member");
            Some((
                f.name().expect("name").to_string(),
                s.lines().filter(|l| !l.trim().is_empty()).count(),
            ))
        })
        .collect()
}

/// Security-Datasets' zipped auditd logs read through `read_path`, the zip reader and the auditd
/// reader: every line is a record, EXECVE records have their arguments.
#[test]
fn security_datasets_linux_auditd_zips() {
    let Some(reference) = reference() else { return };
    let mut zips = Vec::new();
    walk(
        &reference.join("telemetry/Security-Datasets/datasets/atomic/linux"),
        "zip",
        &mut zips,
    );
    assert!(!zips.is_empty(), "no linux zips");
    let (mut events, mut execve) = (0, 0);
    for z in &zips {
        let out = read_path(z, 0);
        assert!(
            errors(&out).is_empty(),
            "{}: {:?}",
            z.display(),
            errors(&out)
        );
        assert!(
            out.diagnostics.is_empty(),
            "{}: {:?}",
            z.display(),
            out.diagnostics
        );
        let lines: usize = zip_lines(z).iter().map(|(_, n)| n).sum();
        assert_eq!(out.events.len(), lines, "{}", z.display());
        for ev in &out.events {
            assert_eq!(ev.sensor.as_deref(), Some("auditd"), "{}", z.display());
            assert!(ev.get("serial").is_some() && ev.get("timestamp").is_some());
            if text(ev, "type").as_deref() == Some("EXECVE") {
                execve += 1;
                let argc: usize = text(ev, "argc").and_then(|a| a.parse().ok()).expect("argc");
                for i in 0..argc {
                    assert!(
                        matches!(ev.get(&format!("a{i}")), Some(Value::Str(s)) if !s.is_empty()),
                        "{}: EXECVE without a{i}: {:?}",
                        z.display(),
                        ev.fields
                    );
                }
            }
            if text(ev, "type").as_deref() == Some("PROCTITLE") {
                let title = text(ev, "proctitle").expect("proctitle");
                assert!(
                    !title.contains('\0') && title.chars().all(|c| !c.is_control()),
                    "{title:?}"
                );
            }
        }
        events += out.events.len();
    }
    // The dd test: its EXECVE and PROCTITLE say the same command.
    let dd = zips
        .iter()
        .find(|z| z.to_string_lossy().contains("sh_binary_padding_dd"))
        .expect("sh_binary_padding_dd.zip");
    let out = read_path(dd, 0);
    let exec = out
        .events
        .iter()
        .find(|e| text(e, "type").as_deref() == Some("EXECVE"))
        .expect("EXECVE");
    let argv: Vec<String> = (0..4)
        .filter_map(|i| text(exec, &format!("a{i}")))
        .collect();
    let title = out
        .events
        .iter()
        .find(|e| text(e, "type").as_deref() == Some("PROCTITLE"))
        .and_then(|e| text(e, "proctitle"))
        .expect("PROCTITLE");
    assert_eq!(argv.join(" "), title);
    assert!(execve >= 2, "{execve} EXECVE records");
    eprintln!(
        "{} linux zips, {events} auditd records, {execve} EXECVE",
        zips.len()
    );
}

/// Security-Datasets' zipped JSON Lines (the flat 'Mordor' schema) read through the zip reader:
/// one event per line, each with `Channel` and `EventID`; and every other archive of the data set
/// reads without errors.
#[test]
fn security_datasets_windows_and_other_zips() {
    let Some(reference) = reference() else { return };
    let root = reference.join("telemetry/Security-Datasets/datasets");
    let mut zips = Vec::new();
    walk(&root.join("atomic/windows"), "zip", &mut zips);
    assert!(zips.len() >= 3, "found {} windows zips", zips.len());
    let mut events = 0;
    for z in &zips {
        let out = read_path(z, 0);
        assert!(
            errors(&out).is_empty(),
            "{}: {:?}",
            z.display(),
            errors(&out)
        );
        let lines: usize = zip_lines(z).iter().map(|(_, n)| n).sum();
        assert_eq!(out.events.len(), lines, "{}", z.display());
        for ev in &out.events {
            assert!(ev.channel().is_some(), "{}: no Channel", z.display());
            assert!(ev.event_id().is_some(), "{}: no EventID", z.display());
            assert!(ev.origin.record >= 1);
        }
        events += out.events.len();
    }
    let mut all = Vec::new();
    walk(&root, "zip", &mut all);
    for z in all.iter().filter(|z| !zips.contains(z)) {
        let out = read_path(z, 0);
        assert!(
            errors(&out).is_empty(),
            "{}: {:?}",
            z.display(),
            errors(&out)
        );
        assert!(!out.events.is_empty(), "{}", z.display());
    }
    eprintln!(
        "{} windows zips, {events} events; {} zips in all",
        zips.len(),
        all.len()
    );
}
