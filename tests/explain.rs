//! Nearest-miss explanations: which selection, condition, field and value kept a rule from firing,
//! on which event.

use purplecov::sigma::{Options, RuleSet};
use purplecov::telemetry::{Event, Value};

fn set(text: &str) -> RuleSet {
    let s = RuleSet::from_yaml_str("inline.yml", text, &Options::default());
    assert!(s.diagnostics().is_empty(), "{:?}", s.diagnostics());
    s
}

fn sysmon(id: i64, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::from_fields(fields.iter().map(|(k, v)| (*k, Value::Str(v.to_string()))));
    e.set(
        "Channel".into(),
        Value::Str("Microsoft-Windows-Sysmon/Operational".into()),
    );
    e.set("EventID".into(), Value::Int(id));
    e.set(
        "TimeCreated_SystemTime".into(),
        Value::Str("2026-03-14T09:26:53.120Z".into()),
    );
    e.set("Computer".into(), Value::Str("WS1".into()));
    e
}

const RULE: &str = "title: Rclone to SFTP
id: 11111111-0000-4000-8000-000000000001
logsource: {category: process_creation, product: windows}
detection:
  tool:
    Image|endswith: '\\rclone.exe'
  remote:
    CommandLine|contains|all: [copy, 'sftp:']
  filter_admin:
    User: CORP\\backup
  condition: tool and remote and not filter_admin
";

#[test]
fn the_event_with_fewest_failures_is_chosen_and_each_failed_item_named() {
    let s = set(RULE);
    let events = [
        sysmon(
            1,
            &[("Image", "C:\\Windows\\cmd.exe"), ("CommandLine", "cmd")],
        ),
        sysmon(
            1,
            &[
                ("Image", "C:\\Tools\\rclone.exe"),
                ("CommandLine", "rclone.exe sync C:\\data sftp:backup"),
                ("User", "CORP\\j.doe"),
            ],
        ),
    ];
    assert!(s.evaluate(&events).is_empty());
    let e = s.explain(0, &events, &[], &[]);
    assert_eq!(e.event, Some(1));
    assert_eq!(e.failures.len(), 1, "{e:?}");
    let f = &e.failures[0];
    assert_eq!(f.selection, "remote");
    assert_eq!(f.kind, "no_match");
    assert_eq!(f.field, "CommandLine|contains|all");
    assert!(f.wanted.starts_with("all of "), "{}", f.wanted);
    assert!(f.wanted.contains("copy"), "{}", f.wanted);
    assert_eq!(
        f.actual.as_deref(),
        Some("rclone.exe sync C:\\data sftp:backup")
    );
    assert!(f.line > 0);
    assert!(
        e.summary.starts_with("event 1: selection `remote`"),
        "{}",
        e.summary
    );
}

#[test]
fn a_filter_that_excluded_the_event_is_named_with_its_value() {
    let s = set(RULE);
    let events = [sysmon(
        1,
        &[
            ("Image", "C:\\Tools\\rclone.exe"),
            ("CommandLine", "rclone.exe copy C:\\data sftp:backup"),
            ("User", "CORP\\backup"),
        ],
    )];
    assert!(s.evaluate(&events).is_empty());
    let e = s.explain(0, &events, &[], &[]);
    assert_eq!(e.failures.len(), 1, "{e:?}");
    assert_eq!(e.failures[0].kind, "excluded");
    assert_eq!(e.failures[0].selection, "filter_admin");
    assert_eq!(e.failures[0].actual.as_deref(), Some("CORP\\backup"));
    assert!(e.summary.contains("filter `filter_admin` excluded it"));
}

#[test]
fn a_missing_field_is_said_to_be_missing() {
    let s = set(RULE);
    let events = [sysmon(1, &[("Image", "C:\\Tools\\rclone.exe")])];
    let e = s.explain(0, &events, &[], &[]);
    assert_eq!(e.failures[0].actual, None);
    assert!(
        e.summary.contains("the event lacks the field"),
        "{}",
        e.summary
    );
}

#[test]
fn events_outside_the_log_source_are_not_candidates() {
    let s = set(RULE);
    // A network connection (Sysmon 3) with a matching image never reaches process_creation.
    let events = [sysmon(
        3,
        &[
            ("Image", "C:\\Tools\\rclone.exe"),
            ("CommandLine", "rclone.exe copy sftp:x"),
        ],
    )];
    let e = s.explain(0, &events, &[], &[]);
    assert_eq!(e.event, None);
    assert!(
        e.summary
            .starts_with("no event reaches the rule's log source"),
        "{}",
        e.summary
    );
    assert!(
        e.summary.contains("sysmon-network-connection"),
        "{}",
        e.summary
    );
}

#[test]
fn candidates_restrict_the_events_considered() {
    let s = set(RULE);
    let events = [
        sysmon(
            1,
            &[
                ("Image", "C:\\Tools\\rclone.exe"),
                ("CommandLine", "rclone.exe sync sftp:x"),
            ],
        ),
        sysmon(
            1,
            &[("Image", "C:\\Windows\\cmd.exe"), ("CommandLine", "x")],
        ),
    ];
    assert_eq!(s.explain(0, &events, &[1], &[]).event, Some(1));
    assert_eq!(s.explain(0, &events, &[], &[]).event, Some(0));
}

#[test]
fn a_list_of_maps_blames_its_nearest_map_and_or_conditions_their_nearest_branch() {
    let s = set("title: Either
logsource: {category: process_creation, product: windows}
detection:
  sel:
    - Image|endswith: '\\curl.exe'
      CommandLine|contains: ' -T '
    - Image|endswith: '\\bitsadmin.exe'
      CommandLine|contains: '/upload'
  other:
    Image|endswith: '\\nothing.exe'
    CommandLine|contains: [a, b]
    User: x
  condition: sel or other
");
    let events = [sysmon(
        1,
        &[
            ("Image", "C:\\Windows\\bitsadmin.exe"),
            ("CommandLine", "bitsadmin /transfer j /download"),
        ],
    )];
    let e = s.explain(0, &events, &[], &[]);
    assert_eq!(e.failures.len(), 1, "{e:?}");
    assert_eq!(e.failures[0].selection, "sel");
    assert_eq!(e.failures[0].field, "CommandLine|contains");
    assert!(e.failures[0].wanted.contains("/upload"));
}

#[test]
fn a_silent_correlation_names_the_referenced_rule_that_matched_nothing() {
    let s = set("title: Archive
name: archive
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|endswith: '\\7z.exe'
  condition: sel
---
title: Upload
name: upload
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|endswith: '\\curl.exe'
  condition: sel
---
title: Archive then upload
correlation:
  type: temporal
  rules: [archive, upload]
  group-by: [Computer]
  timespan: 5m
");
    let events = [sysmon(1, &[("Image", "C:\\Tools\\curl.exe")])];
    let hits = s.evaluate(&events);
    let corr = s
        .rules()
        .iter()
        .position(|r| r.meta.title == "Archive then upload")
        .unwrap();
    let e = s.explain(corr, &events, &[], &hits);
    assert!(
        e.summary
            .starts_with("correlation needs every referenced rule within 300 s per Computer"),
        "{}",
        e.summary
    );
    assert!(
        e.summary
            .contains("`Archive` matched 0 event(s), `Upload` matched 1 event(s)"),
        "{}",
        e.summary
    );
    assert!(
        e.summary.contains("`Archive`: event 0: selection `sel`"),
        "{}",
        e.summary
    );
    assert_eq!(e.failures[0].actual.as_deref(), Some("C:\\Tools\\curl.exe"));
}

#[test]
fn an_unsupported_rule_says_so() {
    let s = RuleSet::from_yaml_str(
        "inline.yml",
        "title: Placeholder
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|expand: '%admin_tools%'
  condition: sel
",
        &Options::default(),
    );
    let e = s.explain(0, &[sysmon(1, &[("Image", "x")])], &[], &[]);
    assert!(
        e.summary.starts_with("the engine cannot evaluate the rule"),
        "{}",
        e.summary
    );
}
