//! The sensor schema: what each sensor of a scenario writes.
//!
//! Input: `sensors.yaml` next to this file, embedded at build time. Output: a [`Sensors`] value that
//! says, per sensor (`sysmon`, `security`, `auditd`, ...) and record kind (Windows event id, Defender
//! table, audit record type, Zeek log), the fields in the order the sensor writes them, which of them
//! it always writes, which the renderer derives, how auditd encodes each value, and the Windows
//! `System` defaults. Lint checks scenario records against it, the renderer orders and fills records
//! with it, and `tests/sensors_reference.rs` compares it with real recordings.
//!
//! The file is data we own, so a broken embedded file is a bug that the unit tests below catch; at
//! run time [`Sensors::builtin`] then returns an empty schema (every sensor unknown) instead of
//! panicking. This module never reads files and never knows about rules.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The embedded schema text.
const BUILTIN_YAML: &str = include_str!("sensors.yaml");

/// All sensors, by name.
#[derive(Debug, Clone, Default)]
pub struct Sensors {
    sensors: BTreeMap<String, Sensor>,
}

impl Sensors {
    /// The built-in schema, parsed once from `sensors.yaml`. A broken embedded file is a bug (a unit
    /// test proves it parses); at run time it gives an empty schema rather than a panic.
    pub fn builtin() -> &'static Sensors {
        static BUILTIN: OnceLock<Sensors> = OnceLock::new();
        BUILTIN.get_or_init(|| Sensors::parse(BUILTIN_YAML).unwrap_or_default())
    }

    /// The sensor called `name` (`sysmon`, `auditd`, ...).
    pub fn get(&self, name: &str) -> Option<&Sensor> {
        self.sensors.get(name)
    }

    /// Sensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.sensors.keys().map(String::as_str).collect()
    }

    /// Parses schema text in the `sensors.yaml` format and checks it (see [`check`]). The error
    /// lists every problem found.
    fn parse(text: &str) -> Result<Sensors, String> {
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let mut sensors = BTreeMap::new();
        for (name, rs) in raw.sensors {
            let sensor = rs.into_sensor(name.clone());
            sensors.insert(name, sensor);
        }
        let sensors = Sensors { sensors };
        let problems = check(&sensors);
        if problems.is_empty() {
            Ok(sensors)
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Which native format a sensor writes, and so which record key selects its record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorKind {
    /// Windows event log records (also Sysmon for Linux, which writes the same event XML).
    Windows,
    /// Microsoft Defender XDR advanced hunting rows.
    Mde,
    /// Linux audit log lines.
    Auditd,
    /// Zeek JSON logs.
    Zeek,
}

/// One sensor: where it writes and what each of its record kinds holds.
#[derive(Debug, Clone)]
pub struct Sensor {
    pub name: String,
    pub kind: SensorKind,
    /// Windows kinds: the event log channel (`Microsoft-Windows-Sysmon/Operational`).
    pub channel: Option<String>,
    /// Windows kinds: `<Provider Name=..>`.
    pub provider_name: Option<String>,
    /// Windows kinds: `<Provider Guid=..>`, as the event XML renders it (`{5770385f-...}`).
    pub provider_guid: Option<String>,
    /// Key: event id as decimal text ("1", "4688"), table name, record type or log name.
    pub records: BTreeMap<String, RecordSchema>,
}

impl Sensor {
    /// The schema of one record kind: event id as decimal text, table, record type or log name.
    pub fn record(&self, key: &str) -> Option<&RecordSchema> {
        self.records.get(key)
    }
}

/// What one record kind holds.
#[derive(Debug, Clone, Default)]
pub struct RecordSchema {
    /// Fields in the order the sensor writes them.
    pub fields: Vec<FieldSpec>,
    /// Windows kinds only (default otherwise): the `System` values the renderer writes unless a
    /// record overrides them.
    pub system: SystemDefaults,
}

impl RecordSchema {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Windows `System` defaults for one event id.
#[derive(Debug, Clone, Default)]
pub struct SystemDefaults {
    pub version: Option<u8>,
    pub level: Option<u8>,
    pub task: Option<u16>,
    pub opcode: Option<u8>,
    /// As the event log writes it: `0x8000000000000000`.
    pub keywords: Option<String>,
    /// Whether the provider writes `<Correlation ActivityID=..>` for this event.
    pub correlation: bool,
    /// `<Security UserID=..>`; `None` where the provider writes an empty `<Security/>`.
    pub user_sid: Option<String>,
    pub execution_pid: Option<u32>,
    pub execution_tid: Option<u32>,
    /// Some((element, xmlns)) when the record's data is UserData rather than EventData.
    pub user_data: Option<(String, Option<String>)>,
}

/// How auditd writes a value (the kernel's `audit_log_format` vs `audit_log_untrustedstring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEncoding {
    /// Numbers and keywords, written as they are (`syscall=59`, `success=yes`, `key=(null)`).
    Bare,
    /// Untrusted strings: double-quoted, or hex when the value holds a double quote, a space, a
    /// control character or a byte >= 0x7f.
    Untrusted,
    /// Always hex (`saddr`, and `proctitle` as the scenario format renders it).
    Hex,
}

/// One field of a record kind.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub name: String,
    /// The sensor writes this field in every record of the kind.
    pub always: bool,
    /// The renderer computes the value (from `at`, `host` or the sensor); scenarios never write it.
    pub derived: bool,
    /// auditd only: how the value is encoded on the wire.
    pub encoding: Option<AuditEncoding>,
}

/// Consistency checks on a parsed schema: Windows kinds have a channel and provider, encodings
/// appear on auditd fields only (and on all of them), field names are unique per record kind, and
/// Windows record keys are decimal event ids. Returns one message per problem.
fn check(sensors: &Sensors) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, s) in &sensors.sensors {
        let windows = s.kind == SensorKind::Windows;
        if windows != s.channel.is_some() || windows != s.provider_name.is_some() {
            problems.push(format!(
                "{name}: channel and provider_name are required for windows sensors and only there"
            ));
        }
        if s.records.is_empty() {
            problems.push(format!("{name}: no records"));
        }
        for (key, r) in &s.records {
            if windows && key.parse::<u32>().map(|n| n.to_string()) != Ok(key.clone()) {
                problems.push(format!(
                    "{name} {key}: windows record keys are decimal event ids"
                ));
            }
            if r.fields.is_empty() {
                problems.push(format!("{name} {key}: no fields"));
            }
            for (i, f) in r.fields.iter().enumerate() {
                if r.fields[..i].iter().any(|g| g.name == f.name) {
                    problems.push(format!("{name} {key}: field `{}` listed twice", f.name));
                }
                let audit = s.kind == SensorKind::Auditd;
                if audit != f.encoding.is_some() {
                    problems.push(format!(
                        "{name} {key} {}: `encoding` is required on auditd fields and only there",
                        f.name
                    ));
                }
            }
        }
    }
    problems
}

// ---- the file format ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    sensors: BTreeMap<String, RawSensor>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Windows,
    Mde,
    Auditd,
    Zeek,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSensor {
    kind: RawKind,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    provider_name: Option<String>,
    #[serde(default)]
    provider_guid: Option<String>,
    /// Sensor-wide System defaults; each record's `system` overrides them key by key.
    #[serde(default)]
    system: RawSystem,
    records: BTreeMap<String, RawRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    #[serde(default)]
    system: RawSystem,
    fields: Vec<RawField>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    version: Option<u8>,
    level: Option<u8>,
    task: Option<u16>,
    opcode: Option<u8>,
    keywords: Option<String>,
    correlation: Option<bool>,
    user_sid: Option<String>,
    execution_pid: Option<u32>,
    execution_tid: Option<u32>,
    user_data: Option<RawUserData>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawUserData {
    element: String,
    #[serde(default)]
    xmlns: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    always: bool,
    #[serde(default)]
    derived: bool,
    #[serde(default)]
    encoding: Option<RawEncoding>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawEncoding {
    Bare,
    Untrusted,
    Hex,
}

impl RawSystem {
    /// `self` with every unset key taken from `base`.
    fn over(self, base: &RawSystem) -> RawSystem {
        let b = base.clone();
        RawSystem {
            version: self.version.or(b.version),
            level: self.level.or(b.level),
            task: self.task.or(b.task),
            opcode: self.opcode.or(b.opcode),
            keywords: self.keywords.or(b.keywords),
            correlation: self.correlation.or(b.correlation),
            user_sid: self.user_sid.or(b.user_sid),
            execution_pid: self.execution_pid.or(b.execution_pid),
            execution_tid: self.execution_tid.or(b.execution_tid),
            user_data: self.user_data.or(b.user_data),
        }
    }

    fn into_defaults(self) -> SystemDefaults {
        SystemDefaults {
            version: self.version,
            level: self.level,
            task: self.task,
            opcode: self.opcode,
            keywords: self.keywords,
            correlation: self.correlation.unwrap_or(false),
            user_sid: self.user_sid,
            execution_pid: self.execution_pid,
            execution_tid: self.execution_tid,
            user_data: self.user_data.map(|u| (u.element, u.xmlns)),
        }
    }
}

impl RawSensor {
    fn into_sensor(self, name: String) -> Sensor {
        let kind = match self.kind {
            RawKind::Windows => SensorKind::Windows,
            RawKind::Mde => SensorKind::Mde,
            RawKind::Auditd => SensorKind::Auditd,
            RawKind::Zeek => SensorKind::Zeek,
        };
        let base = self.system;
        let records = self
            .records
            .into_iter()
            .map(|(key, r)| {
                let system = if kind == SensorKind::Windows {
                    r.system.over(&base).into_defaults()
                } else {
                    SystemDefaults::default()
                };
                let fields = r
                    .fields
                    .into_iter()
                    .map(|f| FieldSpec {
                        name: f.name,
                        always: f.always,
                        derived: f.derived,
                        encoding: f.encoding.map(|e| match e {
                            RawEncoding::Bare => AuditEncoding::Bare,
                            RawEncoding::Untrusted => AuditEncoding::Untrusted,
                            RawEncoding::Hex => AuditEncoding::Hex,
                        }),
                    })
                    .collect();
                (key, RecordSchema { fields, system })
            })
            .collect();
        Sensor {
            name,
            kind,
            channel: self.channel,
            provider_name: self.provider_name,
            provider_guid: self.provider_guid,
            records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Sensors {
        match Sensors::parse(BUILTIN_YAML) {
            Ok(s) => s,
            Err(e) => panic!("sensors.yaml does not parse:\n{e}"),
        }
    }

    fn field<'a>(s: &'a Sensors, sensor: &str, key: &str, name: &str) -> &'a FieldSpec {
        s.get(sensor)
            .and_then(|x| x.record(key))
            .and_then(|r| r.field(name))
            .unwrap_or_else(|| panic!("{sensor} {key} has no field {name}"))
    }

    #[test]
    fn embedded_file_parses_and_checks() {
        let s = builtin();
        assert!(
            !Sensors::builtin().names().is_empty(),
            "builtin() fell back to empty"
        );
        assert_eq!(s.names(), Sensors::builtin().names());
    }

    #[test]
    fn every_documented_sensor_is_present() {
        // The sensor table of docs/scenarios.md.
        let s = builtin();
        let expected = [
            "auditd",
            "mde",
            "powershell",
            "security",
            "sysmon",
            "sysmon_linux",
            "system",
            "taskscheduler",
            "zeek",
        ];
        assert_eq!(s.names(), expected);
        let kind = |n: &str| s.get(n).map(|x| x.kind);
        assert_eq!(kind("sysmon_linux"), Some(SensorKind::Windows));
        assert_eq!(kind("mde"), Some(SensorKind::Mde));
        assert_eq!(kind("auditd"), Some(SensorKind::Auditd));
        assert_eq!(kind("zeek"), Some(SensorKind::Zeek));
    }

    #[test]
    fn required_record_kinds_are_present() {
        let s = builtin();
        let want: &[(&str, &[&str])] = &[
            (
                "sysmon",
                &["1", "3", "5", "7", "10", "11", "12", "13", "22"],
            ),
            ("security", &["4624", "4688", "4698"]),
            ("powershell", &["4103", "4104"]),
            ("taskscheduler", &["100", "102", "106", "129", "200", "201"]),
            ("system", &["7045"]),
            ("sysmon_linux", &["1", "3", "5", "11"]),
            (
                "mde",
                &[
                    "DeviceProcessEvents",
                    "DeviceNetworkEvents",
                    "DeviceFileEvents",
                    "DeviceEvents",
                ],
            ),
            (
                "auditd",
                &["SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR"],
            ),
            ("zeek", &["conn", "ssl", "dns", "http", "files"]),
        ];
        for (sensor, keys) in want {
            for key in *keys {
                assert!(
                    s.get(sensor).and_then(|x| x.record(key)).is_some(),
                    "{sensor} {key} missing"
                );
            }
        }
    }

    #[test]
    fn spot_checks_against_real_records() {
        let s = builtin();
        // Sysmon 1: CommandLine always written; UtcTime derived by the renderer; write order.
        assert!(field(&s, "sysmon", "1", "CommandLine").always);
        assert!(field(&s, "sysmon", "1", "UtcTime").derived);
        assert!(!field(&s, "sysmon", "1", "CommandLine").derived);
        let names: Vec<&str> = s
            .get("sysmon")
            .and_then(|x| x.record("1"))
            .map_or(vec![], |r| {
                r.fields.iter().map(|f| f.name.as_str()).collect()
            });
        assert_eq!(names.first(), Some(&"RuleName"));
        assert_eq!(names.last(), Some(&"ParentUser"));
        // auditd: EXECVE arguments are untrusted strings, SYSCALL numbers bare, saddr hex.
        assert_eq!(
            field(&s, "auditd", "EXECVE", "a0").encoding,
            Some(AuditEncoding::Untrusted)
        );
        assert_eq!(
            field(&s, "auditd", "SYSCALL", "syscall").encoding,
            Some(AuditEncoding::Bare)
        );
        assert_eq!(
            field(&s, "auditd", "SOCKADDR", "saddr").encoding,
            Some(AuditEncoding::Hex)
        );
        assert!(!field(&s, "auditd", "EXECVE", "a1").always);
        // Derived values of the other kinds.
        assert!(field(&s, "mde", "DeviceProcessEvents", "ReportId").derived);
        assert!(field(&s, "zeek", "conn", "ts").derived);
        assert!(field(&s, "zeek", "conn", "id.orig_h").always);
        assert!(!field(&s, "zeek", "conn", "service").always);
        // System defaults as real records show them.
        let sys = |sensor: &str, key: &str| {
            s.get(sensor)
                .and_then(|x| x.record(key))
                .map(|r| r.system.clone())
                .unwrap_or_default()
        };
        let sysmon1 = sys("sysmon", "1");
        assert_eq!(sysmon1.version, Some(5));
        assert_eq!(sysmon1.task, Some(1));
        assert_eq!(sysmon1.keywords.as_deref(), Some("0x8000000000000000"));
        assert_eq!(sysmon1.user_sid.as_deref(), Some("S-1-5-18"));
        assert!(!sysmon1.correlation);
        let sec = sys("security", "4688");
        assert_eq!(sec.task, Some(13312));
        assert_eq!(sec.keywords.as_deref(), Some("0x8020000000000000"));
        assert_eq!(sec.user_sid, None);
        assert_eq!(sys("powershell", "4104").task, Some(2));
        assert!(sys("powershell", "4104").correlation);
        assert_eq!(
            sys("taskscheduler", "100").keywords.as_deref(),
            Some("0x8000000000000001")
        );
        assert!(sys("taskscheduler", "201").correlation);
        assert!(!sys("taskscheduler", "106").correlation);
        assert_eq!(sys("sysmon_linux", "1").user_sid.as_deref(), Some("0"));
        // Non-Windows kinds carry no System defaults.
        assert_eq!(sys("zeek", "conn").version, None);
    }

    #[test]
    fn checks_reject_bad_schemas() {
        let bad = [
            // Windows sensor without a channel.
            "sensors:\n  x:\n    kind: windows\n    provider_name: P\n    records:\n      '1':\n        fields: [{name: A, always: true}]\n",
            // auditd field without an encoding.
            "sensors:\n  x:\n    kind: auditd\n    records:\n      CWD:\n        fields: [{name: cwd, always: true}]\n",
            // Encoding on a non-auditd field.
            "sensors:\n  x:\n    kind: zeek\n    records:\n      conn:\n        fields: [{name: ts, always: true, encoding: bare}]\n",
            // Duplicate field.
            "sensors:\n  x:\n    kind: zeek\n    records:\n      conn:\n        fields: [{name: ts, always: true}, {name: ts, always: false}]\n",
            // Unknown key (typo).
            "sensors:\n  x:\n    kind: zeek\n    records:\n      conn:\n        fields: [{name: ts, allways: true}]\n",
            // Non-numeric Windows record key.
            "sensors:\n  x:\n    kind: windows\n    channel: C\n    provider_name: P\n    records:\n      one:\n        fields: [{name: A, always: true}]\n",
        ];
        for text in bad {
            assert!(Sensors::parse(text).is_err(), "accepted:\n{text}");
        }
    }

    #[test]
    fn record_system_overrides_sensor_system() {
        let text = "sensors:\n  x:\n    kind: windows\n    channel: C\n    provider_name: P\n    system: {level: 4, keywords: '0x1', execution_pid: 7}\n    records:\n      '1':\n        system: {level: 0, correlation: true, user_data: {element: E, xmlns: 'urn:x'}}\n        fields: [{name: A, always: true}]\n";
        let s = match Sensors::parse(text) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let d = s
            .get("x")
            .and_then(|x| x.record("1"))
            .map(|r| r.system.clone())
            .unwrap_or_default();
        assert_eq!(d.level, Some(0));
        assert_eq!(d.keywords.as_deref(), Some("0x1"));
        assert_eq!(d.execution_pid, Some(7));
        assert!(d.correlation);
        assert_eq!(d.user_data, Some(("E".into(), Some("urn:x".into()))));
    }
}
