//! Command line: argv in; stdout, stderr and the exit code out.
//!
//! Input: the arguments and the working directory. Output: what each command prints and the exit code
//! (0 ok, 1 gate failed, 2 unusable input or usage error). This module parses flags, calls the stages
//! in order and prints; it holds no matching, diffing or formatting logic of its own beyond laying out
//! a table, and it is the only place that turns problems into exit codes.

use crate::diag::{Diagnostic, Severity};
use crate::sigma::correlation::CorrelationState;
use crate::sigma::{CorrelationHit, Hit, Options, Placeholders, RuleKind, RuleSet, RuleStatus};
use crate::telemetry::read;
use clap::{Parser, Subcommand, ValueEnum};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code: everything ran and nothing was wrong.
pub const EXIT_OK: u8 = 0;
/// Exit code: the coverage gate failed.
pub const EXIT_GATE: u8 = 1;
/// Exit code: unusable input or a usage error (a diagnostic says where).
pub const EXIT_INPUT: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "purplecov",
    version,
    about = "Replays atomic attack scenarios as sensor telemetry, evaluates Sigma detections on it and reports coverage"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate Sigma rules on recorded telemetry (JSON, JSONL, evtx-JSON, .evtx).
    Eval(EvalArgs),
    /// Check rule, scenario and expectation files and report every problem with file and line.
    Lint(LintArgs),
    /// Run the coverage job (scenarios x detections) with the repository's defaults.
    Run(RunArgs),
    /// List the scenarios.
    List(crate::cli_scenarios::ListArgs),
    /// Show one scenario: summary, inputs, command and telemetry timeline.
    Show(crate::cli_scenarios::ShowArgs),
    /// Render scenarios as native sensor telemetry (nothing is executed).
    Replay(crate::cli_scenarios::ReplayArgs),
    /// Compare two JSON reports: what changed, and exit 1 if the new one regresses.
    Diff(DiffArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalFormat {
    Table,
    Jsonl,
}

#[derive(clap::Args, Debug)]
pub struct EngineArgs {
    /// YAML file with values for `|expand` placeholders (`name: [value, ...]`).
    #[arg(long, value_name = "FILE")]
    pub placeholders: Option<PathBuf>,
    /// Extra logsource mapping file (format: docs/logsources.md); may be repeated.
    #[arg(long = "mapping", value_name = "FILE")]
    pub mappings: Vec<PathBuf>,
    /// Let every rule see every event, ignoring logsource routing.
    #[arg(long)]
    pub no_routing: bool,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Rule files or folders; may be repeated.
    #[arg(long = "rules", value_name = "PATH", required = true, num_args = 1..)]
    pub rules: Vec<PathBuf>,
    /// Telemetry files; may be repeated. Events are numbered across inputs in the order given.
    #[arg(long = "input", value_name = "FILE", required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: EvalFormat,
    /// Worker threads (default: all cores). Output is the same whatever the count.
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Rule, scenario or expectation files or folders (default: detections/, atomics/, expected/).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Detection rule files or folders (default: detections/).
    #[arg(long = "detections", value_name = "PATH")]
    pub detections: Vec<PathBuf>,
    /// Recorded telemetry to evaluate the detections on.
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Scenario folder.
    #[arg(long, value_name = "DIR", default_value = "atomics")]
    pub atomics: PathBuf,
    /// Expectations folder.
    #[arg(long, value_name = "DIR", default_value = "expected")]
    pub expected: PathBuf,
    /// Run only these scenarios (id or GUID); may be repeated.
    #[arg(long = "scenario", value_name = "ID")]
    pub scenarios: Vec<String>,
    /// Report formats; may be repeated. `table` prints to the terminal; the others are written to
    /// `--out` (or, without it, printed).
    #[arg(long = "format", value_enum, default_value = "table")]
    pub formats: Vec<RunFormat>,
    /// Folder the reports are written to (`report.json`, `report.md`, `junit.xml`).
    #[arg(long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A previous JSON report: exit 1 if this run regresses against it.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Outcomes or verdicts that fail the run (exit 1), comma-separated or repeated
    /// (default: missed,unexpected,error, or `[gate] fail_on` of the config file).
    #[arg(long = "fail-on", value_name = "STATES", value_delimiter = ',')]
    pub fail_on: Vec<String>,
    /// Gate policy file (`[gate] fail_on = [...]`, `baseline = "..."`, a relative baseline read
    /// from the policy file's folder; default: ./purplecov.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The baseline JSON report.
    pub old: PathBuf,
    /// The new JSON report.
    pub new: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFormat {
    Table,
    Json,
    Markdown,
    Junit,
}

/// Parses argv and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Eval(a) => eval(&a),
        Command::Lint(a) => lint(&a),
        Command::Run(a) => run(&a),
        Command::List(a) => crate::cli_scenarios::list(&a),
        Command::Show(a) => crate::cli_scenarios::show(&a),
        Command::Replay(a) => crate::cli_scenarios::replay(&a),
        Command::Diff(a) => diff_reports(&a),
    };
    ExitCode::from(code)
}

fn print_diag(d: &Diagnostic) {
    eprintln!("{d}");
}

fn options(e: &EngineArgs) -> Result<Options, Diagnostic> {
    let mut opts = Options {
        mappings: e.mappings.clone(),
        routing: !e.no_routing,
        ..Options::default()
    };
    if let Some(p) = &e.placeholders {
        opts.placeholders = load_placeholders(p)?;
    }
    Ok(opts)
}

/// Reads a placeholder file: a YAML mapping of name to a value or a list of values.
pub fn load_placeholders(p: &Path) -> Result<Placeholders, Diagnostic> {
    let loc = crate::diag::Location::file(p);
    let text = std::fs::read_to_string(p)
        .map_err(|e| Diagnostic::error(loc.clone(), format!("cannot read placeholders: {e}")))?;
    let v: serde_norway::Value = serde_norway::from_str(&text)
        .map_err(|e| Diagnostic::error(loc.clone(), format!("invalid YAML: {e}")))?;
    let m = v.as_mapping().ok_or_else(|| {
        Diagnostic::error(
            loc.clone(),
            "expected a mapping of placeholder name to values",
        )
    })?;
    let text_of = |v: &serde_norway::Value| match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut out = Placeholders::new();
    for (k, v) in m {
        let Some(name) = text_of(k) else { continue };
        let name = name.trim_matches('%').to_string();
        let values: Vec<String> = match v {
            serde_norway::Value::Sequence(s) => s.iter().filter_map(text_of).collect(),
            other => text_of(other).into_iter().collect(),
        };
        out.insert(name, values);
    }
    Ok(out)
}

fn eval(a: &EvalArgs) -> u8 {
    let opts = match options(&a.engine) {
        Ok(o) => o,
        Err(d) => {
            print_diag(&d);
            return EXIT_INPUT;
        }
    };
    if let Some(n) = a.threads {
        // A global pool can only be set once; a failure means one exists already.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let set = RuleSet::load(&a.rules, &opts);
    let mut failed = false;
    let mut warnings = 0;
    for d in set.diagnostics() {
        match d.severity {
            Severity::Error => {
                failed = true;
                print_diag(d);
            }
            // File-level warnings (an empty rules folder) are shown; rule-level ones are counted.
            Severity::Warning if d.location.line == 0 => print_diag(d),
            Severity::Warning => warnings += 1,
        }
    }
    let (mut hits, n_events, read_failed, corr_state) = evaluate_inputs(&set, &a.inputs);
    failed |= read_failed;
    let corr = set.correlate(corr_state);
    for d in &corr.diagnostics {
        print_diag(d);
    }
    // Rules only correlations use (`generate: false`) do not report their own hits.
    hits.retain(|h| set.reports(h.rule));
    let rules = set.rules();
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let res = match a.format {
        EvalFormat::Jsonl => {
            // Everything after the event number depends on the rule only: written once per rule.
            let mut tails: Vec<Option<String>> = vec![None; rules.len()];
            hits.iter()
                .try_for_each(|h| {
                    let tail = tails[h.rule].get_or_insert_with(|| hit_tail(&rules[h.rule]));
                    writeln!(w, "{{\"event\":{},{tail}}}", h.event)
                })
                .and_then(|_| {
                    corr.hits.iter().try_for_each(|h| {
                        let r = &rules[h.rule];
                        let obj = serde_json::json!({
                            "event": h.events,
                            "rule_id": r.meta.id,
                            "rule_title": r.meta.title,
                            "level": r.meta.level,
                            "author": r.meta.author,
                            "rule_path": r.meta.path.display().to_string(),
                            "group": group_json(h),
                        });
                        writeln!(w, "{obj}")
                    })
                })
        }
        EvalFormat::Table => write_hit_table(&mut w, &set, &hits, &corr.hits, n_events),
    };
    if res.and_then(|_| w.flush()).is_err() {
        return EXIT_INPUT;
    }
    let ready = rules
        .iter()
        .filter(|r| r.kind == RuleKind::Detection && r.status == RuleStatus::Ready)
        .count();
    let unsupported = rules
        .iter()
        .filter(|r| matches!(r.status, RuleStatus::Unsupported { .. }))
        .count();
    let invalid = rules
        .iter()
        .filter(|r| r.status == RuleStatus::Invalid)
        .count();
    eprintln!(
        "purplecov eval: {} events, {} rules ready, {} unsupported, {} invalid, {} hits{}",
        n_events,
        ready,
        unsupported,
        invalid,
        hits.len() + corr.hits.len(),
        if warnings > 0 {
            format!(", {warnings} warnings (purplecov lint shows them)")
        } else {
            String::new()
        }
    );
    if failed {
        EXIT_INPUT
    } else {
        EXIT_OK
    }
}

/// The members of a hit's JSON line after `"event"`, in the order they are written:
/// `"rule_id":..,"rule_title":..,"level":..,"author":..,"rule_path":..`.
fn hit_tail(r: &crate::sigma::RuleInfo) -> String {
    let json = |v: serde_json::Value| v.to_string();
    format!(
        "\"rule_id\":{},\"rule_title\":{},\"level\":{},\"author\":{},\"rule_path\":{}",
        json(serde_json::json!(r.meta.id)),
        json(serde_json::json!(r.meta.title)),
        json(serde_json::json!(r.meta.level)),
        json(serde_json::json!(r.meta.author)),
        json(serde_json::json!(r.meta.path.display().to_string())),
    )
}

/// Size of the parts a JSON Lines input is read and evaluated in (in parallel, memory bounded).
const PART_BYTES: usize = 1 << 20;

/// Reads every input and evaluates the rules on its events, part by part; returns the hits (event
/// numbers across all inputs in the order given), the number of events and whether a record could
/// not be read. Diagnostics are printed as they come, in input order.
fn evaluate_inputs(set: &RuleSet, inputs: &[PathBuf]) -> (Vec<Hit>, usize, bool, CorrelationState) {
    let mut hits = Vec::new();
    let mut next_event = 0usize;
    let mut failed = false;
    let mut corr = set.correlation_state();
    let mut take = |out: &read::ReadOutput, part_hits: Vec<Hit>, n: usize, st: CorrelationState| {
        corr.merge(st, next_event);
        for d in &out.diagnostics {
            if d.severity == Severity::Error {
                failed = true;
            }
            print_diag(d);
        }
        hits.extend(part_hits.into_iter().map(|h| Hit {
            event: h.event + next_event,
            rule: h.rule,
        }));
        next_event += n;
    };
    let group = rayon::current_num_threads().max(1) * 2;
    for (i, p) in inputs.iter().enumerate() {
        match read::load_path(p, i, PART_BYTES) {
            read::Loaded::Done(out) => {
                let h = set.evaluate(&out.events);
                let st = observe_part(set, &out.events, &h);
                take(&out, h, out.events.len(), st);
            }
            read::Loaded::Stream(mut parts) => loop {
                let mut batch = Vec::with_capacity(group);
                while batch.len() < group {
                    match parts.next_part() {
                        Some(p) => batch.push(p),
                        None => break,
                    }
                }
                if batch.is_empty() {
                    break;
                }
                let texts: Vec<(&str, usize, Option<&Diagnostic>)> = batch
                    .iter()
                    .map(|(t, line, d)| (t.as_str(), *line, d.as_ref()))
                    .collect();
                for (r, h, n, st) in read_and_eval(set, &texts, p, i) {
                    take(&r, h, n, st);
                }
            },
            read::Loaded::Text { text, parts } => {
                for chunk in parts.chunks(group) {
                    let texts: Vec<(&str, usize, Option<&Diagnostic>)> = chunk
                        .iter()
                        .map(|part| {
                            let t = text.get(part.start..part.end).unwrap_or("");
                            (t, part.first_line, None)
                        })
                        .collect();
                    for (r, h, n, st) in read_and_eval(set, &texts, p, i) {
                        take(&r, h, n, st);
                    }
                }
            }
        }
    }
    (hits, next_event, failed, corr)
}

/// What one part's events contribute to the correlations (event numbers within the part).
fn observe_part(
    set: &RuleSet,
    events: &[crate::telemetry::Event],
    hits: &[Hit],
) -> CorrelationState {
    let mut st = set.correlation_state();
    if set.has_correlations() {
        set.observe_hits(&mut st, events, hits);
    }
    st
}

/// A correlation hit's group key as a JSON object (a missing field is null).
fn group_json(h: &CorrelationHit) -> serde_json::Value {
    serde_json::Value::Object(
        h.group
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.clone()
                        .map_or(serde_json::Value::Null, serde_json::Value::String),
                )
            })
            .collect(),
    )
}

/// Reads parts (text, first line, a diagnostic found while loading it) in parallel and evaluates
/// their events; per part, in order: what was read (events dropped), its hits, its event count.
fn read_and_eval(
    set: &RuleSet,
    texts: &[(&str, usize, Option<&Diagnostic>)],
    path: &Path,
    input: usize,
) -> Vec<(read::ReadOutput, Vec<Hit>, usize, CorrelationState)> {
    texts
        .par_iter()
        .map_init(
            || (set.scratch(), Vec::new()),
            |(sc, out), (text, first_line, diag)| {
                let mut r = read::read_part_text(text, *first_line, path, input);
                if let Some(d) = diag {
                    r.diagnostics.insert(0, (*d).clone());
                }
                let h = eval_part(set, &r.events, sc, out);
                let st = observe_part(set, &r.events, &h);
                let n = r.events.len();
                r.events = Vec::new();
                (r, h, n, st)
            },
        )
        .collect()
}

/// Hits of one part (event numbers within the part).
fn eval_part(
    set: &RuleSet,
    events: &[crate::telemetry::Event],
    sc: &mut crate::sigma::Scratch,
    out: &mut Vec<usize>,
) -> Vec<Hit> {
    let mut h = Vec::new();
    for (j, ev) in events.iter().enumerate() {
        set.matches(ev, sc, out);
        h.extend(out.iter().map(|&rule| Hit { event: j, rule }));
    }
    h
}

fn write_hit_table(
    w: &mut impl Write,
    set: &RuleSet,
    hits: &[Hit],
    corr: &[CorrelationHit],
    n_events: usize,
) -> std::io::Result<()> {
    let rules = set.rules();
    let mut rows: Vec<[String; 5]> = hits
        .iter()
        .map(|h| {
            let r = &rules[h.rule];
            [
                h.event.to_string(),
                r.meta.level.clone().unwrap_or_default(),
                r.meta.id.clone().unwrap_or_default(),
                r.meta.title.clone(),
                r.meta.author.clone().unwrap_or_default(),
            ]
        })
        .collect();
    // A correlation hit: its events as a list, its group after the title.
    rows.extend(corr.iter().map(|h| {
        let r = &rules[h.rule];
        let events: Vec<String> = h.events.iter().map(|e| e.to_string()).collect();
        let group: Vec<String> = h
            .group
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
            .collect();
        [
            events.join(","),
            r.meta.level.clone().unwrap_or_default(),
            r.meta.id.clone().unwrap_or_default(),
            format!("{} [{}]", r.meta.title, group.join(" ")),
            r.meta.author.clone().unwrap_or_default(),
        ]
    }));
    let header = ["EVENT", "LEVEL", "RULE ID", "TITLE", "AUTHOR"];
    let mut width = header.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |w: &mut dyn Write, cells: [&str; 5]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<0$}  ", width[i]));
            }
        }
        writeln!(w, "{}", s.trim_end())
    };
    if rows.is_empty() {
        return writeln!(w, "no rule matched any of {n_events} events");
    }
    line(w, header)?;
    for r in &rows {
        line(w, [&r[0], &r[1], &r[2], &r[3], &r[4]])?;
    }
    Ok(())
}

fn lint(a: &LintArgs) -> u8 {
    let opts = match options(&a.engine) {
        Ok(o) => o,
        Err(d) => {
            print_diag(&d);
            return EXIT_INPUT;
        }
    };
    let paths = if a.paths.is_empty() {
        ["detections", "atomics", "expected"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists() || p.as_path() == Path::new("detections"))
            .collect()
    } else {
        a.paths.clone()
    };
    // Scenario and expectation files are told apart from rules by their keys.
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            crate::scenario::yaml_files(p, &mut files);
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let (mut scenario_files, mut expectation_files, mut rule_files) = (vec![], vec![], vec![]);
    for f in files {
        match crate::cli_scenarios::yaml_kind(&f) {
            crate::cli_scenarios::YamlKind::Scenario => scenario_files.push(f),
            crate::cli_scenarios::YamlKind::Expectation => expectation_files.push(f),
            crate::cli_scenarios::YamlKind::Rule => rule_files.push(f),
        }
    }
    let (n_other, other_error) =
        crate::cli_scenarios::lint_scenarios(&scenario_files, &expectation_files);
    let rule_paths = if n_other == 0 && !other_error {
        paths
    } else {
        rule_files
    };
    if rule_paths.is_empty() {
        print_scenario_summary(scenario_files.len() + expectation_files.len(), other_error);
        return if other_error { EXIT_INPUT } else { EXIT_OK };
    }
    let set = RuleSet::load(&rule_paths, &opts);
    let mut errors = 0;
    for d in set.diagnostics() {
        if d.severity == Severity::Error {
            errors += 1;
        }
        print_diag(d);
    }
    let mut unusable = 0;
    for r in set.rules() {
        match &r.status {
            RuleStatus::Ready => {}
            RuleStatus::Invalid => unusable += 1,
            RuleStatus::Unsupported { reason, location } => {
                unusable += 1;
                eprintln!(
                    "{location}: unsupported: {reason} (rule '{}')",
                    r.meta.title
                );
            }
        }
    }
    let total = set.rules().len();
    eprintln!(
        "purplecov lint: {total} documents, {} usable, {unusable} unusable, {errors} errors",
        total - unusable
    );
    if n_other > 0 || other_error {
        print_scenario_summary(scenario_files.len() + expectation_files.len(), other_error);
    }
    if unusable > 0 || errors > 0 || other_error {
        EXIT_INPUT
    } else {
        EXIT_OK
    }
}

fn print_scenario_summary(files: usize, error: bool) {
    eprintln!(
        "purplecov lint: {files} scenario and expectation files, {}",
        if error { "with errors" } else { "no errors" }
    );
}

fn run(a: &RunArgs) -> u8 {
    let detections = if a.detections.is_empty() {
        vec![PathBuf::from("detections")]
    } else {
        a.detections.clone()
    };
    let existing: Vec<PathBuf> = detections.iter().filter(|p| p.exists()).cloned().collect();
    let set = RuleSet::load(&existing, &Options::default());
    let ready = set
        .rules()
        .iter()
        .filter(|r| r.status == RuleStatus::Ready)
        .count();
    let load_error = set
        .diagnostics()
        .iter()
        .any(|d| d.severity == Severity::Error);
    let table = a.formats.contains(&RunFormat::Table);
    if table {
        println!(
            "purplecov run: {ready} detection rules ready from {}",
            detections
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (report, mut scenarios_failed) = crate::cli_scenarios::run_scenarios(
        &set,
        &a.atomics,
        &a.expected,
        &a.scenarios,
        &existing,
        a.detections.is_empty(),
    );
    if let Some(r) = &report {
        if table {
            crate::cli_scenarios::print_run_tables(r, crate::cli_scenarios::colour_wanted());
        }
        for (format, file, text) in [
            (RunFormat::Json, "report.json", r.to_json()),
            (
                RunFormat::Markdown,
                "report.md",
                crate::report::formats::markdown(r),
            ),
            (
                RunFormat::Junit,
                "junit.xml",
                crate::report::formats::junit(r),
            ),
        ] {
            if !a.formats.contains(&format) {
                continue;
            }
            let res = match &a.out {
                Some(dir) => std::fs::create_dir_all(dir)
                    .and_then(|_| std::fs::write(dir.join(file), &text))
                    .map_err(|e| format!("{}: {e}", dir.display())),
                None => std::io::stdout()
                    .lock()
                    .write_all(text.as_bytes())
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = res {
                eprintln!("error: cannot write the report: {e}");
                scenarios_failed = true;
            }
        }
    }
    let gate_failed = match &report {
        Some(r) => match gate(a, r) {
            Ok(failed) => failed,
            Err(d) => {
                print_diag(&d);
                scenarios_failed = true;
                false
            }
        },
        None => false,
    };
    if !a.inputs.is_empty() {
        let args = EvalArgs {
            rules: existing,
            inputs: a.inputs.clone(),
            format: EvalFormat::Table,
            threads: None,
            engine: EngineArgs {
                placeholders: None,
                mappings: vec![],
                no_routing: false,
            },
        };
        return eval(&args);
    }
    if load_error || scenarios_failed {
        EXIT_INPUT
    } else if gate_failed {
        EXIT_GATE
    } else {
        EXIT_OK
    }
}

/// The gate policy file: `[gate] fail_on = [...]`, `baseline = "..."`.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    gate: GateConfig,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct GateConfig {
    fail_on: Option<Vec<String>>,
    baseline: Option<PathBuf>,
}

fn load_config(a: &RunArgs) -> Result<Config, Diagnostic> {
    let path = match &a.config {
        Some(p) => p.clone(),
        None if Path::new("purplecov.toml").exists() => PathBuf::from("purplecov.toml"),
        None => return Ok(Config::default()),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Diagnostic::error(
            crate::diag::Location::file(&path),
            format!("cannot read: {e}"),
        )
    })?;
    let mut config: Config = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| {
            1 + text[..s.start.min(text.len())].matches('\n').count()
        });
        Diagnostic::error(
            crate::diag::Location::new(&path, line, 0),
            format!("invalid gate policy: {}", e.message()),
        )
    })?;
    // A relative baseline is relative to the policy file, so the policy works from any folder.
    if let (Some(b), Some(dir)) = (&mut config.gate.baseline, path.parent()) {
        if b.is_relative() {
            *b = dir.join(&*b);
        }
    }
    Ok(config)
}

/// Applies `--fail-on` and `--baseline`; prints what tripped. Ok(true) = the gate failed.
fn gate(a: &RunArgs, r: &crate::report::Report) -> Result<bool, Diagnostic> {
    use crate::report::gate;
    let config = load_config(a)?;
    let fail_on: Vec<String> = if !a.fail_on.is_empty() {
        a.fail_on.clone()
    } else if let Some(f) = config.gate.fail_on {
        f
    } else {
        gate::DEFAULT_FAIL_ON
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    for f in &fail_on {
        if !gate::STATES.contains(&f.as_str()) {
            return Err(Diagnostic::error(
                crate::diag::Location::file(a.config.clone().unwrap_or_else(|| "--fail-on".into())),
                format!("unknown state `{f}` (states: {})", gate::STATES.join(", ")),
            ));
        }
    }
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap_or_default();
    let tripped = gate::tripped(&json, &fail_on);
    let mut failed = false;
    if !tripped.is_empty() {
        failed = true;
        eprintln!(
            "purplecov gate: {} results in a fail-on state ({}):",
            tripped.len(),
            fail_on.join(", ")
        );
        for t in &tripped {
            eprintln!("  {t}");
        }
    }
    if let Some(b) = a.baseline.clone().or(config.gate.baseline) {
        let old = read_report(&b)?;
        let c = gate::compare(&old, &json);
        if !c.diff.is_empty() {
            eprintln!(
                "purplecov gate: changes against {}:\n{}",
                b.display(),
                c.diff
            );
        }
        if !c.regressions.is_empty() {
            failed = true;
            eprintln!(
                "purplecov gate: {} regressions against {}:",
                c.regressions.len(),
                b.display()
            );
            for x in &c.regressions {
                eprintln!("  {x}");
            }
        }
    }
    Ok(failed)
}

fn read_report(p: &Path) -> Result<serde_json::Value, Diagnostic> {
    let text = std::fs::read_to_string(p).map_err(|e| {
        Diagnostic::error(
            crate::diag::Location::file(p),
            format!("cannot read the report: {e}"),
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Diagnostic::error(
            crate::diag::Location::new(p, e.line(), e.column()),
            format!("not a JSON report: {e}"),
        )
    })?;
    if v["schema"] != crate::report::SCHEMA {
        return Err(Diagnostic::error(
            crate::diag::Location::file(p),
            format!(
                "not a {} report (schema {})",
                crate::report::SCHEMA,
                v["schema"]
            ),
        ));
    }
    Ok(v)
}

fn diff_reports(a: &DiffArgs) -> u8 {
    let (old, new) = match (read_report(&a.old), read_report(&a.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(d), _) | (_, Err(d)) => {
            print_diag(&d);
            return EXIT_INPUT;
        }
    };
    let c = crate::report::gate::compare(&old, &new);
    if c.diff.is_empty() {
        println!("no changes");
    } else {
        print!("{}", c.diff);
    }
    if c.regressions.is_empty() {
        EXIT_OK
    } else {
        println!("\n{} regressions:", c.regressions.len());
        for x in &c.regressions {
            println!("  {x}");
        }
        EXIT_GATE
    }
}
