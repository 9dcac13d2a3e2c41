//! The auditd reader and renderer: fixtures under `tests/fixtures/auditd/` (hand-written records of
//! every shape the reader handles), exact renderings, and properties: any text never panics, and
//! reading what `render` wrote gives back the values `decoded` promises.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use purplecov::telemetry::auditd::{decoded, is_untrusted_key, read_text, render};
use purplecov::telemetry::native::{AuditRecord, AuditValue};
use purplecov::telemetry::read::{read_path, ReadOutput};
use purplecov::telemetry::{Event, Value};
use purplecov::Severity;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auditd")
        .join(name)
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

fn names(ev: &Event) -> Vec<&str> {
    ev.fields.iter().map(|(k, _)| k.as_str()).collect()
}

fn read(text: &str) -> ReadOutput {
    read_text(text, Path::new("a.log"), 0)
}

/// Reads one line that must give one event and no diagnostics.
fn one(line: &str) -> Event {
    let out = read(line);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events.len(), 1);
    out.events.into_iter().next().expect("one event")
}

/// The events of a fixture, by serial, read through `read_path` (format sniffing included).
fn mixed() -> Vec<Event> {
    let out = read_path(&fixture("mixed.log"), 2);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.skipped, 0);
    out.events
}

fn by_serial(events: &[Event], serial: i64, record_type: &str) -> Event {
    events
        .iter()
        .find(|e| {
            e.get("serial") == Some(&Value::Int(serial)) && e.get("type") == Some(&s(record_type))
        })
        .cloned()
        .unwrap_or_else(|| panic!("no {record_type} {serial}"))
}

#[test]
fn syscall_record_fields_in_order() {
    let events = mixed();
    assert_eq!(events.len(), 23);
    let ev = &events[0];
    assert_eq!(ev.sensor.as_deref(), Some("auditd"));
    assert_eq!((ev.origin.input, ev.origin.record), (2, 1));
    assert_eq!(
        names(ev),
        [
            "type",
            "node",
            "timestamp",
            "serial",
            "arch",
            "syscall",
            "success",
            "exit",
            "a0",
            "a1",
            "a2",
            "a3",
            "items",
            "ppid",
            "pid",
            "auid",
            "uid",
            "gid",
            "euid",
            "suid",
            "fsuid",
            "egid",
            "sgid",
            "fsgid",
            "tty",
            "ses",
            "comm",
            "exe",
            "subj",
            "key"
        ]
    );
    assert_eq!(ev.get("type"), Some(&s("SYSCALL")));
    assert_eq!(ev.get("node"), Some(&s("lab-web-03")));
    assert_eq!(ev.get("timestamp"), Some(&s("1773480413.120")));
    assert_eq!(ev.get("serial"), Some(&Value::Int(4711)));
    // Numbers stay text; SYSCALL's a0..a3 are hex numbers, not strings to decode.
    assert_eq!(ev.get("syscall"), Some(&s("59")));
    assert_eq!(ev.get("a0"), Some(&s("55d1c0a2e0")));
    assert_eq!(ev.get("exe"), Some(&s("/usr/bin/curl")));
    assert_eq!(ev.get("key"), Some(&s("egress")));
    assert_eq!(ev.host().as_deref(), Some("lab-web-03"));
    assert_eq!(ev.timestamp().as_deref(), Some("1773480413.120"));
    assert_eq!(events[22].origin.record, 23);
}

#[test]
fn untrusted_strings_are_unquoted_and_hex_decoded() {
    let events = mixed();
    let execve = by_serial(&events, 4711, "EXECVE");
    let args: Vec<_> = (0..4)
        .map(|i| execve.get(&format!("a{i}")).cloned())
        .collect();
    assert_eq!(
        args,
        [
            Some(s("curl")),
            Some(s("-T")),
            Some(s("/tmp/report q.tar")),
            Some(s("https://files.example.net/u"))
        ]
    );
    assert_eq!(execve.get("argc"), Some(&s("4")));
    // PROCTITLE: NUL separators become spaces.
    let title = by_serial(&events, 4711, "PROCTITLE");
    assert_eq!(
        title.get("proctitle"),
        Some(&s("curl -T /tmp/report q.tar https://files.example.net/u"))
    );
    assert_eq!(
        by_serial(&events, 4711, "CWD").get("cwd"),
        Some(&s("/home/dev"))
    );
    let eoe = by_serial(&events, 4711, "EOE");
    assert_eq!(names(&eoe), ["type", "node", "timestamp", "serial"]);
    // exe in hex; several rule keys become a list; unset ids and `(none)` stay as written.
    let sys = by_serial(&events, 4712, "SYSCALL");
    assert_eq!(sys.get("exe"), Some(&s("/opt/agent/bin/agent (deleted)")));
    assert_eq!(
        sys.get("key"),
        Some(&Value::List(vec![s("net"), s("egress")]))
    );
    assert_eq!(sys.get("auid"), Some(&s("4294967295")));
    assert_eq!(sys.get("tty"), Some(&s("(none)")));
    assert_eq!(sys.get("exit"), Some(&s("-115")));
    assert_eq!(
        by_serial(&events, 4727, "CONFIG_CHANGE").get("key"),
        Some(&s("(null)"))
    );
    // TTY data with control characters.
    assert_eq!(
        by_serial(&events, 4728, "TTY").get("data"),
        Some(&s("id\rwhoami\r"))
    );
}

#[test]
fn long_execve_arguments_are_joined() {
    let ev = by_serial(&mixed(), 4726, "EXECVE");
    assert_eq!(
        names(&ev),
        [
            "type",
            "timestamp",
            "serial",
            "argc",
            "a0",
            "a1_len",
            "a1",
            "a2"
        ]
    );
    assert_eq!(ev.get("a1"), Some(&s("echo payload")));
    assert_eq!(ev.get("a1_len"), Some(&s("12")));
    // Chunks of one argument may split a UTF-8 character.
    let ev = one("type=EXECVE msg=audit(1.000:1): argc=1 a0[0]=C3 a0[1]=A9");
    assert_eq!(ev.get("a0"), Some(&s("é")));
}

#[test]
fn sockaddr_helpers() {
    let events = mixed();
    let get = |serial: i64| {
        let ev = by_serial(&events, serial, "SOCKADDR");
        ev.fields
            .iter()
            .skip(3)
            .map(|(k, v)| (k.clone(), v.as_text().unwrap_or_default().into_owned()))
            .collect::<Vec<_>>()
    };
    let pairs = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        get(4712),
        pairs(&[
            ("saddr", "020001BBC63364070000000000000000"),
            ("saddr_family", "ipv4"),
            ("saddr_addr", "198.51.100.7"),
            ("saddr_port", "443"),
        ])
    );
    let v6 = get(4713);
    assert_eq!(
        v6[1..],
        pairs(&[
            ("saddr_family", "ipv6"),
            ("saddr_addr", "2001:db8::1"),
            ("saddr_port", "80")
        ])[..]
    );
    assert_eq!(
        get(4714)[1..],
        pairs(&[("saddr_family", "unix"), ("saddr_path", "/run/app.sock")])[..]
    );
    assert_eq!(
        get(4715)[1..],
        pairs(&[("saddr_family", "unix"), ("saddr_path", "@lab-abstract")])[..]
    );
    assert_eq!(get(4716)[1..], pairs(&[("saddr_family", "netlink")])[..]);
    // AF_ALG (38) with nothing after the family.
    assert_eq!(
        get(4717),
        pairs(&[("saddr", "2600"), ("saddr_family", "38")])
    );
    // Too short for a family, or not hex: no helpers.
    assert_eq!(
        names(&one("type=SOCKADDR msg=audit(1.000:1): saddr=02")).len(),
        4
    );
    assert_eq!(
        names(&one("type=SOCKADDR msg=audit(1.000:1): saddr=(null)")).len(),
        4
    );
}

#[test]
fn user_space_messages_are_split() {
    let events = mixed();
    let cmd = by_serial(&events, 4720, "USER_CMD");
    assert_eq!(
        names(&cmd),
        [
            "type",
            "timestamp",
            "serial",
            "pid",
            "uid",
            "auid",
            "ses",
            "subj",
            "msg",
            "cwd",
            "cmd",
            "exe",
            "terminal",
            "res"
        ]
    );
    assert_eq!(cmd.get("cmd"), Some(&s("systemctl stop auditd")));
    assert_eq!(cmd.get("cwd"), Some(&s("/home/dev")));
    assert!(
        matches!(cmd.get("msg"), Some(Value::Str(m)) if m.starts_with("cwd=\"/home/dev\" cmd="))
    );
    let login = by_serial(&events, 4721, "USER_LOGIN");
    assert_eq!(login.get("acct"), Some(&s("(invalid user)")));
    assert_eq!(login.get("hostname"), Some(&s("?")));
    assert_eq!(login.get("addr"), Some(&s("203.0.113.9")));
    assert_eq!(login.get("res"), Some(&s("failed")));
    // Old PAM text: words are passed over, the parenthesised list is read.
    let start = by_serial(&events, 4722, "USER_START");
    assert_eq!(start.get("acct"), Some(&s("dev")));
    assert_eq!(start.get("exe"), Some(&s("/usr/sbin/crond")));
    assert_eq!(start.get("hostname"), Some(&s("?,")));
    assert_eq!(start.get("terminal"), Some(&s("cron")));
    assert_eq!(start.get("res"), Some(&s("success")));
    // A nested name the record already has is kept as msg.<name>.
    let ev = one("type=USER_ACCT msg=audit(1.000:1): pid=1 uid=0 msg='op=x uid=5 res=success'");
    assert_eq!(ev.get("uid"), Some(&s("0")));
    assert_eq!(ev.get("msg.uid"), Some(&s("5")));
    // A `'` inside a double-quoted inner value does not end the message.
    let ev = one(r#"type=USER_CMD msg=audit(1.000:1): msg='op="it's" res=ok' after=1"#);
    assert_eq!(ev.get("op"), Some(&s("it's")));
    assert_eq!(ev.get("after"), Some(&s("1")));
}

#[test]
fn login_avc_and_daemon_records() {
    let events = mixed();
    let login = by_serial(&events, 4723, "LOGIN");
    assert_eq!(login.get("old_auid"), Some(&s("4294967295")));
    assert_eq!(login.get("new_auid"), Some(&s("1001")));
    assert_eq!(login.get("auid"), None);
    let avc = by_serial(&events, 4724, "AVC");
    assert_eq!(&names(&avc)[3..6], ["seresult", "seperms", "pid"]);
    assert_eq!(avc.get("seresult"), Some(&s("denied")));
    assert_eq!(avc.get("seperms"), Some(&s("read,write")));
    assert_eq!(
        avc.get("tcontext"),
        Some(&s("system_u:object_r:shadow_t:s0"))
    );
    let apparmor = by_serial(&events, 4725, "AVC");
    assert_eq!(apparmor.get("apparmor"), Some(&s("DENIED")));
    assert_eq!(apparmor.get("seresult"), None);
    let daemon = by_serial(&events, 4700, "DAEMON_START");
    assert_eq!(daemon.get("format"), Some(&s("enriched")));
    // The `old`/`new` prefix is LOGIN's only.
    let ev = one("type=USER_MGMT msg=audit(1.000:1): old auid=1");
    assert_eq!(ev.get("auid"), Some(&s("1")));
}

#[test]
fn enriched_values_are_kept_under_their_names() {
    let out = read_path(&fixture("enriched.log"), 0);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    let ev = &out.events[0];
    assert_eq!(ev.get("syscall"), Some(&s("41")));
    assert_eq!(ev.get("SYSCALL"), Some(&s("socket")));
    assert_eq!(ev.get("a0"), Some(&s("26")));
    assert_eq!(ev.get("key"), Some(&s("(null)")));
    assert_eq!(ev.get("ARCH"), Some(&s("x86_64")));
    assert_eq!(ev.get("AUID"), Some(&s("dev")));
    assert_eq!(names(ev).last(), Some(&"FSGID"));
    let sa = &out.events[1];
    assert_eq!(sa.get("saddr_addr"), Some(&s("192.168.1.10")));
    assert_eq!(
        sa.get("SADDR"),
        Some(&s("{ saddr_fam=inet laddr=192.168.1.10 lport=95 }"))
    );
    let user = &out.events[2];
    assert_eq!(user.get("acct"), Some(&s("dev")));
    assert_eq!(user.get("res"), Some(&s("success")));
    assert_eq!(user.get("UID"), Some(&s("root")));
    assert_eq!(user.get("AUID"), Some(&s("unset")));
    assert_eq!(out.events[3].get("proctitle"), Some(&s("/tmp/poc")));
}

#[test]
fn ausearch_interpreted_output() {
    let out = read_path(&fixture("ausearch_i.log"), 0);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events.len(), 4);
    // `----` separators are passed over (a file that starts with one is not recognised as an
    // audit log by `read_path`'s sniffing, but the reader takes it).
    let text = std::fs::read_to_string(fixture("ausearch_i.log")).expect("fixture");
    let again = read(&format!("----\n{text}"));
    assert!(again.diagnostics.is_empty(), "{:?}", again.diagnostics);
    assert_eq!(again.events.len(), 4);
    let title = &out.events[0];
    assert_eq!(title.get("timestamp"), Some(&s("03/14/2026 09:26:53.120")));
    assert_eq!(title.get("serial"), Some(&Value::Int(4711)));
    assert_eq!(
        title.get("proctitle"),
        Some(&s("curl -T /tmp/report.tar https://files.example.net/u"))
    );
    assert_eq!(out.events[1].get("a2"), Some(&s("/tmp/report.tar")));
    assert_eq!(out.events[2].get("syscall"), Some(&s("execve")));
    assert_eq!(out.events[2].get("exe"), Some(&s("/usr/bin/curl")));
    assert_eq!(out.events[3].origin.record, 5);
}

#[test]
fn malformed_lines_are_reported_and_the_rest_is_read() {
    let out = read_path(&fixture("malformed.log"), 0);
    let serials: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| e.get("serial").cloned())
        .collect();
    assert_eq!(
        serials,
        [
            Value::Int(6001),
            Value::Int(6006),
            Value::Int(6007),
            Value::Int(6008)
        ]
    );
    assert_eq!(out.skipped, 7);
    let got: Vec<(usize, usize, Severity)> = out
        .diagnostics
        .iter()
        .map(|d| (d.location.line, d.location.col, d.severity))
        .collect();
    use Severity::{Error, Warning};
    assert_eq!(
        got,
        [
            (2, 20, Error),    // at `msg=?`
            (3, 1, Error),     // the start of the line
            (4, 38, Error),    // at `)`: no `:<serial>`
            (5, 39, Error),    // the serial
            (6, 24, Error),    // the time
            (7, 43, Error),    // the end of the line: no `)`
            (8, 6, Error),     // after `node=`
            (9, 55, Warning),  // the opening `"`
            (10, 65, Warning), // the stray `"`
        ]
    );
    let text: Vec<String> = out.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        text[0].contains("malformed.log:2:20: error: expected `msg=audit("),
        "{}",
        text[0]
    );
    assert!(text[0].contains("found `msg=?`"), "{}", text[0]);
    assert!(
        text[1].contains("expected `type=<record type>`"),
        "{}",
        text[1]
    );
    assert!(
        text[1].contains("help: an audit record line looks like"),
        "{}",
        text[1]
    );
    assert!(text[2].contains("expected `:<serial>`"), "{}", text[2]);
    assert!(
        text[3].contains("serial number") && text[3].contains("`60x2`"),
        "{}",
        text[3]
    );
    assert!(
        text[4].contains("<seconds>.<milliseconds>") && text[4].contains("`yesterday`"),
        "{}",
        text[4]
    );
    assert!(text[5].contains("expected `)`"), "{}", text[5]);
    assert!(text[6].contains("host name after `node=`"), "{}", text[6]);
    assert!(
        text[7].contains("`name`") && text[7].contains("not closed"),
        "{}",
        text[7]
    );
    assert!(
        text[8].contains("unexpected `\"` after the value of `key`"),
        "{}",
        text[8]
    );
    // The unterminated value is kept; after a stray quote, reading goes on.
    assert_eq!(out.events[1].get("name"), Some(&s("/etc/pass")));
    assert_eq!(out.events[2].get("key"), Some(&s("net")));
    assert_eq!(out.events[2].get("pid"), Some(&s("1")));
}

#[test]
fn odd_but_valid_lines() {
    // CRLF, a BOM, blank lines, tabs and a missing `:` after the stamp.
    let out =
        read("\u{feff}type=A msg=audit(1.000:1): a=1\r\n\r\n\ttype=B msg=audit(1.5:2) x y b=2\r\n");
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[1].get("b"), Some(&s("2")));
    assert_eq!(out.events[1].origin.record, 3);
    let out = read("  type=A msg=audit(1.000:1): a=\"x");
    assert_eq!(
        out.diagnostics[0].location.col, 32,
        "columns count the indent"
    );
    let ev = one("type=DAEMON_CONFIG msg=audit(1.000:34) config changed, auid=0 res=success");
    assert_eq!(names(&ev), ["type", "timestamp", "serial", "auid", "res"]);
    // Empty values, `=` inside values, a lone word with a quote, non-ASCII in a quoted value.
    let ev = one("type=X msg=audit(1.000:1): mac= op=PAM:x=y \"free text\" w=\"é ü\" (host=a,");
    assert_eq!(ev.get("mac"), Some(&s("")));
    assert_eq!(ev.get("op"), Some(&s("PAM:x=y")));
    assert_eq!(ev.get("w"), Some(&s("é ü")));
    assert_eq!(ev.get("host"), Some(&s("a,")));
    // A huge serial is not an i64: reported.
    let out = read("type=X msg=audit(1.000:99999999999999999999): a=1");
    assert_eq!(out.events.len(), 0);
    assert_eq!(out.diagnostics.len(), 1);
    // Lowercase hex is not what writers produce: kept as written.
    assert_eq!(
        one("type=CWD msg=audit(1.000:1): cwd=2f746d70").get("cwd"),
        Some(&s("2f746d70"))
    );
    // Bytes that are not UTF-8 become U+FFFD.
    assert_eq!(
        one("type=CWD msg=audit(1.000:1): cwd=2FFF").get("cwd"),
        Some(&s("/\u{fffd}"))
    );
}

#[test]
fn very_long_lines_stay_linear() {
    // Repeated names, distinct EXECVE chunks and unclosed quotes, 100k of each on one line.
    let n = 100_000;
    let dup = format!("type=X msg=audit(1.000:1):{}", " a=1".repeat(n));
    let chunks: String = (0..n).map(|i| format!(" a{i}[0]=41")).collect();
    let chunks = format!("type=EXECVE msg=audit(1.000:1):{chunks}");
    let quotes = format!("type=X msg=audit(1.000:1):{}", " b='\" c=\"".repeat(n / 4));
    let start = std::time::Instant::now();
    let out = read(&format!("{dup}\n{chunks}\n{quotes}\n"));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.events.len(), 3);
    assert_eq!(out.events[0].fields.len(), 3 + n);
    assert_eq!(out.events[0].get("a.100000"), Some(&s("1")));
    assert_eq!(out.events[1].get("a99999"), Some(&s("A")));
}

#[test]
fn diagnostics_are_capped() {
    let text = "junk\n".repeat(200);
    let out = read(&text);
    assert_eq!(out.skipped, 200);
    assert_eq!(out.diagnostics.len(), 51);
    let last = out.diagnostics.last().expect("summary");
    assert_eq!(last.severity, Severity::Error);
    assert!(
        last.message.starts_with("150 more problems"),
        "{}",
        last.message
    );
}

#[test]
fn render_writes_what_auditd_writes() {
    let rec = AuditRecord {
        node: Some("lab-web-03".into()),
        record_type: "EXECVE".into(),
        epoch_ms: 1_773_480_413_005,
        serial: 4711,
        fields: vec![
            ("argc".into(), AuditValue::Bare("7".into())),
            ("a0".into(), AuditValue::Untrusted("curl".into())),
            ("a1".into(), AuditValue::Untrusted("a b".into())),
            ("a2".into(), AuditValue::Untrusted("say \"hi\"".into())),
            ("a3".into(), AuditValue::Untrusted("tab\there".into())),
            ("a4".into(), AuditValue::Untrusted("é".into())),
            ("a5".into(), AuditValue::Untrusted("del\u{7f}".into())),
            ("a6".into(), AuditValue::Untrusted(String::new())),
            (
                "a7".into(),
                AuditValue::Untrusted("~!#$%&'()*+,-./:;<=>?@[\\]^_`{|}".into()),
            ),
        ],
    };
    assert_eq!(
        render(&rec),
        "node=lab-web-03 type=EXECVE msg=audit(1773480413.005:4711): argc=7 a0=\"curl\" \
         a1=612062 a2=7361792022686922 a3=7461620968657265 a4=C3A9 a5=64656C7F a6=\"\" \
         a7=\"~!#$%&'()*+,-./:;<=>?@[\\]^_`{|}\""
    );
    let rec = AuditRecord {
        node: None,
        record_type: "PROCTITLE".into(),
        epoch_ms: 1_000,
        serial: 1,
        fields: vec![("proctitle".into(), AuditValue::Hex(b"ls\0-la".to_vec()))],
    };
    assert_eq!(
        render(&rec),
        "type=PROCTITLE msg=audit(1.000:1): proctitle=6C73002D6C61"
    );
    let eoe = AuditRecord {
        record_type: "EOE".into(),
        epoch_ms: 999,
        serial: 2,
        ..AuditRecord::default()
    };
    assert_eq!(render(&eoe), "type=EOE msg=audit(0.999:2):");
    let ev = one(&render(&rec));
    assert_eq!(ev.get("proctitle"), Some(&s("ls -la")));
    // Interpreted (ENRICHED) fields follow a GS.
    let rec = AuditRecord {
        record_type: "SYSCALL".into(),
        epoch_ms: 1_500,
        serial: 3,
        fields: vec![
            ("syscall".into(), AuditValue::Bare("59".into())),
            ("exe".into(), AuditValue::Untrusted("/bin/ls".into())),
            ("SYSCALL".into(), AuditValue::Bare("execve".into())),
            ("AUID".into(), AuditValue::Untrusted("dev".into())),
        ],
        ..AuditRecord::default()
    };
    let line = render(&rec);
    assert_eq!(
        line,
        "type=SYSCALL msg=audit(1.500:3): syscall=59 exe=\"/bin/ls\"\u{1d}SYSCALL=execve AUID=\"dev\""
    );
    let ev = one(&line);
    assert_eq!(names(&ev)[3..], ["syscall", "exe", "SYSCALL", "AUID"]);
    assert_eq!(ev.get("AUID"), Some(&s("dev")));
}

#[test]
fn decoded_values() {
    assert_eq!(
        decoded("SYSCALL", "a0", &AuditValue::Bare("26".into())),
        s("26")
    );
    assert_eq!(
        decoded("EXECVE", "a0", &AuditValue::Hex(b"x y".to_vec())),
        s("x y")
    );
    assert_eq!(
        decoded("SOCKADDR", "saddr", &AuditValue::Hex(vec![2, 0, 0xab])),
        s("0200AB")
    );
    assert_eq!(
        decoded(
            "PROCTITLE",
            "proctitle",
            &AuditValue::Hex(b"a\0b\0".to_vec())
        ),
        s("a b ")
    );
    assert_eq!(
        decoded("SYSCALL", "key", &AuditValue::Untrusted("a\u{1}b".into())),
        Value::List(vec![s("a"), s("b")])
    );
    assert_eq!(
        decoded("PATH", "name", &AuditValue::Hex(vec![0xff])),
        s("\u{fffd}")
    );
    assert!(is_untrusted_key("PATH", "name"));
    assert!(is_untrusted_key("EXECVE", "a12"));
    assert!(is_untrusted_key("EXECVE", "a1[3]"));
    assert!(!is_untrusted_key("SYSCALL", "a1"));
    assert!(!is_untrusted_key("SYSCALL", "uid"));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Keys that are plain (never decoded) in the generated record types.
fn plain_key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,8}".prop_filter("header names, msg, saddr and untrusted keys", |k| {
        !["type", "node", "timestamp", "serial", "msg", "saddr"].contains(&k.as_str())
            && !is_untrusted_key("EXECVE", k)
    })
}

fn untrusted_key() -> impl Strategy<Value = String> {
    prop_oneof![prop::sample::select(vec![
        "exe",
        "comm",
        "name",
        "cwd",
        "key",
        "proctitle",
        "cmd",
        "acct",
        "data",
        "path",
        "a0",
        "a1",
        "a17"
    ])
    .prop_map(str::to_string),]
}

/// A value auditd would write bare: printable ASCII without spaces or quotes, not starting with
/// `{` (after the ENRICHED separator that opens a `{ ... }` value).
fn bare_value() -> impl Strategy<Value = String> {
    "([!#-&(-z|-~][!#-&(-~]{0,11})?"
}

/// Any text, weighted towards what makes quoting and decoding interesting.
fn untrusted_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,16}",
        "[a-z\"' \\x00\\x01\\x1d\\t\\n\\x7fé€]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

/// Interpreted `log_format=ENRICHED` fields (rendered after a GS) with values written quoted or
/// bare.
fn enriched_field() -> impl Strategy<Value = (String, AuditValue)> {
    (
        "[A-Z][A-Z0-9_]{0,6}",
        prop_oneof![
            bare_value().prop_map(AuditValue::Bare),
            "[!#-~]{0,8}".prop_map(AuditValue::Untrusted),
        ],
    )
}

fn field() -> impl Strategy<Value = (String, AuditValue)> {
    prop_oneof![
        enriched_field(),
        (plain_key(), bare_value().prop_map(AuditValue::Bare)),
        (
            plain_key(),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(AuditValue::Hex)
        ),
        (
            untrusted_key(),
            untrusted_text().prop_map(AuditValue::Untrusted)
        ),
        (
            untrusted_key(),
            prop::collection::vec(any::<u8>(), 0..12).prop_map(AuditValue::Hex)
        ),
        (
            Just("key".to_string()),
            Just(AuditValue::Bare("(null)".into()))
        ),
    ]
}

fn record() -> impl Strategy<Value = AuditRecord> {
    (
        prop::option::of("[a-z][a-z0-9.-]{0,12}"),
        prop::sample::select(vec![
            "SYSCALL",
            "EXECVE",
            "PROCTITLE",
            "PATH",
            "CWD",
            "USER_CMD",
            "LOGIN",
            "AVC",
        ]),
        0i64..4_000_000_000_000,
        0u64..=u64::from(u32::MAX),
        prop::collection::vec(field(), 0..10),
    )
        .prop_map(|(node, record_type, epoch_ms, serial, fields)| {
            let mut seen = std::collections::HashSet::new();
            // `Untrusted` only where the key holds an untrusted string in this record type (`a0`
            // is one in EXECVE only), as the scenario renderer writes them; `decoded` documents
            // that an `Untrusted` elsewhere round-trips only when it is written quoted.
            let fields = fields
                .into_iter()
                .filter(|(k, v)| {
                    !matches!(v, AuditValue::Untrusted(_)) || is_untrusted_key(record_type, k)
                })
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect();
            AuditRecord {
                node,
                record_type: record_type.to_string(),
                epoch_ms,
                serial,
                fields,
            }
        })
}

/// What reading `render(r)` must give: the header fields, then every field with `decoded`.
fn expected(r: &AuditRecord) -> Vec<(String, Value)> {
    let mut f = vec![("type".to_string(), s(&r.record_type))];
    if let Some(n) = &r.node {
        f.push(("node".to_string(), s(n)));
    }
    f.push((
        "timestamp".to_string(),
        s(&format!("{}.{:03}", r.epoch_ms / 1000, r.epoch_ms % 1000)),
    ));
    f.push(("serial".to_string(), Value::Int(r.serial as i64)));
    for (k, v) in &r.fields {
        f.push((k.clone(), decoded(&r.record_type, k, v)));
    }
    f
}

/// Every event a reader gives is well-formed, whatever the input.
fn check_shape(text: &str, out: &ReadOutput) -> Result<(), TestCaseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    for ev in &out.events {
        prop_assert_eq!(ev.sensor.as_deref(), Some("auditd"));
        prop_assert!(ev.origin.record >= 1 && ev.origin.record as usize <= lines.len());
        let n = names(ev);
        prop_assert_eq!(n[0], "type");
        prop_assert!(n.contains(&"timestamp") && n.contains(&"serial"));
        let unique: std::collections::HashSet<_> = n.iter().collect();
        prop_assert_eq!(unique.len(), n.len(), "repeated names in {:?}", n);
    }
    for d in &out.diagnostics {
        prop_assert!(d.location.line <= lines.len());
        if d.location.line > 0 {
            let line = lines[d.location.line - 1];
            let line = line.strip_suffix('\r').unwrap_or(line);
            prop_assert!(d.location.col >= 1 && d.location.col <= line.chars().count() + 1);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn round_trip(r in record()) {
        let line = render(&r);
        prop_assert!(!line.contains('\n'));
        let out = read(&line);
        prop_assert!(out.diagnostics.is_empty(), "{line}: {:?}", out.diagnostics);
        prop_assert_eq!(out.events.len(), 1);
        prop_assert_eq!(&out.events[0].fields, &expected(&r), "{}", line);
    }

    #[test]
    fn arbitrary_text_never_panics(t in ".{0,300}") {
        let out = read(&t);
        check_shape(&t, &out)?;
    }

    #[test]
    fn audit_like_text_never_panics(t in "(node=|type=|msg=audit\\(|[0-9]{1,3}|[.:)(='\" \\x1d\\n{}a-zA-Z]){0,80}") {
        let out = read(&t);
        check_shape(&t, &out)?;
    }

    #[test]
    fn mutated_lines_never_panic(
        records in prop::collection::vec(record(), 1..4),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, prop::sample::select(vec!["\"", "'", "=", " ", "\u{1d}", "(", ")", ":", "{", "}", "\n", "\r", "msg='", "\u{e9}", ""])), 1..6),
    ) {
        let mut text: String = records.iter().map(|r| render(r) + "\n").collect();
        for (at, del, ins) in edits {
            let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            let i = at.index(bounds.len());
            let (start, end) = (bounds[i], bounds[(i + del).min(bounds.len() - 1)]);
            text.replace_range(start..end, ins);
        }
        let out = read(&text);
        check_shape(&text, &out)?;
        let blank = |l: &str| l.strip_suffix('\r').unwrap_or(l).bytes().all(|b| b.is_ascii_whitespace());
        let records_in = text.split('\n').filter(|l| !blank(l) && !l.starts_with("----")).count();
        prop_assert_eq!(out.events.len() + out.skipped, records_in);
    }
}
