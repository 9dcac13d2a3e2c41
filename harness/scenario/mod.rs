//! Scenarios: atomic attack tests and the telemetry real sensors record when they run.
//!
//! Input: scenario files (`atomics/<technique>/<nn>-<slug>.yaml`, format in docs/scenarios.md).
//! Output: [`Scenario`]s with their arguments, executor and ordered telemetry records, plus located
//! diagnostics for everything wrong (unknown or missing keys, `#{arg}` declared but unused or used but
//! undeclared, bad time offsets, unknown sensors, event ids or fields). A broken scenario never stops
//! the others from loading. [`render`] turns a scenario into native sensor records; nothing here ever
//! executes a scenario's command.

mod locate;
pub mod render;

use crate::diag::{Diagnostic, Location};
use crate::telemetry::sensors::{SensorKind, Sensors};
use crate::telemetry::Value;
use locate::Lines;
use serde_norway::Value as Yaml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest scenario file read (bytes).
const MAX_FILE_BYTES: u64 = 8 << 20;

/// One scenario, as loaded (placeholders not yet substituted).
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub path: PathBuf,
    pub id: String,
    pub guid: String,
    pub name: String,
    pub description: String,
    pub technique: String,
    pub tactic: String,
    pub platforms: Vec<String>,
    pub source: Source,
    pub related_art: Vec<RelatedArt>,
    /// In file order.
    pub arguments: Vec<Argument>,
    pub executor: Executor,
    pub dependency_executor_name: Option<String>,
    pub dependencies: Vec<Dependency>,
    pub host: Host,
    /// Offset 0 of the telemetry.
    pub start: jiff::Timestamp,
    pub telemetry: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Source {
    pub document: String,
    pub test: u32,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RelatedArt {
    pub guid: String,
    pub test: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Argument {
    pub name: String,
    pub description: String,
    pub kind: String,
    pub default: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Executor {
    pub name: String,
    pub command: String,
    pub cleanup_command: Option<String>,
    pub elevation_required: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dependency {
    pub description: String,
    pub prereq_command: String,
    pub get_prereq_command: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Host {
    pub os: String,
    pub name: String,
    pub fqdn: String,
    pub ip: String,
    pub mde_device_id: Option<String>,
}

/// One telemetry record of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Microseconds after the scenario's start.
    pub at_us: i64,
    pub sensor: String,
    /// Event id (Windows sensors), table (mde), record type (auditd) or log name (zeek).
    pub kind: String,
    /// auditd: the records of one audit event share it.
    pub serial: Option<u64>,
    /// In file order; values as written (placeholders not yet substituted).
    pub fields: Vec<(String, Value)>,
    /// Windows only: overrides of System values (`Execution_ProcessID`, ...).
    pub system: Vec<(String, Value)>,
    pub note: Option<String>,
    /// 1-based line of the record in its file.
    pub line: usize,
}

/// Scenarios and what was wrong with the files they came from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub scenarios: Vec<Scenario>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads every scenario file under `paths` (files or folders, `.yaml`/`.yml`, sorted by path).
pub fn load(paths: &[PathBuf]) -> Loaded {
    let mut files = Vec::new();
    let mut out = Loaded::default();
    for p in paths {
        if p.is_dir() {
            yaml_files(p, &mut files);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            out.diagnostics.push(Diagnostic::error(
                Location::file(p),
                "no such file or folder",
            ));
        }
    }
    files.sort();
    files.dedup();
    for f in files {
        let text = match std::fs::metadata(&f) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                out.diagnostics.push(Diagnostic::error(
                    Location::file(&f),
                    format!(
                        "the file has {} bytes; scenario files are read up to {MAX_FILE_BYTES}",
                        m.len()
                    ),
                ));
                continue;
            }
            _ => match std::fs::read(&f) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => t,
                    Err(e) => {
                        out.diagnostics.push(Diagnostic::error(
                            Location::file(&f),
                            format!(
                                "not UTF-8 (first bad byte at offset {})",
                                e.utf8_error().valid_up_to()
                            ),
                        ));
                        continue;
                    }
                },
                Err(e) => {
                    out.diagnostics.push(Diagnostic::error(
                        Location::file(&f),
                        format!("cannot read the file: {e}"),
                    ));
                    continue;
                }
            },
        };
        let (s, mut d) = parse(&f, &text);
        out.diagnostics.append(&mut d);
        out.scenarios.extend(s);
    }
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for s in &out.scenarios {
        if let Some(first) = seen.insert(s.id.clone(), s.path.clone()) {
            out.diagnostics.push(Diagnostic::error(
                Location::new(&s.path, 1, 0),
                format!(
                    "scenario id `{}` is also used by {}; ids must be unique",
                    s.id,
                    first.display()
                ),
            ));
        }
    }
    out
}

/// The `.yaml`/`.yml` files under `dir`, recursively (unsorted).
pub fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| x.eq_ignore_ascii_case("yaml") || x.eq_ignore_ascii_case("yml"))
        {
            out.push(p);
        }
    }
}

const TOP_KEYS: &[(&str, bool)] = &[
    ("id", true),
    ("guid", true),
    ("name", true),
    ("description", true),
    ("technique", true),
    ("tactic", true),
    ("supported_platforms", true),
    ("source", true),
    ("related_art", false),
    ("input_arguments", false),
    ("dependency_executor_name", false),
    ("dependencies", false),
    ("executor", true),
    ("host", true),
    ("start", true),
    ("telemetry", true),
];

const PLATFORMS: &[&str] = &[
    "windows",
    "macos",
    "linux",
    "office-365",
    "azure-ad",
    "google-workspace",
    "saas",
    "iaas",
    "containers",
    "iaas:gcp",
    "iaas:azure",
    "iaas:aws",
    "esxi",
];

const EXECUTORS: &[&str] = &["powershell", "sh", "bash", "command_prompt", "manual"];

/// Collects diagnostics for one file, with lines found in its text.
struct Ctx<'a> {
    path: &'a Path,
    lines: Lines<'a>,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(Location::new(self.path, line, 0), msg));
    }

    fn err_help(&mut self, line: usize, msg: impl Into<String>, help: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(Location::new(self.path, line, 0), msg).with_help(help.into()));
    }

    fn top(&self, key: &str) -> usize {
        self.lines.key_line(0, self.lines.len(), key).unwrap_or(1)
    }
}

/// Parses and checks one scenario file. Returns the scenario when it is usable (errors in single
/// telemetry records drop only those records), and every diagnostic.
pub fn parse(path: &Path, text: &str) -> (Option<Scenario>, Vec<Diagnostic>) {
    let mut cx = Ctx {
        path,
        lines: Lines::new(text),
        diags: Vec::new(),
    };
    let doc: Yaml = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (line, col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 0));
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            cx.diags.push(Diagnostic::error(
                Location::new(path, line, col),
                format!("invalid YAML: {msg}"),
            ));
            return (None, cx.diags);
        }
    };
    let Some(map) = doc.as_mapping() else {
        cx.err(
            1,
            "a scenario file holds one mapping (id, guid, name, ..., telemetry)",
        );
        return (None, cx.diags);
    };
    for (k, _) in map {
        let key = k.as_str().unwrap_or("");
        if !TOP_KEYS.iter().any(|(t, _)| *t == key) {
            let line = cx.top(key);
            cx.err_help(
                line,
                format!("unknown key `{}`", yaml_text(k)),
                format!(
                    "scenario keys are: {}",
                    TOP_KEYS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    for (k, required) in TOP_KEYS {
        if *required && map.get(*k).is_none() {
            cx.err(1, format!("missing required key `{k}`"));
        }
    }
    let s = |cx: &mut Ctx, key: &str| -> String {
        match map.get(key) {
            None => String::new(),
            Some(Yaml::String(s)) => s.clone(),
            Some(other) => {
                let line = cx.top(key);
                cx.err(line, format!("`{key}` must be text, found {}", kind(other)));
                String::new()
            }
        }
    };
    let id = s(&mut cx, "id");
    let guid = s(&mut cx, "guid");
    let name = s(&mut cx, "name");
    let description = s(&mut cx, "description");
    let technique = s(&mut cx, "technique");
    let tactic = s(&mut cx, "tactic");
    if !guid.is_empty() && !is_uuid(&guid) {
        let line = cx.top("guid");
        cx.err(line, format!("`guid` must be a UUID, found `{guid}`"));
    }
    if !technique.is_empty() && !is_technique(&technique) {
        let line = cx.top("technique");
        cx.err(
            line,
            format!("`technique` must look like T1234 or T1234.001, found `{technique}`"),
        );
    }
    if !id.is_empty() && !technique.is_empty() && !id.starts_with(&format!("{technique}-")) {
        let line = cx.top("id");
        cx.err(
            line,
            format!("`id` must be `<technique>-<test number>` ({technique}-N), found `{id}`"),
        );
    }
    let platforms = string_list(
        &mut cx,
        map.get("supported_platforms"),
        "supported_platforms",
    );
    for p in &platforms {
        if !PLATFORMS.contains(&p.as_str()) {
            let line = cx.top("supported_platforms");
            cx.err(
                line,
                format!(
                    "unknown platform `{p}` (ART's platforms: {})",
                    PLATFORMS.join(", ")
                ),
            );
        }
    }
    let source = parse_source(&mut cx, map.get("source"));
    let related_art = parse_related(&mut cx, map.get("related_art"));
    let arguments = parse_arguments(&mut cx, map.get("input_arguments"));
    let executor = parse_executor(&mut cx, map.get("executor"));
    let dependency_executor_name = match map.get("dependency_executor_name") {
        None => None,
        Some(Yaml::String(s)) => Some(s.clone()),
        Some(o) => {
            let line = cx.top("dependency_executor_name");
            cx.err(
                line,
                format!("`dependency_executor_name` must be text, found {}", kind(o)),
            );
            None
        }
    };
    let dependencies = parse_dependencies(&mut cx, map.get("dependencies"));
    let host = parse_host(&mut cx, map.get("host"));
    let start = match map.get("start") {
        None => jiff::Timestamp::UNIX_EPOCH,
        Some(v) => {
            let text = yaml_text(v);
            match text.parse::<jiff::Timestamp>() {
                Ok(t) => t,
                Err(e) => {
                    let line = cx.top("start");
                    cx.err(
                        line,
                        format!(
                            "`start` must be an RFC 3339 time like 2026-03-14T09:26:53.120Z: {e}"
                        ),
                    );
                    jiff::Timestamp::UNIX_EPOCH
                }
            }
        }
    };
    check_placeholders(&mut cx, &arguments, &executor, &dependencies);
    let telemetry = parse_telemetry(&mut cx, map.get("telemetry"), &arguments, &host);
    let errors = cx
        .diags
        .iter()
        .any(|d| d.severity == crate::diag::Severity::Error && !d.message.starts_with("record "));
    let scenario = Scenario {
        path: path.to_path_buf(),
        id,
        guid,
        name,
        description,
        technique,
        tactic,
        platforms,
        source,
        related_art,
        arguments,
        executor,
        dependency_executor_name,
        dependencies,
        host,
        start,
        telemetry,
    };
    (
        if errors && scenario.id.is_empty() {
            None
        } else {
            Some(scenario)
        },
        cx.diags,
    )
}

fn kind(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "text",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// A scalar's text (numbers and booleans as written); empty for other values.
fn yaml_text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_technique(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    main.len() == 4
        && main.chars().all(|c| c.is_ascii_digit())
        && sub.is_none_or(|s| s.len() == 3 && s.chars().all(|c| c.is_ascii_digit()))
}

fn string_list(cx: &mut Ctx, v: Option<&Yaml>, key: &str) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter_map(|i| match i {
                Yaml::String(s) => Some(s.clone()),
                other => {
                    let line = cx.top(key);
                    cx.err(
                        line,
                        format!("`{key}` items must be text, found {}", kind(other)),
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            let line = cx.top(key);
            cx.err(
                line,
                format!("`{key}` must be a list, found {}", kind(other)),
            );
            Vec::new()
        }
    }
}

/// Checks a nested mapping's keys against `allowed` (name, required) and returns it.
fn sub_map<'y>(
    cx: &mut Ctx,
    v: Option<&'y Yaml>,
    what: &str,
    line: usize,
    allowed: &[(&str, bool)],
) -> Option<&'y serde_norway::Mapping> {
    let m = match v? {
        Yaml::Mapping(m) => m,
        other => {
            cx.err(
                line,
                format!("`{what}` must be a mapping, found {}", kind(other)),
            );
            return None;
        }
    };
    for (k, _) in m {
        let key = yaml_text(k);
        if !allowed.iter().any(|(a, _)| *a == key) {
            let kl = cx
                .lines
                .key_line(line.saturating_sub(1), cx.lines.len(), &key)
                .unwrap_or(line);
            cx.err_help(
                kl,
                format!("unknown key `{key}` in `{what}`"),
                format!(
                    "`{what}` keys are: {}",
                    allowed
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    for (k, required) in allowed {
        if *required && m.get(*k).is_none() {
            cx.err(line, format!("`{what}` is missing `{k}`"));
        }
    }
    Some(m)
}

fn text_of(m: &serde_norway::Mapping, key: &str) -> String {
    m.get(key).map(yaml_text).unwrap_or_default()
}

fn parse_source(cx: &mut Ctx, v: Option<&Yaml>) -> Source {
    let line = cx.top("source");
    let Some(m) = sub_map(
        cx,
        v,
        "source",
        line,
        &[("document", true), ("test", true), ("title", true)],
    ) else {
        return Source::default();
    };
    let test = match m.get("test") {
        Some(Yaml::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0) as u32,
        Some(other) => {
            cx.err(
                line,
                format!("`source.test` must be a test number, found {}", kind(other)),
            );
            0
        }
        None => 0,
    };
    Source {
        document: text_of(m, "document"),
        test,
        title: text_of(m, "title"),
    }
}

fn parse_related(cx: &mut Ctx, v: Option<&Yaml>) -> Vec<RelatedArt> {
    let line = cx.top("related_art");
    let items = match v {
        None => return Vec::new(),
        Some(Yaml::Sequence(items)) => items,
        Some(other) => {
            cx.err(
                line,
                format!("`related_art` must be a list, found {}", kind(other)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for it in items {
        if let Some(m) = sub_map(
            cx,
            Some(it),
            "related_art",
            line,
            &[("guid", true), ("test", true), ("note", false)],
        ) {
            let guid = text_of(m, "guid");
            if !is_uuid(&guid) {
                cx.err(
                    line,
                    format!("`related_art.guid` must be an ART test GUID, found `{guid}`"),
                );
            }
            out.push(RelatedArt {
                guid,
                test: text_of(m, "test"),
                note: text_of(m, "note"),
            });
        }
    }
    out
}

const ARG_TYPES: &[&str] = &[
    "string", "String", "path", "Path", "integer", "Integer", "float", "Float", "url", "Url",
];

fn parse_arguments(cx: &mut Ctx, v: Option<&Yaml>) -> Vec<Argument> {
    let line = cx.top("input_arguments");
    let m = match v {
        None => return Vec::new(),
        Some(Yaml::Mapping(m)) => m,
        Some(other) => {
            cx.err(
                line,
                format!("`input_arguments` must be a mapping, found {}", kind(other)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (k, spec) in m {
        let name = yaml_text(k);
        let al = cx
            .lines
            .key_line(line, cx.lines.len(), &name)
            .unwrap_or(line);
        if name.len() < 2
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            cx.err(al, format!("argument name `{name}` must be 2+ characters of letters, digits, `_` or `-` (ART's rule)"));
        }
        let Some(sm) = sub_map(
            cx,
            Some(spec),
            &format!("input_arguments.{name}"),
            al,
            &[("description", true), ("type", true), ("default", true)],
        ) else {
            continue;
        };
        let kind_ = text_of(sm, "type");
        if !ARG_TYPES.contains(&kind_.as_str()) {
            cx.err(
                al,
                format!(
                    "argument `{name}`: unknown type `{kind_}` (string, path, integer, float, url)"
                ),
            );
        }
        out.push(Argument {
            name,
            description: text_of(sm, "description"),
            kind: kind_,
            default: sm.get("default").map(yaml_text).unwrap_or_default(),
        });
    }
    out
}

fn parse_executor(cx: &mut Ctx, v: Option<&Yaml>) -> Executor {
    let line = cx.top("executor");
    let Some(m) = sub_map(
        cx,
        v,
        "executor",
        line,
        &[
            ("name", true),
            ("command", false),
            ("steps", false),
            ("cleanup_command", false),
            ("elevation_required", false),
        ],
    ) else {
        return Executor::default();
    };
    let name = text_of(m, "name");
    if !EXECUTORS.contains(&name.as_str()) {
        cx.err(
            line,
            format!("unknown executor `{name}` ({})", EXECUTORS.join(", ")),
        );
    }
    let command = if name == "manual" {
        text_of(m, "steps")
    } else {
        text_of(m, "command")
    };
    if command.trim().is_empty() {
        cx.err(
            line,
            "the executor has no command (`command`, or `steps` for a manual executor)",
        );
    }
    let elevation_required = match m.get("elevation_required") {
        None => false,
        Some(Yaml::Bool(b)) => *b,
        Some(other) => {
            cx.err(
                line,
                format!(
                    "`executor.elevation_required` must be true or false, found {}",
                    kind(other)
                ),
            );
            false
        }
    };
    Executor {
        name,
        command,
        cleanup_command: m.get("cleanup_command").map(yaml_text),
        elevation_required,
    }
}

fn parse_dependencies(cx: &mut Ctx, v: Option<&Yaml>) -> Vec<Dependency> {
    let line = cx.top("dependencies");
    let items = match v {
        None => return Vec::new(),
        Some(Yaml::Sequence(items)) => items,
        Some(other) => {
            cx.err(
                line,
                format!("`dependencies` must be a list, found {}", kind(other)),
            );
            return Vec::new();
        }
    };
    items
        .iter()
        .filter_map(|it| {
            let m = sub_map(
                cx,
                Some(it),
                "dependencies",
                line,
                &[
                    ("description", true),
                    ("prereq_command", true),
                    ("get_prereq_command", true),
                ],
            )?;
            Some(Dependency {
                description: text_of(m, "description"),
                prereq_command: text_of(m, "prereq_command"),
                get_prereq_command: m.get("get_prereq_command").map(yaml_text),
            })
        })
        .collect()
}

fn parse_host(cx: &mut Ctx, v: Option<&Yaml>) -> Host {
    let line = cx.top("host");
    let Some(m) = sub_map(
        cx,
        v,
        "host",
        line,
        &[
            ("os", true),
            ("name", true),
            ("fqdn", true),
            ("ip", true),
            ("mde_device_id", false),
        ],
    ) else {
        return Host::default();
    };
    let os = text_of(m, "os");
    if os != "windows" && os != "linux" {
        cx.err(
            line,
            format!("`host.os` must be windows or linux, found `{os}`"),
        );
    }
    let ip = text_of(m, "ip");
    if ip.parse::<std::net::IpAddr>().is_err() {
        cx.err(
            line,
            format!("`host.ip` must be an IP address, found `{ip}`"),
        );
    }
    let mde_device_id = m.get("mde_device_id").map(yaml_text);
    if let Some(d) = &mde_device_id {
        if d.len() != 40 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
            cx.err(
                line,
                format!("`host.mde_device_id` must be 40 hex digits, found `{d}`"),
            );
        }
    }
    Host {
        os,
        name: text_of(m, "name"),
        fqdn: text_of(m, "fqdn"),
        ip,
        mde_device_id,
    }
}

/// `#{name}` placeholders in `text`, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("#{") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                out.push(&after[..j]);
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// ART's rule: the placeholders of the commands are exactly the declared arguments.
fn check_placeholders(cx: &mut Ctx, args: &[Argument], executor: &Executor, deps: &[Dependency]) {
    let mut used: Vec<&str> = Vec::new();
    let mut texts: Vec<&str> = vec![executor.command.as_str()];
    texts.extend(executor.cleanup_command.as_deref());
    for d in deps {
        texts.push(&d.prereq_command);
        texts.extend(d.get_prereq_command.as_deref());
    }
    for t in texts {
        used.extend(placeholders(t));
    }
    let line = cx.top("executor");
    for u in &used {
        if !args.iter().any(|a| a.name == *u) {
            cx.err_help(
                line,
                format!("`#{{{u}}}` is used in a command but not declared in `input_arguments`"),
                "declare it under input_arguments with description, type and default",
            );
        }
    }
    let al = cx.top("input_arguments");
    for a in args {
        if !used.contains(&a.name.as_str()) {
            cx.err(
                al,
                format!(
                    "argument `{}` is declared but no command uses `#{{{}}}` (ART's rule)",
                    a.name, a.name
                ),
            );
        }
    }
}

const RECORD_KEYS: &[&str] = &[
    "at", "sensor", "event_id", "table", "type", "log", "serial", "fields", "system", "note",
];

/// The key that selects a record's kind for a sensor kind.
pub fn kind_key(kind: SensorKind) -> &'static str {
    match kind {
        SensorKind::Windows => "event_id",
        SensorKind::Mde => "table",
        SensorKind::Auditd => "type",
        SensorKind::Zeek => "log",
    }
}

fn parse_telemetry(cx: &mut Ctx, v: Option<&Yaml>, args: &[Argument], host: &Host) -> Vec<Record> {
    let line = cx.top("telemetry");
    let items = match v {
        None => return Vec::new(),
        Some(Yaml::Sequence(items)) => items,
        Some(other) => {
            cx.err(
                line,
                format!(
                    "`telemetry` must be a list of records, found {}",
                    kind(other)
                ),
            );
            return Vec::new();
        }
    };
    if items.is_empty() {
        cx.err(
            line,
            "`telemetry` is empty: a scenario records at least one event",
        );
    }
    let starts = cx.lines.item_lines(line);
    let sensors = Sensors::builtin();
    let mut out = Vec::new();
    let mut last_at = 0i64;
    let mut serial_at: BTreeMap<u64, i64> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        let rl = starts.get(i).copied().unwrap_or(line);
        let end = starts.get(i + 1).copied().unwrap_or(cx.lines.len() + 1);
        let n = i + 1;
        let key_line = |cx: &Ctx, k: &str| cx.lines.key_line(rl - 1, end - 1, k).unwrap_or(rl);
        let Some(m) = it.as_mapping() else {
            cx.err(rl, format!("record {n}: must be a mapping (at, sensor, event_id/table/type/log, fields), found {}", kind(it)));
            continue;
        };
        let before = cx.diags.len();
        for (k, _) in m {
            let key = yaml_text(k);
            if !RECORD_KEYS.contains(&key.as_str()) {
                let l = key_line(cx, &key);
                cx.err_help(
                    l,
                    format!("record {n}: unknown key `{key}`"),
                    format!("record keys are: {}", RECORD_KEYS.join(", ")),
                );
            }
        }
        // Time offset.
        let at_us = match m.get("at") {
            Some(Yaml::Number(x)) => match x.as_f64() {
                Some(f) if (0.0..1e9).contains(&f) => (f * 1e6).round() as i64,
                _ => {
                    let l = key_line(cx, "at");
                    cx.err(
                        l,
                        format!("record {n}: `at` must be seconds after `start` (>= 0), found {x}"),
                    );
                    last_at
                }
            },
            Some(other) => {
                let l = key_line(cx, "at");
                cx.err(
                    l,
                    format!(
                        "record {n}: `at` must be a number of seconds, found {}",
                        kind(other)
                    ),
                );
                last_at
            }
            None => {
                cx.err(
                    rl,
                    format!("record {n}: missing `at` (seconds after `start`)"),
                );
                last_at
            }
        };
        if at_us < last_at {
            let l = key_line(cx, "at");
            cx.err_help(
                l,
                format!(
                    "record {n}: `at` {} goes back in time (the record before is at {})",
                    at_us as f64 / 1e6,
                    last_at as f64 / 1e6
                ),
                "records are listed in time order",
            );
        }
        last_at = last_at.max(at_us);
        // Sensor and kind.
        let sensor_name = m.get("sensor").map(yaml_text).unwrap_or_default();
        let Some(sensor) = sensors.get(&sensor_name) else {
            let l = key_line(cx, "sensor");
            cx.err_help(
                l,
                if sensor_name.is_empty() {
                    format!("record {n}: missing `sensor`")
                } else {
                    format!("record {n}: unknown sensor `{sensor_name}`")
                },
                format!("sensors: {}", sensors.names().join(", ")),
            );
            continue;
        };
        if (sensor_name == "sysmon_linux" || sensor_name == "auditd") && host.os == "windows"
            || sensor.kind == SensorKind::Windows
                && sensor_name != "sysmon_linux"
                && host.os == "linux"
        {
            let l = key_line(cx, "sensor");
            cx.err(
                l,
                format!(
                    "record {n}: sensor `{sensor_name}` does not run on a {} host",
                    host.os
                ),
            );
        }
        let kk = kind_key(sensor.kind);
        for other in ["event_id", "table", "type", "log"] {
            if other != kk && m.get(other).is_some() {
                let l = key_line(cx, other);
                cx.err(l, format!("record {n}: `{other}` does not apply to sensor `{sensor_name}` (it uses `{kk}`)"));
            }
        }
        let kind_value = m.get(kk).map(yaml_text).unwrap_or_default();
        if kind_value.is_empty() {
            cx.err(
                rl,
                format!("record {n}: sensor `{sensor_name}` needs `{kk}`"),
            );
            continue;
        }
        let Some(schema) = sensor.record(&kind_value) else {
            let l = key_line(cx, kk);
            let known: Vec<&str> = sensor.records.keys().map(String::as_str).collect();
            cx.err_help(
                l,
                format!("record {n}: sensor `{sensor_name}` has no {kk} `{kind_value}`"),
                format!("known: {}", known.join(", ")),
            );
            continue;
        };
        // Serial (auditd).
        let serial = match (sensor.kind, m.get("serial")) {
            (SensorKind::Auditd, Some(Yaml::Number(x))) if x.as_u64().is_some() => {
                let s = x.as_u64().unwrap_or(0);
                if let Some(&prev) = serial_at.get(&s) {
                    if prev != at_us {
                        let l = key_line(cx, "serial");
                        cx.err(l, format!("record {n}: serial {s} is also used at another time; the records of one audit event share `at`"));
                    }
                }
                serial_at.insert(s, at_us);
                Some(s)
            }
            (SensorKind::Auditd, _) => {
                let l = key_line(cx, "serial");
                cx.err(l, format!("record {n}: auditd records need `serial` (a number shared by the records of one audit event)"));
                None
            }
            (_, Some(_)) => {
                let l = key_line(cx, "serial");
                cx.err(
                    l,
                    format!("record {n}: `serial` applies to auditd records only"),
                );
                None
            }
            (_, None) => None,
        };
        // Fields.
        let mut fields = Vec::new();
        match m.get("fields") {
            Some(Yaml::Mapping(fm)) => {
                for (k, v) in fm {
                    let name = yaml_text(k);
                    let fl = key_line(cx, &name);
                    match schema.field(&name) {
                        None => cx.err_help(
                            fl,
                            format!("record {n}: `{name}` is not a field {sensor_name} writes for {kk} {kind_value}"),
                            format!(
                                "fields: {}",
                                schema.fields.iter().filter(|f| !f.derived).map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        ),
                        Some(f) if f.derived => cx.err(
                            fl,
                            format!("record {n}: `{name}` is derived by the renderer (from `at`, `host` or the sensor); remove it"),
                        ),
                        Some(_) => {}
                    }
                    match to_value(v) {
                        Some(val) => {
                            if let Some(t) = val.as_text() {
                                for p in placeholders(&t) {
                                    if !args.iter().any(|a| a.name == p) {
                                        cx.err(fl, format!("record {n}: field `{name}` uses `#{{{p}}}`, which is not declared in `input_arguments`"));
                                    }
                                }
                            }
                            fields.push((name, val));
                        }
                        None => cx.err(fl, format!("record {n}: field `{name}` must be text, a number, a boolean or a list of them")),
                    }
                }
                for f in &schema.fields {
                    if f.always && !f.derived && !fields.iter().any(|(k, _)| *k == f.name) {
                        cx.err(rl, format!("record {n}: {sensor_name} {kk} {kind_value} always writes `{}`, which is missing", f.name));
                    }
                }
            }
            Some(other) => {
                let l = key_line(cx, "fields");
                cx.err(
                    l,
                    format!(
                        "record {n}: `fields` must be a mapping, found {}",
                        kind(other)
                    ),
                );
            }
            None => cx.err(rl, format!("record {n}: missing `fields`")),
        }
        let mut system = Vec::new();
        match m.get("system") {
            None => {}
            Some(Yaml::Mapping(sm)) if sensor.kind == SensorKind::Windows => {
                for (k, v) in sm {
                    let name = yaml_text(k);
                    if !render::SYSTEM_OVERRIDES.contains(&name.as_str()) {
                        let l = key_line(cx, &name);
                        cx.err(
                            l,
                            format!(
                                "record {n}: `system.{name}` cannot be overridden ({})",
                                render::SYSTEM_OVERRIDES.join(", ")
                            ),
                        );
                    } else if let Some(val) = to_value(v) {
                        system.push((name, val));
                    }
                }
            }
            Some(_) => {
                let l = key_line(cx, "system");
                cx.err(l, format!("record {n}: `system` is a mapping of System overrides, for Windows sensors only"));
            }
        }
        let note = m.get("note").map(yaml_text);
        if cx.diags.len() > before {
            continue;
        }
        out.push(Record {
            at_us,
            sensor: sensor_name,
            kind: kind_value,
            serial,
            fields,
            system,
            note,
            line: rl,
        });
    }
    out
}

/// A YAML field value as an event value (scalars and lists of scalars).
fn to_value(v: &Yaml) -> Option<Value> {
    Some(match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        Yaml::String(s) => Value::Str(s.clone()),
        Yaml::Sequence(items) => {
            Value::List(items.iter().map(to_value).collect::<Option<Vec<_>>>()?)
        }
        Yaml::Mapping(_) | Yaml::Tagged(_) => return None,
    })
}

impl Scenario {
    /// The effective arguments: defaults overridden by `overrides` (`name=value`). Unknown names are
    /// errors (a typo would otherwise silently change nothing).
    pub fn arguments_with(
        &self,
        overrides: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = self
            .arguments
            .iter()
            .map(|a| (a.name.clone(), a.default.clone()))
            .collect();
        for (k, v) in overrides {
            match out.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = v.clone(),
                None => {
                    return Err(format!(
                        "scenario {} has no argument `{k}` (arguments: {})",
                        self.id,
                        self.arguments
                            .iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Replaces every `#{name}` of `args` in `text` (plain replacement, as Invoke-AtomicRedTeam does).
pub fn substitute(text: &str, args: &[(String, String)]) -> String {
    if !text.contains("#{") {
        return text.to_string();
    }
    let mut out = text.to_string();
    for (k, v) in args {
        out = out.replace(&format!("#{{{k}}}"), v);
    }
    out
}

/// [`substitute`] inside a value (text and lists of text).
pub fn substitute_value(v: &Value, args: &[(String, String)]) -> Value {
    match v {
        Value::Str(s) => Value::Str(substitute(s, args)),
        Value::List(items) => {
            Value::List(items.iter().map(|i| substitute_value(i, args)).collect())
        }
        other => other.clone(),
    }
}
