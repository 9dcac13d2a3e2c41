//! The JSON report of `run`: schema v1 fields, outcomes and verdicts judged from the expectations,
//! byte-identical across runs and thread counts, no absolute paths.

use assert_cmd::Command;
use std::path::Path;

const SIGNALS: &str = "scenario: T1048.002-9
signals:
  rclone_process:
    seed: Sysmon Event ID 1 with Image=rclone.exe
    sensor: sysmon
    event_id: 1
    match:
      Image|endswith: '\\rclone.exe'
";

/// The rclone rule expected to fire (it does) and the pscp rule expected to fire (it cannot).
const FIRE_AND_MISS: &str = "detections:
  11111111-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: image
  33333333-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: recorded as firing, but it cannot
";

/// Only the pscp rule, expected to fire.
const MISS: &str = "detections:
  33333333-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: recorded as firing, but it cannot
";

fn setup(detections_section: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["atomics", "expected", "detections"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/minimal.yaml"),
        dir.path().join("atomics/minimal.yaml"),
    )
    .unwrap();
    let rule = |id: &str, title: &str, sel: &str| {
        format!("title: {title}\nid: {id}\ntags: [attack.exfiltration, attack.t1048]\nlogsource: {{category: process_creation, product: windows}}\ndetection:\n  s:\n    {sel}\n  condition: s\n")
    };
    std::fs::write(
        dir.path().join("detections/r.yml"),
        [
            rule(
                "11111111-2222-4333-8444-555555555555",
                "Rclone image",
                "Image|endswith: '\\rclone.exe'",
            ),
            rule(
                "33333333-2222-4333-8444-555555555555",
                "Pscp",
                "Image|endswith: '\\pscp.exe'",
            ),
            rule(
                "55555555-2222-4333-8444-555555555555",
                "Untested",
                "Image|endswith: '\\nothing.exe'",
            ),
        ]
        .join("---\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("expected/T1048.002-9.yaml"),
        format!("{SIGNALS}{detections_section}"),
    )
    .unwrap();
    dir
}

fn run_json(dir: &Path, threads: &str) -> (i32, String) {
    let out = Command::cargo_bin("purplecov")
        .unwrap()
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", threads)
        .args(["run", "--format", "json"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn outcomes_verdicts_and_untested_rules() {
    let dir = setup(FIRE_AND_MISS);
    let (code, text) = run_json(dir.path(), "1");
    // A missed expected rule trips the default gate (missed, unexpected, error).
    assert_eq!(code, 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "purplecov/report/v1");
    let s = &v["scenarios"][0];
    assert_eq!(s["id"], "T1048.002-9");
    assert_eq!(s["outcome"], "partial");
    assert_eq!(s["category"], "technique");
    assert_eq!(s["signals"][0]["found"], true);
    let verdict = |rule: &str| {
        s["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == rule)
            .map(|r| r["verdict"].clone())
    };
    assert_eq!(
        verdict("11111111-2222-4333-8444-555555555555").unwrap(),
        "pass"
    );
    assert_eq!(
        verdict("33333333-2222-4333-8444-555555555555").unwrap(),
        "missed"
    );
    let rules = v["rules"].as_array().unwrap();
    let untested: Vec<&str> = rules
        .iter()
        .filter(|r| r["untested"] == true)
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(untested, ["Untested"]);
    assert_eq!(v["summary"]["outcomes"]["partial"], 1);
    assert_eq!(v["summary"]["techniques"][0]["coverage"], 0.0);
    // Paths are relative, files hashed.
    assert_eq!(v["inputs"][0]["path"], "atomics/minimal.yaml");
    assert_eq!(v["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(!text.contains(dir.path().to_str().unwrap()));
}

#[test]
fn detected_when_every_expected_rule_fires_and_logged_only_when_none_does() {
    let dir = setup(
        "detections:
  11111111-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: image
  33333333-2222-4333-8444-555555555555:
    expect: silent
    reason: no pscp here
",
    );
    let (code, text) = run_json(dir.path(), "1");
    assert_eq!(code, 0, "a detected scenario passes the gate");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["scenarios"][0]["outcome"], "detected");
    assert_eq!(v["summary"]["techniques"][0]["coverage"], 1.0);

    std::fs::remove_file(dir.path().join("detections/r.yml")).unwrap();
    std::fs::write(dir.path().join("expected/T1048.002-9.yaml"), SIGNALS).unwrap();
    let (_, text) = run_json(dir.path(), "1");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["scenarios"][0]["outcome"], "logged_only");
    assert_eq!(v["scenarios"][0]["category"], "telemetry");
}

#[test]
fn the_report_is_byte_identical_across_runs_and_thread_counts() {
    let dir = setup("");
    let (_, a) = run_json(dir.path(), "1");
    let (_, b) = run_json(dir.path(), "2");
    let (_, c) = run_json(dir.path(), "2");
    assert!(a.starts_with('{'));
    assert_eq!(a, b);
    assert_eq!(b, c);
}

#[test]
fn markdown_and_junit_reports() {
    let dir = setup(FIRE_AND_MISS);
    let out = Command::cargo_bin("purplecov")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "run", "--format", "markdown", "--format", "junit", "--out", "reports",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rule T1048.002-9/33333333-2222-4333-8444-555555555555: missed"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(dir.path().join("reports/report.md")).unwrap();
    insta::assert_snapshot!("run_report_markdown", md);

    // JUnit: one case per scenario and per expected rule, failures where the verdicts say so.
    let xml = std::fs::read_to_string(dir.path().join("reports/junit.xml")).unwrap();
    let count = |needle: &str| xml.matches(needle).count();
    assert_eq!(count("<testcase "), 3, "{xml}");
    assert!(
        xml.contains(
            r#"<testsuites name="purplecov" tests="3" skipped="0" failures="2" errors="0">"#
        ),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="T1048.002-9 / 33333333-2222-4333-8444-555555555555""#),
        "{xml}"
    );
    assert_eq!(count("<failure "), 2, "{xml}");
    junit_is_well_formed(&xml);
}

/// JUnit structure: `testsuites` > `testsuite` > `testcase`, each suite's `tests`, `failures`,
/// `errors` and `skipped` equal to what its cases hold, and case names unique.
fn junit_is_well_formed(xml: &str) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    // Per suite: declared (tests, failures, errors, skipped) and counted.
    let mut declared = [0usize; 4];
    let mut counted = [0usize; 4];
    let attr = |e: &quick_xml::events::BytesStart, k: &str| -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == k)
            .map(|a| a.value.to_string())
    };
    loop {
        let ev = reader.read_event().expect("well-formed XML");
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(_) => {
                let closed = stack.pop().unwrap();
                if closed == "testsuite" {
                    assert_eq!(declared, counted, "suite counts in {xml}");
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let e = start.unwrap();
        let tag = e.name().as_ref().to_string();
        let parent = stack.last().map(String::as_str);
        match tag.as_str() {
            "testsuites" => assert_eq!(parent, None),
            "testsuite" => {
                assert_eq!(parent, Some("testsuites"));
                let n = |k: &str| attr(&e, k).map_or(0, |v| v.parse().unwrap());
                declared = [n("tests"), n("failures"), n("errors"), n("skipped")];
                counted = [0; 4];
            }
            "testcase" => {
                assert_eq!(parent, Some("testsuite"));
                counted[0] += 1;
                assert!(names.insert(attr(&e, "name").unwrap()), "duplicate case");
            }
            "failure" | "error" | "skipped" => {
                assert_eq!(parent, Some("testcase"));
                counted[match tag.as_str() {
                    "failure" => 1,
                    "error" => 2,
                    _ => 3,
                }] += 1;
            }
            _ => {}
        }
        if !empty {
            stack.push(tag);
        }
    }
    assert!(stack.is_empty());
    assert!(!names.is_empty());
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json"),
    )
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, report: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn json_reports_follow_the_schema() {
    let v = schema();
    // A run with a missed rule (explanation) ...
    let dir = setup(MISS);
    let (_, text) = run_json(dir.path(), "1");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(text.contains("\"explanation\""));
    assert_valid(&v, &report);
    // ... and the repository's own run (controls, correlations, rule sets).
    let out = Command::cargo_bin("purplecov")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--format", "json"])
        .output()
        .unwrap();
    let repo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Byte-identical at another thread count, correlations and explanations included.
    let again = Command::cargo_bin("purplecov")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAYON_NUM_THREADS", "1")
        .args(["run", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.stdout == again.stdout,
        "the repository's report differs at 1 thread"
    );
    assert!(repo["summary"]["controls"].as_u64().unwrap() > 0);
    // Published queries that cannot run on their platform say so.
    let gaps = repo["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "3eafa1c2-641b-4f41-897d-a38f7f4aa2c7")
        .map(|r| r["source_gaps"][0].as_str().unwrap().to_string())
        .unwrap();
    assert!(gaps.contains("DeviceNetworkEvents does not have"), "{gaps}");
    // A correlation hit names its group and the events that made it.
    let t1020_3 = repo["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "T1020-3")
        .unwrap();
    let corr = t1020_3["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "b10ac889-3595-44c3-965e-3a5bb73a1ef6")
        .unwrap();
    let g = &corr["groups"][0];
    assert_eq!(
        g["group"]["Computer"], "WKS-ENG-0088.corp.example.com",
        "{corr}"
    );
    assert_eq!(g["events"].as_array().unwrap().len(), 2, "{corr}");
    assert_eq!(corr["events"], g["events"]);
    assert_valid(&v, &repo);
    // The schema is strict: an unknown outcome or an extra field is rejected.
    let mut bad = report.clone();
    bad["scenarios"][0]["outcome"] = "sort_of".into();
    assert!(!v.is_valid(&bad));
    let mut bad = report;
    bad["summary"]["when"] = "today".into();
    assert!(!v.is_valid(&bad));
}

#[test]
fn nearest_miss_names_the_selection_field_and_value() {
    let dir = setup(MISS);
    let (_, text) = run_json(dir.path(), "1");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = v["scenarios"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "33333333-2222-4333-8444-555555555555")
        .unwrap();
    let e = &r["explanation"];
    assert_eq!(e["event"], 0);
    let f = &e["failures"][0];
    assert_eq!(f["selection"], "s");
    assert_eq!(f["kind"], "no_match");
    assert_eq!(f["field"], "Image|endswith");
    assert_eq!(f["wanted"], "'*\\\\pscp.exe'");
    assert_eq!(f["actual"], "C:\\Tools\\rclone.exe");
    assert!(
        e["summary"]
            .as_str()
            .unwrap()
            .starts_with("event 0: selection `s`: `Image|endswith` wanted"),
        "{e}"
    );
}

#[test]
fn terminal_report_is_plain_when_piped() {
    let dir = setup(FIRE_AND_MISS);
    let out = Command::cargo_bin("purplecov")
        .unwrap()
        .current_dir(dir.path())
        .arg("run")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no colour when piped");
    insta::assert_snapshot!("run_report_terminal", text);
}

fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("purplecov")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The rclone rule expected to fire, the pscp rule expected silent: a clean run.
const CLEAN: &str = "detections:
  11111111-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: image
  33333333-2222-4333-8444-555555555555:
    expect: silent
    reason: no pscp here
";

#[test]
fn a_regression_against_the_baseline_fails_the_gate_with_a_diff() {
    let dir = setup(CLEAN);
    let (code, _, err) = run_in(dir.path(), &["run", "--format", "json", "--out", "old"]);
    assert_eq!(code, 0, "{err}");
    // The rclone rule is broken by an edit: it no longer fires.
    let rules = dir.path().join("detections/r.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, text.replace("\\rclone.exe'", "\\rclone2.exe'")).unwrap();
    let (code, _, err) = run_in(
        dir.path(),
        &[
            "run",
            "--format",
            "json",
            "--out",
            "new",
            "--baseline",
            "old/report.json",
            "--fail-on",
            "error",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("regressions against old/report.json"), "{err}");
    assert!(
        err.contains("rule T1048.002-9/11111111-2222-4333-8444-555555555555: pass -> missed"),
        "{err}"
    );
    assert!(
        err.contains("scenario T1048.002-9: detected -> logged_only"),
        "{err}"
    );
    assert!(err.contains("-scenario T1048.002-9: detected\n"), "{err}");
    assert!(
        err.contains("+scenario T1048.002-9: logged_only\n"),
        "{err}"
    );

    // `diff` says the same, and nothing for identical reports.
    let (code, out, _) = run_in(dir.path(), &["diff", "old/report.json", "new/report.json"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("+rule T1048.002-9/11111111-2222-4333-8444-555555555555: missed"),
        "{out}"
    );
    let (code, out, _) = run_in(dir.path(), &["diff", "new/report.json", "new/report.json"]);
    assert_eq!((code, out.as_str()), (0, "no changes\n"));
    // Improving on the baseline is not a regression.
    let (code, _, err) = run_in(dir.path(), &["diff", "new/report.json", "old/report.json"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn fail_on_states_come_from_the_flag_or_the_policy_file() {
    let dir = setup(MISS);
    // Default: missed fails.
    assert_eq!(run_in(dir.path(), &["run"]).0, 1);
    // The flag: this run is partial (the rclone rule fires unrecorded, the pscp rule misses).
    assert_eq!(
        run_in(dir.path(), &["run", "--fail-on", "logged_only,error"]).0,
        0
    );
    assert_eq!(run_in(dir.path(), &["run", "--fail-on", "partial"]).0, 1);
    // The policy file, found in the working directory.
    std::fs::write(
        dir.path().join("purplecov.toml"),
        "[gate]\nfail_on = [\"error\"]\n",
    )
    .unwrap();
    assert_eq!(run_in(dir.path(), &["run"]).0, 0);
    // A flag beats the file.
    assert_eq!(run_in(dir.path(), &["run", "--fail-on", "missed"]).0, 1);
    // A bad policy is a located diagnostic and exit 2.
    std::fs::write(
        dir.path().join("purplecov.toml"),
        "[gate]\nfail_on = [\"error\"]\nfail_onn = 1\n",
    )
    .unwrap();
    let (code, _, err) = run_in(dir.path(), &["run"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("purplecov.toml:3"), "{err}");
    std::fs::remove_file(dir.path().join("purplecov.toml")).unwrap();
    let (code, _, err) = run_in(dir.path(), &["run", "--fail-on", "sort_of"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown state `sort_of`"), "{err}");
}

#[test]
fn a_policy_file_elsewhere_reads_its_baseline_beside_it() {
    let dir = setup(CLEAN);
    std::fs::create_dir(dir.path().join("ci")).unwrap();
    let (code, _, _) = run_in(dir.path(), &["run", "--format", "json", "--out", "ci"]);
    assert_eq!(code, 0);
    std::fs::rename(
        dir.path().join("ci/report.json"),
        dir.path().join("ci/baseline.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ci/purplecov.toml"),
        "[gate]\nfail_on = [\"missed\", \"unexpected\", \"error\"]\nbaseline = \"baseline.json\"\n",
    )
    .unwrap();
    let (code, _, err) = run_in(dir.path(), &["run", "--config", "ci/purplecov.toml"]);
    assert_eq!(code, 0, "{err}");
    // The rule edited so the scenario loses its detection: the baseline catches it even with no
    // fail-on state.
    std::fs::write(
        dir.path().join("ci/purplecov.toml"),
        "[gate]\nfail_on = []\nbaseline = \"baseline.json\"\n",
    )
    .unwrap();
    let rules = dir.path().join("detections/r.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, text.replace("\\rclone.exe'", "\\rclone2.exe'")).unwrap();
    let (code, _, err) = run_in(dir.path(), &["run", "--config", "ci/purplecov.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ci/baseline.json"), "{err}");
}

#[test]
fn a_scenario_without_expectations_is_an_error_and_the_run_goes_on() {
    let dir = setup(CLEAN);
    // A second scenario with no expectations file.
    let text = std::fs::read_to_string(dir.path().join("atomics/minimal.yaml")).unwrap();
    std::fs::write(
        dir.path().join("atomics/other.yaml"),
        text.replace("id: T1048.002-9", "id: T1048.002-8").replace(
            "guid: 0b7f2c1e-5d4a-4e8b-9c3f-2a1d6e8f4b70",
            "guid: 0b7f2c1e-5d4a-4e8b-9c3f-2a1d6e8f4b71",
        ),
    )
    .unwrap();
    let (code, out, err) = run_in(dir.path(), &["run", "--format", "json"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("atomics/other.yaml:1: error: scenario `T1048.002-8` has no expectations: expected expected/T1048.002-8.yaml"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcome = |id: &str| {
        v["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["outcome"].clone())
            .unwrap()
    };
    assert_eq!(outcome("T1048.002-8"), "error");
    assert_eq!(outcome("T1048.002-9"), "detected");
}
