//! Expectation files: signals and the `detections` section, their diagnostics, and `run` comparing
//! what fired with what was expected.

mod common;
use common::purplecov;
use purplecov::expect::{self, Expect};
use std::path::Path;

const SIGNALS: &str = "scenario: T1048.002-9
signals:
  rclone_process:
    seed: Sysmon Event ID 1 with Image=rclone.exe
    sensor: sysmon
    event_id: 1
    match:
      Image|endswith: '\\rclone.exe'
      CommandLine|contains: 'sftp://#{remote_host}'
";

fn parse(text: &str) -> (Option<expect::Expectation>, Vec<String>) {
    let (e, d) = expect::parse(Path::new("T1048.002-9.yaml"), text);
    (e, d.iter().map(|d| d.to_string()).collect())
}

#[test]
fn a_detections_section_is_read() {
    let text = format!(
        "{SIGNALS}detections:
  11111111-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: the image ends with rclone.exe
  my-rule-name:
    expect: silent
    reason: it needs a port the scenario never uses
"
    );
    let (e, d) = parse(&text);
    assert!(d.is_empty(), "{d:#?}");
    let e = e.unwrap();
    assert_eq!(e.detections.len(), 2);
    assert_eq!(e.detections[0].expect, Expect::Fire);
    assert_eq!(e.detections[0].signal.as_deref(), Some("rclone_process"));
    assert_eq!(e.detections[1].expect, Expect::Silent);
    assert_eq!(e.detections[1].line, 15);
}

#[test]
fn bad_detection_entries_are_located() {
    for (entry, want) in [
        (
            "    expect: maybe\n    reason: x\n",
            "`expect` must be fire or silent",
        ),
        (
            "    expect: fire\n    reason: x\n",
            "`expect: fire` needs the `signal`",
        ),
        (
            "    expect: fire\n    signal: nope\n    reason: x\n",
            "no signal `nope` in this file",
        ),
        ("    expect: silent\n", "`reason` is required"),
        (
            "    expect: silent\n    reason: x\n    because: y\n",
            "unknown key `because`",
        ),
    ] {
        let text = format!("{SIGNALS}detections:\n  some-rule:\n{entry}");
        let (_, d) = parse(&text);
        assert_eq!(d.len(), 1, "{entry}: {d:#?}");
        assert!(
            d[0].starts_with("T1048.002-9.yaml:11: error: rule `some-rule`"),
            "{}",
            d[0]
        );
        assert!(d[0].contains(want), "{}", d[0]);
    }
}

#[test]
fn a_signal_that_cannot_compile_is_reported_not_silently_missing() {
    let text = SIGNALS.replace("Image|endswith", "Image|endswithh");
    let (e, d) = parse(&text);
    assert!(d.is_empty());
    let (res, diags) = e.unwrap().check(&[], &[]);
    assert!(!res[0].found);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert!(diags[0].to_string().contains("endswithh"), "{}", diags[0]);
}

#[test]
fn run_compares_fired_rules_with_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let atomics = dir.path().join("atomics");
    let expected = dir.path().join("expected");
    let detections = dir.path().join("detections");
    for d in [&atomics, &expected, &detections] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/minimal.yaml"),
        atomics.join("minimal.yaml"),
    )
    .unwrap();
    let rule = |id: &str, title: &str, sel: &str| {
        format!("title: {title}\nid: {id}\nlogsource: {{category: process_creation, product: windows}}\ndetection:\n  s:\n    {sel}\n  condition: s\n")
    };
    std::fs::write(
        detections.join("r.yml"),
        [
            rule(
                "11111111-2222-4333-8444-555555555555",
                "Rclone image",
                "Image|endswith: '\\rclone.exe'",
            ),
            rule(
                "22222222-2222-4333-8444-555555555555",
                "Rclone sftp",
                "CommandLine|contains: 'sftp://'",
            ),
            rule(
                "33333333-2222-4333-8444-555555555555",
                "Pscp",
                "Image|endswith: '\\pscp.exe'",
            ),
        ]
        .join("---\n"),
    )
    .unwrap();
    std::fs::write(
        expected.join("T1048.002-9.yaml"),
        format!(
            "{SIGNALS}detections:
  11111111-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: image
  22222222-2222-4333-8444-555555555555:
    expect: silent
    reason: recorded as silent, but it fires
  33333333-2222-4333-8444-555555555555:
    expect: fire
    signal: rclone_process
    reason: recorded as firing, but it cannot
  44444444-2222-4333-8444-555555555555:
    expect: silent
    reason: no such rule
"
        ),
    )
    .unwrap();
    // With the default folders (run in the temporary folder), an unknown rule id is an error.
    let out = assert_cmd::Command::cargo_bin("purplecov")
        .unwrap()
        .current_dir(dir.path())
        .arg("run")
        .output()
        .unwrap();
    let r = common::Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("expected/T1048.002-9.yaml:22: error: rule `44444444-2222-4333-8444-555555555555` is not among the detections loaded"), "{}", r.stderr);
    // The failures name each broken expectation; a rule that fired as expected is not among them.
    let failures: Vec<&str> = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("FAILURES"))
        .take_while(|l| !l.is_empty())
        .collect();
    let has = |needle: &str| failures.iter().any(|l| l.contains(needle));
    assert!(
        has("T1048.002-9: unexpected: Rclone sftp (expected silent, fired)"),
        "{failures:#?}"
    );
    assert!(
        has("T1048.002-9: missed: Pscp (expected fire, stayed silent)"),
        "{failures:#?}"
    );
    assert!(
        has("expected rule `44444444-2222-4333-8444-555555555555` is not among the detections loaded"),
        "{failures:#?}"
    );
    assert!(!has("Rclone image"), "{failures:#?}");

    // With rules chosen by --detections, expectations about rules it did not load are not judged.
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let r = purplecov(&[
        "run",
        "--atomics",
        &p(&atomics),
        "--expected",
        &p(&expected),
        "--detections",
        &p(&detections),
    ]);
    assert_eq!(
        r.code, 1,
        "the gate still fails on the missed and unexpected rules"
    );
    assert!(
        r.stderr
            .contains("1 expectations name rules --detections did not load; they are not judged"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("44444444"), "{}", r.stdout);
}
