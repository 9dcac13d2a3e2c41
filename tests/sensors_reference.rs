//! The sensor schema (`harness/telemetry/sensors.yaml`) against real recordings.
//!
//! Input: the reference data under `$PURPLECOV_REFERENCE` (`telemetry/`: EVTX and evtx-JSON files,
//! the Security-Datasets zips with collector-flattened Windows JSON, Sysmon-for-Linux XML inside
//! syslog JSON and raw auditd logs, and go-libaudit's auditd test logs). Output: pass/fail. Without
//! the variable the test prints which suite it skipped and passes.
//!
//! For every sensor and record kind we have real records of, it checks:
//! - (a) every field the schema marks `always` appears in every real record of that kind, except
//!   the documented [`EXCEPTIONS`] (older sensor versions, damaged records), each with its reason;
//! - (b) every field that appears in every real record of a kind in one file is listed in the
//!   schema: a field the real sensor always writes and ours lacks fails here;
//! - Windows: `Level`, `Task`, `Opcode`, `Keywords` and the provider GUID of real records whose
//!   `Version` equals the schema's match the schema's System defaults, and `Security UserID` is
//!   present exactly when the schema gives one;
//! - auditd: every value is encoded as the schema says (bare, quoted-or-hex, hex).
//!
//! Windows records are read with the project's reader (`read_path`, `read_json_text`); the zips are
//! opened with the `zip` crate; Sysmon-for-Linux XML is read with the project's XML reader when it
//! yields events and with a minimal `<Data Name=..>` scan otherwise; auditd lines are split into
//! key=value pairs here (the project's auditd reader decodes values, which would hide the encoding).
//! Every failure names the file and record it compared.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use purplecov::telemetry::read::{read_json_text, read_path};
use purplecov::telemetry::sensors::{AuditEncoding, SensorKind, Sensors};
use purplecov::telemetry::Event;

fn reference() -> Option<PathBuf> {
    match std::env::var_os("PURPLECOV_REFERENCE") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!(
                "skipped: sensors_reference (sensor schema vs real recordings): \
                 PURPLECOV_REFERENCE not set"
            );
            None
        }
    }
}

/// Where a documented exception applies.
#[derive(Clone, Copy)]
enum When {
    /// Records from files whose path contains this text.
    File(&'static str),
    /// Records from files whose path contains one of these texts.
    Files(&'static [&'static str]),
    /// Windows records whose System `Version` is lower than the schema's for the event id.
    OlderVersion,
}

/// What a documented exception excuses.
#[derive(Clone, Copy, PartialEq)]
enum What {
    /// An `always` field missing from real records.
    Missing,
    /// A field present in every real record of a file that the schema does not list.
    Unlisted,
    /// A System value (`Task`, `Level`, ...) that differs from the schema's default.
    System,
    /// An auditd value encoded otherwise than the schema says.
    Encoding,
}

struct Exception {
    sensor: &'static str,
    key: &'static str,
    field: &'static str,
    what: What,
    when: When,
    reason: &'static str,
}

const fn ex(
    sensor: &'static str,
    key: &'static str,
    field: &'static str,
    what: What,
    when: When,
    reason: &'static str,
) -> Exception {
    Exception {
        sensor,
        key,
        field,
        what,
        when,
        reason,
    }
}

/// Fields that later Sysmon versions added, by event id (`*` = every event that has the field in
/// the current manifest). Recordings made with an older Sysmon lack them.
const SYSMON_LATER_FIELDS: &[(&str, &str)] = &[
    ("*", "RuleName"),
    ("*", "User"),
    ("1", "ParentUser"),
    ("1", "OriginalFileName"),
    ("1", "FileVersion"),
    ("1", "Description"),
    ("1", "Product"),
    ("1", "Company"),
    ("7", "OriginalFileName"),
    ("8", "SourceUser"),
    ("8", "TargetUser"),
    ("10", "SourceUser"),
    ("10", "TargetUser"),
    ("15", "Contents"),
];

/// Reference folders recorded with a Sysmon older than the manifest modelled in sensors.yaml
/// (schema 4.81): their records lack some of [`SYSMON_LATER_FIELDS`]. atomic-evtx is not listed:
/// it was recorded with a current Sysmon and must have every field.
const OLD_SYSMON_SOURCES: &[(&str, &str)] = &[
    (
        "/evtx/samples/",
        "a 2017 workstation recording with a Sysmon older than 8.0",
    ),
    (
        "/EVTX-ATTACK-SAMPLES/",
        "2019-2020 recordings with Sysmon versions that had no User fields",
    ),
    (
        "/Security-Datasets/",
        "2020-2021 OTRF recordings with Sysmon versions that had no User fields",
    ),
];

const OLD_AUDIT_CAPS: &str = "kernels up to 4.13 log cap_fp/cap_fi/cap_fe/cap_fver only for files \
     that carry capabilities and have no cap_frootid; later kernels write all five on every PATH \
     record (Security-Datasets 2020 and go-libaudit's Ubuntu 20.04/5.15 logs)";
/// go-libaudit test logs from kernels 4.13 and older.
const OLD_KERNELS: &[&str] = &[
    "/test2.log",
    "audit-rhel6.log",
    "audit-rhel7.log",
    "audit-ubuntu14.log",
    "audit-ubuntu16.log",
    "audit-ubuntu17.log",
    "rhel-7-linux-3.10.0",
    "ubuntu-16.04-linux-4.13.0",
    "ubuntu-16.10-linux-4.8.0",
    "ubuntu-17.04-linux-4.10.0",
];
/// go-libaudit test logs from RHEL 7.
const RHEL7: &[&str] = &["audit-rhel7.log", "rhel-7-linux-3.10.0"];
const RHEL7_OBJTYPE: &str = "RHEL 7's kernel 3.10 writes objtype= where later kernels (4.8 in \
     go-libaudit's Ubuntu 16.10 log already) write nametype=";
const RHEL5_AUDIT: &str = "a 2007 log from a 2.6.18-era kernel: no session id in SYSCALL and no \
     name type in PATH yet";

/// Documented differences between the schema (current sensor versions) and the real recordings.
/// Sysmon version differences are covered by [`SYSMON_LATER_FIELDS`] and [`OLD_SYSMON_SOURCES`].
#[rustfmt::skip]
const EXCEPTIONS: &[Exception] = &[
    // --- Windows event versions older than the schema ----------------------------------------
    ex("security", "4624", "*", What::Missing, When::OlderVersion,
        "4624 version 0 (Windows 7 / Server 2008 R2 era) has 20 fields; version 2 adds \
         ImpersonationLevel .. ElevatedToken"),
    ex("security", "4698", "*", What::Missing, When::OlderVersion,
        "4698 version 0 has 6 fields; version 1 (current Windows 10/11) adds \
         ClientProcessStartKey .. FQDN"),
    // --- structure the scenario format does not model ---------------------------------------
    ex("taskscheduler", "*", "EventData_Name", What::Unlisted, When::File("/"),
        "the provider names its data element (<EventData Name=\"TaskDisabled\">), read as \
         EventData_Name; the scenario format renders plain <EventData>"),
    // --- individual recordings ------------------------------------------------------------
    ex("powershell", "4104", "Path", What::Missing, When::File("/EVTX-to-MITRE-Attack/"),
        "these exported records hold four Data elements and Task 102; Windows PowerShell 5.1 \
         writes Path as the fifth, empty when the block has no file (<Data Name=\"Path\"/>)"),
    ex("powershell", "4104", "Task", What::System, When::File("/EVTX-to-MITRE-Attack/"),
        "Task 102 in these exported records; Windows PowerShell 5.1 logs 4104 with Task 2 \
         (Security-Datasets records and published Event Viewer XML)"),
    // --- auditd from older kernels and hand-made test lines (go-libaudit) -------------------
    ex("auditd", "PATH", "nametype", What::Missing, When::Files(RHEL7), RHEL7_OBJTYPE),
    ex("auditd", "PATH", "objtype", What::Unlisted, When::Files(RHEL7), RHEL7_OBJTYPE),
    ex("auditd", "PATH", "nametype", What::Missing, When::File("/test2.log"), RHEL5_AUDIT),
    ex("auditd", "SYSCALL", "ses", What::Missing, When::File("/test2.log"), RHEL5_AUDIT),
    ex("auditd", "PATH", "cap_fp", What::Missing, When::Files(OLD_KERNELS), OLD_AUDIT_CAPS),
    ex("auditd", "PATH", "cap_fi", What::Missing, When::Files(OLD_KERNELS), OLD_AUDIT_CAPS),
    ex("auditd", "PATH", "cap_fe", What::Missing, When::Files(OLD_KERNELS), OLD_AUDIT_CAPS),
    ex("auditd", "PATH", "cap_fver", What::Missing, When::Files(OLD_KERNELS), OLD_AUDIT_CAPS),
    ex("auditd", "PATH", "cap_frootid", What::Missing, When::Files(OLD_KERNELS), OLD_AUDIT_CAPS),
    ex("auditd", "PROCTITLE", "proctitle", What::Encoding, When::File("/go-libaudit/"),
        "a single argument without a space or quote is quoted by audit_log_n_untrustedstring \
         (proctitle=\"bash\"); the scenario format always renders hex (see sensors.yaml)"),
    ex("auditd", "SYSCALL", "key", What::Encoding, When::File("ubuntu-21.10-linux-5.13.yaml"),
        "the 0x1d separator before the ENRICHED fields is missing in this test file, so \
         key=(null) runs into ARCH=x86_64"),
    ex("auditd", "SYSCALL", "key", What::Encoding, When::File("/audit-ubuntu17.log"),
        "parser test input: a stray quote follows the hex key (key=65786563013634626974\")"),
];

/// Fields Winlogbeat adds to the flattened Windows JSON of Security-Datasets (the System values
/// it keeps, renamed, plus its own). They say nothing about the EventData the sensor writes, and
/// a sensor field of the same name cannot be told apart from them. (NXLog-flattened records are
/// not compared at all: see [`add_windows_event`].)
const COLLECTOR_FIELDS: &[&str] = &[
    "@timestamp",
    "Channel",
    "EventID",
    "Hostname",
    "Keywords",
    "Level",
    "Message",
    "ProviderGuid",
    "SourceName",
    "Task",
    "TimeCreated",
];

/// One real record, reduced to what the checks need.
struct Sample {
    /// The file (for zip members: `zip!member`, for Linux Sysmon: `zip!member:line`).
    file: String,
    /// Record number (EVTX) or line.
    record: u64,
    /// Data field names in order (EventData / columns / audit keys).
    fields: Vec<String>,
    /// Windows System values by reader name (`Version`, `Task`, `Provider_Guid`, ...); empty for
    /// collector-flattened records, whose System values are the collector's.
    system: BTreeMap<String, String>,
    /// auditd: (key, raw value) pairs as written.
    raw: Vec<(String, String)>,
}

#[derive(Default)]
struct Corpus {
    /// (sensor, key) -> samples.
    samples: BTreeMap<(String, String), Vec<Sample>>,
    /// Notes printed at the end (skipped records, unmodelled kinds).
    notes: BTreeSet<String>,
}

impl Corpus {
    fn add(&mut self, sensor: &str, key: &str, s: Sample) {
        self.samples
            .entry((sensor.to_string(), key.to_string()))
            .or_default()
            .push(s);
    }
}

fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, exts, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
        {
            out.push(p);
        }
    }
}

/// Whether a reader field name is part of the Windows `System` element.
fn is_system(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "EventID",
        "Version",
        "Level",
        "Task",
        "Opcode",
        "Keywords",
        "EventRecordID",
        "Correlation",
        "Channel",
        "Computer",
        "Security",
    ];
    const PREFIX: &[&str] = &[
        "Provider_",
        "EventID_",
        "TimeCreated_",
        "Correlation_",
        "Execution_",
        "Security_",
    ];
    EXACT.contains(&name) || PREFIX.iter().any(|p| name.starts_with(p))
}

fn text(ev: &Event, name: &str) -> Option<String> {
    ev.get(name)
        .and_then(|v| v.as_text())
        .map(|c| c.into_owned())
}

/// The Windows sensor of the schema writing to `channel` (and, for shared channels such as
/// System, from `provider`).
fn windows_sensor<'a>(
    sensors: &'a Sensors,
    channel: &str,
    provider: Option<&str>,
) -> Option<&'a str> {
    sensors.names().into_iter().find(|n| {
        sensors.get(n).is_some_and(|s| {
            s.kind == SensorKind::Windows
                && s.channel.as_deref() == Some(channel)
                && provider.is_none_or(|p| s.provider_name.as_deref() == Some(p))
        })
    })
}

/// Adds one Windows event read by the project's reader.
fn add_windows_event(sensors: &Sensors, corpus: &mut Corpus, file: &str, record: u64, ev: &Event) {
    let Some(channel) = ev.channel() else { return };
    let Some(id) = ev.event_id() else { return };
    let flat = ev.get("Provider_Name").is_none();
    if flat && ev.get("SourceModuleType").is_some() {
        // NXLog im_msvistalog output: it drops empty EventData values and lets its own fields
        // (ProcessId, EventType, ...) replace EventData fields of the same name, so the record no
        // longer shows what the sensor wrote. Winlogbeat-flattened records are kept.
        corpus.notes.insert(format!(
            "{file}: NXLog-flattened Windows records not compared"
        ));
        return;
    }
    let provider = if flat {
        text(ev, "SourceName")
    } else {
        text(ev, "Provider_Name")
    };
    let Some(sensor) = windows_sensor(sensors, &channel, provider.as_deref()) else {
        return;
    };
    let key = id.to_string();
    if sensors.get(sensor).and_then(|s| s.record(&key)).is_none() {
        corpus.notes.insert(format!("not modelled: {sensor} {key}"));
        return;
    }
    let (fields, system) = if flat {
        let fields = ev
            .fields
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !COLLECTOR_FIELDS.contains(&k.as_str()))
            .collect();
        (fields, BTreeMap::new())
    } else {
        let mut fields = Vec::new();
        let mut system = BTreeMap::new();
        for (k, v) in &ev.fields {
            if is_system(k) {
                system.insert(
                    k.clone(),
                    v.as_text().map(|c| c.into_owned()).unwrap_or_default(),
                );
            } else {
                fields.push(k.strip_prefix("EventData.").unwrap_or(k).to_string());
            }
        }
        (fields, system)
    };
    corpus.add(
        sensor,
        &key,
        Sample {
            file: file.to_string(),
            record,
            fields,
            system,
            raw: Vec::new(),
        },
    );
}

/// Sysmon for Linux: one `<Event>` XML document from a syslog message.
fn add_linux_sysmon(sensors: &Sensors, corpus: &mut Corpus, file: &str, line: u64, xml: &str) {
    if !xml.trim_end().ends_with("</Event>") {
        // Cut by the syslog transport (the message ends inside ParentCommandLine): not compared.
        corpus.notes.insert(format!(
            "{file}:{line}: Sysmon for Linux record truncated by syslog (no </Event>); not compared"
        ));
        return;
    }
    let path = Path::new(file);
    let out = purplecov::telemetry::xml::read_text(xml, path, 0);
    if let Some(ev) = out.events.iter().find(|e| e.channel().is_some()) {
        corpus
            .notes
            .insert("Sysmon for Linux XML read with the project's XML reader".into());
        add_windows_event(sensors, corpus, file, line, ev);
        return;
    }
    corpus.notes.insert(
        "Sysmon for Linux XML: the project's XML reader gave no event; scanned <Data Name=..>"
            .into(),
    );
    // The project's XML reader gave nothing: scan the few parts the checks need.
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = xml.find(&open)? + open.len();
        let end = xml[start..].find('<')? + start;
        Some(xml[start..end].to_string())
    };
    let attr = |element: &str, name: &str| -> Option<String> {
        let start = xml.find(&format!("<{element} "))?;
        let rest = &xml[start..];
        let end = rest.find('>')?;
        let head = &rest[..end];
        let key = format!("{name}=\"");
        let vs = head.find(&key)? + key.len();
        let ve = head[vs..].find('"')? + vs;
        Some(head[vs..ve].to_string())
    };
    let (Some(channel), Some(id)) = (tag("Channel"), tag("EventID")) else {
        return;
    };
    let provider = attr("Provider", "Name");
    let Some(sensor) = windows_sensor(sensors, &channel, provider.as_deref()) else {
        return;
    };
    if sensors.get(sensor).and_then(|s| s.record(&id)).is_none() {
        corpus.notes.insert(format!("not modelled: {sensor} {id}"));
        return;
    }
    let mut fields = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<Data Name=\"") {
        rest = &rest[i + 12..];
        if let Some(e) = rest.find('"') {
            fields.push(rest[..e].to_string());
        }
    }
    let mut system = BTreeMap::new();
    for k in ["Version", "Level", "Task", "Opcode", "Keywords"] {
        if let Some(v) = tag(k) {
            system.insert(k.to_string(), v);
        }
    }
    if let Some(g) = attr("Provider", "Guid") {
        system.insert("Provider_Guid".into(), g);
    }
    if let Some(u) = attr("Security", "UserId").or_else(|| attr("Security", "UserID")) {
        system.insert("Security_UserID".into(), u);
    }
    corpus.add(
        sensor,
        &id,
        Sample {
            file: file.to_string(),
            record: line,
            fields,
            system,
            raw: Vec::new(),
        },
    );
}

/// Splits the body of an audit record into (key, raw value) pairs: values are `"quoted"`,
/// `'quoted'`, `{ braced }` (ENRICHED SADDR) or run to the next space. The ENRICHED part after
/// 0x1d is split the same way.
fn audit_pairs(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let s = body.replace('\u{1d}', " ");
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        let key = s[ks..i].to_string();
        i += 1;
        let vs = i;
        let close = match b.get(i) {
            Some(b'"') => Some(b'"'),
            Some(b'\'') => Some(b'\''),
            Some(b'{') => Some(b'}'),
            _ => None,
        };
        match close {
            Some(c) => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += 1;
                }
                i = (i + 1).min(b.len());
            }
            None => {
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
            }
        }
        out.push((key, s[vs..i].to_string()));
    }
    out
}

/// Adds one raw audit line (`[node=.. ]type=T msg=audit(ts:serial): body`).
fn add_audit_line(sensors: &Sensors, corpus: &mut Corpus, file: &str, line_no: u64, line: &str) {
    let line = line.trim();
    let line = match line.strip_prefix("node=") {
        Some(rest) => rest.split_once(' ').map_or("", |(_, r)| r),
        None => line,
    };
    let Some(rest) = line.strip_prefix("type=") else {
        return;
    };
    let Some((kind, rest)) = rest.split_once(' ') else {
        return;
    };
    let Some(body) = rest
        .strip_prefix("msg=audit(")
        .and_then(|r| r.split_once("):"))
        .map(|(_, b)| b)
    else {
        return;
    };
    if sensors.get("auditd").and_then(|s| s.record(kind)).is_none() {
        corpus.notes.insert(format!("not modelled: auditd {kind}"));
        return;
    }
    let raw = audit_pairs(body);
    corpus.add(
        "auditd",
        kind,
        Sample {
            file: file.to_string(),
            record: line_no,
            fields: raw.iter().map(|(k, _)| k.clone()).collect(),
            system: BTreeMap::new(),
            raw,
        },
    );
}

fn add_zip(sensors: &Sensors, corpus: &mut Corpus, path: &Path) {
    let name = path.display().to_string();
    let Ok(file) = std::fs::File::open(path) else {
        corpus.notes.insert(format!("{name}: cannot open"));
        return;
    };
    let Ok(mut zip) = zip::ZipArchive::new(file) else {
        corpus.notes.insert(format!("{name}: not a zip"));
        return;
    };
    for i in 0..zip.len() {
        let Ok(mut member) = zip.by_index(i) else {
            continue;
        };
        let member_name = match member.name() {
            Ok(m) => format!("{name}!{m}"),
            Err(_) => format!("{name}!#{i}"),
        };
        let mut bytes = Vec::new();
        if member.read_to_end(&mut bytes).is_err() {
            corpus.notes.insert(format!("{member_name}: cannot read"));
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        if text.trim_start().starts_with("type=") {
            for (n, l) in text.lines().enumerate() {
                add_audit_line(sensors, corpus, &member_name, n as u64 + 1, l);
            }
            continue;
        }
        let out = read_json_text(&text, Path::new(&member_name), 0);
        for ev in &out.events {
            if let Some(msg) = text_field_xml(ev) {
                add_linux_sysmon(sensors, corpus, &member_name, ev.origin.record, &msg);
            } else {
                add_windows_event(sensors, corpus, &member_name, ev.origin.record, ev);
            }
        }
    }
}

/// The Sysmon-for-Linux XML carried in a syslog JSON row (`SyslogMessage`).
fn text_field_xml(ev: &Event) -> Option<String> {
    text(ev, "SyslogMessage").filter(|m| m.trim_start().starts_with("<Event"))
}

fn collect(reference: &Path, sensors: &Sensors) -> Corpus {
    let mut corpus = Corpus::default();
    let telemetry = reference.join("telemetry");
    let mut files = Vec::new();
    walk(&telemetry, &["evtx", "json"], &mut files);
    for f in &files {
        let out = read_path(f, 0);
        let name = f.display().to_string();
        for ev in &out.events {
            add_windows_event(sensors, &mut corpus, &name, ev.origin.record, ev);
        }
    }
    let mut zips = Vec::new();
    walk(&telemetry.join("Security-Datasets"), &["zip"], &mut zips);
    for z in &zips {
        add_zip(sensors, &mut corpus, z);
    }
    let mut audit = Vec::new();
    walk(&telemetry.join("go-libaudit"), &["log", "yaml"], &mut audit);
    for f in &audit {
        let Ok(text) = std::fs::read_to_string(f) else {
            corpus.notes.insert(format!("{}: cannot read", f.display()));
            continue;
        };
        let name = f.display().to_string();
        for (n, l) in text.lines().enumerate() {
            // In the aucoalesce YAML files the lines sit indented inside block scalars.
            if let Some(i) = l.find("type=").filter(|_| l.contains("msg=audit(")) {
                add_audit_line(sensors, &mut corpus, &name, n as u64 + 1, &l[i..]);
            }
        }
    }
    corpus
}

/// Why a difference is accepted.
#[derive(Clone, Copy)]
enum Excuse {
    /// `EXCEPTIONS[i]`.
    Listed(usize),
    /// A field a later Sysmon added, in a recording made with an older one.
    OldSysmon(usize),
}

/// The documented exception covering `field` of `sample`, if any.
fn excused(
    sensors: &Sensors,
    sensor: &str,
    key: &str,
    field: &str,
    what: What,
    sample: &Sample,
) -> Option<Excuse> {
    if what == What::Missing && sensor == "sysmon" {
        let later = SYSMON_LATER_FIELDS
            .iter()
            .any(|(k, f)| (*k == key || *k == "*") && *f == field);
        if let Some(i) = OLD_SYSMON_SOURCES
            .iter()
            .position(|(part, _)| later && sample.file.contains(part))
        {
            return Some(Excuse::OldSysmon(i));
        }
    }
    EXCEPTIONS
        .iter()
        .position(|e| {
            e.what == what
                && e.sensor == sensor
                && (e.key == key || e.key == "*")
                && (e.field == field || e.field == "*")
                && match e.when {
                    When::File(part) => sample.file.contains(part),
                    When::Files(parts) => parts.iter().any(|p| sample.file.contains(p)),
                    When::OlderVersion => {
                        let schema = sensors
                            .get(sensor)
                            .and_then(|s| s.record(key))
                            .and_then(|r| r.system.version);
                        let real = sample
                            .system
                            .get("Version")
                            .and_then(|v| v.parse::<u8>().ok());
                        matches!((real, schema), (Some(r), Some(s)) if r < s)
                    }
                }
        })
        .map(Excuse::Listed)
}

/// Whether a raw audit value is written as `enc` says.
fn encoded_as(enc: AuditEncoding, value: &str) -> bool {
    let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
    let hex = !value.is_empty()
        && value.len().is_multiple_of(2)
        && value
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c));
    match enc {
        AuditEncoding::Bare => !quoted,
        AuditEncoding::Untrusted => quoted || hex || value == "(null)",
        AuditEncoding::Hex => hex,
    }
}

/// Required coverage: the record kinds the reference set must let us compare.
const REQUIRED: &[(&str, &str)] = &[
    ("sysmon", "1"),
    ("sysmon", "3"),
    ("sysmon", "11"),
    ("sysmon", "22"),
    ("security", "4688"),
    ("security", "4698"),
    ("powershell", "4104"),
    ("taskscheduler", "106"),
    ("system", "7045"),
    ("sysmon_linux", "1"),
    ("sysmon_linux", "3"),
    ("sysmon_linux", "5"),
    ("sysmon_linux", "11"),
    ("auditd", "SYSCALL"),
    ("auditd", "EXECVE"),
    ("auditd", "CWD"),
    ("auditd", "PATH"),
    ("auditd", "PROCTITLE"),
    ("auditd", "SOCKADDR"),
];

#[test]
fn schema_matches_real_recordings() {
    let Some(reference) = reference() else { return };
    let sensors = Sensors::builtin();
    assert!(
        !sensors.names().is_empty(),
        "the built-in sensor schema is empty (sensors.yaml failed to parse)"
    );
    let corpus = collect(&reference, sensors);
    let mut failures = Failures::default();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    let mut used_sources: BTreeSet<usize> = BTreeSet::new();
    let mut note_exception = |e: Excuse| match e {
        Excuse::Listed(i) => {
            used.insert(i);
        }
        Excuse::OldSysmon(i) => {
            used_sources.insert(i);
        }
    };

    for (sensor, key) in REQUIRED {
        let n = corpus
            .samples
            .get(&(sensor.to_string(), key.to_string()))
            .map_or(0, Vec::len);
        if n == 0 {
            failures.add(
                format!(
                    "coverage: no real {sensor} {key} records were compared (reference data \
                     moved, or a reader stopped producing them)"
                ),
                "-",
            );
        }
    }

    for ((sensor, key), samples) in &corpus.samples {
        let Some(schema) = sensors.get(sensor).and_then(|s| s.record(key)) else {
            continue;
        };
        let s = sensors.get(sensor);
        let flat = |x: &Sample| x.system.is_empty() && x.raw.is_empty();

        // (a) always-written fields appear in every real record.
        for f in schema.fields.iter().filter(|f| f.always) {
            let mut missing: Vec<&Sample> = Vec::new();
            for x in samples {
                if x.fields.contains(&f.name) {
                    continue;
                }
                if flat(x) && flat_collector_field(&f.name) {
                    // A collector-flattened record cannot show a field whose name the collector
                    // reuses for its own; nested records still check it.
                    continue;
                }
                match excused(sensors, sensor, key, &f.name, What::Missing, x) {
                    Some(e) => note_exception(e),
                    None => missing.push(x),
                }
            }
            for x in &missing {
                failures.add(
                    format!(
                        "(a) {sensor} {key}: `{}` is marked always, but real records of {} lack it \
                         ({} of {} records of the kind in all files)",
                        f.name,
                        x.file,
                        missing.len(),
                        samples.len()
                    ),
                    &format!("record {}", x.record),
                );
            }
        }

        // (b) fields present in every record of a file are listed in the schema.
        let mut by_file: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
        for x in samples {
            by_file.entry(x.file.as_str()).or_default().push(x);
        }
        for (file, xs) in &by_file {
            let Some(first) = xs.first() else { continue };
            for name in &first.fields {
                if !xs.iter().all(|x| x.fields.contains(name)) || schema.field(name).is_some() {
                    continue;
                }
                match excused(sensors, sensor, key, name, What::Unlisted, first) {
                    Some(e) => note_exception(e),
                    None => failures.add(
                        format!(
                            "(b) {sensor} {key}: every real record in {file} has `{name}`, which \
                             the schema does not list"
                        ),
                        &format!("record {}", first.record),
                    ),
                }
            }
        }

        // Windows System defaults, for records of the schema's event version.
        if let Some(sensor_def) = s.filter(|s| s.kind == SensorKind::Windows) {
            let d = &schema.system;
            for x in samples.iter().filter(|x| !x.system.is_empty()) {
                let real = |k: &str| x.system.get(k).cloned();
                let same_version = real("Version").and_then(|v| v.parse::<u8>().ok()) == d.version;
                let mut expect: Vec<(&str, Option<String>)> =
                    vec![("Provider_Guid", sensor_def.provider_guid.clone())];
                if same_version {
                    expect.push(("Level", d.level.map(|v| v.to_string())));
                    expect.push(("Task", d.task.map(|v| v.to_string())));
                    expect.push(("Opcode", d.opcode.map(|v| v.to_string())));
                    expect.push(("Keywords", d.keywords.clone()));
                }
                for (k, want) in expect {
                    let got = real(k);
                    let ok = match (&got, &want) {
                        (Some(g), Some(w)) => same_text(g, w),
                        (None, None) => true,
                        _ => false,
                    };
                    if ok {
                        continue;
                    }
                    match excused(sensors, sensor, key, k, What::System, x) {
                        Some(e) => note_exception(e),
                        None => failures.add(
                            format!(
                                "system {sensor} {key}: {k} is {got:?} in {}, the schema says \
                                 {want:?}",
                                x.file
                            ),
                            &format!("record {}", x.record),
                        ),
                    }
                }
                // Sysmon for Linux spells the attribute UserId.
                let has_sid = x.system.contains_key("Security_UserID")
                    || x.system.contains_key("Security_UserId");
                if has_sid != d.user_sid.is_some() {
                    match excused(sensors, sensor, key, "Security_UserID", What::System, x) {
                        Some(e) => note_exception(e),
                        None => {
                            failures.add(
                                format!(
                                "system {sensor} {key}: Security UserID {} in {}, the schema {}",
                                if has_sid { "present" } else { "absent" },
                                x.file,
                                if d.user_sid.is_some() { "gives one" } else { "gives none" }
                            ),
                                &format!("record {}", x.record),
                            )
                        }
                    }
                }
            }
        }

        // auditd encodings.
        for x in samples.iter().filter(|x| !x.raw.is_empty()) {
            for (k, v) in &x.raw {
                let Some(enc) = schema.field(k).and_then(|f| f.encoding) else {
                    continue;
                };
                if encoded_as(enc, v) {
                    continue;
                }
                match excused(sensors, sensor, key, k, What::Encoding, x) {
                    Some(e) => note_exception(e),
                    None => failures.add(
                        format!(
                            "encoding {sensor} {key}: `{k}` is not {enc:?} in {}",
                            x.file
                        ),
                        &format!("line {}: {k}={v}", x.record),
                    ),
                }
            }
        }
    }

    let compared: Vec<String> = corpus
        .samples
        .iter()
        .map(|((s, k), v)| format!("{s} {k}: {}", v.len()))
        .collect();
    eprintln!("records compared: {}", compared.join(", "));
    for n in &corpus.notes {
        eprintln!("note: {n}");
    }
    for (i, e) in EXCEPTIONS.iter().enumerate() {
        if used.contains(&i) {
            eprintln!(
                "exception used: {} {} {}: {}",
                e.sensor, e.key, e.field, e.reason
            );
        } else {
            eprintln!(
                "note: exception not needed by the current data: {} {} {}",
                e.sensor, e.key, e.field
            );
        }
    }
    for (i, (part, why)) in OLD_SYSMON_SOURCES.iter().enumerate() {
        if used_sources.contains(&i) {
            eprintln!("note: older Sysmon in {part}: {why}");
        }
    }
    assert!(
        failures.0.is_empty(),
        "{} differences between sensors.yaml and real recordings:\n{}",
        failures.0.len(),
        failures.render()
    );
}

/// Failures grouped by message, each with how often it occurred and where first.
#[derive(Default)]
struct Failures(BTreeMap<String, (usize, String)>);

impl Failures {
    fn add(&mut self, message: String, at: &str) {
        let e = self.0.entry(message).or_insert((0, at.to_string()));
        e.0 += 1;
    }

    fn render(&self) -> String {
        self.0
            .iter()
            .map(|(m, (n, at))| format!("{m} [{n}x; first at {at}]"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// System text equality as the event log means it: case-insensitive, GUID braces optional
/// (EVTX renders `{de7b24ea-..}`, evtx-JSON exports `DE7B24EA-..`).
fn same_text(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_matches(|c| c == '{' || c == '}')
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// Names a collector reuses for its own fields: in flattened records their presence says nothing.
fn flat_collector_field(name: &str) -> bool {
    COLLECTOR_FIELDS.contains(&name)
}

#[test]
fn audit_pairs_split_as_auditd_writes() {
    let p = audit_pairs(
        "arch=c000003e syscall=59 comm=\"dd\" exe=2F746D70 key=(null)\u{1d}ARCH=x86_64 AUID=\"alice\"",
    );
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["arch", "syscall", "comm", "exe", "key", "ARCH", "AUID"]
    );
    assert_eq!(p[2].1, "\"dd\"");
    assert!(encoded_as(AuditEncoding::Untrusted, &p[2].1));
    assert!(encoded_as(AuditEncoding::Untrusted, &p[3].1));
    assert!(encoded_as(AuditEncoding::Untrusted, &p[4].1));
    assert!(!encoded_as(AuditEncoding::Bare, &p[2].1));
    assert!(!encoded_as(AuditEncoding::Hex, "\"bash\""));
    let s = audit_pairs("saddr=0200 SADDR={ saddr_fam=inet laddr=1.2.3.4 lport=443 }");
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].1, "{ saddr_fam=inet laddr=1.2.3.4 lport=443 }");
}
