//! Reference-data suites for the Sigma engine (need `PURPLECOV_REFERENCE`; skipped without it):
//! every SigmaHQ rule loads or is reported with a reason, every SigmaHQ regression case fires its rule
//! at least `match_count` times, and, with `PURPLECOV_ORACLE` set to the built independent evaluator,
//! the set of firing rules per regression event agrees with it except for the disagreements listed in
//! `tests/oracle_disagreements.tsv`, each pinned by a conformance case; likewise on every record of
//! the real EVTX recordings (`tests/oracle_disagreements_recordings.tsv`).

use purplecov::sigma::{Options, RuleKind, RuleSet, RuleStatus};
use purplecov::telemetry::{read, Event};
use purplecov::Severity;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn reference() -> Option<PathBuf> {
    match std::env::var_os("PURPLECOV_REFERENCE") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipped: PURPLECOV_REFERENCE not set");
            None
        }
    }
}

/// The SigmaHQ rule folders of the reference data.
fn rule_dirs(reference: &Path) -> Vec<PathBuf> {
    [
        "rules",
        "rules-emerging-threats",
        "rules-threat-hunting",
        "rules-compliance",
        "rules-placeholder",
        "deprecated",
        "unsupported",
    ]
    .iter()
    .map(|d| reference.join("sigma").join(d))
    .filter(|p| p.exists())
    .collect()
}

fn all_rules(reference: &Path) -> &'static RuleSet {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    SET.get_or_init(|| RuleSet::load(&rule_dirs(reference), &Options::default()))
}

fn files_named(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            files_named(&e, ext, out);
        } else if e.to_string_lossy().ends_with(ext) {
            out.push(e);
        }
    }
}

#[test]
fn every_sigmahq_rule_loads_or_says_why() {
    let Some(reference) = reference() else { return };
    let set = all_rules(&reference);
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    for r in set.rules() {
        let st = match &r.status {
            RuleStatus::Ready => "ready",
            RuleStatus::Invalid => "invalid",
            RuleStatus::Unsupported { .. } => "unsupported",
        };
        *by_status.entry(st).or_default() += 1;
        match &r.status {
            RuleStatus::Ready => {}
            RuleStatus::Invalid => {
                // An invalid rule must say why, with a line.
                let errs: Vec<_> = r
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .collect();
                assert!(
                    !errs.is_empty(),
                    "{} is invalid without a diagnostic",
                    r.meta.path.display()
                );
                bad.push(format!("{}", errs[0]));
            }
            RuleStatus::Unsupported { reason, .. } => {
                assert!(!reason.is_empty());
                let p = r.meta.path.to_string_lossy();
                // Goal: only placeholder rules without values, deprecated aggregations and
                // correlations are unsupported.
                let allowed = reason.contains("placeholder")
                    || reason.contains("deprecated")
                    || r.kind == RuleKind::Correlation;
                if !allowed {
                    bad.push(format!("{p}: unsupported: {reason}"));
                }
            }
        }
    }
    eprintln!("SigmaHQ rules: {by_status:?}");
    assert!(set.rules().len() > 3000, "expected the whole SigmaHQ copy");
    assert!(
        bad.is_empty(),
        "{} rules not usable:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

struct Case {
    rule_id: String,
    match_count: usize,
    json: PathBuf,
}

fn regression_cases(reference: &Path) -> Vec<Case> {
    let mut infos = Vec::new();
    files_named(
        &reference.join("sigma/regression_data"),
        "info.yml",
        &mut infos,
    );
    let mut out = Vec::new();
    for info in infos {
        let v: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(&info).unwrap()).unwrap();
        let rule_id = v["rule_metadata"][0]["id"].as_str().unwrap().to_string();
        // One case (a Cisco raw log) has its tests commented out.
        let Some(tests) = v["regression_tests_info"].as_sequence() else {
            continue;
        };
        for t in tests {
            if t["type"].as_str() != Some("evtx") {
                continue;
            }
            let evtx = t["path"].as_str().unwrap();
            let json = reference
                .join("sigma")
                .join(evtx.trim_end_matches(".evtx").to_string() + ".json");
            if !json.exists() {
                continue;
            }
            out.push(Case {
                rule_id: rule_id.clone(),
                match_count: t["match_count"].as_u64().unwrap_or(1) as usize,
                json,
            });
        }
    }
    out
}

fn read_events(path: &Path) -> Vec<Event> {
    let out = read::read_path(path, 0);
    assert!(
        out.diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error),
        "{}: {:?}",
        path.display(),
        out.diagnostics
    );
    out.events
}

#[test]
fn every_regression_case_fires_its_rule() {
    let Some(reference) = reference() else { return };
    let set = all_rules(&reference);
    let cases = regression_cases(&reference);
    assert_eq!(cases.len(), 202, "regression cases with a JSON file");
    let index: BTreeMap<&str, usize> = set
        .rules()
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.meta.id.as_deref().map(|id| (id, i)))
        .collect();
    let mut fails = Vec::new();
    for c in &cases {
        let Some(&ri) = index.get(c.rule_id.as_str()) else {
            fails.push(format!(
                "{}: rule {} not loaded",
                c.json.display(),
                c.rule_id
            ));
            continue;
        };
        let events = read_events(&c.json);
        let n = set
            .evaluate(&events)
            .iter()
            .filter(|h| h.rule == ri)
            .count();
        if n < c.match_count {
            fails.push(format!(
                "{}: rule {} ({}) fired {n} times, expected at least {} (status {:?})",
                c.json.display(),
                c.rule_id,
                set.rules()[ri].meta.title,
                c.match_count,
                set.rules()[ri].status
            ));
        }
    }
    eprintln!(
        "regression cases: {} run, {} failed",
        cases.len(),
        fails.len()
    );
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn prefilter_changes_no_answer_on_regression_events() {
    let Some(reference) = reference() else { return };
    let fast = all_rules(&reference);
    let plain = RuleSet::load(
        &rule_dirs(&reference),
        &Options {
            prefilter: false,
            ..Options::default()
        },
    );
    for c in regression_cases(&reference) {
        let events = read_events(&c.json);
        assert_eq!(
            fast.evaluate(&events),
            plain.evaluate(&events),
            "{}",
            c.json.display()
        );
    }
}

/// One disagreement with the independent evaluator: one line of a disagreements file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Disagreement {
    /// The event: its file (relative to the lane's folder) and `#N`, its index in that file.
    event: String,
    rule_id: String,
    /// `ours` = only purplecov fires, `oracle` = only the oracle fires.
    side: String,
}

/// The oracle's hits (event index, rule id) on `inputs`, one run per SigmaHQ rule folder (it takes
/// one folder per run); it must read `n_events` events, as we do.
fn oracle_hits(
    oracle: &std::ffi::OsStr,
    reference: &Path,
    inputs: &[PathBuf],
    n_events: usize,
) -> BTreeSet<(usize, String)> {
    let mut hits = BTreeSet::new();
    for dir in rule_dirs(reference) {
        let out = std::process::Command::new(oracle)
            .arg(&dir)
            .args(inputs)
            .output()
            .expect("run sigma-oracle");
        assert!(
            out.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let read: usize = stderr
            .split_whitespace()
            .find_map(|w| w.strip_prefix("events="))
            .and_then(|n| n.parse().ok())
            .expect("oracle summary");
        assert_eq!(
            read, n_events,
            "the oracle and purplecov read the same events"
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (ev, id) = line.split_once('\t').unwrap();
            hits.insert((ev.parse().unwrap(), id.to_string()));
        }
    }
    hits
}

/// Where our firing rules and the oracle's differ, per event, among the rules our router lets the
/// event reach (the oracle does no logsource routing).
fn disagreements(
    set: &RuleSet,
    events: &[Event],
    labels: &[String],
    oracle_hits: &BTreeSet<(usize, String)>,
) -> BTreeSet<Disagreement> {
    let mut sc = set.scratch();
    let mut found = BTreeSet::new();
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        set.matches(ev, &mut sc, &mut out);
        let ours: BTreeSet<String> = out
            .iter()
            .filter_map(|&r| set.rules()[r].meta.id.clone())
            .collect();
        let routed: BTreeSet<String> = set
            .routed(ev, &mut sc)
            .into_iter()
            .filter_map(|r| set.rules()[r].meta.id.clone())
            .collect();
        let theirs: BTreeSet<String> = oracle_hits
            .range((i, String::new())..(i + 1, String::new()))
            .filter(|(_, id)| routed.contains(id))
            .map(|(_, id)| id.clone())
            .collect();
        for (side, ids) in [
            ("ours", ours.difference(&theirs)),
            ("oracle", theirs.difference(&ours)),
        ] {
            for id in ids {
                found.insert(Disagreement {
                    event: labels[i].clone(),
                    rule_id: id.clone(),
                    side: side.into(),
                });
            }
        }
    }
    found
}

/// Checks `found` against the documented list in `tests/<listing>` (5 tab-separated columns: event,
/// rule id, side, the conformance case that pins our answer, reason): nothing unexplained, nothing
/// stale, every named conformance case exists.
fn assert_listed(found: &BTreeSet<Disagreement>, listing: &str, n_events: usize) {
    let listed_text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(listing),
    )
    .unwrap();
    let conformance = conformance_case_names();
    let mut listed = BTreeSet::new();
    for line in listed_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            cols.len() >= 5,
            "{listing}: 5 tab-separated columns: {line}"
        );
        assert!(
            conformance.contains(cols[3]),
            "{listing} names conformance case '{}', which does not exist",
            cols[3]
        );
        listed.insert(Disagreement {
            event: cols[0].into(),
            rule_id: cols[1].into(),
            side: cols[2].into(),
        });
    }
    let unexplained: Vec<_> = found.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(found).collect();
    eprintln!(
        "oracle comparison ({listing}): {n_events} events, {} disagreements, {} unexplained, {} stale",
        found.len(),
        unexplained.len(),
        stale.len()
    );
    let show = |ds: &[&Disagreement]| {
        ds.iter()
            .map(|d| format!("{}\t{}\t{}", d.event, d.rule_id, d.side))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "unexplained disagreements:\n{}\nlisted but no longer seen:\n{}",
        show(&unexplained),
        show(&stale)
    );
}

fn oracle_path() -> Option<std::ffi::OsString> {
    let oracle = std::env::var_os("PURPLECOV_ORACLE");
    if oracle.is_none() {
        eprintln!("skipped: PURPLECOV_ORACLE not set (the built sigma-oracle binary)");
    }
    oracle
}

#[test]
fn firing_rules_agree_with_the_independent_evaluator() {
    let Some(reference) = reference() else { return };
    let Some(oracle) = oracle_path() else { return };
    let set = all_rules(&reference);
    let cases = regression_cases(&reference);
    let mut files: Vec<PathBuf> = cases.iter().map(|c| c.json.clone()).collect();
    files.sort();
    files.dedup();
    // Our events, with the file and index each came from.
    let mut events = Vec::new();
    let mut labels = Vec::new();
    let reg = reference.join("sigma/regression_data");
    for f in &files {
        for (i, e) in read_events(f).into_iter().enumerate() {
            labels.push(format!("{}#{i}", f.strip_prefix(&reg).unwrap().display()));
            events.push(e);
        }
    }
    let hits = oracle_hits(&oracle, &reference, &files, events.len());
    let found = disagreements(set, &events, &labels, &hits);
    assert_listed(&found, "oracle_disagreements.tsv", events.len());
}

/// The same comparison on the real recordings of the reference data: every record of every EVTX
/// file under `telemetry/`, as the evtx crate writes it in JSON (which both engines read), against
/// every SigmaHQ rule folder.
#[test]
fn firing_rules_on_real_recordings_agree_with_the_independent_evaluator() {
    let Some(reference) = reference() else { return };
    let Some(oracle) = oracle_path() else { return };
    let set = all_rules(&reference);
    let telemetry = reference.join("telemetry");
    let mut files = Vec::new();
    files_named(&telemetry, ".evtx", &mut files);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("recordings.jsonl");
    let mut text = String::new();
    let mut labels = Vec::new();
    for f in &files {
        let Ok(parser) = evtx::EvtxParser::from_path(f) else {
            continue;
        };
        let mut parser = parser.with_configuration(
            evtx::ParserSettings::new()
                .num_threads(1)
                .separate_json_attributes(false),
        );
        // Records the crate cannot parse are left out of both sides.
        for (i, rec) in parser.records_json_value().flatten().enumerate() {
            text.push_str(&serde_json::to_string(&rec.data).unwrap());
            text.push('\n');
            labels.push(format!(
                "{}#{i}",
                f.strip_prefix(&telemetry).unwrap().display()
            ));
        }
    }
    std::fs::write(&jsonl, &text).unwrap();
    let read = read::read_json_text(&text, &jsonl, 0);
    assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
    assert_eq!(read.events.len(), labels.len());
    assert!(
        labels.len() > 9000,
        "expected every recording, read {}",
        labels.len()
    );
    let hits = oracle_hits(
        &oracle,
        &reference,
        std::slice::from_ref(&jsonl),
        labels.len(),
    );
    let found = disagreements(set, &read.events, &labels, &hits);
    assert_listed(&found, "oracle_disagreements_recordings.tsv", labels.len());
}

fn conformance_case_names() -> BTreeSet<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut names = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let v: serde_norway::Value =
                serde_norway::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            for c in v["cases"].as_sequence().unwrap() {
                if let Some(n) = c["name"].as_str() {
                    names.insert(n.to_string());
                }
            }
        }
    }
    names
}
