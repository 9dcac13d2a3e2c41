//! Linux audit logs: rendering [`AuditRecord`]s as auditd writes them, and reading raw audit lines
//! back into one [`Event`] per record.
//!
//! Input (reading): the text of an audit log, one record per line: `type=SYSCALL
//! msg=audit(1490995752.404:20614537): arch=c000003e syscall=59 ...`, optionally prefixed by
//! `node=<host> `. Output: one event per record with sensor `auditd` and the fields `type` (the
//! record type as written, `SYSCALL`), `node` (when written), `timestamp` (`1490995752.404`, the
//! text as written), `serial` (an integer), then the record's `key=value` pairs in line order with
//! their values decoded (see [`read_text`]). The reader never panics on its input, never stops at
//! a bad line (it reports it with its line and column and goes on), and never drops a value the
//! sensor wrote: the only things not kept as fields of their own are the chunks of a long EXECVE
//! argument (joined into the argument) and words that are not `key=value` pairs (`avc:  denied`;
//! inside `msg='...'` they stay in the kept `msg` text).
//!
//! Rendering is the inverse for [`AuditRecord`]s: [`render`] writes one line exactly as auditd
//! does, and [`decoded`] says which value the reader gives back for each rendered value.

use std::path::Path;

use rustc_hash::{FxHashMap, FxHashSet};

use super::native::{AuditRecord, AuditValue};
use super::read::ReadOutput;
use super::{Event, Origin, Value};
use crate::diag::{Diagnostic, Location, Severity};

/// The sensor name the reader puts on every event.
pub const SENSOR: &str = "auditd";

/// Separates the raw fields from the interpreted ones in `log_format=ENRICHED` lines (ASCII GS).
const ENRICHED_SEPARATOR: u8 = 0x1d;

/// Separates several rule keys in one `key=` value (the kernel's `AUDIT_KEY_SEPARATOR`).
const KEY_SEPARATOR: char = '\u{1}';

/// After this many diagnostics for one file, the rest are counted in one summary diagnostic.
const MAX_DIAGNOSTICS: usize = 50;

/// Fields whose values are untrusted strings: the writer (kernel `audit_log_untrustedstring`, or
/// libaudit `audit_encode_nv_string` in user space) double-quotes them, or writes them as upper-case
/// hex when they contain a `"`, a space or control character, or a byte >= 0x7f. This is auditd's
/// own list (`AUPARSE_TYPE_ESCAPED`, `_ESCAPED_FILE`, `_ESCAPED_KEY`, `_PROCTITLE`, `_TTY_DATA` in
/// libauparse's `typetab.h`); EXECVE's `aN` arguments are added by [`is_untrusted_key`].
const UNTRUSTED_KEYS: &[&str] = &[
    "acct",
    "apparmor",
    "cgroup",
    "cmd",
    "comm",
    "cwd",
    "data",
    "denied_mask",
    "device",
    "dir",
    "exe",
    "file",
    "grp",
    "info",
    "invalid_context",
    "key",
    "name",
    "new-chardev",
    "new-disk",
    "new-fs",
    "new-net",
    "new-rng",
    "new_group",
    "ocomm",
    "old-chardev",
    "old-disk",
    "old-fs",
    "old-net",
    "old-rng",
    "operation",
    "path",
    "proctitle",
    "profile",
    "requested_mask",
    "root_dir",
    "sw",
    "vm",
    "watch",
];

/// Whether `key` holds an untrusted string in a record of `record_type`: quoted or hex-encoded by
/// the writer, and hex-decoded by the reader when it is written bare. EXECVE's arguments (`a0`,
/// `a1`, ..., and the chunks `a1[0]`, `a1[1]`, ... of a long argument) are untrusted there only:
/// in SYSCALL records `a0`..`a3` are the syscall's arguments as bare hex numbers.
pub fn is_untrusted_key(record_type: &str, key: &str) -> bool {
    UNTRUSTED_KEYS.contains(&key)
        || (record_type == "EXECVE" && (execve_arg(key).is_some() || execve_chunk(key).is_some()))
}

/// `a<digits>` (an EXECVE argument).
fn execve_arg(key: &str) -> Option<&str> {
    let digits = key.strip_prefix('a')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(key)
}

/// `a<digits>[<digits>]` (a chunk of a long EXECVE argument): the argument's name.
fn execve_chunk(key: &str) -> Option<&str> {
    let open = key.find('[')?;
    let index = key[open + 1..].strip_suffix(']')?;
    let arg = execve_arg(&key[..open])?;
    (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())).then_some(arg)
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// Renders one record as one audit.log line (no trailing newline):
/// `[node=N ]type=T msg=audit(SECONDS.MMM:SERIAL): k=v k=v ...`, with no trailing space when the
/// record has no fields (EOE). Values: [`AuditValue::Bare`] as is; [`AuditValue::Untrusted`]
/// double-quoted, or upper-case hex of its UTF-8 bytes when it contains a `"`, a byte <= 0x20 or a
/// byte >= 0x7f (the kernel's `audit_string_contains_control`); [`AuditValue::Hex`] always
/// upper-case hex.
///
/// Fields with upper-case names (`ARCH`, `SYSCALL`, `AUID`, ...) are the interpreted values of
/// `log_format=ENRICHED`: auditd writes them after the raw fields, and the first of them follows an
/// ASCII GS (`\x1d`) instead of a space. Records are rendered in field order, so they belong last.
pub fn render(r: &AuditRecord) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(64 + 24 * r.fields.len());
    if let Some(node) = &r.node {
        s.push_str("node=");
        s.push_str(node);
        s.push(' ');
    }
    s.push_str("type=");
    s.push_str(&r.record_type);
    let secs = r.epoch_ms.div_euclid(1000);
    let ms = r.epoch_ms.rem_euclid(1000);
    // Writing to a String cannot fail.
    let _ = write!(s, " msg=audit({secs}.{ms:03}:{}):", r.serial);
    let mut enriched = false;
    for (k, v) in &r.fields {
        if !enriched && is_enriched_key(k) {
            enriched = true;
            s.push(char::from(ENRICHED_SEPARATOR));
        } else {
            s.push(' ');
        }
        s.push_str(k);
        s.push('=');
        match v {
            AuditValue::Bare(b) => s.push_str(b),
            AuditValue::Untrusted(u) if needs_hex(u.as_bytes()) => push_hex(&mut s, u.as_bytes()),
            AuditValue::Untrusted(u) => {
                s.push('"');
                s.push_str(u);
                s.push('"');
            }
            AuditValue::Hex(h) => push_hex(&mut s, h),
        }
    }
    s
}

/// An interpreted (`log_format=ENRICHED`) field name: upper-case letters, digits and `_`, starting
/// with a letter. Raw audit field names are lower-case.
fn is_enriched_key(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_uppercase())
        && k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The kernel's `audit_string_contains_control`: a `"`, a space or control byte, DEL or a byte
/// >= 0x80 makes an untrusted string hex.
fn needs_hex(b: &[u8]) -> bool {
    b.iter().any(|&c| c == b'"' || c <= 0x20 || c >= 0x7f)
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    s.reserve(2 * bytes.len());
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
}

/// The value [`read_text`] gives for `key` in a record of `record_type` when the line was written
/// by [`render`]. This is the round-trip contract:
/// - `Bare(s)`: `s` (a bare value is never decoded, except on an untrusted key, where a writer
///   never puts one: there only `(null)`, `(none)` and `?` are bare, and they are kept; and after
///   the ENRICHED separator a bare value starting with `{` runs to its `}`);
/// - `Untrusted(s)` on an untrusted key ([`is_untrusted_key`]): `s`; `Hex(b)` there: `b` as UTF-8
///   (invalid sequences become U+FFFD);
/// - for `proctitle`, NUL bytes become spaces (as go-libaudit shows them), so a decoded PROCTITLE
///   is the command line with its arguments joined by spaces;
/// - for `key`, a value holding the rule-key separator `\x01` becomes a list of the keys;
/// - `Hex(b)` on another key: the upper-case hex text (`saddr` stays hex; the reader adds decoded
///   `saddr_*` fields after it, see [`read_text`]). `Untrusted` on another key round-trips only
///   when it is written quoted (no hex): the reader cannot know hex was meant there.
pub fn decoded(record_type: &str, key: &str, value: &AuditValue) -> Value {
    let untrusted = is_untrusted_key(record_type, key);
    match value {
        AuditValue::Bare(s) => Value::Str(s.clone()),
        AuditValue::Untrusted(s) if untrusted => untrusted_value(key, s.as_bytes().to_vec()),
        AuditValue::Untrusted(s) => Value::Str(s.clone()),
        AuditValue::Hex(b) if untrusted => untrusted_value(key, b.clone()),
        AuditValue::Hex(b) => {
            let mut s = String::new();
            push_hex(&mut s, b);
            Value::Str(s)
        }
    }
}

/// Decoded bytes of an untrusted value as the event shows them.
fn untrusted_value(key: &str, mut bytes: Vec<u8>) -> Value {
    if key == "proctitle" {
        for b in bytes.iter_mut().filter(|b| **b == 0) {
            *b = b' ';
        }
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if key == "key" && text.contains(KEY_SEPARATOR) {
        return Value::List(
            text.split(KEY_SEPARATOR)
                .map(|k| Value::Str(k.to_string()))
                .collect(),
        );
    }
    Value::Str(text)
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads raw audit lines (`type=... msg=audit(..): ...`, optionally prefixed by `node=...`), one
/// event per record line.
///
/// Header: `[node=N ]type=T msg=audit(TIME:SERIAL)` followed by an optional `:`. `TIME` is kept as
/// written: `1490995752.404` in audit.log, or the local date `ausearch -i` writes (`03/20/2018
/// 10:30:02.409`). A line whose header does not parse is reported as an error (file, line, column,
/// what was expected) and skipped; blank lines and `ausearch`'s `----` separators are ignored.
///
/// Body: the `key=value` pairs, in order. Words without `=` (`avc:  denied  { read } for`,
/// `auditd start,`) are not fields and are passed over. Values:
/// - `"..."`: the text between the quotes, as is.
/// - A bare value on an untrusted key ([`is_untrusted_key`]) that is upper-case hex is decoded
///   (`exe=2F62696E2F6C73` -> `/bin/ls`; bytes that are not UTF-8 become U+FFFD), PROCTITLE's NUL
///   separators becoming spaces as in go-libaudit, and `key=` holding several rule keys (`\x01`
///   between them) becoming a list of the keys.
/// - Any other bare value is kept as written: numbers stay text (auditd has no types; Sigma
///   compares numbers with their text anyway), and so do `(null)`, `(none)` and `?`.
/// - `msg='...'` (user-space records: USER_*, CRED_*, ...) is kept as `msg` (the text between the
///   quotes) and its own `key=value` pairs follow it as fields, as go-libaudit splits them. A name
///   the record already has is stored as `msg.<name>`.
/// - EXECVE arguments too long for one field (`a1_len=N a1[0]=.. a1[1]=..`) are joined into one
///   `a1` field at the place of the first chunk; `a1_len` is kept.
/// - SOCKADDR: `saddr` stays hex text, followed by decoded helpers named after go-libaudit's:
///   `saddr_family` (`unix`, `ipv4`, `ipv6`, `netlink`, or the number), `saddr_addr` and
///   `saddr_port` (inet, inet6), `saddr_path` (unix; abstract names start with `@`).
/// - SELinux AVC records (`avc:  denied  { read write } for ...`) also get go-libaudit's
///   `seresult` (`denied`) and `seperms` (`read,write`).
/// - LOGIN records of old kernels write `old auid=.. new auid=..`: the keys become `old_auid` and
///   `new_auid` (go-libaudit's names), so both values are kept.
/// - `log_format=ENRICHED` appends interpreted values after an ASCII GS (`\x1d`): `ARCH=x86_64
///   SYSCALL=execve AUID="alice" UID="root" ...`. The raw fields are read as above and the
///   interpreted ones are kept as well, under their upper-case names (unquoted; upper-case names
///   are never hex-decoded; `{ ... }` values such as `SADDR={ saddr_fam=inet laddr=10.0.0.1
///   lport=22 }` are kept whole). Sigma's auditd rules use both (`SYSCALL: socket` next to
///   `a0: 26`).
/// - `ausearch -i` output (values already interpreted, written bare) is read as written; its
///   PROCTITLE value, which has spaces there, is taken to the end of the line.
///
/// Any other repeated name keeps every value: the first under its name, later ones as
/// `<name>.2`, `<name>.3`, ... A value with an unterminated quote or a stray quote after it is kept
/// and reported as a warning.
pub fn read_text(text: &str, path: &Path, input: usize) -> ReadOutput {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader {
        path,
        out: ReadOutput::default(),
        unreported: 0,
        unreported_errors: 0,
    };
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let lineno = i + 1;
        if line.bytes().all(|b| b.is_ascii_whitespace()) || line.starts_with("----") {
            continue;
        }
        // Leading blanks (an indented paste) are not part of the record.
        let indent = line.len()
            - line
                .trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8))
                .len();
        let mut p = LineParser::new(&line[indent..]);
        let result = p.parse();
        for w in p.warnings.iter_mut() {
            w.at += indent;
        }
        match result {
            Ok(()) => r.out.events.push(Event {
                sensor: Some(SENSOR.to_string()),
                fields: p.fields,
                origin: Origin {
                    input,
                    record: lineno as u64,
                },
            }),
            Err(mut e) => {
                e.at += indent;
                r.out.skipped += 1;
                r.report(line, lineno, Severity::Error, e);
            }
        }
        for w in p.warnings {
            r.report(line, lineno, Severity::Warning, w);
        }
    }
    r.finish()
}

struct Reader<'a> {
    path: &'a Path,
    out: ReadOutput,
    unreported: usize,
    unreported_errors: usize,
}

impl Reader<'_> {
    fn report(&mut self, line: &str, lineno: usize, severity: Severity, p: Problem) {
        if self.out.diagnostics.len() >= MAX_DIAGNOSTICS {
            self.unreported += 1;
            if severity == Severity::Error {
                self.unreported_errors += 1;
            }
            return;
        }
        let col = line.get(..p.at).map(|s| s.chars().count()).unwrap_or(0) + 1;
        let location = Location::new(self.path, lineno, col);
        let mut d = match severity {
            Severity::Error => Diagnostic::error(location, p.message),
            Severity::Warning => Diagnostic::warning(location, p.message),
        };
        if let Some(help) = p.help {
            d = d.with_help(help);
        }
        self.out.diagnostics.push(d);
    }

    fn finish(mut self) -> ReadOutput {
        if self.unreported > 0 {
            let message = format!(
                "{} more problems in this file ({} of them records that could not be read) are not listed one by one",
                self.unreported, self.unreported_errors
            );
            let location = Location::file(self.path);
            self.out.diagnostics.push(if self.unreported_errors > 0 {
                Diagnostic::error(location, message)
            } else {
                Diagnostic::warning(location, message)
            });
        }
        self.out
    }
}

/// What went wrong at byte offset `at` of a line.
#[derive(Debug)]
struct Problem {
    at: usize,
    message: String,
    help: Option<&'static str>,
}

impl Problem {
    fn new(at: usize, message: impl Into<String>) -> Problem {
        Problem {
            at,
            message: message.into(),
            help: None,
        }
    }

    fn header(at: usize, message: impl Into<String>) -> Problem {
        Problem {
            help: Some(HEADER_HELP),
            ..Problem::new(at, message)
        }
    }
}

const HEADER_HELP: &str = "an audit record line looks like `type=SYSCALL msg=audit(1490995752.404:20614537): arch=c000003e ...`, \
optionally prefixed by `node=<host> `";

/// Where a `key=value` list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// The record's own fields.
    Top,
    /// Inside `msg='...'`.
    Nested,
    /// After the ENRICHED separator.
    Enriched,
}

/// A value as written, before decoding.
enum Raw<'a> {
    /// `"..."`: the text between the quotes.
    Quoted(&'a str),
    /// `'...'`: the text between the quotes and the byte offset where it starts.
    Single(&'a str, usize),
    /// Anything else (`{ ... }` in enriched values included).
    Bare(&'a str),
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '[' | ']')
}

fn is_upper_hex(v: &str) -> bool {
    !v.is_empty()
        && v.len().is_multiple_of(2)
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// Decodes upper-case hex checked by [`is_upper_hex`].
fn hex_bytes(v: &str) -> Vec<u8> {
    let nib = |b: u8| {
        if b.is_ascii_digit() {
            b - b'0'
        } else {
            b - b'A' + 10
        }
    };
    v.as_bytes()
        .chunks_exact(2)
        .map(|p| (nib(p[0]) << 4) | nib(p[1]))
        .collect()
}

/// A short description of what is at `at` (for "found ..." in messages).
fn found(line: &str, at: usize) -> String {
    match line.get(at..) {
        None | Some("") => "the end of the line".to_string(),
        Some(rest) => {
            let word: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(24)
                .collect();
            format!("`{word}`")
        }
    }
}

struct LineParser<'a> {
    line: &'a str,
    record_type: &'a str,
    fields: Vec<(String, Value)>,
    names: FxHashSet<String>,
    next_suffix: FxHashMap<String, usize>,
    warnings: Vec<Problem>,
    /// EXECVE arguments written in chunks: argument name -> (field index, bytes so far).
    chunks: FxHashMap<String, (usize, Vec<u8>)>,
}

impl<'a> LineParser<'a> {
    fn new(line: &'a str) -> Self {
        LineParser {
            line,
            record_type: "",
            fields: Vec::new(),
            names: FxHashSet::default(),
            next_suffix: FxHashMap::default(),
            warnings: Vec::new(),
            chunks: FxHashMap::default(),
        }
    }

    fn skip_ws(&self, mut pos: usize) -> usize {
        let b = self.line.as_bytes();
        while pos < b.len() && is_ws(b[pos]) {
            pos += 1;
        }
        pos
    }

    fn word_end(&self, mut pos: usize) -> usize {
        let b = self.line.as_bytes();
        while pos < b.len() && !is_ws(b[pos]) && b[pos] != ENRICHED_SEPARATOR {
            pos += 1;
        }
        pos
    }

    /// Parses the whole line into `fields`; `Err` when the header is not an audit header.
    fn parse(&mut self) -> Result<(), Problem> {
        let line = self.line;
        let mut pos = 0;
        let mut node = None;
        if let Some(rest) = line.strip_prefix("node=") {
            let end = self.word_end(5);
            if end == 5 {
                return Err(Problem::header(
                    5,
                    format!(
                        "expected a host name after `node=`, found {}",
                        found(line, 5)
                    ),
                ));
            }
            node = Some(&rest[..end - 5]);
            pos = self.skip_ws(end);
        }
        if !line[pos..].starts_with("type=") {
            return Err(Problem::header(
                pos,
                format!(
                    "expected `type=<record type>` to start an audit record, found {}",
                    found(line, pos)
                ),
            ));
        }
        let type_start = pos + 5;
        let type_end = self.word_end(type_start);
        if type_end == type_start {
            return Err(Problem::header(
                type_start,
                format!(
                    "expected a record type after `type=`, found {}",
                    found(line, type_start)
                ),
            ));
        }
        self.record_type = &line[type_start..type_end];
        pos = self.skip_ws(type_end);
        const STAMP: &str = "msg=audit(";
        if !line[pos..].starts_with(STAMP) {
            return Err(Problem::header(
                pos,
                format!(
                    "expected `msg=audit(<seconds>.<milliseconds>:<serial>):` after the record type, found {}",
                    found(line, pos)
                ),
            ));
        }
        let inner_start = pos + STAMP.len();
        let Some(close) = line[inner_start..].find(')').map(|i| inner_start + i) else {
            return Err(Problem::header(
                line.len(),
                "expected `)` to close `msg=audit(`, found the end of the line",
            ));
        };
        let inner = &line[inner_start..close];
        let Some(colon) = inner.rfind(':') else {
            return Err(Problem::header(
                close,
                format!(
                    "expected `:<serial>` before `)` in `msg=audit({inner})`, as in `msg=audit(1490995752.404:20614537)`"
                ),
            ));
        };
        let timestamp = &inner[..colon];
        let time_ok = timestamp.starts_with(|c: char| c.is_ascii_digit())
            && timestamp
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'/' | b':' | b' '));
        if !time_ok {
            return Err(Problem::header(
                inner_start,
                format!(
                    "expected the time as <seconds>.<milliseconds> (`1490995752.404`), found `{timestamp}`"
                ),
            ));
        }
        let serial_text = &inner[colon + 1..];
        let serial = serial_text
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| serial_text.parse::<i64>().ok())
            .flatten();
        let Some(serial) = serial else {
            return Err(Problem::header(
                inner_start + colon + 1,
                format!("expected the record's serial number (decimal digits) after `:`, found `{serial_text}`"),
            ));
        };

        self.insert(
            "type".to_string(),
            Value::Str(self.record_type.to_string()),
            false,
        );
        if let Some(node) = node {
            self.insert("node".to_string(), Value::Str(node.to_string()), false);
        }
        self.insert(
            "timestamp".to_string(),
            Value::Str(timestamp.to_string()),
            false,
        );
        self.insert("serial".to_string(), Value::Int(serial), false);

        let mut body = self.skip_ws(close + 1);
        if line.as_bytes().get(body) == Some(&b':') {
            body += 1;
        }
        let end = line.as_bytes()[body..]
            .iter()
            .position(|&b| b == ENRICHED_SEPARATOR)
            .map_or(line.len(), |i| body + i);
        if self.record_type == "AVC" {
            self.selinux_avc(body, end, false);
        }
        self.pairs(body, end, Ctx::Top);
        if end < line.len() {
            self.pairs(end + 1, line.len(), Ctx::Enriched);
        }
        for (_, (index, bytes)) in std::mem::take(&mut self.chunks) {
            if let Some(slot) = self.fields.get_mut(index) {
                slot.1 = Value::Str(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Ok(())
    }

    /// Whether a field of this name exists. Records have a few dozen fields: a scan, until a line
    /// with very many fields switches to a set (so that no line costs quadratic time).
    fn has(&mut self, name: &str) -> bool {
        const SCAN: usize = 48;
        if self.fields.len() < SCAN {
            return self.fields.iter().any(|(k, _)| k == name);
        }
        if self.names.is_empty() {
            self.names = self.fields.iter().map(|(k, _)| k.clone()).collect();
        }
        self.names.contains(name)
    }

    /// Adds a field; a name already taken is stored as `msg.<name>` (inside `msg='...'`) or
    /// `<name>.2`, `<name>.3`, ... Returns the field's index.
    fn insert(&mut self, key: String, value: Value, nested: bool) -> usize {
        let name = if !self.has(&key) {
            key
        } else if nested && !self.has(&format!("msg.{key}")) {
            format!("msg.{key}")
        } else {
            let mut n = self.next_suffix.get(&key).copied().unwrap_or(2);
            let candidate = loop {
                let candidate = format!("{key}.{n}");
                n += 1;
                if !self.has(&candidate) {
                    break candidate;
                }
            };
            self.next_suffix.insert(key, n);
            candidate
        };
        if !self.names.is_empty() {
            self.names.insert(name.clone());
        }
        self.fields.push((name, value));
        self.fields.len() - 1
    }

    /// go-libaudit's `seresult`/`seperms` from `avc:  denied  { read write } for  ...`.
    fn selinux_avc(&mut self, start: usize, end: usize, nested: bool) {
        let ws = [' ', '\t'];
        let Some(rest) = self.line[start..end]
            .trim_start_matches(ws)
            .strip_prefix("avc:")
        else {
            return;
        };
        let rest = rest.trim_start_matches(ws);
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (result, rest) = rest.split_at(n);
        let Some(rest) = rest.trim_start_matches(ws).strip_prefix('{') else {
            return;
        };
        let Some(close) = rest.find('}') else {
            return;
        };
        if result.is_empty() || !rest[close + 1..].trim_start_matches(ws).starts_with("for") {
            return;
        }
        let perms = rest[..close]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(",");
        self.insert(
            "seresult".to_string(),
            Value::Str(result.to_string()),
            nested,
        );
        self.insert("seperms".to_string(), Value::Str(perms), nested);
    }

    /// Reads the `key=value` pairs in `line[start..end]`.
    fn pairs(&mut self, start: usize, end: usize, ctx: Ctx) {
        let line = self.line;
        let b = line.as_bytes();
        let mut pos = start;
        // LOGIN records of old kernels: `old auid=1 new auid=2`.
        let mut prefix: Option<&str> = None;
        loop {
            while pos < end && is_ws(b[pos]) {
                pos += 1;
            }
            if pos >= end {
                break;
            }
            let tok = pos;
            if b[pos] == b'"' {
                // Quoted text that is not a value: pass over it.
                pos = b[pos + 1..end]
                    .iter()
                    .position(|&c| c == b'"')
                    .map_or(end, |q| pos + 1 + q + 1);
                prefix = None;
                continue;
            }
            let mut e = pos;
            while e < end && !is_ws(b[e]) && b[e] != b'=' {
                e += 1;
            }
            if e >= end || b[e] != b'=' {
                let word = &line[tok..e];
                prefix = (ctx == Ctx::Top
                    && self.record_type == "LOGIN"
                    && (word == "old" || word == "new"))
                    .then_some(word);
                pos = e;
                continue;
            }
            let key_raw = &line[tok..e];
            // `(hostname=?,`: the name is the run of name characters before `=`.
            let kstart = key_raw
                .char_indices()
                .rev()
                .find(|(_, c)| !is_key_char(*c))
                .map_or(0, |(i, c)| i + c.len_utf8());
            let key = &key_raw[kstart..];
            let (raw, next) = self.value(e + 1, end, ctx, key);
            pos = next;
            if key.is_empty() {
                self.warnings.push(Problem::new(
                    e,
                    format!(
                        "expected a field name before `=`, found {}; the value was not kept",
                        found(line, tok)
                    ),
                ));
                prefix = None;
                continue;
            }
            let key = match prefix.take() {
                Some(p) => format!("{p}_{key}"),
                None => key.to_string(),
            };
            self.store(key, raw, ctx);
        }
    }

    /// Reads the value starting at `v` (just after `=`); returns it and where reading goes on.
    fn value(&mut self, v: usize, end: usize, ctx: Ctx, key: &str) -> (Raw<'a>, usize) {
        let line = self.line;
        let b = line.as_bytes();
        let find = |from: usize, c: u8| b[from..end].iter().position(|&x| x == c).map(|i| from + i);
        match b.get(v).filter(|_| v < end) {
            Some(b'"') => match find(v + 1, b'"') {
                Some(q) => (Raw::Quoted(&line[v + 1..q]), q + 1),
                None => {
                    self.warnings.push(Problem::new(
                        v,
                        format!("the value of `{key}` opens a `\"` that is not closed; the rest of the line was kept as the value"),
                    ));
                    (Raw::Quoted(&line[v + 1..end]), end)
                }
            },
            Some(b'\'') if ctx != Ctx::Enriched => {
                // The closing `'` is the first one outside double quotes, else the last one.
                let mut in_dq = false;
                let mut close = None;
                for (i, &c) in b.iter().enumerate().take(end).skip(v + 1) {
                    match c {
                        b'"' => in_dq = !in_dq,
                        b'\'' if !in_dq => {
                            close = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let close = close.or_else(|| {
                    b[v + 1..end]
                        .iter()
                        .rposition(|&c| c == b'\'')
                        .map(|i| v + 1 + i)
                });
                match close {
                    Some(q) => (Raw::Single(&line[v + 1..q], v + 1), q + 1),
                    None => {
                        self.warnings.push(Problem::new(
                            v,
                            format!("the value of `{key}` opens a `'` that is not closed; the rest of the line was kept as the value"),
                        ));
                        (Raw::Single(&line[v + 1..end], v + 1), end)
                    }
                }
            }
            Some(b'{') if ctx == Ctx::Enriched => match find(v + 1, b'}') {
                Some(q) => (Raw::Bare(&line[v..=q]), q + 1),
                None => {
                    self.warnings.push(Problem::new(
                        v,
                        format!("the value of `{key}` opens a `{{` that is not closed; the rest of the line was kept as the value"),
                    ));
                    (Raw::Bare(&line[v..end]), end)
                }
            },
            _ => {
                let mut e = v;
                while e < end && !is_ws(b[e]) && b[e] != b'"' && b[e] != b'\'' {
                    e += 1;
                }
                let bare = &line[v..e];
                if ctx == Ctx::Top
                    && key == "proctitle"
                    && self.record_type == "PROCTITLE"
                    && !bare.is_empty()
                    && !is_upper_hex(bare)
                {
                    // `ausearch -i` writes the command line itself, spaces and all.
                    return (
                        Raw::Bare(line[v..end].trim_end_matches(|c: char| c.is_ascii_whitespace())),
                        end,
                    );
                }
                if e < end && !is_ws(b[e]) {
                    self.warnings.push(Problem::new(
                        e,
                        format!(
                            "unexpected `{}` after the value of `{key}`; expected a space or the end of the line (the quote was ignored)",
                            char::from(b[e])
                        ),
                    ));
                    let mut skip = e;
                    while skip < end && !is_ws(b[skip]) {
                        skip += 1;
                    }
                    return (Raw::Bare(bare), skip);
                }
                (Raw::Bare(bare), e)
            }
        }
    }

    /// Decodes and stores one value.
    fn store(&mut self, key: String, raw: Raw<'a>, ctx: Ctx) {
        let nested = ctx == Ctx::Nested;
        match raw {
            Raw::Single(inner, at) if ctx == Ctx::Top && key == "msg" => {
                self.insert(key, Value::Str(inner.to_string()), false);
                let mut end = at + inner.len();
                // Old PAM messages: `... (hostname=?, addr=?, terminal=cron res=success)`.
                if inner.contains(" (hostname=") {
                    let trimmed = inner.trim_end();
                    if trimmed.ends_with(')') {
                        end = at + trimmed.len() - 1;
                    }
                }
                self.selinux_avc(at, end, true);
                self.pairs(at, end, Ctx::Nested);
            }
            Raw::Single(v, _) | Raw::Quoted(v) => {
                if self.record_type == "EXECVE" {
                    if let Some(arg) = execve_chunk(&key) {
                        self.chunk(arg.to_string(), v.as_bytes().to_vec(), nested);
                        return;
                    }
                }
                self.insert(key, Value::Str(v.to_string()), nested);
            }
            Raw::Bare(v) => {
                let untrusted = is_untrusted_key(self.record_type, &key);
                if self.record_type == "EXECVE" {
                    if let Some(arg) = execve_chunk(&key) {
                        let bytes = if is_upper_hex(v) {
                            hex_bytes(v)
                        } else {
                            v.as_bytes().to_vec()
                        };
                        self.chunk(arg.to_string(), bytes, nested);
                        return;
                    }
                }
                if untrusted && is_upper_hex(v) {
                    let value = untrusted_value(&key, hex_bytes(v));
                    self.insert(key, value, nested);
                    return;
                }
                let saddr = key == "saddr" && !nested && is_upper_hex(v);
                self.insert(key, Value::Str(v.to_string()), nested);
                if saddr {
                    for (k, val) in sockaddr(&hex_bytes(v)) {
                        self.insert(k.to_string(), Value::Str(val), false);
                    }
                }
            }
        }
    }

    /// One chunk of a long EXECVE argument.
    fn chunk(&mut self, arg: String, bytes: Vec<u8>, nested: bool) {
        if let Some(c) = self.chunks.get_mut(&arg) {
            c.1.extend_from_slice(&bytes);
            return;
        }
        let index = self.insert(arg.clone(), Value::Str(String::new()), nested);
        self.chunks.insert(arg, (index, bytes));
    }
}

/// go-libaudit-style helpers for a SOCKADDR `saddr` (a `struct sockaddr`, family in host byte
/// order, which is little-endian on the machines auditd runs on in practice).
fn sockaddr(b: &[u8]) -> Vec<(&'static str, String)> {
    let Some(family) = b.get(..2).map(|f| u16::from_le_bytes([f[0], f[1]])) else {
        return Vec::new();
    };
    let port = || {
        b.get(2..4)
            .map(|p| u16::from_be_bytes([p[0], p[1]]).to_string())
    };
    let mut out = Vec::new();
    match family {
        1 => {
            out.push(("saddr_family", "unix".to_string()));
            let rest = &b[2..];
            let path = match rest.split_first() {
                // Abstract socket: a leading NUL, then a name.
                Some((0, name)) if !name.is_empty() => {
                    let name = name.split(|&c| c == 0).next().unwrap_or(&[]);
                    format!("@{}", String::from_utf8_lossy(name))
                }
                _ => String::from_utf8_lossy(rest.split(|&c| c == 0).next().unwrap_or(&[]))
                    .into_owned(),
            };
            out.push(("saddr_path", path));
        }
        2 => {
            out.push(("saddr_family", "ipv4".to_string()));
            if let (Some(a), Some(p)) = (b.get(4..8), port()) {
                out.push((
                    "saddr_addr",
                    std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
                ));
                out.push(("saddr_port", p));
            }
        }
        10 => {
            out.push(("saddr_family", "ipv6".to_string()));
            let addr = b
                .get(8..24)
                .and_then(|a| <[u8; 16]>::try_from(a).ok())
                .map(std::net::Ipv6Addr::from);
            if let (Some(a), Some(p)) = (addr, port()) {
                out.push(("saddr_addr", a.to_string()));
                out.push(("saddr_port", p));
            }
        }
        16 => out.push(("saddr_family", "netlink".to_string())),
        n => out.push(("saddr_family", n.to_string())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Event {
        let out = read_text(line, Path::new("a.log"), 0);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.events.len(), 1);
        out.events.into_iter().next().unwrap()
    }

    #[test]
    fn chunk_and_arg_names() {
        assert_eq!(execve_chunk("a1[0]"), Some("a1"));
        assert_eq!(execve_chunk("a1[]"), None);
        assert_eq!(execve_chunk("a[0]"), None);
        assert_eq!(execve_chunk("ab[0]"), None);
        assert_eq!(execve_arg("a12"), Some("a12"));
        assert_eq!(execve_arg("a"), None);
        assert!(is_untrusted_key("EXECVE", "a3"));
        assert!(!is_untrusted_key("SYSCALL", "a3"));
        assert!(is_untrusted_key("SYSCALL", "exe"));
    }

    #[test]
    fn hex_helpers() {
        assert!(is_upper_hex("2F62"));
        assert!(!is_upper_hex("2f62"));
        assert!(!is_upper_hex("2F6"));
        assert!(!is_upper_hex(""));
        assert_eq!(hex_bytes("2F00FF"), vec![0x2F, 0, 0xFF]);
        let mut s = String::new();
        push_hex(&mut s, &[0, 0xab, 0x7f]);
        assert_eq!(s, "00AB7F");
    }

    #[test]
    fn repeated_names_keep_every_value() {
        let ev = one("type=X msg=audit(1.000:1): a=1 a=2 a=3 msg='a=4 b=5'");
        let got: Vec<_> = ev.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            got,
            [
                "type",
                "timestamp",
                "serial",
                "a",
                "a.2",
                "a.3",
                "msg",
                "msg.a",
                "b"
            ]
        );
    }
}
