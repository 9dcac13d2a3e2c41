//! The literal pre-filter is scoped by field: a rule's needle only admits the rule when it occurs in
//! the field the rule tests (or, for keywords, in any value the sensor wrote; for mapped fields, in the
//! value the mapping derives). It never changes an answer (the conformance and reference suites compare
//! every result with it switched off); these tests pin how much it prunes.

use purplecov::sigma::{Options, RuleSet};
use purplecov::telemetry::{Event, Value};

fn event(fields: &[(&str, &str)]) -> Event {
    Event::from_fields(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.to_string()))),
    )
}

fn set(text: &str) -> RuleSet {
    let set = RuleSet::from_yaml_str("prefilter.yml", text, &Options::default());
    assert!(set.diagnostics().is_empty(), "{:?}", set.diagnostics());
    set
}

/// A Windows `process_creation` rule whose condition is one selection holding `items` (lines of
/// its map, as written in YAML).
fn process_rule(title: &str, items: &[&str]) -> String {
    let mut text = format!(
        "title: {title}\nlogsource:\n    category: process_creation\n    product: windows\ndetection:\n    selection:\n"
    );
    for item in items {
        text.push_str(&format!("        {item}\n"));
    }
    text.push_str("    condition: selection\n");
    text
}

fn image_rule() -> String {
    process_rule("rclone by image", &[r#"Image|endswith: '\rclone.exe'"#])
}

fn sysmon_1(image: &str, command_line: &str) -> Event {
    event(&[
        ("Channel", "Microsoft-Windows-Sysmon/Operational"),
        ("EventID", "1"),
        ("Image", image),
        ("CommandLine", command_line),
    ])
}

#[test]
fn a_needle_in_another_field_does_not_admit_the_rule() {
    let set = set(&image_rule());
    let ev = sysmon_1(
        r"C:\Windows\System32\cmd.exe",
        r"cmd /c C:\tools\rclone.exe copy a b",
    );
    assert_eq!(set.prefilter_stats(&[ev]), (1, 0, 0));
}

#[test]
fn a_needle_in_the_rules_field_admits_it() {
    let set = set(&image_rule());
    let ev = sysmon_1(r"C:\tools\rclone.exe", "rclone.exe copy a b");
    assert_eq!(set.prefilter_stats(&[ev]), (1, 1, 1));
}

#[test]
fn a_needle_in_a_mapped_field_admits_the_rule() {
    // Security 4688 writes NewProcessName; process_creation rules see it as Image.
    let set = set(&image_rule());
    let ev = event(&[
        ("Channel", "Security"),
        ("EventID", "4688"),
        ("NewProcessName", r"C:\tools\rclone.exe"),
        ("CommandLine", "rclone.exe copy a b"),
    ]);
    assert_eq!(set.prefilter_stats(&[ev]), (1, 1, 1));
}

#[test]
fn keyword_needles_are_searched_in_every_value() {
    let set = set(r#"
title: keyword
logsource:
    product: windows
    service: system
detection:
    keywords:
        - 'mimikatz'
    condition: keywords
"#);
    let hit = event(&[
        ("Channel", "System"),
        ("EventID", "7045"),
        ("ImagePath", r"C:\x\MimiKatz.exe"),
    ]);
    let miss = event(&[
        ("Channel", "System"),
        ("EventID", "7045"),
        ("ImagePath", r"C:\x\svc.exe"),
    ]);
    assert_eq!(set.prefilter_stats(&[hit]), (1, 1, 1));
    assert_eq!(set.prefilter_stats(&[miss]), (1, 0, 0));
}

fn regex_rule() -> String {
    process_rule(
        "net config by regex",
        &[r#"CommandLine|re: 'net\s+config'"#],
    )
}

#[test]
fn a_regex_is_admitted_only_where_its_literal_occurs() {
    // Every match of `net\s+config` starts with `net` and ends with `config`.
    let set = set(&regex_rule());
    let miss = sysmon_1(r"C:\Windows\System32\cmd.exe", "cmd /c whoami");
    let near = sysmon_1(r"C:\Windows\System32\cmd.exe", "cmd /c ipconfig /all");
    let upper = sysmon_1(r"C:\Windows\System32\net.exe", "NET   CONFIG workstation");
    assert_eq!(set.prefilter_stats(&[miss]), (1, 0, 0));
    // `config` is there but the regex does not match: admitted, evaluated, not matched.
    assert_eq!(set.prefilter_stats(&[near]), (1, 1, 0));
    // The regex is case-sensitive and `NET   CONFIG` does not match it; its folded literal is
    // still found, so the rule is evaluated (the pre-filter over-admits, never under-admits).
    assert_eq!(set.prefilter_stats(&[upper]), (1, 1, 0));
}

#[test]
fn a_case_insensitive_regex_keeps_every_case_variant_the_regex_engine_accepts() {
    // `(?i)s` also matches `ſ` (U+017F), whose lowercase is itself, not `s`: the needles must
    // include that variant or the rule would be skipped on an event it matches.
    let set = set(&process_rule(
        "password by regex",
        &[r#"CommandLine|re: '(?i)password='"#],
    ));
    let plain = sysmon_1(r"C:\x\a.exe", "a.exe PASSWORD=x");
    let long_s = sysmon_1(r"C:\x\a.exe", "a.exe PAſSWORD=x");
    let miss = sysmon_1(r"C:\x\a.exe", "a.exe user=x");
    assert_eq!(set.prefilter_stats(&[plain]), (1, 1, 1));
    assert_eq!(set.prefilter_stats(&[long_s]), (1, 1, 1));
    assert_eq!(set.prefilter_stats(&[miss]), (1, 0, 0));
}

#[test]
fn a_literal_inside_a_regex_admits_it_where_no_prefix_or_suffix_does() {
    // SigmaHQ's wsass rule: `.exe` starts every match (common) and digits end it (no literal);
    // `werfaultsecure.exe` is inside every match. Case-insensitive, so `ſ` for `s` too.
    let set = set(&process_rule(
        "wsass",
        &[r#"CommandLine|re: '(?i)\.exe["'']?\s+[^"]{0,64}werfaultsecure\.exe["'']?\s+\d{2,10}'"#],
    ));
    let other = sysmon_1(r"C:\x\a.exe", r"a.exe C:\Windows\System32\svchost.exe 1234");
    let hit = sysmon_1(
        r"C:\x\w.exe",
        r"w.exe C:\Windows\System32\WerFaultSecure.exe 1234",
    );
    let long_s = sysmon_1(
        r"C:\x\w.exe",
        r"w.exe C:\Windows\System32\WerFaultſecure.exe 1234",
    );
    let near = sysmon_1(r"C:\x\w.exe", r"w.exe werfaultsecure.exe");
    assert_eq!(set.prefilter_stats(&[other]), (1, 0, 0));
    assert_eq!(set.prefilter_stats(&[hit]), (1, 1, 1));
    assert_eq!(set.prefilter_stats(&[long_s]), (1, 1, 1));
    // The literal is there, the regex does not match (no process id): admitted, not matched.
    assert_eq!(set.prefilter_stats(&[near]), (1, 1, 0));
}

#[test]
fn a_regex_without_a_required_literal_is_always_evaluated() {
    let set = set(&process_rule(
        "any backtick obfuscation",
        &[r#"CommandLine|re: '\w+`\w+'"#],
    ));
    let ev = sysmon_1(r"C:\x\a.exe", "a.exe plain");
    assert_eq!(set.prefilter_stats(&[ev]), (1, 1, 0));
}

#[test]
fn a_single_non_ascii_character_is_a_needle() {
    // Homoglyph rules search for one Cyrillic letter (two bytes in UTF-8).
    let set = set(&process_rule(
        "cyrillic a",
        &[r#"CommandLine|contains: "\u0410""#],
    ));
    let hit = sysmon_1(r"C:\x\a.exe", "a.exe p\u{0430}ypal");
    let miss = sysmon_1(r"C:\x\a.exe", "a.exe paypal");
    assert_eq!(set.prefilter_stats(&[hit]), (1, 1, 1));
    assert_eq!(set.prefilter_stats(&[miss]), (1, 0, 0));
}

#[test]
fn keywords_are_searched_per_source_and_none_is_lost() {
    // The System channel serves both rules: its source's keyword set includes the set of the
    // `product: windows` source, which is then not searched on its own. A Sysmon event is searched
    // only for the `product: windows` keywords.
    let set = set(r#"
title: any windows keyword
logsource:
    product: windows
detection:
    keywords:
        - 'mimikatz'
    condition: keywords
---
title: system keyword
logsource:
    product: windows
    service: system
detection:
    keywords:
        - 'zerologon'
    condition: keywords
"#);
    let system = |text: &str| {
        event(&[
            ("Channel", "System"),
            ("EventID", "7045"),
            ("ImagePath", text),
        ])
    };
    assert_eq!(
        set.prefilter_stats(&[system(r"C:\x\mimikatz.exe")]),
        (2, 1, 1)
    );
    assert_eq!(
        set.prefilter_stats(&[system(r"C:\x\zerologon.exe")]),
        (2, 1, 1)
    );
    assert_eq!(set.prefilter_stats(&[system(r"C:\x\svc.exe")]), (2, 0, 0));
    let sysmon = sysmon_1(r"C:\x\zerologon.exe", "zerologon.exe mimikatz");
    assert_eq!(set.prefilter_stats(&[sysmon]), (1, 1, 1));
}

#[test]
fn every_field_an_and_needs_is_checked_before_the_rule_is_evaluated() {
    // The first clause (the longest literal) makes the rule a candidate; the other must hold too.
    let set = set(&process_rule(
        "system32 tool with a rare flag",
        &[
            r#"Image|contains: '\windows\system32\'"#,
            r#"CommandLine|contains: '-exfil'"#,
        ],
    ));
    let common = sysmon_1(r"C:\Windows\System32\cmd.exe", "cmd /c whoami");
    let both = sysmon_1(r"C:\Windows\System32\cmd.exe", "cmd /c tool -exfil");
    let rare_only = sysmon_1(r"C:\tools\tool.exe", "tool -exfil");
    assert_eq!(set.prefilter_stats(&[common]), (1, 0, 0));
    assert_eq!(set.prefilter_stats(&[both]), (1, 1, 1));
    assert_eq!(set.prefilter_stats(&[rare_only]), (1, 0, 0));
}

// The pre-filter's regex literals (prefix, suffix and inside) never skip a rule that matches:
// random regexes over a small alphabet, with values built from the same pieces so that they match
// often, evaluated with the pre-filter on and off.

use proptest::prelude::*;

/// Regex pieces: letters with case variants the engine folds (`ſ` for `s`, the Kelvin sign for
/// `k`), classes, groups, alternations and repetitions.
fn regex_piece() -> impl Strategy<Value = String> {
    let leaf = letters_or(
        "[a-ckKs]{1,6}",
        &["ſ", "\u{212A}", "\\s", "\\d", ".", "[ab]", "\\\\"],
    );
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..5).prop_map(|v| v.concat()),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("(?:{a}|{b})")),
            (
                inner.clone(),
                prop_oneof![Just("*"), Just("+"), Just("?"), Just("{2}")]
            )
                .prop_map(|(a, q)| format!("(?:{a}){q}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

/// A run of letters matching `letters` (a regex), or one of `fixed`.
fn letters_or(
    letters: &'static str,
    fixed: &'static [&'static str],
) -> impl Strategy<Value = String> {
    prop_oneof![
        letters.prop_map(|s: String| s),
        prop::sample::select(fixed).prop_map(str::to_string),
    ]
}

/// Event values: runs of the same letters in both cases, their folding variants, spaces, digits and
/// backslashes.
fn value_piece() -> impl Strategy<Value = String> {
    let piece = letters_or("[a-cA-CkKsS]{1,6}", &["ſ", "\u{212A}", " ", "7", "\\"]);
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    // 128 cases (each loads two rule sets), or `PROPTEST_CASES` for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        ..ProptestConfig::default()
    })]

    #[test]
    fn regex_literals_never_skip_a_matching_rule(
        pieces in prop::collection::vec(regex_piece(), 1..4),
        insensitive in any::<bool>(),
        values in prop::collection::vec(value_piece(), 1..6),
    ) {
        let pattern = format!("{}{}", if insensitive { "(?i)" } else { "" }, pieces.concat());
        let item = format!("CommandLine|re: '{}'", pattern.replace('\'', "''"));
        let text = process_rule("random regex", &[&item]);
        let on = RuleSet::from_yaml_str("r.yml", &text, &Options::default());
        let off = RuleSet::from_yaml_str(
            "r.yml",
            &text,
            &Options { prefilter: false, ..Options::default() },
        );
        // Values built around the regex's own letters match it now and then.
        let events: Vec<Event> = values
            .iter()
            .map(|v| sysmon_1(r"C:\x\a.exe", v))
            .chain(pieces.iter().map(|p| sysmon_1(r"C:\x\a.exe", &p.replace(['(', ')', '?', ':', '|', '*', '+', '{', '}', '[', ']', '.'], ""))))
            .collect();
        let hits = |set: &RuleSet| set.evaluate(&events).iter().map(|h| h.event).collect::<Vec<_>>();
        prop_assert_eq!(hits(&on), hits(&off), "pattern {}", pattern);
    }
}
