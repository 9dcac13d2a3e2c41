//! `purplecov eval` end to end: fixture rules (tests/fixtures/rules/) on fixture telemetry
//! (tests/fixtures/events/), checked through the binary's stdout, stderr and exit code.

mod common;
use common::{purplecov, Run};
use serde_json::Value as Json;
use std::path::Path;

const RULES: &str = "tests/fixtures/rules";
const SYSMON: &str = "tests/fixtures/events/sysmon.jsonl";
const EVTX_SHAPE: &str = "tests/fixtures/events/evtx_shape.json";
const MALFORMED: &str = "tests/fixtures/events/malformed.jsonl";

const RCLONE: (&str, &str, &str) = (
    "11111111-1111-4111-8111-111111111111",
    "Rclone Execution",
    "Fixture Author A",
);
const SERVICE: (&str, &str, &str) = (
    "22222222-2222-4222-8222-222222222222",
    "Suspicious Service Installed",
    "Fixture Author B",
);
const MIMIKATZ: (&str, &str, &str) = (
    "33333333-3333-4333-8333-333333333333",
    "Mimikatz Keywords",
    "Fixture Author C",
);
const PORT_4444: (&str, &str, &str) = (
    "44444444-4444-4444-8444-444444444444",
    "Outbound Connection To Port 4444",
    "Fixture Author D",
);

fn eval(rules: &[&str], inputs: &[&str], extra: &[&str]) -> Run {
    let mut args = vec!["eval", "--rules"];
    args.extend_from_slice(rules);
    args.push("--input");
    args.extend_from_slice(inputs);
    args.extend_from_slice(extra);
    purplecov(&args)
}

/// Parses `--format jsonl` stdout into (event, rule_id, rule_title, author) rows, checking that each
/// line is one JSON object with exactly the documented keys.
fn hits(stdout: &str) -> Vec<(u64, String, String, String)> {
    stdout
        .lines()
        .map(|l| {
            let v: Json =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}"));
            let o = v.as_object().expect("one object per line");
            let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "author",
                    "event",
                    "level",
                    "rule_id",
                    "rule_path",
                    "rule_title"
                ],
                "{l}"
            );
            let s = |k: &str| {
                o[k].as_str()
                    .unwrap_or_else(|| panic!("{k} is text in {l}"))
                    .to_string()
            };
            (
                o["event"].as_u64().expect("event is a number"),
                s("rule_id"),
                s("rule_title"),
                s("author"),
            )
        })
        .collect()
}

fn hit(event: u64, r: (&str, &str, &str)) -> (u64, String, String, String) {
    (event, r.0.into(), r.1.into(), r.2.into())
}

/// The hits of the fixture rules on sysmon.jsonl, numbered from `base`.
fn sysmon_hits(base: u64) -> Vec<(u64, String, String, String)> {
    vec![
        // Sysmon 1, Image ...\rclone.exe
        hit(base, RCLONE),
        // Sysmon 1, CommandLine with 'privilege::debug' (keyword list)
        hit(base + 2, MIMIKATZ),
        // Security 4697, ServiceFileName in \Temp\
        hit(base + 3, SERVICE),
        // Security 4688, NewProcessName ...\rclone.exe (mapped to Image for process_creation)
        hit(base + 4, RCLONE),
        // Sysmon 3 to port 4444 (number in the event, number in the rule)
        hit(base + 5, PORT_4444),
        // Sysmon 1 that both rules match: ordered by rule (load order: files sorted by name)
        hit(base + 6, MIMIKATZ),
        hit(base + 6, RCLONE),
        // base + 1 (notepad) and base + 7 (spoolsv service) match nothing
    ]
}

#[test]
fn jsonl_hits_on_flat_jsonl() {
    let r = eval(&[RULES], &[SYSMON], &["--format", "jsonl"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(hits(&r.stdout), sysmon_hits(0));
    assert!(
        r.stderr
            .contains("purplecov eval: 8 events, 4 rules ready, 0 unsupported, 0 invalid, 7 hits"),
        "{}",
        r.stderr
    );
}

#[test]
fn jsonl_carries_level_and_rule_path() {
    let r = eval(&[RULES], &[SYSMON], &["--format", "jsonl"]);
    let first: Json = serde_json::from_str(r.stdout.lines().next().expect("a hit")).expect("json");
    assert_eq!(first["level"], "high");
    assert_eq!(first["rule_path"], "tests/fixtures/rules/proc_rclone.yml");
}

#[test]
fn jsonl_hits_on_nested_evtx_shape_json() {
    let r = eval(&[RULES], &[EVTX_SHAPE], &["--format", "jsonl"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    // Record 0: Sysmon 1 with EventData.Image ...\rclone.exe; record 1: Security 4688 whoami.
    assert_eq!(hits(&r.stdout), vec![hit(0, RCLONE)]);
    assert!(
        r.stderr.contains("purplecov eval: 2 events,"),
        "{}",
        r.stderr
    );
}

#[test]
fn two_inputs_number_events_on() {
    let r = eval(&[RULES], &[SYSMON, EVTX_SHAPE], &["--format", "jsonl"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let mut want = sysmon_hits(0);
    want.push(hit(8, RCLONE));
    assert_eq!(hits(&r.stdout), want);
    assert!(
        r.stderr.contains("purplecov eval: 10 events,"),
        "{}",
        r.stderr
    );

    // The other order: the evtx-shape file's two events come first.
    let r = eval(&[RULES], &[EVTX_SHAPE, SYSMON], &["--format", "jsonl"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let mut want = vec![hit(0, RCLONE)];
    want.extend(sysmon_hits(2));
    assert_eq!(hits(&r.stdout), want);
}

#[test]
fn the_same_input_twice_is_numbered_twice() {
    let r = eval(&[RULES], &[SYSMON, SYSMON], &["--format", "jsonl"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let mut want = sysmon_hits(0);
    want.extend(sysmon_hits(8));
    assert_eq!(hits(&r.stdout), want);
}

#[test]
fn rules_given_as_files_and_repeated_flags() {
    let r = purplecov(&[
        "eval",
        "--rules",
        "tests/fixtures/rules/proc_rclone.yml",
        "--rules",
        "tests/fixtures/rules/sysmon_network_4444.yaml",
        "--input",
        SYSMON,
        "--input",
        EVTX_SHAPE,
        "--format",
        "jsonl",
    ]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(
        hits(&r.stdout),
        vec![
            hit(0, RCLONE),
            hit(4, RCLONE),
            hit(5, PORT_4444),
            hit(6, RCLONE),
            hit(8, RCLONE)
        ]
    );
}

#[test]
fn table_output_snapshot() {
    let r = eval(&[RULES], &[SYSMON, EVTX_SHAPE], &[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    insta::assert_snapshot!("table_sysmon_and_evtx_shape", r.stdout);
}

#[test]
fn table_output_without_hits_snapshot() {
    let r = eval(
        &["tests/fixtures/rules/sysmon_network_4444.yaml"],
        &[EVTX_SHAPE],
        &[],
    );
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    insta::assert_snapshot!("table_no_hits", r.stdout);
}

#[test]
fn table_is_the_default_format() {
    let default = eval(&[RULES], &[SYSMON], &[]);
    let table = eval(&[RULES], &[SYSMON], &["--format", "table"]);
    assert_eq!(default.code, 0);
    assert_eq!(default.stdout, table.stdout);
    assert!(
        default.stdout.starts_with("EVENT  LEVEL"),
        "{}",
        default.stdout
    );
}

#[test]
fn thread_count_does_not_change_output_small() {
    for format in ["jsonl", "table"] {
        let one = eval(
            &[RULES],
            &[SYSMON, EVTX_SHAPE],
            &["--format", format, "--threads", "1"],
        );
        let two = eval(
            &[RULES],
            &[SYSMON, EVTX_SHAPE],
            &["--format", format, "--threads", "2"],
        );
        assert_eq!(one.code, 0, "{}", one.stderr);
        assert_eq!(two.code, 0, "{}", two.stderr);
        assert_eq!(one.stdout, two.stdout, "format {format}");
        assert!(!one.stdout.is_empty());
    }
}

/// Writes a JSON Lines file of `n` Sysmon process-creation events (several MiB for large `n`, so the
/// reader splits it into parts), where every 997th event is rclone; `bad_line` (1-based), when given,
/// is replaced by a truncated record.
fn big_jsonl(path: &Path, n: usize, bad_line: Option<usize>) -> Vec<u64> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut expected = Vec::new();
    let mut event = 0u64;
    for i in 0..n {
        if bad_line == Some(i + 1) {
            writeln!(
                f,
                "{{\"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Image\": "
            )
            .unwrap();
            continue;
        }
        let rclone = i % 997 == 3;
        let image = if rclone {
            format!("C:\\Users\\u{i}\\rclone.exe")
        } else {
            format!("C:\\Windows\\System32\\tool{i}.exe")
        };
        let rec = serde_json::json!({
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "EventID": 1,
            "Computer": format!("host{}", i % 17),
            "Image": image,
            "CommandLine": format!("{image} --arg {i} {}", "x".repeat(64)),
            "ParentImage": "C:\\Windows\\explorer.exe",
        });
        writeln!(f, "{rec}").unwrap();
        if rclone {
            expected.push(event);
        }
        event += 1;
    }
    f.flush().unwrap();
    expected
}

#[test]
fn thread_count_does_not_change_output_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.jsonl");
    let expected = big_jsonl(&big, 40_000, None);
    assert!(std::fs::metadata(&big).unwrap().len() > 4 << 20);
    let big = big.to_str().unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "2", "5"] {
        let r = eval(
            &[RULES],
            &[SYSMON, big, EVTX_SHAPE],
            &["--format", "jsonl", "--threads", threads],
        );
        assert_eq!(r.code, 0, "threads {threads}: {}", r.stderr);
        outputs.push(r.stdout);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    let mut want = sysmon_hits(0);
    want.extend(expected.iter().map(|&e| hit(8 + e, RCLONE)));
    want.push(hit(8 + 40_000, RCLONE));
    assert_eq!(hits(&outputs[0]), want);
}

#[test]
fn malformed_line_is_reported_and_the_rest_evaluated() {
    let r = eval(&[RULES], &[MALFORMED], &["--format", "jsonl"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with(&format!("{MALFORMED}:2:")) && l.contains("error")),
        "stderr must name {MALFORMED}:2: {}",
        r.stderr
    );
    // Lines 1 and 3 are rclone; the bad line 2 is not an event, so line 3 is event 1.
    assert_eq!(hits(&r.stdout), vec![hit(0, RCLONE), hit(1, RCLONE)]);
    assert!(
        r.stderr.contains("purplecov eval: 2 events,"),
        "{}",
        r.stderr
    );
}

#[test]
fn malformed_first_line_and_broken_pretty_printed_record() {
    // malformed_first.jsonl: line 1 is bad (so the file is not streamed as JSONL), line 5 is not
    // JSON; pretty_broken.json: the second of three pretty-printed evtx-shape records lacks a comma
    // on line 19.
    let pretty = "tests/fixtures/events/pretty_broken.json";
    let first = "tests/fixtures/events/malformed_first.jsonl";
    let r = eval(&[RULES], &[pretty, first], &["--format", "jsonl"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    for loc in [
        format!("{pretty}:19:"),
        format!("{first}:1:"),
        format!("{first}:5:"),
    ] {
        assert!(
            r.stderr.lines().any(|l| l.starts_with(&loc)),
            "{loc} missing: {}",
            r.stderr
        );
    }
    // pretty_broken.json gives events 0 and 1 (both rclone); malformed_first.jsonl gives 2 (rclone),
    // 3 (notepad) and 4 (rclone).
    assert_eq!(
        hits(&r.stdout),
        vec![
            hit(0, RCLONE),
            hit(1, RCLONE),
            hit(2, RCLONE),
            hit(4, RCLONE)
        ]
    );
    assert!(
        r.stderr.contains("purplecov eval: 5 events,"),
        "{}",
        r.stderr
    );
}

#[test]
fn malformed_line_deep_in_a_large_file_names_its_own_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.jsonl");
    let expected = big_jsonl(&big, 30_000, Some(25_000));
    let big = big.to_str().unwrap();
    for threads in ["1", "3"] {
        let r = eval(
            &[RULES],
            &[big, SYSMON],
            &["--format", "jsonl", "--threads", threads],
        );
        assert_eq!(r.code, 2, "stderr: {}", r.stderr);
        let located: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with(big)).collect();
        assert_eq!(located.len(), 1, "{}", r.stderr);
        assert!(
            located[0].starts_with(&format!("{big}:25000:")),
            "{}",
            r.stderr
        );
        let mut want: Vec<_> = expected.iter().map(|&e| hit(e, RCLONE)).collect();
        want.extend(sysmon_hits(29_999));
        assert_eq!(hits(&r.stdout), want);
    }
}

#[test]
fn broken_rule_is_reported_and_the_good_rule_fires() {
    let r = eval(
        &["tests/fixtures/broken_rules"],
        &[SYSMON],
        &["--format", "jsonl"],
    );
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    // The unknown modifier `CommandLine|containz` is on line 10 of the broken rule.
    assert!(
        r.stderr.lines().any(|l| l
            .starts_with("tests/fixtures/broken_rules/unknown_modifier.yml:10:")
            && l.contains("containz")),
        "{}",
        r.stderr
    );
    let good = (
        "55555555-5555-4555-8555-555555555555",
        "Rclone Execution (good)",
        "Fixture Author E",
    );
    assert_eq!(
        hits(&r.stdout),
        vec![hit(0, good), hit(4, good), hit(6, good)]
    );
    assert!(
        r.stderr
            .contains("purplecov eval: 8 events, 1 rules ready, 0 unsupported, 1 invalid, 3 hits"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_input_file_exits_2_and_names_it() {
    let missing = "tests/fixtures/events/does_not_exist.jsonl";
    let r = eval(&[RULES], &[missing], &["--format", "jsonl"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.lines().any(|l| l.starts_with(missing)),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn missing_input_file_does_not_stop_the_others() {
    let missing = "tests/fixtures/events/does_not_exist.jsonl";
    let r = eval(&[RULES], &[missing, SYSMON], &["--format", "jsonl"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(r.stderr.contains(missing), "{}", r.stderr);
    assert_eq!(hits(&r.stdout), sysmon_hits(0));
}

#[test]
fn missing_rules_path_exits_2_and_names_it() {
    let missing = "tests/fixtures/no_such_rules";
    let r = eval(&[missing, RULES], &[SYSMON], &["--format", "jsonl"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.lines().any(|l| l.starts_with(missing)),
        "{}",
        r.stderr
    );
    assert_eq!(hits(&r.stdout), sysmon_hits(0));
}

#[test]
fn usage_errors_exit_2() {
    // No --rules.
    let r = purplecov(&["eval", "--input", SYSMON]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("--rules"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // No --input.
    let r = purplecov(&["eval", "--rules", RULES]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("--input"), "{}", r.stderr);
    // Unknown format, unknown flag, no subcommand.
    let r = eval(&[RULES], &[SYSMON], &["--format", "csv"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    let r = eval(&[RULES], &[SYSMON], &["--frobnicate"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    let r = purplecov(&[]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
}

#[test]
fn unreadable_placeholder_file_exits_2() {
    let r = eval(
        &[RULES],
        &[SYSMON],
        &["--placeholders", "tests/fixtures/no_such_placeholders.yml"],
    );
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains("tests/fixtures/no_such_placeholders.yml"),
        "{}",
        r.stderr
    );
}

#[test]
fn rule_file_with_a_utf8_bom_fires() {
    let r = eval(&["tests/fixtures/bom"], &[SYSMON], &["--format", "jsonl"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let bom = (
        "77777777-7777-4777-8777-777777777777",
        "Rclone Execution (BOM)",
        "Fixture Author A",
    );
    assert_eq!(hits(&r.stdout), vec![hit(0, bom), hit(4, bom), hit(6, bom)]);
}
