//! Expectations: what a scenario's telemetry must contain (and, later, which rules must fire).
//!
//! Input: `expected/<scenario-id>.yaml` files (format in docs/scenarios.md, "Expected signals").
//! Output: [`Expectation`]s whose signals are evaluated by the Sigma engine on a scenario's events:
//! each signal becomes a one-selection rule (its match plus the sensor and record kind), so signals use
//! exactly the rule semantics (modifiers, case, numbers vs text).

use crate::diag::{Diagnostic, Location};
use crate::scenario::{kind_key, substitute};
use crate::sigma::{Options, RuleSet};
use crate::telemetry::sensors::{SensorKind, Sensors};
use crate::telemetry::Event;
use serde_norway::{Mapping, Value as Yaml};
use std::path::{Path, PathBuf};

/// One expected signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub name: String,
    /// The source's words for it.
    pub seed: String,
    pub sensor: String,
    pub kind: String,
    /// The Sigma selection (field|modifiers: value).
    pub matcher: Mapping,
    pub line: usize,
}

/// Whether a rule is expected to fire on a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Fire,
    Silent,
}

/// What one rule is expected to do on a scenario: the truth about the rule as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleExpectation {
    /// The rule's `id` (or, for a rule without one, its `name`).
    pub rule: String,
    pub expect: Expect,
    /// For `fire`: the signal whose event the rule fires on.
    pub signal: Option<String>,
    pub reason: String,
    pub line: usize,
}

/// The expectations of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub path: PathBuf,
    pub scenario: String,
    pub signals: Vec<Signal>,
    pub detections: Vec<RuleExpectation>,
}

/// Whether each signal was found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalResult {
    pub name: String,
    pub found: bool,
    /// 0-based indexes of the events that carry it.
    pub events: Vec<usize>,
}

/// Loads every `*.yaml` file in `dir` (sorted).
pub fn load_dir(dir: &Path) -> (Vec<Expectation>, Vec<Diagnostic>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| x == "yaml" || x == "yml")
            })
            .collect(),
        Err(e) => {
            return (
                Vec::new(),
                vec![Diagnostic::error(
                    Location::file(dir),
                    format!("cannot read the expectations folder: {e}"),
                )],
            )
        }
    };
    files.sort();
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => {
                let (e, mut d) = parse(&f, &text);
                diags.append(&mut d);
                out.extend(e);
            }
            Err(e) => diags.push(Diagnostic::error(
                Location::file(&f),
                format!("cannot read the file: {e}"),
            )),
        }
    }
    (out, diags)
}

fn line_of(text: &str, from: usize, key: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| {
            let t = l.trim_start();
            t.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map_or(from.max(1), |(i, _)| i + 1)
}

/// Parses one expectations file.
pub fn parse(path: &Path, text: &str) -> (Option<Expectation>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let err = |diags: &mut Vec<Diagnostic>, line: usize, msg: String| {
        diags.push(Diagnostic::error(Location::new(path, line, 0), msg));
    };
    let doc: Yaml = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map_or(1, |l| l.line());
            err(&mut diags, line, format!("invalid YAML: {e}"));
            return (None, diags);
        }
    };
    let Some(m) = doc.as_mapping() else {
        err(
            &mut diags,
            1,
            "an expectations file is a mapping with `scenario` and `signals`".into(),
        );
        return (None, diags);
    };
    for (k, _) in m {
        let key = k.as_str().unwrap_or("");
        if !["scenario", "signals", "detections"].contains(&key) {
            err(
                &mut diags,
                line_of(text, 0, key),
                format!("unknown key `{key}` (scenario, signals, detections)"),
            );
        }
    }
    let scenario = match m.get("scenario") {
        Some(Yaml::String(s)) => s.clone(),
        _ => {
            err(&mut diags, 1, "missing `scenario` (the scenario id)".into());
            return (None, diags);
        }
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem != scenario {
        err(
            &mut diags,
            line_of(text, 0, "scenario"),
            format!("the file for scenario `{scenario}` must be named `{scenario}.yaml`"),
        );
    }
    let sensors = Sensors::builtin();
    let mut signals = Vec::new();
    let signals_line = line_of(text, 0, "signals");
    match m.get("signals") {
        Some(Yaml::Mapping(sm)) => {
            for (k, v) in sm {
                let name = k.as_str().unwrap_or("").to_string();
                let line = line_of(text, signals_line, &name);
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    err(
                        &mut diags,
                        line,
                        format!("signal name `{name}` must be [a-z0-9_]+"),
                    );
                    continue;
                }
                let Some(sig) = v.as_mapping() else {
                    err(
                        &mut diags,
                        line,
                        format!("signal `{name}` must be a mapping (seed, sensor, kind, match)"),
                    );
                    continue;
                };
                let sensor = sig.get("sensor").and_then(Yaml::as_str).unwrap_or("");
                let Some(s) = sensors.get(sensor) else {
                    err(
                        &mut diags,
                        line,
                        format!(
                            "signal `{name}`: unknown sensor `{sensor}` ({})",
                            sensors.names().join(", ")
                        ),
                    );
                    continue;
                };
                let kk = kind_key(s.kind);
                let kind = match sig.get(kk) {
                    Some(Yaml::String(x)) => x.clone(),
                    Some(Yaml::Number(x)) => x.to_string(),
                    _ => {
                        err(
                            &mut diags,
                            line,
                            format!("signal `{name}`: sensor `{sensor}` needs `{kk}`"),
                        );
                        continue;
                    }
                };
                for (key, _) in sig {
                    let key = key.as_str().unwrap_or("");
                    if !["seed", "sensor", kk, "match"].contains(&key) {
                        err(
                            &mut diags,
                            line_of(text, line, key),
                            format!(
                                "signal `{name}`: unknown key `{key}` (seed, sensor, {kk}, match)"
                            ),
                        );
                    }
                }
                let matcher = match sig.get("match") {
                    Some(Yaml::Mapping(mm)) if !mm.is_empty() => mm.clone(),
                    _ => {
                        err(
                            &mut diags,
                            line,
                            format!("signal `{name}`: `match` must be a non-empty Sigma selection"),
                        );
                        continue;
                    }
                };
                signals.push(Signal {
                    name,
                    seed: sig
                        .get("seed")
                        .and_then(Yaml::as_str)
                        .unwrap_or("")
                        .to_string(),
                    sensor: sensor.to_string(),
                    kind,
                    matcher,
                    line,
                });
            }
        }
        _ => err(
            &mut diags,
            signals_line,
            "missing `signals` (a mapping of named signals)".into(),
        ),
    }
    let detections = parse_detections(path, text, m.get("detections"), &signals, &mut diags);
    (
        Some(Expectation {
            path: path.to_path_buf(),
            scenario,
            signals,
            detections,
        }),
        diags,
    )
}

/// The `detections:` section: `rule-id: {expect: fire|silent, signal: name, reason: text}`.
fn parse_detections(
    path: &Path,
    text: &str,
    v: Option<&Yaml>,
    signals: &[Signal],
    diags: &mut Vec<Diagnostic>,
) -> Vec<RuleExpectation> {
    let mut err = |line: usize, msg: String| {
        diags.push(Diagnostic::error(Location::new(path, line, 0), msg));
    };
    let section = line_of(text, 0, "detections");
    let m = match v {
        None => return Vec::new(),
        Some(Yaml::Mapping(m)) => m,
        Some(_) => {
            err(
                section,
                "`detections` must be a mapping of rule id to {expect, signal, reason}".into(),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let rule = match k {
            Yaml::String(s) => s.clone(),
            other => {
                err(section, format!("a rule id must be text, found {other:?}"));
                continue;
            }
        };
        let line = line_of(text, section, &rule);
        let Some(d) = v.as_mapping() else {
            err(
                line,
                format!("rule `{rule}`: must be a mapping with expect, signal and reason"),
            );
            continue;
        };
        for (key, _) in d {
            let key = key.as_str().unwrap_or("");
            if !["expect", "signal", "reason"].contains(&key) {
                err(
                    line,
                    format!("rule `{rule}`: unknown key `{key}` (expect, signal, reason)"),
                );
            }
        }
        let expect = match d.get("expect").and_then(Yaml::as_str) {
            Some("fire") => Expect::Fire,
            Some("silent") => Expect::Silent,
            other => {
                err(
                    line,
                    format!("rule `{rule}`: `expect` must be fire or silent, found {other:?}"),
                );
                continue;
            }
        };
        let signal = d.get("signal").and_then(Yaml::as_str).map(str::to_string);
        match (&signal, expect) {
            (None, Expect::Fire) => err(
                line,
                format!("rule `{rule}`: `expect: fire` needs the `signal` it fires on"),
            ),
            (Some(s), _) if !signals.iter().any(|x| x.name == *s) => {
                err(line, format!("rule `{rule}`: no signal `{s}` in this file"))
            }
            _ => {}
        }
        let reason = d
            .get("reason")
            .and_then(Yaml::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        if reason.is_empty() {
            err(
                line,
                format!("rule `{rule}`: `reason` is required (why the rule fires or stays silent)"),
            );
        }
        out.push(RuleExpectation {
            rule,
            expect,
            signal,
            reason,
            line,
        });
    }
    out
}

fn subst_yaml(v: &Yaml, args: &[(String, String)]) -> Yaml {
    match v {
        Yaml::String(s) => Yaml::String(substitute(s, args)),
        Yaml::Sequence(items) => {
            Yaml::Sequence(items.iter().map(|i| subst_yaml(i, args)).collect())
        }
        other => other.clone(),
    }
}

impl Signal {
    /// The signal as a Sigma rule document (no logsource: the sensor and kind are in the selection).
    pub fn rule_yaml(&self, args: &[(String, String)]) -> String {
        let mut sel = Mapping::new();
        if let Some(s) = Sensors::builtin().get(&self.sensor) {
            match s.kind {
                SensorKind::Windows => {
                    if let Some(c) = &s.channel {
                        sel.insert("Channel".into(), c.clone().into());
                    }
                    sel.insert("EventID".into(), self.kind.clone().into());
                }
                SensorKind::Mde => {
                    sel.insert("Table".into(), self.kind.clone().into());
                }
                SensorKind::Auditd => {
                    sel.insert("type".into(), self.kind.clone().into());
                }
                SensorKind::Zeek => {
                    sel.insert("_path".into(), self.kind.clone().into());
                }
            }
        }
        for (k, v) in &self.matcher {
            sel.insert(k.clone(), subst_yaml(v, args));
        }
        let mut det = Mapping::new();
        det.insert("selection".into(), Yaml::Mapping(sel));
        det.insert("condition".into(), "selection".into());
        let mut rule = Mapping::new();
        rule.insert("title".into(), self.name.clone().into());
        rule.insert("logsource".into(), Yaml::Mapping(Mapping::new()));
        rule.insert("detection".into(), Yaml::Mapping(det));
        serde_norway::to_string(&Yaml::Mapping(rule)).unwrap_or_default()
    }
}

impl Expectation {
    /// Evaluates the signals on `events` (a scenario's replay with `args`). A signal whose selection
    /// cannot be compiled comes back as a diagnostic at its line, and as not found.
    pub fn check(
        &self,
        events: &[Event],
        args: &[(String, String)],
    ) -> (Vec<SignalResult>, Vec<Diagnostic>) {
        let docs: Vec<String> = self.signals.iter().map(|s| s.rule_yaml(args)).collect();
        let text = docs.join("---\n");
        let opts = Options {
            routing: false,
            ..Options::default()
        };
        let set = RuleSet::from_yaml_str(&self.path.display().to_string(), &text, &opts);
        let mut diags = Vec::new();
        for d in set.diagnostics() {
            let sig = self.signals.iter().find(|s| d.message.contains(&s.name));
            diags.push(Diagnostic::error(
                Location::new(&self.path, sig.map_or(0, |s| s.line), 0),
                format!("signal selection does not compile: {}", d.message),
            ));
        }
        let mut results: Vec<SignalResult> = self
            .signals
            .iter()
            .map(|s| SignalResult {
                name: s.name.clone(),
                found: false,
                events: Vec::new(),
            })
            .collect();
        let rules = set.rules();
        for r in rules {
            if let crate::sigma::RuleStatus::Unsupported { reason, .. } = &r.status {
                if let Some(s) = self.signals.iter().find(|s| s.name == r.meta.title) {
                    diags.push(Diagnostic::error(
                        Location::new(&self.path, s.line, 0),
                        format!("signal `{}` cannot be evaluated: {reason}", s.name),
                    ));
                }
            }
        }
        for h in set.evaluate(events) {
            let Some(r) = rules.get(h.rule) else { continue };
            if let Some(res) = results.iter_mut().find(|x| x.name == r.meta.title) {
                res.found = true;
                res.events.push(h.event);
            }
        }
        (results, diags)
    }
}
