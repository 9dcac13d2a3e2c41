//! Coverage: what fired on each scenario compared with what was expected, and the reports of it.
//!
//! Input: per scenario, its replayed events' signal results and rule hits, its expectations, and the
//! rule set. Output: a [`Report`] (DESIGN.md "Outcome states" and "JSON report", schema
//! `purplecov/report/v1`) that every output format is written from. Building it is a pure function of
//! its inputs: no clock, no absolute paths, everything sorted, so the same inputs give byte-identical
//! reports whatever the thread count.

pub mod formats;
pub mod gate;

use crate::expect::{Expect, Expectation, SignalResult};
use crate::scenario::Scenario;
use crate::sigma::explain::Explanation;
use crate::sigma::{RuleSet, RuleStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "purplecov/report/v1";

/// What one scenario's replay produced, before judging.
#[derive(Debug, Clone)]
pub struct ScenarioRun<'a> {
    pub scenario: &'a Scenario,
    pub expectation: Option<&'a Expectation>,
    pub events: usize,
    pub signals: Vec<SignalResult>,
    /// Rules that fired (index into the rule set) with the events they matched, sorted.
    pub hits: BTreeMap<usize, Vec<usize>>,
    /// Problems that make the outcome `error` (read-back diagnostics, broken expectations).
    pub errors: Vec<String>,
    /// Why each expected rule that stayed silent did not fire (rule index -> explanation).
    pub explanations: BTreeMap<usize, Explanation>,
    /// Correlation hits (rule index -> each hit's group and events).
    pub groups: BTreeMap<usize, Vec<GroupHit>>,
}

/// One correlation hit: the group it fired for and the events that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupHit {
    /// Group-by field -> value (`null`: the events lacked the field).
    pub group: BTreeMap<String, Option<String>>,
    pub events: Vec<usize>,
}

/// Coverage of one scenario (what a purple team asks: was this attack seen?).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Detected,
    Partial,
    LoggedOnly,
    Missed,
    Skipped,
    Unsupported,
    Error,
}

/// One rule's result on one scenario (what CI asks: did anything change from what we recorded?).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Missed,
    Unexpected,
    /// Fired on an attack scenario whose expectations do not mention the rule (listed, not judged).
    Unrecorded,
    Error,
}

/// ATT&CK-Evaluations-style detection category, from the tags of the rules that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    None,
    Telemetry,
    General,
    Tactic,
    Technique,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub tool: Tool,
    pub inputs: Vec<Input>,
    pub summary: Summary,
    pub scenarios: Vec<ScenarioReport>,
    pub rules: Vec<RuleReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Attack scenarios and controls alike.
    pub scenarios: usize,
    pub controls: usize,
    pub outcomes: BTreeMap<Outcome, usize>,
    pub verdicts: BTreeMap<Verdict, usize>,
    /// Coverage per technique by every rule loaded (attack scenarios only).
    pub techniques: Vec<TechniqueCoverage>,
    /// The same per rule set (the first folder under a `--detections` root), so the delta between
    /// the published detections and our improved ones shows.
    pub sets: Vec<SetSummary>,
    pub rules_untested: usize,
}

/// What one rule set alone covers.
#[derive(Debug, Clone, Serialize)]
pub struct SetSummary {
    pub set: String,
    pub rules: usize,
    /// Attack scenarios of each technique detected by this set's rules alone: one of them fired
    /// and none expected to fire stayed silent.
    pub techniques: Vec<TechniqueCoverage>,
    /// Controls on which a rule of the set fired (false positives, known or not).
    pub controls_fired: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TechniqueCoverage {
    pub technique: String,
    pub scenarios: usize,
    pub detected: usize,
    /// `detected / scenarios`.
    pub coverage: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub id: String,
    pub guid: String,
    pub name: String,
    pub technique: String,
    pub control: bool,
    pub outcome: Outcome,
    pub category: Category,
    pub events: usize,
    pub signals: Vec<SignalReport>,
    pub rules: Vec<RuleResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignalReport {
    pub name: String,
    pub found: bool,
    pub events: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub rule: String,
    pub title: String,
    pub expected: Option<&'static str>,
    pub fired: bool,
    pub verdict: Verdict,
    /// Events (0-based, in the scenario's replay) the rule matched.
    pub events: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// For a correlation that fired: each hit's group key and events.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupHit>,
    /// For an expected rule that stayed silent: the nearest miss (why it did not fire).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub id: String,
    pub title: String,
    pub author: Option<String>,
    pub level: Option<String>,
    pub file: String,
    /// The rule set: the first folder under its `--detections` root, or the root's own name.
    pub set: String,
    pub status: String,
    /// Attack scenarios the rule fired on.
    pub fired_on: Vec<String>,
    /// Controls (benign look-alikes) the rule fired on: its false-positive exposure.
    pub false_positives: Vec<String>,
    pub untested: bool,
    /// What the published query the rule translates uses that its platform does not have
    /// (the rule's `source_gaps`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_gaps: Vec<String>,
}

/// A path as reports show it: relative to the working directory when under it, `/` separated.
pub fn display_path(p: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf());
    rel.to_string_lossy().replace('\\', "/")
}

fn sha256_of(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    match std::fs::read(p) {
        Ok(b) => Sha256::digest(&b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect(),
        Err(_) => String::new(),
    }
}

fn rule_key(set: &RuleSet, r: usize) -> String {
    set.rules()
        .get(r)
        .map(|i| {
            i.meta
                .id
                .clone()
                .or_else(|| i.meta.name.clone())
                .unwrap_or_else(|| i.meta.title.clone())
        })
        .unwrap_or_default()
}

fn find_rule(set: &RuleSet, key: &str) -> Option<usize> {
    set.position(key)
}

/// The set a rule belongs to: the first folder under the longest of `roots` holding its file, or
/// that root's own name for a file directly in it (or given as the root).
pub fn rule_set_name(path: &Path, roots: &[PathBuf]) -> String {
    let root = roots
        .iter()
        .filter(|r| path.starts_with(r))
        .max_by_key(|r| r.components().count());
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    match root {
        Some(r) => {
            let rest: Vec<_> = path
                .strip_prefix(r)
                .map(|x| x.components().collect())
                .unwrap_or_default();
            if rest.len() >= 2 {
                rest[0].as_os_str().to_string_lossy().into_owned()
            } else if r.is_file() {
                r.parent().map(name).unwrap_or_default()
            } else {
                name(r)
            }
        }
        None => path.parent().map(name).unwrap_or_default(),
    }
}

/// Judges every scenario run and summarises. `inputs` are the files the run read (hashed);
/// `roots` the `--detections` paths (they name the rule sets).
pub fn build(set: &RuleSet, runs: &[ScenarioRun], inputs: &[PathBuf], roots: &[PathBuf]) -> Report {
    let mut scenarios: Vec<ScenarioReport> = runs.iter().map(|r| judge(set, r)).collect();
    scenarios.sort_by(|a, b| a.id.cmp(&b.id));
    let mut fired_on: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut false_positives: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut exercised: Vec<bool> = vec![false; set.rules().len()];
    for r in runs {
        let control = is_control(r.scenario);
        for &rule in r.hits.keys() {
            if control {
                &mut false_positives
            } else {
                &mut fired_on
            }
            .entry(rule)
            .or_default()
            .push(r.scenario.id.clone());
            if let Some(x) = exercised.get_mut(rule) {
                *x = true;
            }
        }
        for d in r.expectation.iter().flat_map(|e| e.detections.iter()) {
            if let Some(i) = find_rule(set, &d.rule) {
                exercised[i] = true;
            }
        }
    }
    let sorted = |m: &BTreeMap<usize, Vec<String>>, i: usize| {
        let mut v = m.get(&i).cloned().unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    let rules: Vec<RuleReport> = set
        .rules()
        .iter()
        .enumerate()
        .filter(|(i, _)| set.reports(*i))
        .map(|(i, r)| RuleReport {
            id: rule_key(set, i),
            title: r.meta.title.clone(),
            author: r.meta.author.clone(),
            level: r.meta.level.clone(),
            file: display_path(&r.meta.path),
            set: rule_set_name(&r.meta.path, roots),
            status: match &r.status {
                RuleStatus::Ready => "ready".into(),
                RuleStatus::Unsupported { reason, .. } => format!("unsupported: {reason}"),
                RuleStatus::Invalid => "invalid".into(),
            },
            fired_on: sorted(&fired_on, i),
            false_positives: sorted(&false_positives, i),
            untested: !exercised[i],
            source_gaps: r.meta.source_gaps.clone(),
        })
        .collect();
    let sets = set_summaries(&scenarios, &rules);
    let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut verdicts: BTreeMap<Verdict, usize> = BTreeMap::new();
    let mut per_technique: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &scenarios {
        *outcomes.entry(s.outcome).or_default() += 1;
        for r in &s.rules {
            *verdicts.entry(r.verdict).or_default() += 1;
        }
        if !s.control {
            let t = per_technique.entry(s.technique.clone()).or_default();
            t.0 += 1;
            if s.outcome == Outcome::Detected {
                t.1 += 1;
            }
        }
    }
    let mut files: Vec<Input> = inputs
        .iter()
        .map(|p| Input {
            path: display_path(p),
            sha256: sha256_of(p),
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Report {
        schema: SCHEMA,
        tool: Tool {
            name: "purplecov",
            version: env!("CARGO_PKG_VERSION"),
        },
        inputs: files,
        summary: Summary {
            scenarios: scenarios.len(),
            controls: scenarios.iter().filter(|s| s.control).count(),
            outcomes,
            verdicts,
            techniques: coverage(per_technique),
            sets,
            rules_untested: rules.iter().filter(|r| r.untested).count(),
        },
        scenarios,
        rules,
    }
}

/// Per rule set: coverage per technique by its rules alone, and the controls they fire on.
fn set_summaries(scenarios: &[ScenarioReport], rules: &[RuleReport]) -> Vec<SetSummary> {
    let mut names: Vec<&str> = rules.iter().map(|r| r.set.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let ids: std::collections::BTreeSet<&str> = rules
                .iter()
                .filter(|r| r.set == name)
                .map(|r| r.id.as_str())
                .collect();
            let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            let mut controls_fired = Vec::new();
            for s in scenarios {
                let own: Vec<&RuleResult> = s
                    .rules
                    .iter()
                    .filter(|r| ids.contains(r.rule.as_str()))
                    .collect();
                let fired = own.iter().any(|r| r.fired);
                if s.control {
                    if fired {
                        controls_fired.push(s.id.clone());
                    }
                    continue;
                }
                let missed = own.iter().any(|r| r.expected == Some("fire") && !r.fired);
                let t = per.entry(s.technique.clone()).or_default();
                t.0 += 1;
                if fired && !missed && !matches!(s.outcome, Outcome::Error | Outcome::Skipped) {
                    t.1 += 1;
                }
            }
            SetSummary {
                set: name.to_string(),
                rules: ids.len(),
                techniques: coverage(per),
                controls_fired,
            }
        })
        .collect()
}

fn coverage(per: BTreeMap<String, (usize, usize)>) -> Vec<TechniqueCoverage> {
    per.into_iter()
        .map(|(technique, (n, d))| TechniqueCoverage {
            technique,
            scenarios: n,
            detected: d,
            coverage: if n == 0 { 0.0 } else { d as f64 / n as f64 },
        })
        .collect()
}

/// Whether a scenario is a control (a benign look-alike): its file is under a `controls` folder.
pub fn is_control(s: &Scenario) -> bool {
    s.path
        .components()
        .any(|c| c.as_os_str() == std::ffi::OsStr::new("controls"))
}

fn judge(set: &RuleSet, run: &ScenarioRun) -> ScenarioReport {
    let s = run.scenario;
    let control = is_control(s);
    let mut errors = run.errors.clone();
    let mut results = Vec::new();
    let mut expected_fire = 0usize;
    let mut fired_as_expected = 0usize;
    let mut unsupported = false;
    let expected_rules: Vec<&crate::expect::RuleExpectation> = run
        .expectation
        .map(|e| e.detections.iter().collect())
        .unwrap_or_default();
    for d in &expected_rules {
        let Some(i) = find_rule(set, &d.rule) else {
            errors.push(format!(
                "expected rule `{}` is not among the detections loaded",
                d.rule
            ));
            results.push(RuleResult {
                rule: d.rule.clone(),
                title: String::new(),
                expected: Some(expect_text(d.expect)),
                fired: false,
                verdict: Verdict::Error,
                events: Vec::new(),
                signal: d.signal.clone(),
                reason: d.reason.clone(),
                groups: Vec::new(),
                explanation: None,
            });
            continue;
        };
        let info = &set.rules()[i];
        let events = run.hits.get(&i).cloned().unwrap_or_default();
        let fired = !events.is_empty();
        if d.expect == Expect::Fire {
            expected_fire += 1;
            if fired {
                fired_as_expected += 1;
            }
            if !matches!(info.status, RuleStatus::Ready) {
                unsupported = true;
            }
        }
        let verdict = match (d.expect, fired) {
            _ if !matches!(info.status, RuleStatus::Ready) => Verdict::Error,
            (Expect::Fire, true) | (Expect::Silent, false) => Verdict::Pass,
            (Expect::Fire, false) => Verdict::Missed,
            (Expect::Silent, true) => Verdict::Unexpected,
        };
        results.push(RuleResult {
            rule: d.rule.clone(),
            title: info.meta.title.clone(),
            expected: Some(expect_text(d.expect)),
            fired,
            verdict,
            events,
            signal: d.signal.clone(),
            reason: d.reason.clone(),
            groups: run.groups.get(&i).cloned().unwrap_or_default(),
            explanation: if fired {
                None
            } else {
                run.explanations.get(&i).cloned()
            },
        });
    }
    // Rules that fired without an expectation: on a control any firing is unexpected; on an
    // attack scenario they are listed (they count towards "detected") as pass-through results.
    for (&i, events) in &run.hits {
        let key = rule_key(set, i);
        if expected_rules
            .iter()
            .any(|d| find_rule(set, &d.rule) == Some(i))
        {
            continue;
        }
        results.push(RuleResult {
            rule: key,
            title: set.rules()[i].meta.title.clone(),
            expected: None,
            fired: true,
            verdict: if control {
                Verdict::Unexpected
            } else {
                Verdict::Unrecorded
            },
            events: events.clone(),
            signal: None,
            reason: String::new(),
            groups: run.groups.get(&i).cloned().unwrap_or_default(),
            explanation: None,
        });
    }
    results.sort_by(|a, b| a.rule.cmp(&b.rule));
    let signals: Vec<SignalReport> = run
        .signals
        .iter()
        .map(|x| SignalReport {
            name: x.name.clone(),
            found: x.found,
            events: x.events.clone(),
        })
        .collect();
    let signals_present = signals.iter().all(|x| x.found);
    let any_fired = !run.hits.is_empty();
    let platform_ok = s.platforms.iter().any(|p| p == &s.host.os);
    let outcome = if !errors.is_empty() || run.expectation.is_none() {
        if run.expectation.is_none() {
            errors.push("the scenario has no expectations file".into());
        }
        Outcome::Error
    } else if !platform_ok {
        Outcome::Skipped
    } else if unsupported {
        Outcome::Unsupported
    } else if any_fired {
        if fired_as_expected < expected_fire {
            Outcome::Partial
        } else {
            Outcome::Detected
        }
    } else if signals_present {
        Outcome::LoggedOnly
    } else {
        Outcome::Missed
    };
    let category = category(set, s, run, signals_present);
    ScenarioReport {
        id: s.id.clone(),
        guid: s.guid.clone(),
        name: s.name.clone(),
        technique: s.technique.clone(),
        control,
        outcome,
        category,
        events: run.events,
        signals,
        rules: results,
        errors,
    }
}

fn category(set: &RuleSet, s: &Scenario, run: &ScenarioRun, signals_present: bool) -> Category {
    if run.hits.is_empty() {
        return if signals_present && !run.signals.is_empty() {
            Category::Telemetry
        } else {
            Category::None
        };
    }
    let technique = format!("attack.{}", s.technique.to_lowercase());
    let tactic = format!("attack.{}", s.tactic.to_lowercase().replace(' ', "_"));
    let mut best = Category::General;
    for &i in run.hits.keys() {
        for tag in set
            .rules()
            .get(i)
            .map(|r| r.meta.tags.as_slice())
            .unwrap_or(&[])
        {
            let tag = tag.to_lowercase();
            if tag == technique || technique.starts_with(&format!("{tag}.")) {
                return Category::Technique;
            }
            if tag == tactic {
                best = Category::Tactic;
            }
        }
    }
    best
}

fn expect_text(e: Expect) -> &'static str {
    match e {
        Expect::Fire => "fire",
        Expect::Silent => "silent",
    }
}

impl Report {
    /// The JSON report (pretty, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
