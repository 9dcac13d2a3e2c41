//! The repository's scenarios (atomics/) and their expected signals (expected/): they load without a
//! diagnostic, every signal the source lists is present in the replay, removing the fields a signal
//! checks makes it go missing, and replays are deterministic and read back identically through the
//! XML and the JSON renderings.

use purplecov::expect::{self, Expectation};
use purplecov::scenario::{self, render, Scenario};
use purplecov::telemetry::native::WinRecord;
use purplecov::telemetry::read::read_json_text;
use purplecov::telemetry::xml;
use std::path::Path;

const SOURCE_TESTS: &[&str] = &[
    "T1048.002-1",
    "T1048.002-2",
    "T1048.002-3",
    "T1048.002-4",
    "T1048.002-5",
    "T1020-1",
    "T1020-2",
    "T1020-3",
    "T1020-4",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scenarios() -> Vec<Scenario> {
    let loaded = scenario::load(&[root().join("atomics")]);
    let msgs: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        msgs.is_empty(),
        "scenario diagnostics:\n{}",
        msgs.join("\n")
    );
    loaded.scenarios
}

fn expectations() -> Vec<Expectation> {
    let (e, d) = expect::load_dir(&root().join("expected"));
    let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert!(
        msgs.is_empty(),
        "expectation diagnostics:\n{}",
        msgs.join("\n")
    );
    e
}

#[test]
fn the_nine_source_tests_are_scenarios_with_expectations() {
    let all = scenarios();
    let exp = expectations();
    for id in SOURCE_TESTS {
        let s = all.iter().find(|s| s.id == *id);
        assert!(s.is_some(), "no scenario {id}");
        let e = exp.iter().find(|e| e.scenario == *id);
        assert!(
            e.is_some_and(|e| !e.signals.is_empty()),
            "no signals for {id}"
        );
    }
    let mut guids: Vec<&str> = all.iter().map(|s| s.guid.as_str()).collect();
    guids.sort();
    guids.dedup();
    assert_eq!(guids.len(), all.len(), "scenario GUIDs must be unique");
}

#[test]
fn every_expected_signal_is_present_in_the_replay() {
    let all = scenarios();
    for e in expectations() {
        let s = all
            .iter()
            .find(|s| s.id == e.scenario)
            .unwrap_or_else(|| panic!("{}: no scenario {}", e.path.display(), e.scenario));
        let args = s.arguments_with(&[]).unwrap();
        let (events, diags) = render::events(s, &args);
        assert!(
            diags.is_empty(),
            "{}: read-back diagnostics {diags:#?}",
            s.id
        );
        let (res, diags) = e.check(&events, &args);
        assert!(diags.is_empty(), "{}: {diags:#?}", s.id);
        let missing: Vec<&str> = res
            .iter()
            .filter(|r| !r.found)
            .map(|r| r.name.as_str())
            .collect();
        assert!(missing.is_empty(), "{}: missing signals {missing:?}", s.id);
    }
}

/// The field names a signal's match tests (modifiers removed).
fn match_fields(e: &Expectation, name: &str) -> Vec<String> {
    let sig = e.signals.iter().find(|s| s.name == name).unwrap();
    sig.matcher
        .keys()
        .filter_map(|k| k.as_str())
        .map(|k| k.split('|').next().unwrap_or(k).to_string())
        .collect()
}

#[test]
fn removing_the_fields_a_signal_checks_makes_it_missing() {
    let all = scenarios();
    for e in expectations() {
        let s = all.iter().find(|s| s.id == e.scenario).unwrap();
        let args = s.arguments_with(&[]).unwrap();
        for sig in &e.signals {
            let fields = match_fields(&e, &sig.name);
            let mut cut = s.clone();
            for r in &mut cut.telemetry {
                if r.sensor == sig.sensor && r.kind == sig.kind {
                    r.fields.retain(|(k, _)| !fields.contains(k));
                }
            }
            let (events, _) = render::events(&cut, &args);
            let (res, _) = e.check(&events, &args);
            let r = res.iter().find(|r| r.name == sig.name).unwrap();
            assert!(
                !r.found,
                "{} signal {}: still found without fields {fields:?}",
                s.id, sig.name
            );
        }
    }
}

#[test]
fn overriding_an_argument_changes_the_telemetry() {
    for s in scenarios() {
        let defaults = s.arguments_with(&[]).unwrap();
        let (base, _) = render::events(&s, &defaults);
        for a in &s.arguments {
            let used_in_telemetry = s.telemetry.iter().any(|r| {
                r.fields
                    .iter()
                    .any(|(_, v)| v.to_string().contains(&format!("#{{{}}}", a.name)))
            });
            if !used_in_telemetry {
                continue;
            }
            let args = s
                .arguments_with(&[(a.name.clone(), "OVERRIDDEN-VALUE-42".into())])
                .unwrap();
            let (events, _) = render::events(&s, &args);
            assert_ne!(base, events, "{}: --arg {} changed nothing", s.id, a.name);
            assert!(
                events.iter().any(|ev| ev
                    .fields
                    .iter()
                    .any(|(_, v)| v.to_string().contains("OVERRIDDEN-VALUE-42"))),
                "{}: --arg {} does not reach the telemetry",
                s.id,
                a.name
            );
        }
    }
}

#[test]
fn replays_are_deterministic() {
    for s in scenarios() {
        let args = s.arguments_with(&[]).unwrap();
        let a: Vec<String> = render::render(&s, &args).iter().map(|n| n.text()).collect();
        let b: Vec<String> = render::render(&s, &args).iter().map(|n| n.text()).collect();
        assert_eq!(a, b, "{}", s.id);
    }
}

#[test]
fn windows_records_read_back_the_same_from_xml_and_from_evtx_json() {
    let p = Path::new("replay");
    for s in scenarios() {
        let args = s.arguments_with(&[]).unwrap();
        for n in render::render(&s, &args) {
            let render::Native::Win { record, .. } = &n else {
                continue;
            };
            let r: &WinRecord = record;
            let from_xml = xml::read_text(&xml::render(r), p, 0);
            let from_json = read_json_text(&xml::render_evtx_json(r).to_string(), p, 0);
            assert!(
                from_xml.diagnostics.is_empty(),
                "{}: {:?}",
                s.id,
                from_xml.diagnostics
            );
            assert_eq!(from_xml.events.len(), 1, "{}", s.id);
            assert_eq!(
                from_xml.events, from_json.events,
                "{} record {}: XML and evtx JSON disagree",
                s.id, r.record_id
            );
        }
    }
}

#[test]
fn process_trees_link_and_times_are_ordered() {
    for s in scenarios() {
        let args = s.arguments_with(&[]).unwrap();
        let (events, _) = render::events(&s, &args);
        let text = |ev: &purplecov::telemetry::Event, k: &str| {
            ev.fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string())
        };
        // A process GUID always goes with the same process id and image, whether an event names it
        // as its own process or as a parent; and a process that a Sysmon 1 of the scenario creates is
        // the one later events of that GUID name. (Long-running processes, such as the operator's
        // shell or a service host, are named without being created in the replay.)
        let mut seen: std::collections::BTreeMap<String, (String, String)> = Default::default();
        for e in &events {
            if !text(e, "Channel").is_some_and(|c| c.ends_with("Sysmon/Operational")) {
                continue;
            }
            for (g, p, i) in [
                ("ProcessGuid", "ProcessId", "Image"),
                ("ParentProcessGuid", "ParentProcessId", "ParentImage"),
            ] {
                let (Some(g), Some(p), Some(i)) = (text(e, g), text(e, p), text(e, i)) else {
                    continue;
                };
                let i = i.to_lowercase();
                match seen.get(&g) {
                    Some((p0, i0)) => assert!(
                        *p0 == p && *i0 == i,
                        "{}: process {g} is pid {p0} {i0} in one event and pid {p} {i} in another",
                        s.id
                    ),
                    None => {
                        seen.insert(g, (p, i));
                    }
                }
            }
        }
        let times: Vec<i64> = s.telemetry.iter().map(|r| r.at_us).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{}", s.id);
    }
}
