//! Command line: argv in; stdout, stderr and the exit code out.
//!
//! Input: the arguments and the working directory. Output: what each command prints and the exit code
//! (0 ok, 1 gate failed, 2 unusable input or usage error). This module parses flags, calls the stages
//! in order and prints; it holds no matching, diffing or formatting logic of its own beyond laying out
//! a table, and it is the only place that turns problems into exit codes.

use crate::diag::{Diagnostic, Severity};
use crate::sigma::{Hit, Options, Placeholders, RuleKind, RuleSet, RuleStatus};
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
    let (hits, n_events, read_failed) = evaluate_inputs(&set, &a.inputs);
    failed |= read_failed;
    let rules = set.rules();
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let res = match a.format {
        EvalFormat::Jsonl => hits.iter().try_for_each(|h| {
            let r = &rules[h.rule];
            let obj = serde_json::json!({
                "event": h.event,
                "rule_id": r.meta.id,
                "rule_title": r.meta.title,
                "level": r.meta.level,
                "author": r.meta.author,
                "rule_path": r.meta.path.display().to_string(),
            });
            writeln!(w, "{obj}")
        }),
        EvalFormat::Table => write_hit_table(&mut w, &set, &hits, n_events),
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
        hits.len(),
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

/// Size of the parts a JSON Lines input is read and evaluated in (in parallel, memory bounded).
const PART_BYTES: usize = 1 << 20;

/// Reads every input and evaluates the rules on its events, part by part; returns the hits (event
/// numbers across all inputs in the order given), the number of events and whether a record could
/// not be read. Diagnostics are printed as they come, in input order.
fn evaluate_inputs(set: &RuleSet, inputs: &[PathBuf]) -> (Vec<Hit>, usize, bool) {
    let mut hits = Vec::new();
    let mut next_event = 0usize;
    let mut failed = false;
    let mut take = |out: &read::ReadOutput, part_hits: Vec<Hit>, n: usize| {
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
                take(&out, h, out.events.len());
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
                for (r, h, n) in read_and_eval(set, &texts, p, i) {
                    take(&r, h, n);
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
                    for (r, h, n) in read_and_eval(set, &texts, p, i) {
                        take(&r, h, n);
                    }
                }
            }
        }
    }
    (hits, next_event, failed)
}

/// Reads parts (text, first line, a diagnostic found while loading it) in parallel and evaluates
/// their events; per part, in order: what was read (events dropped), its hits, its event count.
fn read_and_eval(
    set: &RuleSet,
    texts: &[(&str, usize, Option<&Diagnostic>)],
    path: &Path,
    input: usize,
) -> Vec<(read::ReadOutput, Vec<Hit>, usize)> {
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
                let n = r.events.len();
                r.events = Vec::new();
                (r, h, n)
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
    n_events: usize,
) -> std::io::Result<()> {
    let rules = set.rules();
    let rows: Vec<[String; 5]> = hits
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
    println!(
        "purplecov run: {ready} detection rules ready from {}",
        detections
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let scenarios_failed =
        crate::cli_scenarios::run_scenarios(&set, &a.atomics, &a.expected, &a.scenarios);
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
    } else {
        EXIT_OK
    }
}
