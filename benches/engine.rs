//! Criterion benchmarks of the Sigma engine, load cost apart from per-event cost:
//! - `compile`: loading and compiling the SigmaHQ Windows rules (rules/s);
//! - `eval`: one thread evaluating those rules on the SigmaHQ regression events (events/s);
//! - `eval/..._with_correlation`: the same plus an event_count correlation over a process_creation
//!   rule (every process creation event feeds it): per-event observation and the window pass, to
//!   compare with the single-event lane beside it;
//! - `read`: parsing the same events from JSONL (events/s).
//!
//! Needs `PURPLECOV_REFERENCE` (the shared reference data); without it the benchmarks say so and do
//! nothing. Run: `PURPLECOV_REFERENCE=../shared/reference cargo bench --bench engine`.
//! The whole-process comparison with the independent evaluator is `scripts/bench-vs-oracle.sh`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use purplecov::sigma::{Options, RuleSet};
use purplecov::telemetry::{read, Event};
use std::path::{Path, PathBuf};

fn reference() -> Option<PathBuf> {
    let r = std::env::var_os("PURPLECOV_REFERENCE").map(PathBuf::from);
    if r.is_none() {
        eprintln!("skipped: PURPLECOV_REFERENCE not set");
    }
    r
}

/// The regression events as one JSONL text.
fn regression_jsonl(reference: &Path) -> String {
    let mut files = Vec::new();
    collect(&reference.join("sigma/regression_data"), &mut files);
    files.sort();
    let mut out = String::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for v in serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .flatten()
        {
            out.push_str(&v.to_string());
            out.push('\n');
        }
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn benches(c: &mut Criterion) {
    let Some(reference) = reference() else {
        return;
    };
    let rules = vec![reference.join("sigma/rules/windows")];
    let jsonl = regression_jsonl(&reference);
    let events: Vec<Event> = read::read_json_text(&jsonl, Path::new("bench.jsonl"), 0).events;

    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    let set = RuleSet::load(&rules, &Options::default());
    g.throughput(Throughput::Elements(set.rules().len() as u64));
    g.bench_function("sigmahq_windows", |b| {
        b.iter(|| RuleSet::load(&rules, &Options::default()))
    });
    g.finish();

    let mut g = c.benchmark_group("eval");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, prefilter) in [("prefilter", true), ("no_prefilter", false)] {
        let set = RuleSet::load(
            &rules,
            &Options {
                prefilter,
                ..Options::default()
            },
        );
        let mut sc = set.scratch();
        let mut out = Vec::new();
        g.bench_function(format!("sigmahq_windows_x_regression_{name}"), |b| {
            b.iter(|| {
                let mut n = 0;
                for ev in &events {
                    set.matches(ev, &mut sc, &mut out);
                    n += out.len();
                }
                n
            })
        });
    }

    // Correlation lane: the same rules plus an event_count correlation over a rule that matches
    // every Windows process creation.
    let corr_file =
        std::env::temp_dir().join(format!("purplecov-bench-corr-{}.yml", std::process::id()));
    let corr_rules = "title: Bench many processes per host
correlation:
    type: event_count
    rules:
        - bench_process_creation
    group-by:
        - Computer
    timespan: 5m
    condition:
        gte: 5
---
title: Bench any process creation
name: bench_process_creation
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|contains: '\\'
    condition: selection
";
    if std::fs::write(&corr_file, corr_rules).is_ok() {
        let mut with = rules.clone();
        with.push(corr_file.clone());
        let set = RuleSet::load(&with, &Options::default());
        let mut sc = set.scratch();
        let mut out = Vec::new();
        g.bench_function("sigmahq_windows_x_regression_with_correlation", |b| {
            b.iter(|| {
                let mut st = set.correlation_state();
                let mut n = 0;
                for (i, ev) in events.iter().enumerate() {
                    set.matches(ev, &mut sc, &mut out);
                    set.observe(&mut st, i, ev, &out);
                    n += out.len();
                }
                n + set.correlate(st).hits.len()
            })
        });
        let _ = std::fs::remove_file(&corr_file);
    }
    g.finish();

    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("regression_jsonl", |b| {
        b.iter(|| {
            read::read_json_text(&jsonl, Path::new("bench.jsonl"), 0)
                .events
                .len()
        })
    });
    g.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
