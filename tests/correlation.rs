//! Correlation rules end to end: every example of the specification's correlation tests (fixtures in
//! tests/fixtures/correlation/, each completed with base rules so it has a known answer), window
//! edges, group isolation, order, chaining, aliases, missing group-by fields, the state cap, the
//! `generate` flag and the bad-input diagnostics.
//!
//! The independent evaluator (../shared/tools/sigma-oracle, rsigma-eval's single-event `Engine`)
//! does not evaluate correlations, so there is no oracle comparison here; the answers are worked out
//! by hand in each test.

mod common;
use common::purplecov;
use purplecov::diag::Severity;
use purplecov::sigma::{CorrelationHit, Options, RuleKind, RuleSet, RuleStatus};
use purplecov::telemetry::{Event, Value};
use std::path::PathBuf;

const DIR: &str = "tests/fixtures/correlation";

fn opts() -> Options {
    Options {
        routing: false,
        ..Options::default()
    }
}

fn load(file: &str) -> RuleSet {
    RuleSet::load(&[PathBuf::from(DIR).join(file)], &opts())
}

fn yaml(text: &str) -> RuleSet {
    RuleSet::from_yaml_str("inline.yml", text, &opts())
}

/// 2024-01-01T00:00:00Z plus `secs`, as RFC 3339 text.
fn at(secs: i64) -> Value {
    let t = jiff::Timestamp::from_second(1_704_067_200 + secs).expect("valid time");
    Value::Str(t.to_string())
}

fn ev(secs: i64, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::from_fields(fields.iter().map(|(k, v)| (*k, Value::Str(v.to_string()))));
    e.set("@timestamp".into(), at(secs));
    e
}

/// Correlation hits as (title, group values, events).
fn run(set: &RuleSet, events: &[Event]) -> Vec<(String, Vec<Option<String>>, Vec<usize>)> {
    let out = set.correlate_events(events, &set.evaluate(events));
    out.hits.iter().map(|h| describe(set, h)).collect()
}

fn describe(set: &RuleSet, h: &CorrelationHit) -> (String, Vec<Option<String>>, Vec<usize>) {
    (
        set.rules()[h.rule].meta.title.clone(),
        h.group.iter().map(|(_, v)| v.clone()).collect(),
        h.events.clone(),
    )
}

fn g(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

fn ready(set: &RuleSet) {
    for r in set.rules() {
        assert_eq!(
            r.status,
            RuleStatus::Ready,
            "{}: {:?}",
            r.meta.title,
            r.diagnostics
        );
    }
    assert!(set.diagnostics().is_empty(), "{:?}", set.diagnostics());
}

// ---------------------------------------------------------------- the specification's examples

#[test]
fn spec_event_count_fires_at_the_hundredth_failure_per_computer() {
    let set = load("spec_event_count.yml");
    ready(&set);
    // 100 failures on A within the hour (one every 30 s: 49.5 min), 99 on B, interleaved.
    let mut events = Vec::new();
    for i in 0..100 {
        events.push(ev(i * 30, &[("EventID", "4625"), ("ComputerName", "A")]));
        if i < 99 {
            events.push(ev(i * 30, &[("EventID", "4625"), ("ComputerName", "B")]));
        }
    }
    let hits = run(&set, &events);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].1, g(&["A"]));
    assert_eq!(hits[0].2.len(), 100);
    assert!(hits[0].2.iter().all(|&e| e % 2 == 0));
}

#[test]
fn spec_event_count_spread_over_more_than_an_hour_does_not_fire() {
    let set = load("spec_event_count.yml");
    // 100 failures, one a minute: at most 61 fit in any one-hour window.
    let events: Vec<Event> = (0..100)
        .map(|i| ev(i * 60, &[("EventID", "4625"), ("ComputerName", "A")]))
        .collect();
    assert!(run(&set, &events).is_empty());
}

#[test]
fn spec_event_count_ecs_groups_by_a_dotted_field() {
    let set = load("spec_event_count_ecs.yml");
    ready(&set);
    let mut events: Vec<Event> = (0..100)
        .map(|i| {
            ev(
                i,
                &[
                    ("event.category", "network"),
                    ("dns.question.name", "evil.example"),
                ],
            )
        })
        .collect();
    events.push(ev(
        101,
        &[
            ("event.category", "network"),
            ("dns.question.name", "ok.example"),
        ],
    ));
    let hits = run(&set, &events);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].1, g(&["evil.example"]));
    assert_eq!(hits[0].2, (0..100).collect::<Vec<_>>());
}

#[test]
fn spec_value_count_counts_distinct_users_per_computer_and_workstation() {
    let set = load("spec_value_count.yml");
    ready(&set);
    let mut events = Vec::new();
    // 100 distinct users on (DC1, WS1); 99 distinct users (each twice) on (DC1, WS2).
    for i in 0..100 {
        let user = format!("user{i}");
        events.push(ev(
            i,
            &[
                ("EventID", "4625"),
                ("ComputerName", "DC1"),
                ("WorkstationName", "WS1"),
                ("User", &user),
            ],
        ));
    }
    for i in 0..198 {
        let user = format!("user{}", i % 99);
        events.push(ev(
            i,
            &[
                ("EventID", "4625"),
                ("ComputerName", "DC1"),
                ("WorkstationName", "WS2"),
                ("User", &user),
            ],
        ));
    }
    let hits = run(&set, &events);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].1, g(&["DC1", "WS1"]));
    assert_eq!(hits[0].2, (0..100).collect::<Vec<_>>());
}

fn recon(secs: i64, image: &str, host: &str, user: &str) -> Event {
    ev(
        secs,
        &[
            ("Image", &format!("C:\\Windows\\System32\\{image}")),
            ("ComputerName", host),
            ("User", user),
        ],
    )
}

#[test]
fn spec_temporal_needs_all_three_in_any_order_within_five_minutes() {
    let set = load("spec_temporal.yml");
    ready(&set);
    let events = vec![
        recon(0, "net.exe", "H1", "u"),
        recon(60, "whoami.exe", "H1", "u"),
        recon(300, "ipconfig.exe", "H1", "u"), // exactly 5 min after the first: inside
        // Same three on H2, but 301 s apart: never all in one window.
        recon(0, "whoami.exe", "H2", "u"),
        recon(100, "ipconfig.exe", "H2", "u"),
        recon(301, "net.exe", "H2", "u"),
    ];
    let hits = run(&set, &events);
    assert_eq!(
        hits,
        vec![("Recon".to_string(), g(&["H1", "u"]), vec![0, 1, 2])]
    );
}

#[test]
fn spec_temporal_ordered_needs_the_listed_order() {
    let set = load("spec_temporal_ordered.yml");
    ready(&set);
    let events = vec![
        // H1: a, b, c in order.
        recon(0, "whoami.exe", "H1", "u"),
        recon(10, "ipconfig.exe", "H1", "u"),
        recon(20, "net.exe", "H1", "u"),
        // H2: c, b, a: all three present, wrong order.
        recon(0, "net.exe", "H2", "u"),
        recon(10, "ipconfig.exe", "H2", "u"),
        recon(20, "whoami.exe", "H2", "u"),
    ];
    let hits = run(&set, &events);
    assert_eq!(
        hits,
        vec![("Recon ordered".to_string(), g(&["H1", "u"]), vec![0, 1, 2])]
    );
    // The same H2 events under the unordered type fire.
    let set = load("spec_temporal.yml");
    assert_eq!(run(&set, &events).len(), 2);
}

#[test]
fn spec_value_sum_fires_over_a_megabyte_per_source_and_user() {
    let set = load("spec_value_sum.yml");
    ready(&set);
    let post = |s, ip: &str, user: &str, bytes: &str| {
        ev(
            s,
            &[
                ("cs-method", "POST"),
                ("SourceIP", ip),
                ("User", user),
                ("bytes_sent", bytes),
            ],
        )
    };
    let events = vec![
        post(0, "10.0.0.1", "alice", "600000"),
        post(60, "10.0.0.1", "bob", "600000"),
        post(120, "10.0.0.1", "alice", "400000"), // alice: 1,000,000, not > 1,000,000
        post(180, "10.0.0.1", "alice", "1"),      // 1,000,001
        post(200, "10.0.0.2", "alice", "999999"),
    ];
    let hits = run(&set, &events);
    assert_eq!(
        hits,
        vec![(
            "Possible Exfiltration to Website".to_string(),
            g(&["10.0.0.1", "alice"]),
            vec![0, 2, 3]
        )]
    );
}

#[test]
fn spec_value_avg_compares_the_window_average() {
    let set = load("spec_value_avg.yml");
    ready(&set);
    let fw = |s, user: &str, b: &str| {
        ev(
            s,
            &[
                ("action", "allow"),
                ("SourceIP", "10.0.0.9"),
                ("User", user),
                ("BytesOut", b),
            ],
        )
    };
    let events = vec![
        fw(0, "a", "400"),
        fw(10, "a", "600"), // average 500: not > 500
        fw(20, "a", "900"), // average 633
        fw(0, "b", "500"),
        fw(10, "b", "not a number"), // ignored: average stays 500
    ];
    let hits = run(&set, &events);
    assert_eq!(
        hits,
        vec![(
            "Suspicious average network traffic".to_string(),
            g(&["10.0.0.9", "a"]),
            vec![0, 1, 2]
        )]
    );
}

#[test]
fn spec_value_percentile_on_a_text_field_never_fires() {
    // The specification's example aggregates `Image`, which is not a number; the percentile of no
    // numeric value is undefined, so the correlation cannot fire (docs/sigma-engine.md).
    let set = load("spec_value_percentile.yml");
    ready(&set);
    let events: Vec<Event> = (0..10)
        .map(|i| ev(i, &[("Image", "C:\\x.exe"), ("ComputerName", "H")]))
        .collect();
    assert!(run(&set, &events).is_empty());
}

#[test]
fn value_percentile_and_median_on_numbers() {
    let rule = |ty: &str, extra: &str| {
        format!(
            "title: P\ncorrelation:\n  type: {ty}\n  rules: [base]\n  group-by: [Host]\n  timespan: 1h\n  condition:\n    field: Size\n{extra}    gte: 90\n---\ntitle: Base\nname: base\nlogsource: {{category: test}}\ndetection:\n  sel:\n    Kind: x\n  condition: sel\n"
        )
    };
    let events: Vec<Event> = [10, 20, 95, 96, 97]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            ev(
                i as i64,
                &[("Kind", "x"), ("Host", "h"), ("Size", &s.to_string())],
            )
        })
        .collect();
    // Median (50th, nearest rank) of the first three is 20, of the first five 95.
    let set = yaml(&rule("value_median", ""));
    ready(&set);
    assert_eq!(run(&set, &events)[0].2, vec![0, 1, 2, 3, 4]);
    // 90th percentile of [10, 20, 95] is 95: fires at the third event.
    let set = yaml(&rule("value_percentile", "    percentile: 90\n"));
    ready(&set);
    let hits = run(&set, &events);
    assert_eq!(hits[0].2, vec![0, 1, 2]);
    // Default percentile is 50, like the median.
    let set = yaml(&rule("value_percentile", ""));
    assert_eq!(run(&set, &events)[0].2, vec![0, 1, 2, 3, 4]);
}

#[test]
fn spec_brute_force_chain_fires_on_ten_failures_then_a_success() {
    let set = load("spec_brute_force.yml");
    ready(&set);
    let fail = |s, user: &str| ev(s, &[("EventID", "4625"), ("User", user)]);
    let ok = |s, user: &str| ev(s, &[("EventID", "4624"), ("User", user)]);
    let mut events: Vec<Event> = (0..10).map(|i| fail(i * 10, "alice")).collect(); // 0..=9
    events.push(ok(120, "alice")); // 10
    events.extend((0..9).map(|i| fail(i * 10, "bob"))); // 11..=19: only nine
    events.push(ok(120, "bob")); // 20
    events.push(ok(0, "carol")); // 21: success first ...
    events.extend((0..10).map(|i| fail(10 + i, "carol"))); // 22..=31: ... then failures
    let out = set.correlate_events(&events, &set.evaluate(&events));
    let hits: Vec<_> = out.hits.iter().map(|h| describe(&set, h)).collect();
    let outer = "Correlation - Multiple Failed Logins Followed by Successful Login";
    let inner = "Multiple failed logons";
    assert_eq!(
        hits,
        vec![
            (inner.to_string(), g(&["alice"]), (0..10).collect()),
            (outer.to_string(), g(&["alice"]), (0..11).collect()),
            (inner.to_string(), g(&["carol"]), (22..32).collect()),
        ]
    );
    // The chained hit's time span covers the inner hit and the success.
    let o = &out.hits[1];
    assert_eq!(o.last_ms - o.first_ms, 120_000);
}

#[test]
fn spec_aliases_group_across_different_field_names() {
    let set = load("spec_aliases.yml");
    ready(&set);
    let err = |s, src: &str, dst: &str| {
        ev(
            s,
            &[
                ("http.response.status_code", "500"),
                ("source.ip", src),
                ("destination.ip", dst),
            ],
        )
    };
    let conn = |s, src: &str, dst: &str| {
        ev(
            s,
            &[
                ("event.category", "network"),
                ("event.type", "connection"),
                ("event.outcome", "success"),
                ("source.ip", src),
                ("destination.ip", dst),
            ],
        )
    };
    let events = vec![
        err(0, "203.0.113.5", "10.0.0.1"), // internal 10.0.0.1, remote 203.0.113.5
        conn(5, "10.0.0.1", "203.0.113.5"), // internal 10.0.0.1 (source), remote 203.0.113.5
        conn(6, "203.0.113.5", "10.0.0.1"), // same addresses, reversed: another group
        err(20, "203.0.113.7", "10.0.0.2"),
        conn(31, "10.0.0.2", "203.0.113.7"), // 11 s later: outside the 10 s window
    ];
    let hits = run(&set, &events);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].1, g(&["10.0.0.1", "203.0.113.5"]));
    assert_eq!(hits[0].2, vec![0, 1]);
    assert_eq!(
        set.correlate_events(&events, &set.evaluate(&events)).hits[0].group[0].0,
        "internal_ip"
    );
}

// ---------------------------------------------------------------- edges

const COUNT2: &str = "title: Two in a minute
correlation:
  type: event_count
  rules: [base]
  group-by: [Host]
  timespan: 1m
  condition:
    gte: 2
---
title: Base
name: base
logsource: {category: test}
detection:
  sel:
    Kind: x
  condition: sel
";

fn x(secs: i64, host: &str) -> Event {
    ev(secs, &[("Kind", "x"), ("Host", host)])
}

#[test]
fn window_includes_exactly_the_timespan_and_not_one_second_more() {
    let set = yaml(COUNT2);
    ready(&set);
    assert_eq!(run(&set, &[x(0, "h"), x(60, "h")]).len(), 1);
    assert!(run(&set, &[x(0, "h"), x(61, "h")]).is_empty());
}

#[test]
fn groups_are_isolated() {
    let set = yaml(COUNT2);
    assert!(run(&set, &[x(0, "a"), x(1, "b"), x(2, "c")]).is_empty());
    let hits = run(&set, &[x(0, "a"), x(1, "b"), x(2, "a")]);
    assert_eq!(
        hits,
        vec![("Two in a minute".to_string(), g(&["a"]), vec![0, 2])]
    );
}

#[test]
fn out_of_order_input_gives_the_same_answer() {
    let set = yaml(COUNT2);
    // Events 0 and 2 are 30 s apart once sorted by time; event 1 is far away.
    let hits = run(&set, &[x(100, "h"), x(500, "h"), x(70, "h")]);
    assert_eq!(
        hits,
        vec![("Two in a minute".to_string(), g(&["h"]), vec![0, 2])]
    );
}

#[test]
fn every_input_order_gives_the_same_hits() {
    let set = load("spec_temporal.yml");
    let base = vec![
        recon(0, "net.exe", "H1", "u"),
        recon(60, "whoami.exe", "H1", "u"),
        recon(200, "ipconfig.exe", "H1", "u"),
        recon(250, "ipconfig.exe", "H2", "u"),
        recon(400, "whoami.exe", "H1", "u"),
        recon(420, "net.exe", "H2", "u"),
        recon(430, "whoami.exe", "H2", "u"),
        recon(500, "ipconfig.exe", "H1", "u"),
        recon(510, "net.exe", "H1", "u"),
    ];
    // Hits as (group, original event numbers), whatever order the events come in.
    let canon = |perm: &[usize]| {
        let events: Vec<Event> = perm.iter().map(|&i| base[i].clone()).collect();
        let mut v: Vec<(Vec<Option<String>>, Vec<usize>)> = run(&set, &events)
            .into_iter()
            .map(|(_, grp, evs)| {
                let mut o: Vec<usize> = evs.iter().map(|&e| perm[e]).collect();
                o.sort_unstable();
                (grp, o)
            })
            .collect();
        v.sort();
        v
    };
    let sorted: Vec<usize> = (0..base.len()).collect();
    let expected = canon(&sorted);
    assert_eq!(
        expected,
        vec![
            (g(&["H1", "u"]), vec![0, 1, 2]),
            (g(&["H1", "u"]), vec![4, 7, 8]),
            (g(&["H2", "u"]), vec![3, 5, 6]),
        ]
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..50 {
        let mut perm = sorted.clone();
        for i in (1..perm.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            perm.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        assert_eq!(canon(&perm), expected, "{perm:?}");
    }
}

#[test]
fn a_hit_consumes_its_events() {
    let set = yaml(COUNT2);
    // Four events within a minute: two hits, not three.
    let hits = run(&set, &[x(0, "h"), x(1, "h"), x(2, "h"), x(3, "h")]);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].2, vec![0, 1]);
    assert_eq!(hits[1].2, vec![2, 3]);
}

#[test]
fn missing_group_by_field_is_a_null_group() {
    let set = yaml(COUNT2);
    let no_host = |s| ev(s, &[("Kind", "x")]);
    let hits = run(&set, &[no_host(0), x(1, "h"), no_host(2)]);
    assert_eq!(
        hits,
        vec![("Two in a minute".to_string(), vec![None], vec![0, 2])]
    );
}

#[test]
fn empty_group_by_puts_every_event_in_one_group() {
    let set = yaml(&COUNT2.replace("group-by: [Host]", "group-by: []"));
    ready(&set);
    let hits = run(&set, &[x(0, "a"), x(1, "b")]);
    assert_eq!(hits.len(), 1);
    assert!(hits[0].1.is_empty());
}

#[test]
fn events_without_time_are_not_counted_and_say_so() {
    let set = yaml(COUNT2);
    let mut a = x(0, "h");
    a.fields.retain(|(k, _)| k != "@timestamp");
    let b = x(1, "h");
    let events = [a, b];
    let out = set.correlate_events(&events, &set.evaluate(&events));
    assert!(out.hits.is_empty());
    assert_eq!(out.diagnostics.len(), 1);
    assert!(out.diagnostics[0]
        .message
        .contains("without a readable timestamp"));
}

#[test]
fn time_from_every_supported_field() {
    let set = yaml(COUNT2);
    let with = |k: &str, v: Value| {
        let mut e = Event::from_fields([
            ("Kind", Value::Str("x".into())),
            ("Host", Value::Str("h".into())),
        ]);
        e.set(k.into(), v);
        e
    };
    for (k, a, b) in [
        (
            "TimeCreated_SystemTime",
            "2024-01-01T00:00:00.000Z",
            "2024-01-01T00:01:00.000Z",
        ),
        (
            "UtcTime",
            "2024-01-01 00:00:00.000",
            "2024-01-01 00:01:00.000",
        ),
        (
            "Timestamp",
            "2024-01-01T00:00:00.0000000Z",
            "2024-01-01T00:01:00Z",
        ),
        ("timestamp", "1704067200.120:11", "1704067260.120:12"),
        ("ts", "1704067200.5", "1704067260.5"),
    ] {
        let ok = [with(k, Value::Str(a.into())), with(k, Value::Str(b.into()))];
        assert_eq!(run(&set, &ok).len(), 1, "{k}");
    }
    let f = [
        with("ts", Value::Float(1704067200.0)),
        with("ts", Value::Float(1704067261.0)),
    ];
    assert!(run(&set, &f).is_empty());
}

#[test]
fn ranges_and_every_operator() {
    let cases: [(&str, &[usize]); 7] = [
        ("gt: 2", &[3]),
        ("gte: 2", &[2]),
        ("eq: 3", &[3]),
        ("gt: 2\n    lte: 4", &[3]),
        ("lt: 2", &[1]),
        ("lte: 1", &[1]),
        ("neq: 1", &[2]),
    ];
    for (cond, sizes) in cases {
        let set = yaml(&COUNT2.replace("gte: 2", cond));
        ready(&set);
        let events: Vec<Event> = (0..3).map(|i| x(i, "h")).collect();
        let hits = run(&set, &events);
        assert!(!hits.is_empty(), "{cond}");
        assert_eq!(hits[0].2.len(), sizes[0], "{cond}");
    }
}

#[test]
fn field_as_a_list_counts_distinct_tuples() {
    let set = yaml(
        "title: Pairs
correlation:
  type: value_count
  rules: [base]
  group-by: [Host]
  timespan: 1h
  condition:
    field: [User, Domain]
    gte: 3
---
title: Base
name: base
logsource: {category: test}
detection:
  sel:
    Kind: x
  condition: sel
",
    );
    ready(&set);
    let e = |s, u: &str, d: &str| {
        ev(
            s,
            &[("Kind", "x"), ("Host", "h"), ("User", u), ("Domain", d)],
        )
    };
    let two = [e(0, "a", "D1"), e(1, "a", "D1"), e(2, "b", "D1")];
    assert!(run(&set, &two).is_empty());
    let three = [e(0, "a", "D1"), e(1, "a", "D2"), e(2, "b", "D1")];
    assert_eq!(run(&set, &three).len(), 1);
}

#[test]
fn timespan_units() {
    for (ts, inside, outside) in [
        ("30s", 30, 31),
        ("2m", 120, 121),
        ("1h", 3600, 3601),
        ("1d", 86_400, 86_401),
        ("1w", 604_800, 604_801),
        ("1M", 2_629_746, 2_629_747),
        ("1y", 31_556_952, 31_556_953),
    ] {
        let set = yaml(&COUNT2.replace("timespan: 1m", &format!("timespan: {ts}")));
        ready(&set);
        assert_eq!(run(&set, &[x(0, "h"), x(inside, "h")]).len(), 1, "{ts}");
        assert!(run(&set, &[x(0, "h"), x(outside, "h")]).is_empty(), "{ts}");
    }
}

#[test]
fn state_cap_warns_and_bounds() {
    let set = yaml(COUNT2);
    let events: Vec<Event> = (0..5).map(|i| x(i * 1000, "h")).collect();
    let out = set.correlate_events_capped(&events, &set.evaluate(&events), 3);
    assert_eq!(out.diagnostics.len(), 1);
    assert_eq!(out.diagnostics[0].severity, Severity::Warning);
    assert!(out.diagnostics[0].message.contains("state cap of 3"));
}

#[test]
fn generate_decides_whether_base_rules_report_their_own_hits() {
    let set = yaml(COUNT2);
    let base = set
        .rules()
        .iter()
        .position(|r| r.meta.title == "Base")
        .unwrap_or(9);
    assert!(!set.reports(base));
    let set = yaml(&COUNT2.replace(
        "title: Two in a minute\n",
        "title: Two in a minute\ngenerate: true\n",
    ));
    ready(&set);
    assert!(set.reports(base));
    // A rule no correlation uses always reports.
    let set = yaml("title: Lone\nlogsource: {category: test}\ndetection:\n  sel:\n    Kind: x\n  condition: sel\n");
    assert!(set.reports(0));
}

#[test]
fn chaining_uses_only_the_outer_group_by() {
    // Inner groups by (Host, User); outer counts inner hits per Host.
    let set = yaml(
        "title: Outer
correlation:
  type: event_count
  rules: [inner]
  group-by: [Host]
  timespan: 10m
  condition:
    gte: 2
---
title: Inner
name: inner
correlation:
  type: event_count
  rules: [base]
  group-by: [Host, User]
  timespan: 1m
  condition:
    gte: 2
---
title: Base
name: base
logsource: {category: test}
detection:
  sel:
    Kind: x
  condition: sel
",
    );
    ready(&set);
    let e = |s, u: &str| ev(s, &[("Kind", "x"), ("Host", "h"), ("User", u)]);
    let events = [e(0, "a"), e(1, "a"), e(2, "b"), e(3, "b")];
    let hits = run(&set, &events);
    assert_eq!(
        hits,
        vec![
            ("Inner".to_string(), g(&["h", "a"]), vec![0, 1]),
            ("Inner".to_string(), g(&["h", "b"]), vec![2, 3]),
            ("Outer".to_string(), g(&["h"]), vec![0, 1, 2, 3]),
        ]
    );
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_correlations_are_located_and_the_rest_still_run() {
    let set = load("bad_inputs.yml");
    let path = format!("{DIR}/bad_inputs.yml");
    let diag = |needle: &str| {
        set.diagnostics()
            .iter()
            .find(|d| d.message.contains(needle))
            .unwrap_or_else(|| panic!("no diagnostic '{needle}' in {:?}", set.diagnostics()))
    };
    let unknown = diag("'no_such_rule', which is not loaded");
    assert_eq!(unknown.location.to_string(), format!("{path}:8"));
    let ts = diag("timespan '5 minutes'");
    assert_eq!(ts.location.to_string(), format!("{path}:23"));
    let conflict = diag("conflicting operators");
    assert_eq!(conflict.location.to_string(), format!("{path}:36"));
    let cycles: Vec<_> = set
        .diagnostics()
        .iter()
        .filter(|d| d.message.contains("cycle"))
        .map(|d| d.location.to_string())
        .collect();
    assert_eq!(cycles, vec![format!("{path}:45"), format!("{path}:58")]);
    for d in set.diagnostics() {
        assert_eq!(d.severity, Severity::Error, "{d:?}");
    }
    let status = |title: &str| {
        set.rules()
            .iter()
            .find(|r| r.meta.title == title)
            .map(|r| r.status.clone())
    };
    for t in [
        "Unknown reference",
        "Bad timespan",
        "Conflicting operators",
        "Cycle A",
        "Cycle B",
    ] {
        assert_eq!(status(t), Some(RuleStatus::Invalid), "{t}");
    }
    assert_eq!(status("Still works"), Some(RuleStatus::Ready));
    let events: Vec<Event> = (0..2)
        .map(|i| ev(i, &[("EventID", "4625"), ("User", "u")]))
        .collect();
    let hits = run(&set, &events);
    assert_eq!(
        hits,
        vec![("Still works".to_string(), g(&["u"]), vec![0, 1])]
    );
}

#[test]
fn a_correlation_over_an_unsupported_rule_is_unsupported() {
    let set = yaml(
        "title: C
correlation:
  type: event_count
  rules: [base]
  group-by: [Host]
  timespan: 1m
  condition:
    gte: 2
---
title: Base
name: base
logsource: {category: test}
detection:
  sel:
    CommandLine|expand: '%nope%'
  condition: sel
",
    );
    let c = &set.rules()[0];
    assert_eq!(c.kind, RuleKind::Correlation);
    match &c.status {
        RuleStatus::Unsupported { reason, location } => {
            assert!(reason.contains("'Base'"), "{reason}");
            assert_eq!(location.line, 4);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_keys_and_bad_values_are_errors() {
    for (text, needle) in [
        ("correlation:\n  type: event_count\n  rules: [b]\n  group-by: [H]\n  timespan: 1m\n", "needs an operator"),
        ("correlation:\n  type: nope\n  rules: [b]\n  timespan: 1m\n", "unknown correlation type"),
        ("correlation:\n  type: value_sum\n  rules: [b]\n  timespan: 1m\n  condition:\n    gt: 1\n", "needs 'field'"),
        ("correlation:\n  type: event_count\n  rules: [b]\n  condition:\n    gt: 1\n", "needs a 'timespan'"),
        ("correlation:\n  type: event_count\n  timespan: 1m\n  condition:\n    gt: 1\n", "needs 'rules'"),
        ("correlation:\n  type: event_count\n  rules: [b]\n  timespan: 1m\n  condition:\n    between: 1\n", "unknown condition operator"),
        ("correlation:\n  type: event_count\n  rules: [b]\n  timespan: 1m\n  condition:\n    gte: many\n", "must be a number"),
    ] {
        let set = yaml(&format!("title: T\n{text}"));
        assert_eq!(set.rules()[0].status, RuleStatus::Invalid, "{text}");
        assert!(
            set.diagnostics().iter().any(|d| d.message.contains(needle) && d.location.line > 0),
            "{needle}: {:?}",
            set.diagnostics()
        );
    }
}

// ---------------------------------------------------------------- CLI

#[test]
fn eval_prints_correlation_hits_with_their_events_and_group() {
    let rules = format!("{DIR}/t1020_rules.yml");
    let input = format!("{DIR}/t1020_events.jsonl");
    let args = ["eval", "--no-routing", "--rules", &rules, "--input", &input];
    let mut jsonl = args.to_vec();
    jsonl.extend(["--format", "jsonl"]);
    let run = purplecov(&jsonl);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    // The base rules are used only by the correlation (generate: false): not reported alone.
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(lines[0]["event"], serde_json::json!(3));
    assert_eq!(lines[0]["rule_title"], "Other event");
    assert!(lines[0].get("group").is_none());
    assert_eq!(lines[1]["event"], serde_json::json!([0, 2]));
    assert_eq!(lines[1]["rule_id"], "c1020000-0000-4000-8000-000000000001");
    assert_eq!(lines[1]["group"], serde_json::json!({"Computer": "ws1"}));
    assert!(run.stderr.contains("2 hits"), "{}", run.stderr);
    let table = purplecov(&args);
    assert_eq!(table.code, 0);
    assert!(
        table.stdout.contains("0,2    high   c1020000-0000-4000-8000-000000000001  Archive then upload [Computer=ws1]"),
        "{}",
        table.stdout
    );
    // Deterministic: the same bytes twice.
    assert_eq!(purplecov(&jsonl).stdout, run.stdout);
}

#[test]
fn odd_correlation_sections_never_panic() {
    for body in [
        "correlation: 5",
        "correlation: []",
        "correlation: {type: [1], rules: {a: b}, group-by: {x: 1}, timespan: [], condition: [1]}",
        "correlation: {type: event_count, rules: [b], timespan: 'ä', condition: {gte: 1}}",
        "correlation: {type: event_count, rules: [b], timespan: '5ä', condition: {gte: 1}}",
        "correlation: {type: event_count, rules: [b], timespan: 'ääm', condition: {gte: 1}}",
        "correlation: {type: event_count, rules: [b], timespan: 1m, condition: {gte: .nan}}",
        "correlation: {type: value_percentile, rules: [b], timespan: 1m, condition: {field: F, percentile: 101, gte: 1}}",
        "correlation: {type: temporal, rules: [], timespan: 1m}",
        "correlation: {type: temporal, rules: [b], timespan: 1m, aliases: {a: 1}}",
        "correlation: {type: event_count, rules: [b, b], timespan: 1m, condition: {eq: 1, neq: 1}}",
        "generate: maybe\ncorrelation: {type: event_count, rules: [b], timespan: 1m, condition: {gte: 1}}",
    ] {
        let set = yaml(&format!("title: T\n{body}\n---\ntitle: B\nname: b\nlogsource: {{category: test}}\ndetection:\n  sel:\n    Kind: x\n  condition: sel\n"));
        let events: Vec<Event> = (0..3).map(|i| x(i, "h")).collect();
        let _ = run(&set, &events);
        let c = &set.rules()[0];
        if c.status != RuleStatus::Ready {
            assert!(
                !c.diagnostics.is_empty() || matches!(c.status, RuleStatus::Unsupported { .. }),
                "{body}: {:?} without a reason",
                c.status
            );
        }
    }
}
