//! The scenario commands of the command line: `list`, `show`, `replay`, and the scenario and
//! expectation parts of `lint` and `run`. Same contract as [`crate::cli`]: this module prints and picks
//! exit codes; the stages do the work.

use crate::cli::{EXIT_INPUT, EXIT_OK};
use crate::diag::{Diagnostic, Severity};
use crate::scenario::render::{self, Native};
use crate::scenario::{self, Scenario};
use crate::telemetry::Event;
use clap::ValueEnum;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFormat {
    /// Every record, read back into events, one flat JSON object per line.
    Jsonl,
    /// Windows records as event XML (as an EVTX record renders).
    Xml,
    /// Windows records in the evtx crate's JSON shape, one per line.
    EvtxJson,
    /// auditd records as audit.log lines.
    Auditd,
    /// Defender XDR rows (JSON Lines with `Table`).
    Mde,
    /// Zeek log rows (JSON Lines with `_path`).
    Zeek,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Scenario folder.
    #[arg(long, value_name = "DIR", default_value = "atomics")]
    pub atomics: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Scenario id (T1048.002-1), GUID or file.
    pub scenario: String,
    #[arg(long, value_name = "DIR", default_value = "atomics")]
    pub atomics: PathBuf,
    /// Override an input argument (name=value); may be repeated.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Scenario ids, GUIDs or files.
    #[arg(required = true)]
    pub scenarios: Vec<String>,
    #[arg(long, value_name = "DIR", default_value = "atomics")]
    pub atomics: PathBuf,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ReplayFormat,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Override an input argument (name=value); may be repeated. Changes the command and the
    /// telemetry alike.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
}

fn print_diags(ds: &[Diagnostic]) -> bool {
    let mut error = false;
    for d in ds {
        error |= d.severity == Severity::Error;
        eprintln!("{d}");
    }
    error
}

/// Loads the scenarios of a folder, printing the diagnostics; `None` if the folder cannot be used.
fn load(atomics: &Path) -> (Vec<Scenario>, bool) {
    let loaded = scenario::load(&[atomics.to_path_buf()]);
    let error = print_diags(&loaded.diagnostics);
    (loaded.scenarios, error)
}

fn find<'a>(all: &'a [Scenario], key: &str) -> Option<&'a Scenario> {
    all.iter().find(|s| {
        s.id.eq_ignore_ascii_case(key)
            || s.guid.eq_ignore_ascii_case(key)
            || s.path == Path::new(key)
    })
}

fn parse_overrides(args: &[String]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("--arg takes NAME=VALUE, found `{a}`")),
        })
        .collect()
}

pub fn list(a: &ListArgs) -> u8 {
    let (all, error) = load(&a.atomics);
    match a.format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = all
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id,
                        "guid": s.guid,
                        "name": s.name,
                        "technique": s.technique,
                        "tactic": s.tactic,
                        "platforms": s.platforms,
                        "executor": s.executor.name,
                        "records": s.telemetry.len(),
                        "sensors": sensors_of(s),
                        "path": s.path.display().to_string(),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
        }
        ListFormat::Table => {
            let rows: Vec<[String; 5]> = all
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.platforms.join(","),
                        s.telemetry.len().to_string(),
                        sensors_of(s).join(","),
                        s.name.clone(),
                    ]
                })
                .collect();
            print_table(
                &["ID", "PLATFORMS", "RECORDS", "SENSORS", "NAME"],
                &rows,
                &|_, c| c.to_string(),
            );
        }
    }
    if error {
        EXIT_INPUT
    } else {
        EXIT_OK
    }
}

fn sensors_of(s: &Scenario) -> Vec<String> {
    let mut v: Vec<String> = s.telemetry.iter().map(|r| r.sensor.clone()).collect();
    v.sort();
    v.dedup();
    v
}

fn print_table<const N: usize>(
    header: &[&str; N],
    rows: &[[String; N]],
    style: &dyn Fn(usize, &str) -> String,
) {
    let mut width = header.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    // Pad the plain text, then style it, so escape codes never count towards a width.
    let line = |cells: Vec<&str>, styled: bool| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let text = if styled { style(i, c) } else { c.to_string() };
            s.push_str(&text);
            if i + 1 < N {
                let pad = width[i] + 2 - c.chars().count();
                s.push_str(&" ".repeat(pad));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec(), false);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), true);
    }
}

/// The fields that say most about a record, for the timeline.
const SALIENT: &[&str] = &[
    "Image",
    "CommandLine",
    "ScriptBlockText",
    "TargetFilename",
    "QueryName",
    "DestinationIp",
    "DestinationHostname",
    "DestinationPort",
    "NewProcessName",
    "TaskName",
    "FileName",
    "ProcessCommandLine",
    "RemoteIP",
    "RemotePort",
    "RemoteUrl",
    "FolderPath",
    "exe",
    "a0",
    "a1",
    "a2",
    "a3",
    "name",
    "query",
    "id.resp_h",
    "id.resp_p",
    "server_name",
];

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

pub fn show(a: &ShowArgs) -> u8 {
    let (all, _) = load(&a.atomics);
    let Some(s) = find(&all, &a.scenario) else {
        eprintln!(
            "error: no scenario `{}` in {} (purplecov list shows them)",
            a.scenario,
            a.atomics.display()
        );
        return EXIT_INPUT;
    };
    let args = match parse_overrides(&a.args).and_then(|o| s.arguments_with(&o)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INPUT;
        }
    };
    println!("{}  {}", s.id, s.name);
    println!("guid:       {}", s.guid);
    println!("technique:  {} ({})", s.technique, s.tactic);
    println!("platforms:  {}", s.platforms.join(", "));
    println!(
        "source:     {} test {} ({})",
        s.source.document, s.source.test, s.source.title
    );
    for r in &s.related_art {
        println!("related:    ART {} {} {}", r.test, r.guid, r.note);
    }
    println!("host:       {} ({}, {})", s.host.fqdn, s.host.os, s.host.ip);
    println!("file:       {}", s.path.display());
    if !s.description.trim().is_empty() {
        println!("\n{}", s.description.trim_end());
    }
    println!("\ninputs:");
    for arg in &s.arguments {
        let value = args
            .iter()
            .find(|(k, _)| *k == arg.name)
            .map_or("", |(_, v)| v.as_str());
        let changed = if value != arg.default {
            " (overridden)"
        } else {
            ""
        };
        println!(
            "  {} ({}) = {}{}  -- {}",
            arg.name, arg.kind, value, changed, arg.description
        );
    }
    println!(
        "\ncommand ({}{}):",
        s.executor.name,
        if s.executor.elevation_required {
            ", elevated"
        } else {
            ""
        }
    );
    for l in scenario::substitute(&s.executor.command, &args).lines() {
        println!("  {l}");
    }
    if let Some(c) = &s.executor.cleanup_command {
        println!("cleanup:");
        for l in scenario::substitute(c, &args).lines() {
            println!("  {l}");
        }
    }
    println!(
        "\ntelemetry ({} records, start {}):",
        s.telemetry.len(),
        s.start
    );
    for r in &s.telemetry {
        let mut parts = Vec::new();
        for k in SALIENT {
            if let Some((_, v)) = r.fields.iter().find(|(n, _)| n == k) {
                let v = scenario::substitute_value(v, &args);
                parts.push(format!("{k}={}", one_line(&v.to_string(), 90)));
            }
            if parts.len() == 2 {
                break;
            }
        }
        println!(
            "  +{:>8.3}s  {:<13} {:<20} {}",
            r.at_us as f64 / 1e6,
            r.sensor,
            r.kind,
            parts.join("  ")
        );
    }
    EXIT_OK
}

pub fn replay(a: &ReplayArgs) -> u8 {
    let (all, _) = load(&a.atomics);
    let overrides = match parse_overrides(&a.args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INPUT;
        }
    };
    let mut chosen = Vec::new();
    for key in &a.scenarios {
        match find(&all, key) {
            Some(s) => chosen.push(s),
            None => {
                eprintln!(
                    "error: no scenario `{key}` in {} (purplecov list shows them)",
                    a.atomics.display()
                );
                return EXIT_INPUT;
            }
        }
    }
    let mut out = String::new();
    let mut failed = false;
    let mut other = 0usize;
    for s in chosen {
        // Overrides apply to every scenario that declares the argument.
        let own: Vec<(String, String)> = overrides
            .iter()
            .filter(|(k, _)| s.arguments.iter().any(|x| x.name == *k))
            .cloned()
            .collect();
        if own.len() < overrides.len() && a.scenarios.len() == 1 {
            if let Err(e) = s.arguments_with(&overrides) {
                eprintln!("error: {e}");
                return EXIT_INPUT;
            }
        }
        let args = match s.arguments_with(&own) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INPUT;
            }
        };
        if a.format == ReplayFormat::Jsonl {
            let (events, diags) = render::events(s, &args);
            failed |= print_diags(&diags);
            for ev in &events {
                out.push_str(&flat_json(ev).to_string());
                out.push('\n');
            }
            continue;
        }
        for n in render::render(s, &args) {
            let line = match (&n, a.format) {
                (Native::Win { .. }, ReplayFormat::Xml)
                | (Native::Audit(_), ReplayFormat::Auditd)
                | (Native::Mde(_), ReplayFormat::Mde)
                | (Native::Zeek(_), ReplayFormat::Zeek) => n.text(),
                (Native::Win { record, .. }, ReplayFormat::EvtxJson) => {
                    crate::telemetry::xml::render_evtx_json(record).to_string()
                }
                _ => {
                    other += 1;
                    continue;
                }
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    if other > 0 {
        eprintln!(
            "purplecov replay: {other} records of other sensors are not written in this format (--format jsonl writes every record)"
        );
    }
    let res = match &a.out {
        Some(p) => std::fs::write(p, &out).map_err(|e| format!("{}: {e}", p.display())),
        None => std::io::stdout()
            .lock()
            .write_all(out.as_bytes())
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = res {
        eprintln!("error: cannot write: {e}");
        return EXIT_INPUT;
    }
    if failed {
        EXIT_INPUT
    } else {
        EXIT_OK
    }
}

/// An event as one flat JSON object (DESIGN: `Channel`, `EventID`, `Computer`, the timestamp and
/// the event's own fields at top level, as read).
pub fn flat_json(ev: &Event) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    if let Some(s) = &ev.sensor {
        m.insert("sensor".into(), s.clone().into());
    }
    for (k, v) in &ev.fields {
        m.insert(k.clone(), v.to_json());
    }
    serde_json::Value::Object(m)
}

/// Lints scenario files and expectation files; returns whether anything was wrong.
pub fn lint_scenarios(scenario_files: &[PathBuf], expectation_files: &[PathBuf]) -> (usize, bool) {
    let mut error = false;
    let mut n = 0;
    if !scenario_files.is_empty() {
        let loaded = scenario::load(scenario_files);
        error |= print_diags(&loaded.diagnostics);
        n += loaded.scenarios.len();
    }
    for f in expectation_files {
        match std::fs::read_to_string(f) {
            Ok(t) => {
                let (_, d) = crate::expect::parse(f, &t);
                error |= print_diags(&d);
                n += 1;
            }
            Err(e) => {
                eprintln!("{}: error: cannot read the file: {e}", f.display());
                error = true;
            }
        }
    }
    (n, error)
}

fn is_control(s: &Scenario) -> bool {
    crate::report::is_control(s)
}

/// What a YAML file holds, judged by its top-level keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YamlKind {
    Scenario,
    Expectation,
    Rule,
}

pub fn yaml_kind(path: &Path) -> YamlKind {
    let Ok(text) = std::fs::read_to_string(path) else {
        return YamlKind::Rule;
    };
    let top = |k: &str| {
        text.lines()
            .any(|l| l.strip_prefix(k).is_some_and(|r| r.starts_with(':')))
    };
    if top("telemetry") && top("executor") {
        YamlKind::Scenario
    } else if top("signals") && top("scenario") {
        YamlKind::Expectation
    } else {
        YamlKind::Rule
    }
}

/// Replays every scenario (or those chosen), checks its expected signals, evaluates `set` on its
/// events and judges the result against the expectations. With `strict_rules` (the default rule
/// folder), an expectation naming a rule that is not loaded is an error; without (the user chose
/// the rules), it is not judged. Returns the report and whether any input was unusable
/// (diagnostics printed).
pub fn run_scenarios(
    set: &crate::sigma::RuleSet,
    atomics: &Path,
    expected: &Path,
    only: &[String],
    roots: &[PathBuf],
    strict_rules: bool,
) -> (Option<crate::report::Report>, bool) {
    use crate::report::ScenarioRun;
    if !atomics.exists() {
        println!("no scenario folder {}: no scenarios run", atomics.display());
        return (None, false);
    }
    let (all, mut failed) = load(atomics);
    let (expectations, diags) = if expected.exists() {
        crate::expect::load_dir(expected)
    } else {
        (Vec::new(), Vec::new())
    };
    failed |= print_diags(&diags);
    let mut expectations = expectations;
    if !strict_rules {
        // `--detections` chose the rules: expectations about rules it did not load are not judged.
        let mut skipped = 0usize;
        for e in &mut expectations {
            let before = e.detections.len();
            e.detections.retain(|d| set.position(&d.rule).is_some());
            skipped += before - e.detections.len();
        }
        if skipped > 0 {
            eprintln!(
                "purplecov run: {skipped} expectations name rules --detections did not load; they are not judged"
            );
        }
    }
    for key in only {
        if find(&all, key).is_none() {
            eprintln!("error: no scenario `{key}` in {}", atomics.display());
            failed = true;
        }
    }
    let mut runs = Vec::new();
    let mut inputs: Vec<PathBuf> = Vec::new();
    for s in &all {
        if !only.is_empty()
            && !only
                .iter()
                .any(|k| find(std::slice::from_ref(s), k).is_some())
        {
            continue;
        }
        inputs.push(s.path.clone());
        let args = s.arguments_with(&[]).unwrap_or_default();
        let (events, diags) = render::events(s, &args);
        failed |= print_diags(&diags);
        let mut errors: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        let expectation = expectations.iter().find(|e| e.scenario == s.id);
        let signals = match expectation {
            Some(e) => {
                inputs.push(e.path.clone());
                let (res, d) = e.check(&events, &args);
                failed |= print_diags(&d);
                errors.extend(d.iter().map(|d| d.to_string()));
                for r in &e.detections {
                    if set.position(&r.rule).is_none() {
                        eprintln!(
                            "{}:{}: error: rule `{}` is not among the detections loaded",
                            e.path.display(),
                            r.line,
                            r.rule
                        );
                        failed = true;
                    }
                }
                res
            }
            None => {
                eprintln!(
                    "{}:1: error: scenario `{}` has no expectations: expected {}",
                    s.path.display(),
                    s.id,
                    expected.join(format!("{}.yaml", s.id)).display()
                );
                failed = true;
                Vec::new()
            }
        };
        let single = set.evaluate(&events);
        let corr = set.correlate_events(&events, &single);
        failed |= print_diags(&corr.diagnostics);
        // What each rule reports: its own hits (not for a rule only correlations use) and the
        // events of each correlation hit.
        let mut hits: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for h in single.iter().filter(|h| set.reports(h.rule)) {
            hits.entry(h.rule).or_default().push(h.event);
        }
        let mut groups: std::collections::BTreeMap<usize, Vec<crate::report::GroupHit>> =
            Default::default();
        for h in &corr.hits {
            hits.entry(h.rule).or_default().extend(&h.events);
            groups
                .entry(h.rule)
                .or_default()
                .push(crate::report::GroupHit {
                    group: h.group.iter().cloned().collect(),
                    events: h.events.clone(),
                });
        }
        for v in hits.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        let mut explanations = std::collections::BTreeMap::new();
        for d in expectation.iter().flat_map(|e| e.detections.iter()) {
            let Some(i) = set.position(&d.rule) else {
                continue;
            };
            // Why an expected-fire rule missed, and why a recorded gap is one (attack scenarios).
            let gap = d.expect == crate::expect::Expect::Silent && !is_control(s);
            if hits.contains_key(&i) || !(d.expect == crate::expect::Expect::Fire || gap) {
                continue;
            }
            let candidates: Vec<usize> = signals
                .iter()
                .filter(|x| Some(&x.name) == d.signal.as_ref())
                .flat_map(|x| x.events.iter().copied())
                .collect();
            explanations.insert(i, set.explain(i, &events, &candidates, &single));
        }
        runs.push(ScenarioRun {
            scenario: s,
            expectation,
            events: events.len(),
            signals,
            hits,
            errors,
            explanations,
            groups,
        });
    }
    let report = crate::report::build(set, &runs, &inputs, roots);
    (Some(report), failed)
}

/// Whether terminal output gets colour: standard output is a terminal and `NO_COLOR` is unset.
pub fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A state's colour on a terminal: good green, gaps yellow, failures red, not run dim.
fn paint(state: &str, colour: bool) -> String {
    if !colour {
        return state.to_string();
    }
    let code = match state.split_whitespace().next().unwrap_or("") {
        "detected" | "pass" => "32",
        "partial" | "logged_only" => "33",
        "missed" | "unexpected" | "error" => "31",
        "skipped" | "unsupported" | "unrecorded" => "2",
        _ => return state.to_string(),
    };
    format!("\x1b[{code}m{state}\x1b[0m")
}

/// The run's terminal report (plain when `colour` is false): per scenario its outcome, signals
/// and rules fired; what failed, with the nearest miss; per rule where it fires and its
/// false-positive exposure; coverage per technique, overall and per rule set.
pub fn print_run_tables(r: &crate::report::Report, colour: bool) {
    let rows: Vec<[String; 6]> = r
        .scenarios
        .iter()
        .map(|s| {
            let found = s.signals.iter().filter(|x| x.found).count();
            let missing: Vec<&str> = s
                .signals
                .iter()
                .filter(|x| !x.found)
                .map(|x| x.name.as_str())
                .collect();
            let mut signals = format!("{found}/{}", s.signals.len());
            if !missing.is_empty() {
                signals.push_str(&format!(" (missing: {})", missing.join(", ")));
            }
            let mut fired: Vec<&str> = s
                .rules
                .iter()
                .filter(|x| x.fired)
                .map(|x| x.title.as_str())
                .collect();
            fired.sort_unstable();
            fired.dedup();
            [
                format!("{}{}", s.id, if s.control { " (control)" } else { "" }),
                json_name(&s.outcome),
                json_name(&s.category),
                s.events.to_string(),
                signals,
                if fired.is_empty() {
                    "-".to_string()
                } else {
                    fired.join("; ")
                },
            ]
        })
        .collect();
    print_table(
        &[
            "SCENARIO",
            "OUTCOME",
            "CATEGORY",
            "EVENTS",
            "SIGNALS",
            "RULES FIRED",
        ],
        &rows,
        &|col, cell| {
            if col == 1 {
                paint(cell, colour)
            } else {
                cell.to_string()
            }
        },
    );

    let mut failures: Vec<String> = Vec::new();
    for s in &r.scenarios {
        for e in &s.errors {
            failures.push(format!("{}: {}: {e}", s.id, paint("error", colour)));
        }
        for x in &s.rules {
            use crate::report::Verdict;
            if !matches!(
                x.verdict,
                Verdict::Missed | Verdict::Unexpected | Verdict::Error
            ) {
                continue;
            }
            let title = if x.title.is_empty() {
                &x.rule
            } else {
                &x.title
            };
            let what = match (x.expected, x.fired) {
                (None, _) => "fired on a control; not a recorded known false positive".to_string(),
                (Some(e), fired) => format!(
                    "expected {e}, {}",
                    if fired { "fired" } else { "stayed silent" }
                ),
            };
            let mut line = format!(
                "{}: {}: {title} ({what})",
                s.id,
                paint(&json_name(&x.verdict), colour),
            );
            if let Some(e) = &x.explanation {
                line.push_str(&format!("\n    nearest miss: {}", e.summary));
            }
            failures.push(line);
        }
    }
    println!();
    if failures.is_empty() {
        println!("Every expectation holds.");
    } else {
        println!("FAILURES ({})", failures.len());
        for f in failures {
            println!("  {f}");
        }
    }

    println!();
    let rules: Vec<[String; 4]> = r
        .rules
        .iter()
        .map(|x| {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(", ")
                }
            };
            [
                x.set.clone(),
                x.title.clone(),
                if x.untested {
                    "untested".to_string()
                } else {
                    list(&x.fired_on)
                },
                list(&x.false_positives),
            ]
        })
        .collect();
    print_table(
        &["SET", "RULE", "FIRES ON", "FALSE POSITIVES (CONTROLS)"],
        &rules,
        &|_, c| c.to_string(),
    );

    for x in r.rules.iter().filter(|x| !x.source_gaps.is_empty()) {
        println!("  source defect: {}: {}", x.title, x.source_gaps.join(" "));
    }

    println!();
    let mut cov: Vec<[String; 4]> = Vec::new();
    let pct = |t: &crate::report::TechniqueCoverage| {
        format!(
            "{}/{} ({:.0}%)",
            t.detected,
            t.scenarios,
            t.coverage * 100.0
        )
    };
    let controls_fired = r
        .scenarios
        .iter()
        .filter(|s| s.control && s.rules.iter().any(|x| x.fired))
        .count();
    for t in &r.summary.techniques {
        cov.push([
            "all rules".into(),
            t.technique.clone(),
            pct(t),
            format!("{controls_fired}/{}", r.summary.controls),
        ]);
    }
    for set in &r.summary.sets {
        for t in &set.techniques {
            cov.push([
                set.set.clone(),
                t.technique.clone(),
                pct(t),
                format!("{}/{}", set.controls_fired.len(), r.summary.controls),
            ]);
        }
    }
    print_table(
        &["RULES", "TECHNIQUE", "DETECTED", "CONTROLS FIRED ON"],
        &cov,
        &|_, c| c.to_string(),
    );
}

/// A serde enum's snake_case name.
fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|x| x.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::paint;

    #[test]
    fn states_are_coloured_only_when_asked() {
        assert_eq!(paint("missed", false), "missed");
        assert_eq!(paint("missed", true), "\x1b[31mmissed\x1b[0m");
        assert_eq!(paint("detected", true), "\x1b[32mdetected\x1b[0m");
        assert_eq!(paint("logged_only", true), "\x1b[33mlogged_only\x1b[0m");
        assert_eq!(paint("skipped", true), "\x1b[2mskipped\x1b[0m");
        // Anything else is left alone.
        assert_eq!(paint("T1048.002-1", true), "T1048.002-1");
    }
}
