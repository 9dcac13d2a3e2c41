//! `purplecov lint` end to end: every kind of rule problem gives exit code 2 and a diagnostic that
//! names the file and the line of the offending key, and the good rules linted in the same run are
//! still counted as usable.
//!
//! Each bad fixture in tests/fixtures/lint/ holds one problem; it is linted together with the four
//! good rules of tests/fixtures/rules/.

mod common;
use common::{purplecov, Run};

const GOOD: &str = "tests/fixtures/rules";
const PLACEHOLDERS: &str = "tests/fixtures/placeholders.yml";

/// Lints `tests/fixtures/lint/<name>` together with the good rules.
fn lint_with_good(name: &str) -> (String, Run) {
    let path = format!("tests/fixtures/lint/{name}");
    let r = purplecov(&["lint", &path, GOOD]);
    (path, r)
}

/// The stderr line that starts with `path:line` (followed by `:` then a column or a severity).
fn line_at<'a>(stderr: &'a str, path: &str, line: usize) -> Option<&'a str> {
    let prefix = format!("{path}:{line}:");
    stderr.lines().find(|l| l.starts_with(&prefix))
}

/// Asserts exit 2, a diagnostic at `path:line` containing `needle`, and the summary line.
fn check(name: &str, line: usize, needle: &str, summary: &str) {
    let (path, r) = lint_with_good(name);
    assert_eq!(r.code, 2, "{name}: {}", r.stderr);
    let l = line_at(&r.stderr, &path, line)
        .unwrap_or_else(|| panic!("{name}: no diagnostic at {path}:{line}:\n{}", r.stderr));
    assert!(l.contains(needle), "{name}: {l:?} lacks {needle:?}");
    assert!(
        r.stderr.lines().any(|l| l == summary),
        "{name}: summary {summary:?} missing:\n{}",
        r.stderr
    );
}

/// The summary for one bad rule document linted with the four good rules.
const ONE_BAD: &str = "purplecov lint: 5 documents, 4 usable, 1 unusable, 1 errors";
/// The same when the bad rule is unsupported (valid Sigma this engine cannot evaluate: no error).
const ONE_UNSUPPORTED: &str = "purplecov lint: 5 documents, 4 usable, 1 unusable, 0 errors";

#[test]
fn good_rules_lint_clean() {
    let r = purplecov(&["lint", GOOD]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "purplecov lint: 4 documents, 4 usable, 0 unusable, 0 errors"
    );
}

#[test]
fn good_rules_given_one_by_one_lint_clean() {
    let r = purplecov(&[
        "lint",
        "tests/fixtures/rules/proc_rclone.yml",
        "tests/fixtures/rules/keywords_mimikatz.yml",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("purplecov lint: 2 documents, 2 usable, 0 unusable, 0 errors"),
        "{}",
        r.stderr
    );
}

#[test]
fn unknown_modifier() {
    // Line 9: `CommandLine|startswitch: 'whoami'`.
    check("unknown_modifier.yml", 9, "startswitch", ONE_BAD);
}

#[test]
fn condition_with_undefined_identifier() {
    // Line 11: `condition: selection and not filter_main`.
    check("condition_undefined.yml", 11, "filter_main", ONE_BAD);
}

#[test]
fn condition_with_upper_case_and() {
    // Line 11: `condition: selection AND other`.
    check("condition_upper_and.yml", 11, "AND", ONE_BAD);
}

#[test]
fn condition_diagnostic_column_is_a_file_column() {
    // `    condition: selection AND other`: `AND` starts at column 26 of line 11.
    let (path, r) = lint_with_good("condition_upper_and.yml");
    assert!(
        line_at(&r.stderr, &path, 11).is_some_and(|l| l.starts_with(&format!("{path}:11:26:"))),
        "{}",
        r.stderr
    );
}

#[test]
fn null_inside_a_value_list() {
    // Line 9: `CommandLine:` whose list holds `null`.
    check("null_in_list.yml", 9, "null", ONE_BAD);
}

#[test]
fn cidr_with_host_bits_set() {
    // Line 9: `DestinationIp|cidr:` whose list holds '10.1.2.3/8'.
    check("cidr_host_bits.yml", 9, "10.1.2.3/8", ONE_BAD);
}

#[test]
fn regex_that_does_not_compile_is_an_error() {
    let (path, r) = lint_with_good("bad_regex.yml");
    assert_eq!(r.code, 2, "{}", r.stderr);
    let l = r
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("{path}:")) && l.contains("regex"))
        .unwrap_or_else(|| panic!("no regex diagnostic naming {path}:\n{}", r.stderr));
    assert!(l.contains("-enc(odedcommand"), "{l}");
    assert!(r.stderr.lines().any(|l| l == ONE_BAD), "{}", r.stderr);
}

#[test]
fn regex_that_does_not_compile_names_the_key_line() {
    // Line 9: `CommandLine|re: '-enc(odedcommand'`.
    check("bad_regex.yml", 9, "regex", ONE_BAD);
}

#[test]
fn expand_placeholder_without_value_is_unsupported() {
    // Line 9: `TargetUserName|expand: '%Admins%'`.
    check(
        "expand_no_value.yml",
        9,
        "unsupported: 'TargetUserName|expand' uses placeholder %Admins%",
        ONE_UNSUPPORTED,
    );
}

#[test]
fn expand_placeholder_resolved_from_a_file_is_usable() {
    let r = purplecov(&[
        "lint",
        "--placeholders",
        PLACEHOLDERS,
        "tests/fixtures/lint/expand_no_value.yml",
        GOOD,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "purplecov lint: 5 documents, 5 usable, 0 unusable, 0 errors"
    );
}

#[test]
fn placeholder_file_that_is_not_a_mapping_exits_2() {
    let r = purplecov(&[
        "lint",
        "--placeholders",
        "tests/fixtures/events/sysmon.jsonl",
        GOOD,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("tests/fixtures/events/sysmon.jsonl"),
        "{}",
        r.stderr
    );
}

#[test]
fn deprecated_pipe_aggregation_is_unsupported() {
    // Line 10: `condition: selection | count(TargetUserName) by IpAddress > 10`.
    check(
        "pipe_aggregation.yml",
        10,
        "unsupported: the condition uses the deprecated pipe aggregation",
        ONE_UNSUPPORTED,
    );
    // And `timeframe:` (line 9) draws a warning.
    let (path, r) = lint_with_good("pipe_aggregation.yml");
    assert!(
        line_at(&r.stderr, &path, 9)
            .is_some_and(|l| l.contains("warning") && l.contains("timeframe")),
        "{}",
        r.stderr
    );
}

#[test]
fn invalid_yaml() {
    // Line 8: `      CommandLine: 'misindented'`. The file holds no readable document, so the
    // summary counts only the good rules, and the error alone makes the exit code 2.
    check(
        "invalid_yaml.yml",
        8,
        "invalid YAML",
        "purplecov lint: 4 documents, 4 usable, 0 unusable, 1 errors",
    );
}

#[test]
fn non_utf8_bytes() {
    // Line 7 holds the Latin-1 byte 0xE9.
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lint/non_utf8.yml"
    ))
    .expect("fixture");
    assert!(
        std::str::from_utf8(&raw).is_err(),
        "the fixture must not be UTF-8"
    );
    check(
        "non_utf8.yml",
        7,
        "UTF-8",
        "purplecov lint: 4 documents, 4 usable, 0 unusable, 1 errors",
    );
}

#[test]
fn multi_document_file_with_a_broken_second_document() {
    // Line 20: `CommandLine|bogus: 'user'` in the second document; the first one stays usable.
    check(
        "multi_doc.yml",
        20,
        "bogus",
        "purplecov lint: 6 documents, 5 usable, 1 unusable, 1 errors",
    );
}

#[test]
fn every_problem_in_one_run() {
    let r = purplecov(&["lint", "tests/fixtures/lint", GOOD]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let dir = "tests/fixtures/lint";
    for (file, line) in [
        ("cidr_host_bits.yml", 9),
        ("condition_undefined.yml", 11),
        ("condition_upper_and.yml", 11),
        ("expand_no_value.yml", 9),
        ("invalid_yaml.yml", 8),
        ("multi_doc.yml", 20),
        ("non_utf8.yml", 7),
        ("null_in_list.yml", 9),
        ("pipe_aggregation.yml", 10),
        ("unknown_modifier.yml", 9),
    ] {
        assert!(
            line_at(&r.stderr, &format!("{dir}/{file}"), line).is_some(),
            "{file}:{line} missing:\n{}",
            r.stderr
        );
    }
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with(&format!("{dir}/bad_regex.yml:"))),
        "{}",
        r.stderr
    );
    // Documents: 4 good + 8 single-document bad files that parse + 2 in multi_doc.yml
    // (invalid_yaml.yml and non_utf8.yml give none). Usable: the 4 good + the first document of
    // multi_doc.yml. Unusable: the 8 bad single-document rules + the second document of
    // multi_doc.yml. Errors: 6 invalid rules + invalid YAML + non-UTF-8 +
    // multi_doc (the 2 unsupported rules are not errors).
    assert!(
        r.stderr
            .lines()
            .any(|l| l == "purplecov lint: 14 documents, 5 usable, 9 unusable, 9 errors"),
        "{}",
        r.stderr
    );
}

#[test]
fn lint_of_a_missing_path_exits_2() {
    let r = purplecov(&["lint", "tests/fixtures/no_such_dir", GOOD]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("tests/fixtures/no_such_dir"),
        "{}",
        r.stderr
    );
}

#[test]
fn rule_file_with_a_utf8_bom_is_usable() {
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bom/rclone_bom.yml"
    ))
    .expect("fixture");
    assert!(
        raw.starts_with(b"\xEF\xBB\xBF"),
        "the fixture must start with a BOM"
    );
    let r = purplecov(&["lint", "tests/fixtures/bom"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "purplecov lint: 1 documents, 1 usable, 0 unusable, 0 errors"
    );
}
