//! Sigma 2.1 conformance suite: every case in tests/conformance/*.yaml (format in
//! tests/conformance/README.md) is run through the engine, once with the literal pre-filter and once
//! without it, and must give the answer the case states.

use purplecov::sigma::{Options, Placeholders, RuleKind, RuleSet, RuleStatus};
use purplecov::telemetry::{Event, Value};
use purplecov::Severity;
use serde_norway::Value as Yaml;
use std::path::PathBuf;

fn to_value(v: &Yaml) -> Value {
    match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Yaml::String(s) => Value::Str(s.clone()),
        Yaml::Sequence(s) => Value::List(s.iter().map(to_value).collect()),
        Yaml::Mapping(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), to_value(v)))
                .collect(),
        ),
        Yaml::Tagged(t) => to_value(&t.value),
    }
}

fn to_event(v: &Yaml) -> Event {
    let m = v.as_mapping().expect("event must be a mapping");
    Event::from_fields(m.iter().map(|(k, v)| {
        let name = match k {
            Yaml::String(s) => s.clone(),
            other => serde_norway::to_string(other).unwrap().trim().to_string(),
        };
        (name, to_value(v))
    }))
}

fn placeholders(case: &Yaml) -> Placeholders {
    let mut out = Placeholders::new();
    if let Some(m) = case.get("placeholders").and_then(Yaml::as_mapping) {
        for (k, v) in m {
            let vals = match v {
                Yaml::Sequence(s) => s
                    .iter()
                    .map(|x| {
                        x.as_str().map(str::to_string).unwrap_or_else(|| {
                            serde_norway::to_string(x).unwrap().trim().to_string()
                        })
                    })
                    .collect(),
                other => vec![other.as_str().unwrap_or_default().to_string()],
            };
            out.insert(k.as_str().unwrap_or_default().to_string(), vals);
        }
    }
    out
}

/// Runs one case; returns a description of each way it failed.
fn run_case(file: &str, case: &Yaml) -> Vec<String> {
    let name = case
        .get("name")
        .and_then(Yaml::as_str)
        .unwrap_or("?")
        .to_string();
    let rule = case.get("rule").and_then(Yaml::as_str).unwrap_or_default();
    let routing = case.get("routing").and_then(Yaml::as_bool).unwrap_or(false);
    let mut fails = Vec::new();
    for prefilter in [true, false] {
        let opts = Options {
            placeholders: placeholders(case),
            routing,
            prefilter,
            ..Options::default()
        };
        let set = RuleSet::from_yaml_str(&format!("{file}#{name}"), rule, &opts);
        let errors: Vec<String> = set
            .diagnostics()
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect();
        let detections: Vec<_> = set
            .rules()
            .iter()
            .filter(|r| r.kind == RuleKind::Detection)
            .collect();
        if let Some(want) = case.get("load_error").and_then(Yaml::as_str) {
            let want = want.to_lowercase();
            if !errors.iter().any(|e| e.to_lowercase().contains(&want)) {
                fails.push(format!(
                    "{name}: expected a load error containing '{want}', got {errors:?}"
                ));
            }
            if detections.iter().any(|r| r.status == RuleStatus::Ready) {
                fails.push(format!(
                    "{name}: expected the rule not to load, but it is ready"
                ));
            }
            return fails;
        }
        if let Some(want) = case.get("unsupported").and_then(Yaml::as_str) {
            let want = want.to_lowercase();
            let ok = detections.iter().any(|r| {
                matches!(&r.status,
                RuleStatus::Unsupported { reason, .. } if reason.to_lowercase().contains(&want))
            });
            if !ok {
                let st: Vec<_> = detections
                    .iter()
                    .map(|r| format!("{:?}", r.status))
                    .collect();
                fails.push(format!(
                    "{name}: expected unsupported containing '{want}', got {st:?} {errors:?}"
                ));
            }
            return fails;
        }
        if !errors.is_empty() {
            fails.push(format!("{name}: unexpected load errors {errors:?}"));
            return fails;
        }
        let mut sc = set.scratch();
        let mut out = Vec::new();
        let events = case
            .get("events")
            .and_then(Yaml::as_sequence)
            .cloned()
            .unwrap_or_default();
        if events.is_empty() {
            fails.push(format!("{name}: no events"));
        }
        for (i, e) in events.iter().enumerate() {
            let ev = to_event(e.get("event").expect("event"));
            let want = e.get("match").and_then(Yaml::as_bool).expect("match: bool");
            set.matches(&ev, &mut sc, &mut out);
            if out.is_empty() == want {
                fails.push(format!(
                    "{name}: event #{i} {:?}: expected match={want} (prefilter={prefilter})",
                    ev.fields
                ));
            }
        }
    }
    fails
}

#[test]
fn conformance_cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut fails = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let doc: Yaml =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let fname = f.file_name().unwrap().to_string_lossy().to_string();
        for case in doc
            .get("cases")
            .and_then(Yaml::as_sequence)
            .expect("cases list")
        {
            total += 1;
            let name = case
                .get("name")
                .and_then(Yaml::as_str)
                .unwrap_or("?")
                .to_string();
            assert!(names.insert(name.clone()), "duplicate case name {name}");
            fails.extend(
                run_case(&fname, case)
                    .into_iter()
                    .map(|m| format!("{fname}: {m}")),
            );
        }
    }
    assert!(total > 0, "no conformance cases found");
    eprintln!("conformance: {total} cases, {} failures", fails.len());
    assert!(
        fails.is_empty(),
        "{} failures:\n{}",
        fails.len(),
        fails.join("\n")
    );
}
