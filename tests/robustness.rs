//! Hostile input for the library: rule texts (`RuleSet::from_yaml_str`) and telemetry text
//! (`read::read_json_text`) that are deeply nested, exponentially aliased, huge, of the wrong types or
//! random must never panic; what cannot be used comes back as located diagnostics, and what loads
//! evaluates in bounded time.

use proptest::prelude::*;
use purplecov::sigma::{Options, RuleSet, RuleStatus};
use purplecov::telemetry::read::read_json_text;
use purplecov::telemetry::{Event, Value};
use purplecov::Severity;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options with routing off: every rule sees every event (the events here carry no `Channel`).
fn unrouted() -> Options {
    Options {
        routing: false,
        ..Options::default()
    }
}

/// Loads a rule text; fails the test if loading takes unreasonably long.
fn load(name: &str, text: &str, opts: &Options) -> RuleSet {
    let t = Instant::now();
    let set = RuleSet::from_yaml_str(name, text, opts);
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "{name}: loading took {:?}",
        t.elapsed()
    );
    set
}

/// Every rule of the set evaluated on `events`, with a time bound.
fn evaluate_all(set: &RuleSet, events: &[Event]) -> Vec<Vec<usize>> {
    let t = Instant::now();
    let mut sc = set.scratch();
    let mut out = Vec::new();
    let res = events
        .iter()
        .map(|ev| {
            set.matches(ev, &mut sc, &mut out);
            out.clone()
        })
        .collect();
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "evaluation took {:?}",
        t.elapsed()
    );
    res
}

fn errors(set: &RuleSet) -> Vec<String> {
    set.diagnostics()
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

/// The text is not a usable rule: no rule is ready, and there is at least one error diagnostic that
/// names the file.
fn assert_rejected(name: &str, set: &RuleSet) {
    assert!(
        set.rules().iter().all(|r| r.status != RuleStatus::Ready),
        "{name}: a rule loaded as ready"
    );
    let errs = errors(set);
    assert!(!errs.is_empty(), "{name}: no error diagnostic");
    for d in set.diagnostics() {
        assert_eq!(d.location.path, Path::new(name), "{name}: {d}");
    }
}

fn event(fields: &[(&str, &str)]) -> Event {
    Event::from_fields(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Str(v.to_string()))),
    )
}

fn sample_events() -> Vec<Event> {
    vec![
        event(&[
            ("Channel", "Microsoft-Windows-Sysmon/Operational"),
            ("Image", "C:\\Windows\\System32\\cmd.exe"),
            ("CommandLine", "cmd.exe /c whoami"),
        ]),
        event(&[("CommandLine", &"a".repeat(100_000))]),
        Event::default(),
    ]
}

const VALID: &str = "title: Valid
logsource:
    product: windows
detection:
    selection:
        CommandLine|contains: 'whoami'
    condition: selection
";

#[test]
fn the_valid_baseline_loads_and_matches() {
    let set = load("valid.yml", VALID, &unrouted());
    assert!(errors(&set).is_empty(), "{:?}", errors(&set));
    assert_eq!(set.rules()[0].status, RuleStatus::Ready);
    assert_eq!(
        evaluate_all(&set, &sample_events()),
        vec![vec![0usize], vec![], vec![]]
    );
}

// ---------------------------------------------------------------------------------------------
// Deep nesting
// ---------------------------------------------------------------------------------------------

const DEPTH: usize = 10_000;

fn deep_texts() -> Vec<(&'static str, String)> {
    let flow_lists = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let flow_maps = format!("{}1{}", "{a: ".repeat(DEPTH), "}".repeat(DEPTH));
    let block_lists = format!("{}x", "- ".repeat(DEPTH));
    let mixed = format!("{}1{}", "[{a: ".repeat(DEPTH / 2), "}]".repeat(DEPTH / 2));
    let in_rule = |v: &str| {
        format!(
            "title: Deep\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine: {v}\n    condition: selection\n"
        )
    };
    let in_detection = format!(
        "title: Deep\nlogsource:\n    product: windows\ndetection:\n    selection: {flow_maps}\n    condition: selection\n"
    );
    vec![
        ("flow_lists_document", flow_lists.clone()),
        ("flow_maps_document", flow_maps.clone()),
        ("block_lists_document", block_lists.clone()),
        ("mixed_document", mixed.clone()),
        ("flow_lists_value", in_rule(&flow_lists)),
        ("flow_maps_value", in_rule(&flow_maps)),
        ("mixed_value", in_rule(&mixed)),
        ("flow_maps_selection", in_detection),
        (
            "block_lists_title",
            format!("title:\n{}\n", block_lists.replace("- ", "  - ")),
        ),
    ]
}

#[test]
fn deeply_nested_yaml_is_rejected_with_a_diagnostic() {
    for (name, text) in deep_texts() {
        let name = format!("{name}.yml");
        let set = load(&name, &text, &unrouted());
        assert_rejected(&name, &set);
        evaluate_all(&set, &sample_events());
    }
}

// ---------------------------------------------------------------------------------------------
// Alias bomb
// ---------------------------------------------------------------------------------------------

/// Billion laughs: 9 levels of 9 aliases each, 9^9 strings when fully expanded.
fn alias_bomb(root: &str) -> String {
    let mut s = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..=8 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    s.push_str(root);
    s
}

#[test]
fn alias_bomb_is_rejected_with_a_diagnostic() {
    let texts = [
        ("bomb_plain.yml", alias_bomb("")),
        (
            "bomb_in_rule.yml",
            alias_bomb(
                "title: Bomb\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|contains: *a8\n    condition: selection\n",
            ),
        ),
        (
            "bomb_keywords.yml",
            alias_bomb(
                "title: Bomb\nlogsource:\n    product: windows\ndetection:\n    keywords: *a8\n    condition: keywords\n",
            ),
        ),
        (
            "bomb_title.yml",
            alias_bomb("title: *a8\nlogsource:\n    product: windows\ndetection:\n    selection:\n        A: b\n    condition: selection\n"),
        ),
    ];
    for (name, text) in texts {
        let set = load(name, &text, &unrouted());
        assert_rejected(name, &set);
        evaluate_all(&set, &sample_events());
    }
}

#[test]
fn a_few_aliases_are_fine() {
    let text = "title: Aliases\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|contains: &v ['whoami', 'net user']\n    other:\n        ParentCommandLine|contains: *v\n    condition: selection or other\n";
    let set = load("aliases.yml", text, &unrouted());
    // Either the engine accepts YAML aliases (and matches) or it says why it does not.
    match &set.rules()[0].status {
        RuleStatus::Ready => {
            assert_eq!(evaluate_all(&set, &sample_events())[0], vec![0]);
        }
        _ => assert!(!set.diagnostics().is_empty()),
    }
}

// ---------------------------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------------------------

const FIVE_MB: usize = 5 << 20;

#[test]
fn five_megabyte_value_list_loads_and_evaluates() {
    let mut text = String::from(
        "title: Big List\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|contains:\n",
    );
    let mut i = 0usize;
    while text.len() < FIVE_MB {
        text.push_str(&format!(
            "            - 'needle-{i:08}-{}'\n",
            "q".repeat(24)
        ));
        i += 1;
    }
    text.push_str("    condition: selection\n");
    let set = load("big_list.yml", &text, &unrouted());
    assert!(errors(&set).is_empty(), "{:?}", errors(&set));
    assert_eq!(set.rules()[0].status, RuleStatus::Ready);
    let hit = event(&[(
        "CommandLine",
        &format!("x needle-{:08}-{} y", i / 2, "q".repeat(24)),
    )]);
    let mut events = sample_events();
    events.push(hit);
    assert_eq!(
        evaluate_all(&set, &events),
        vec![vec![], vec![], vec![], vec![0usize]]
    );
}

#[test]
fn five_megabyte_scalar_loads() {
    let text = format!(
        "title: Big Scalar\ndescription: '{}'\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|contains: '{}'\n    condition: selection\n",
        "d".repeat(FIVE_MB / 2),
        "n".repeat(FIVE_MB / 2)
    );
    let set = load("big_scalar.yml", &text, &unrouted());
    assert!(errors(&set).is_empty(), "{:?}", errors(&set));
    assert_eq!(
        evaluate_all(&set, &sample_events()),
        vec![Vec::<usize>::new(); 3]
    );
}

#[test]
fn five_megabytes_of_garbage_is_rejected() {
    let mut text = String::new();
    let mut i = 0u32;
    while text.len() < FIVE_MB {
        text.push_str(["{[", ": -", "'\"", "&*!", "|>\n", "\t  ", "%@`"][(i % 7) as usize]);
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345) >> 3;
    }
    let set = load("garbage.yml", &text, &unrouted());
    assert_rejected("garbage.yml", &set);
}

#[test]
fn five_megabytes_of_documents() {
    // Many small documents, one of them broken: the others still load.
    let mut text = String::new();
    let mut n = 0;
    while text.len() < FIVE_MB {
        text.push_str(&format!(
            "title: Doc {n}\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|contains: 'w{n}x'\n    condition: selection\n---\n"
        ));
        n += 1;
    }
    text.push_str("title: Broken\ndetection: [\n");
    let set = load("many_docs.yml", &text, &unrouted());
    assert_eq!(set.rules().len(), n);
    assert!(set.rules().iter().all(|r| r.status == RuleStatus::Ready));
    let errs = errors(&set);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(set.diagnostics()[0].location.line > 0);
    let ev = event(&[("CommandLine", &format!("w{}x", n - 1))]);
    assert_eq!(evaluate_all(&set, &[ev]), vec![vec![n - 1]]);
}

// ---------------------------------------------------------------------------------------------
// Wrong types
// ---------------------------------------------------------------------------------------------

fn rule_with(title: &str, logsource: &str, detection: &str) -> String {
    format!("title: {title}\nlogsource: {logsource}\ndetection:{detection}\n")
}

const LS: &str = "\n    product: windows";
const DET: &str = "\n    selection:\n        CommandLine: x\n    condition: selection";

#[test]
fn wrong_types_are_rejected_with_a_located_diagnostic() {
    let cases: Vec<(&str, String)> = vec![
        ("title_list", rule_with("[1, 2]", LS, DET)),
        ("title_map", rule_with("{a: b}", LS, DET)),
        ("title_null", rule_with("null", LS, DET)),
        ("detection_number", rule_with("t", LS, " 5")),
        ("detection_string", rule_with("t", LS, " 'selection'")),
        ("detection_list", rule_with("t", LS, " [selection, condition]")),
        (
            "condition_map",
            rule_with(
                "t",
                LS,
                "\n    selection:\n        CommandLine: x\n    condition: {a: b}",
            ),
        ),
        (
            "condition_number",
            rule_with("t", LS, "\n    selection:\n        CommandLine: x\n    condition: 5"),
        ),
        (
            "condition_list_of_maps",
            rule_with(
                "t",
                LS,
                "\n    selection:\n        CommandLine: x\n    condition:\n        - {a: b}",
            ),
        ),
        (
            "condition_missing",
            rule_with("t", LS, "\n    selection:\n        CommandLine: x"),
        ),
        ("logsource_string", rule_with("t", "'x'", DET)),
        ("logsource_list", rule_with("t", "[windows]", DET)),
        ("logsource_number", rule_with("t", "5", DET)),
        (
            "selection_null",
            rule_with("t", LS, "\n    selection: null\n    condition: selection"),
        ),
        (
            "field_nested_map",
            rule_with(
                "t",
                LS,
                "\n    selection:\n        CommandLine: {nested: map}\n    condition: selection",
            ),
        ),
        (
            "field_list_with_map",
            rule_with(
                "t",
                LS,
                "\n    selection:\n        CommandLine:\n            - x\n            - {nested: map}\n    condition: selection",
            ),
        ),
        (
            "field_list_with_list",
            rule_with(
                "t",
                LS,
                "\n    selection:\n        CommandLine:\n            - x\n            - [a, b]\n    condition: selection",
            ),
        ),
        (
            "keyword_list_with_map",
            rule_with(
                "t",
                LS,
                "\n    keywords:\n        - x\n        - {nested: {deeper: map}}\n    condition: keywords",
            ),
        ),
        (
            "field_key_list",
            rule_with("t", LS, "\n    selection:\n        [a, b]: x\n    condition: selection"),
        ),
        (
            "modifier_chain_empty",
            rule_with("t", LS, "\n    selection:\n        'CommandLine||': x\n    condition: selection"),
        ),
        (
            "cidr_number",
            rule_with("t", LS, "\n    selection:\n        DestinationIp|cidr: 5\n    condition: selection"),
        ),
        (
            "lt_text",
            rule_with("t", LS, "\n    selection:\n        Port|lt: abc\n    condition: selection"),
        ),
        (
            "re_number_list",
            rule_with("t", LS, "\n    selection:\n        X|re: [1, '(']\n    condition: selection"),
        ),
        ("document_list", "- title: a\n- detection: b\n".to_string()),
        ("document_scalar", "just a string\n".to_string()),
        ("document_number", "42\n".to_string()),
        (
            "everything_wrong",
            "title: [1, 2]\nid: {x: y}\nstatus: 7\nlevel: [high]\ntags: 5\nauthor: [a]\ndate: {d: 1}\nlogsource: 'x'\ndetection: 5\n".to_string(),
        ),
    ];
    for (name, text) in cases {
        let name = format!("{name}.yml");
        let set = load(&name, &text, &unrouted());
        assert_rejected(&name, &set);
        // A wrong type concerns a line of the file: every error names one.
        for d in set.diagnostics() {
            if d.severity == Severity::Error {
                assert!(d.location.line > 0, "{name}: error without a line: {d}");
            }
        }
        evaluate_all(&set, &sample_events());
    }
}

#[test]
fn scalars_under_an_identifier_are_keywords() {
    // Settled semantics (tests/conformance/detection_shapes.yaml, scalar_under_identifier_is_keyword):
    // a plain scalar under a search identifier is a keyword, whatever its YAML type; a number as a
    // field name is that field name.
    for (name, detection, hit, miss) in [
        (
            "selection_number.yml",
            "\n    selection: 5\n    condition: selection",
            // A number keyword compares as a number (`445` does not contain the keyword 5), so
            // only values that are the number are used here.
            ("Port", "5"),
            ("Port", "6"),
        ),
        (
            "selection_bool.yml",
            "\n    selection: true\n    condition: selection",
            ("Initiated", "true"),
            ("Initiated", "false"),
        ),
        (
            "field_key_number.yml",
            "\n    selection:\n        5: x\n    condition: selection",
            ("5", "x"),
            ("6", "x"),
        ),
    ] {
        let set = load(name, &rule_with("t", LS, detection), &unrouted());
        assert!(errors(&set).is_empty(), "{name}: {:?}", errors(&set));
        assert_eq!(set.rules()[0].status, RuleStatus::Ready, "{name}");
        assert_eq!(
            evaluate_all(&set, &[event(&[hit]), event(&[miss])]),
            vec![vec![0usize], vec![]],
            "{name}"
        );
    }
}

#[test]
fn wrong_types_in_metadata_do_not_panic() {
    // Metadata of the wrong type may be tolerated (with a warning) or rejected; either way no panic
    // and, if rejected, a diagnostic.
    for (name, meta) in [
        ("id_map", "id: {x: y}"),
        ("status_number", "status: 7"),
        ("level_list", "level: [high]"),
        ("tags_number", "tags: 5"),
        ("author_list", "author: [a, b]"),
        ("date_map", "date: {d: 1}"),
        ("references_map", "references: {a: b}"),
        ("falsepositives_number", "falsepositives: 3"),
        ("fields_map", "fields: {a: b}"),
        ("related_string", "related: x"),
    ] {
        let name = format!("{name}.yml");
        let text = format!("{VALID}{meta}\n");
        let set = load(&name, &text, &unrouted());
        if set.rules().iter().any(|r| r.status != RuleStatus::Ready) {
            assert!(!set.diagnostics().is_empty(), "{name}: rejected silently");
        }
        evaluate_all(&set, &sample_events());
    }
}

// ---------------------------------------------------------------------------------------------
// Pathological regexes
// ---------------------------------------------------------------------------------------------

#[test]
fn pathological_regexes_load_and_run_in_bounded_time_or_are_rejected() {
    let patterns = [
        "(a*)*b",
        "(a|a)*b",
        "(a|aa)*$",
        "(a+)+$",
        "^(a?){30}a{30}$",
        "(.*a){20}",
        "a{1000}{1000}",
        "(a{1000}){1000}",
        "((a{100}){100}){100}",
        "[\\s\\S]{65535}",
        "\\w{5000}",
        // A long case-insensitive word: 20,000 one-letter classes in one concatenation.
        &format!("(?i){}", "abcdefghij".repeat(2_000)),
    ];
    let long_a = "a".repeat(100_000);
    let events = vec![
        event(&[("CommandLine", &long_a)]),
        event(&[("CommandLine", &format!("{long_a}!"))]),
        event(&[("CommandLine", "aaab")]),
    ];
    for p in &patterns {
        let text = format!(
            "title: Regex\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|re: '{p}'\n    condition: selection\n"
        );
        let set = load("regex.yml", &text, &unrouted());
        match &set.rules()[0].status {
            RuleStatus::Ready => {
                evaluate_all(&set, &events);
            }
            RuleStatus::Invalid => {
                let errs = errors(&set);
                assert!(
                    errs.iter().any(|e| e.contains("regex")),
                    "{p}: rejected without saying 'regex': {errs:?}"
                );
            }
            RuleStatus::Unsupported { reason, .. } => {
                assert!(reason.contains("regex"), "{p}: {reason}");
            }
        }
    }
}

#[test]
fn a_regex_with_catastrophic_backtracking_in_pcre_matches_correctly() {
    let text = "title: Regex\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|re: '(a*)*b'\n    condition: selection\n";
    let set = load("regex.yml", text, &unrouted());
    assert_eq!(set.rules()[0].status, RuleStatus::Ready);
    let no = event(&[("CommandLine", &"a".repeat(50_000))]);
    let yes = event(&[("CommandLine", &format!("{}b", "a".repeat(50_000)))]);
    assert_eq!(evaluate_all(&set, &[no, yes]), vec![vec![], vec![0usize]]);
}

// ---------------------------------------------------------------------------------------------
// Telemetry text
// ---------------------------------------------------------------------------------------------

fn read(text: &str) -> purplecov::telemetry::read::ReadOutput {
    let t = Instant::now();
    let out = read_json_text(text, Path::new("input.json"), 0);
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "reading took {:?}",
        t.elapsed()
    );
    out
}

#[test]
fn deeply_nested_json_is_reported() {
    let texts = [
        format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH)),
        format!("{}1{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH)),
        format!(
            "{{\"Channel\":\"Security\",\"x\":{}1{}}}\n{{\"Channel\":\"Security\",\"EventID\":1}}\n",
            "[".repeat(DEPTH),
            "]".repeat(DEPTH)
        ),
        format!(
            "{{\"Event\":{{\"EventData\":{}1{}}}}}",
            "{\"a\":".repeat(DEPTH),
            "}".repeat(DEPTH)
        ),
    ];
    for (i, text) in texts.iter().enumerate() {
        let out = read(text);
        assert!(
            !out.diagnostics.is_empty(),
            "text {i}: no diagnostic for {DEPTH} nested levels ({} events)",
            out.events.len()
        );
        for d in &out.diagnostics {
            assert_eq!(d.location.path, Path::new("input.json"));
            assert!(d.location.line > 0, "text {i}: {d}");
        }
    }
    // The good record after the deep one is still read.
    let out = read(&texts[2]);
    assert_eq!(out.events.len(), 1, "{:?}", out.diagnostics);
}

#[test]
fn moderately_nested_json_is_read() {
    // 100 levels is deep but legitimate.
    let text = format!(
        "{{\"Channel\":\"x\",\"v\":{}1{}}}\n",
        "{\"a\":".repeat(100),
        "}".repeat(100)
    );
    let out = read(&text);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events.len(), 1);
}

#[test]
fn five_megabytes_of_json_garbage_is_reported() {
    let mut text = String::new();
    let mut i = 7u32;
    while text.len() < FIVE_MB {
        text.push_str(["{\"", "\":", "[1,", "}\n", "\"\\u", "nul", "\n{"][(i % 7) as usize]);
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345) >> 3;
    }
    let out = read(&text);
    assert!(!out.diagnostics.is_empty());
    // Diagnostics are capped, not one per bad record.
    assert!(out.diagnostics.len() <= 60, "{}", out.diagnostics.len());
}

#[test]
fn five_megabyte_record_is_read() {
    let text = format!(
        "{{\"Channel\":\"Security\",\"CommandLine\":\"{}\"}}\n",
        "c".repeat(FIVE_MB)
    );
    let out = read(&text);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events.len(), 1);
}

#[test]
fn json_of_the_wrong_shape_is_reported() {
    for text in [
        "5",
        "\"just a string\"",
        "[1, 2, 3]",
        "null",
        "[[{\"a\": 1}]]",
        "{\"a\": 1} 5 {\"b\": 2}",
        "{\"Event\": 5}",
        "{\"Event\": {\"System\": [1], \"EventData\": \"x\"}}",
        "{\"Event\": {\"System\": {\"EventID\": {\"#text\": [1]}}, \"EventData\": {\"Data\": 5}}}",
    ] {
        let out = read(text);
        // Either events (a shape the reader accepts) or a located diagnostic.
        assert!(
            !out.events.is_empty() || !out.diagnostics.is_empty(),
            "{text}: nothing read and nothing said"
        );
        for d in &out.diagnostics {
            assert!(d.location.line > 0, "{text}: {d}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// Text that looks a bit like YAML (structure characters, keys, modifiers), more likely to reach
/// deep into the loader than uniform random strings.
fn yamlish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("title: ".to_string()),
        Just("logsource:\n".to_string()),
        Just("detection:\n".to_string()),
        Just("    selection:\n".to_string()),
        Just("        ".to_string()),
        Just("condition: ".to_string()),
        Just("selection".to_string()),
        Just(" and ".to_string()),
        Just(" or not ".to_string()),
        Just("1 of them".to_string()),
        Just("all of sel*".to_string()),
        Just("|contains".to_string()),
        Just("|re".to_string()),
        Just("|cidr".to_string()),
        Just("|base64offset".to_string()),
        Just("|windash".to_string()),
        Just("|expand".to_string()),
        Just("|all".to_string()),
        Just("|fieldref".to_string()),
        Just("|exists".to_string()),
        Just("|gt".to_string()),
        Just("CommandLine".to_string()),
        Just(": ".to_string()),
        Just("\n".to_string()),
        Just("- ".to_string()),
        Just("---\n".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("null".to_string()),
        Just("'%x%'".to_string()),
        "[a-z*?\\\\'\"{}\\[\\](),|:#&!%@ -]{0,12}",
    ];
    prop::collection::vec(atom, 0..40).prop_map(|v| v.concat())
}

/// Wraps a detection value into an otherwise valid rule.
fn spliced(field_mods: &str, value: &str) -> String {
    format!(
        "title: Spliced\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine{field_mods}: {value}\n    filter:\n        Image|endswith: '\\x.exe'\n    condition: selection and not filter\n"
    )
}

/// Cases per property: 256 (the suite stays fast), or `PROPTEST_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn check_no_panic(text: &str) {
    let set = RuleSet::from_yaml_str("prop.yml", text, &unrouted());
    for r in set.rules() {
        if r.status == RuleStatus::Invalid {
            assert!(
                !set.diagnostics().is_empty(),
                "invalid rule without diagnostics"
            );
        }
    }
    let mut sc = set.scratch();
    let mut out = Vec::new();
    let events = [
        event(&[("CommandLine", "cmd.exe /c whoami"), ("Image", "C:\\x.exe")]),
        Event::default(),
    ];
    for ev in &events {
        set.matches(ev, &mut sc, &mut out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_rule_text_never_panics(text in any::<String>()) {
        check_no_panic(&text);
    }

    #[test]
    fn yamlish_rule_text_never_panics(text in yamlish()) {
        check_no_panic(&text);
    }

    #[test]
    fn arbitrary_detection_value_never_panics(value in any::<String>()) {
        // Spliced raw (may break the YAML) and as a quoted scalar (always one string value).
        check_no_panic(&spliced("", &value));
        check_no_panic(&spliced("", &serde_json::to_string(&value).unwrap()));
        check_no_panic(&spliced("|re", &serde_json::to_string(&value).unwrap()));
        check_no_panic(&spliced("|cidr", &serde_json::to_string(&value).unwrap()));
        check_no_panic(&spliced("|base64offset|contains", &serde_json::to_string(&value).unwrap()));
        check_no_panic(&spliced("|windash|contains", &serde_json::to_string(&value).unwrap()));
        check_no_panic(&spliced("|expand", &serde_json::to_string(&value).unwrap()));
        check_no_panic(&spliced("|gte", &serde_json::to_string(&value).unwrap()));
    }

    #[test]
    fn yamlish_detection_value_never_panics(value in yamlish(), mods in "(\\|[a-z0-9]{0,12}){0,4}") {
        check_no_panic(&spliced(&mods, &value));
        check_no_panic(&spliced(&mods, &serde_json::to_string(&value).unwrap()));
    }

    #[test]
    fn arbitrary_json_text_never_panics(text in any::<String>()) {
        let out = read_json_text(&text, Path::new("prop.json"), 0);
        for d in &out.diagnostics {
            prop_assert_eq!(&d.location.path, Path::new("prop.json"));
        }
    }

    #[test]
    fn jsonish_text_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("{".to_string()), Just("}".to_string()), Just("[".to_string()), Just("]".to_string()),
        Just("\"Event\":".to_string()), Just("\"System\":".to_string()), Just("\"EventData\":".to_string()),
        Just("\"Data\":".to_string()), Just("\"#attributes\":".to_string()), Just("\"@Name\":".to_string()),
        Just("\"#text\":".to_string()), Just(",".to_string()), Just("\n".to_string()), Just("1".to_string()),
        Just("-1e999".to_string()), Just("18446744073709551616".to_string()), Just("null".to_string()),
        Just("\"\\ud800\"".to_string()), Just("\u{feff}".to_string()), "\"[a-zA-Z_ .]{0,6}\"",
    ], 0..60)) {
        let text = parts.concat();
        let _ = read_json_text(&text, Path::new("prop.json"), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary events against the conformance rules
// ---------------------------------------------------------------------------------------------

/// Every rule text of the conformance suite (tests/conformance/*.yaml), one entry per case.
fn conformance_rules() -> Vec<(PathBuf, Result<String, purplecov::Diagnostic>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("conformance folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let doc: serde_norway::Value = serde_norway::from_str(&text).expect("conformance YAML");
        let Some(cases) = doc.get("cases").and_then(|c| c.as_sequence()) else {
            continue;
        };
        for (i, case) in cases.iter().enumerate() {
            if let Some(rule) = case.get("rule").and_then(|r| r.as_str()) {
                out.push((
                    PathBuf::from(format!("{}#{i}", f.display())),
                    Ok(rule.to_string()),
                ));
            }
        }
    }
    out
}

fn conformance_sets() -> &'static [RuleSet] {
    static SETS: std::sync::OnceLock<Vec<RuleSet>> = std::sync::OnceLock::new();
    SETS.get_or_init(|| {
        let rules = conformance_rules();
        assert!(rules.len() > 50, "only {} conformance rules", rules.len());
        let mut sets = Vec::new();
        for (routing, prefilter) in [(false, true), (false, false), (true, true)] {
            let opts = Options {
                routing,
                prefilter,
                ..Options::default()
            };
            sets.push(RuleSet::from_texts(rules.clone(), &opts));
        }
        let ready = sets[0]
            .rules()
            .iter()
            .filter(|r| r.status == RuleStatus::Ready)
            .count();
        assert!(ready > 50, "only {ready} conformance rules ready");
        sets
    })
}

/// Field names the conformance rules and the logsource mapping use, plus random ones.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "Channel", "EventID", "Image", "CommandLine", "ParentImage", "ParentCommandLine",
            "User", "TargetFilename", "DestinationIp", "DestinationPort", "SourceIp", "Hashes",
            "ScriptBlockText", "TargetObject", "Details", "NewProcessName", "NewProcessId",
            "ProcessId", "Provider_Name", "Table", "ActionType", "_path", "a0", "a1", "A", "B",
            "Field", "fieldA", "fieldB", "Initiated", "QueryName", "OriginalFileName", "Port",
            "Count", "Value", "x.y", "Data",
        ]).prop_map(str::to_string),
        1 => "[A-Za-z_.][A-Za-z0-9_.|*?]{0,10}",
        1 => any::<String>(),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(4688),
            Just(-1),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        prop::sample::select(vec![
            "Microsoft-Windows-Sysmon/Operational",
            "Security",
            "1",
            "4688",
            "true",
            "false",
            "C:\\Windows\\System32\\cmd.exe",
            "0x1a2c",
            "10.0.0.1",
            "::1",
            "",
            "*",
            "?",
            "\\",
            "null",
            "whoami",
            "mimikatz",
            "-enc",
            "\u{2013}enc",
            "1.5",
            "1e400",
            "NaN",
            "192.168.1.300",
            "fe80::1%eth0",
        ])
        .prop_map(|s| Value::Str(s.to_string())),
        any::<String>().prop_map(Value::Str),
        "[ -~]{0,40}".prop_map(Value::Str),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::vec(("[A-Za-z]{1,6}", inner), 0..4).prop_map(Value::Map),
        ]
    })
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        prop::collection::vec((field_name(), value()), 0..12),
        prop::option::of(prop::sample::select(vec!["auditd", "zeek", "", "x"])),
    )
        .prop_map(|(fields, sensor)| {
            let mut ev = Event::from_fields(fields);
            ev.sensor = sensor.map(str::to_string);
            ev
        })
}

/// An edit of a rule text: at a position (fraction of the length), delete some characters and insert
/// a snippet.
fn edit() -> impl Strategy<Value = (f64, usize, String)> {
    (
        0.0f64..1.0,
        0usize..6,
        prop_oneof![
            Just(String::new()),
            Just("|".to_string()),
            Just(":".to_string()),
            Just("\n".to_string()),
            Just("- ".to_string()),
            Just("*".to_string()),
            Just("'".to_string()),
            Just("{".to_string()),
            Just("[".to_string()),
            Just(" not ".to_string()),
            Just("(".to_string()),
            Just("|re".to_string()),
            Just("|all".to_string()),
            Just("|cidr".to_string()),
            Just("|windash".to_string()),
            Just("|base64offset".to_string()),
            Just("null".to_string()),
            Just("\\".to_string()),
            "[ -~]{0,4}",
        ],
    )
}

fn apply(text: &str, edits: &[(f64, usize, String)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, del, ins) in edits {
        let pos = ((chars.len() as f64) * at) as usize;
        let pos = pos.min(chars.len());
        let end = (pos + del).min(chars.len());
        chars.splice(pos..end, ins.chars());
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Valid rules with a few random edits reach much deeper into the loader than random text.
    #[test]
    fn edited_conformance_rules_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..4),
        events in prop::collection::vec(arb_event(), 0..3),
    ) {
        static RULES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let rules = RULES.get_or_init(|| {
            conformance_rules()
                .into_iter()
                .filter_map(|(_, t)| t.ok())
                .collect()
        });
        let src: &String = pick.get(rules.as_slice());
        let text = apply(src, &edits);
        let set = RuleSet::from_yaml_str("edited.yml", &text, &unrouted());
        for r in set.rules() {
            if r.status == RuleStatus::Invalid {
                prop_assert!(!set.diagnostics().is_empty(), "invalid without a diagnostic:\n{}", text);
            }
        }
        let mut sc = set.scratch();
        let mut out = Vec::new();
        for ev in &events {
            set.matches(ev, &mut sc, &mut out);
        }
    }

    #[test]
    fn arbitrary_events_against_conformance_rules_never_panic(
        events in prop::collection::vec(arb_event(), 1..8)
    ) {
        let sets = conformance_sets();
        let mut per_set = Vec::new();
        for set in sets {
            let mut sc = set.scratch();
            let mut out = Vec::new();
            let mut seq = Vec::new();
            for ev in &events {
                set.matches(ev, &mut sc, &mut out);
                prop_assert!(out.windows(2).all(|w| w[0] < w[1]), "hits not ascending: {:?}", out);
                seq.push(out.clone());
            }
            // The parallel path gives the same hits as the sequential one.
            let par: Vec<(usize, usize)> =
                set.evaluate(&events).iter().map(|h| (h.event, h.rule)).collect();
            let want: Vec<(usize, usize)> = seq
                .iter()
                .enumerate()
                .flat_map(|(e, rs)| rs.iter().map(move |&r| (e, r)))
                .collect();
            prop_assert_eq!(par, want);
            per_set.push(seq);
        }
        // The pre-filter changes nothing.
        prop_assert_eq!(&per_set[0], &per_set[1]);
    }
}
