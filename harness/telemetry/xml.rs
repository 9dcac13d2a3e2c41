//! Windows event XML: reading it into events, and rendering [`WinRecord`]s as event XML and as the
//! evtx crate's JSON shape.
//!
//! Input (reading): text holding `<Event>` elements as Windows renders them (`wevtutil qe /f:xml`,
//! Event Viewer's XML view, the evtx crate's `records()`, Sysmon for Linux): one element, several
//! (one per line or concatenated, each optionally after an `<?xml ...?>` declaration, evtx_dump's
//! `Record <n>` lines or a Sysmon for Linux syslog prefix), or an `<Events>` wrapper. Output: one
//! [`Event`](super::Event) per `<Event>`, in file order, with `Origin.record` = the 1-based line of
//! its `<Event` tag, plus a located [`Diagnostic`] (file:line:col, what was expected) for every record
//! that could not be read; reading goes on at the next `<Event>`.
//!
//! The events are named and typed exactly as the JSON reader names the evtx crate's JSON for the
//! same record: the record is turned into that JSON shape (the JSON reader's `J` values) by the rules
//! the evtx crate's JSON renderer follows, then flattened by the JSON reader's own code
//! (`json::event_from_j`). The rules
//! (evtx 0.15 `binxml/compiled.rs`, `JsonCompiler`):
//! - an element without element children and without non-empty attributes is its text, or `null`
//!   when it has none (`<Correlation />`, `<Channel></Channel>`); attributes with an empty value are
//!   left out; otherwise it is an object: `#attributes`, `#text`, then its children, a repeated
//!   child name numbered `Name_1`, `Name_2`;
//! - in `EventData` and `UserData`, when one `Data` child has a non-empty `Name`, each named `Data`
//!   is a member of that name (`""` when empty; unnamed ones are left out; `Data` of one name in a
//!   row are an array, a later repeat is numbered); otherwise all `Data` children are one member
//!   `"Data": {"#text": v}` (or an array of values), where the first one was.
//!
//! XML has only text; the evtx crate's JSON has numbers where the record has binary integers. The
//! reader gives numbers (`Int`) where the evtx crate's JSON has them for every record: the `System`
//! values `EventID` (and its `Qualifiers`), `Version`, `Level`, `Task`, `Opcode`, `EventRecordID`
//! and the `Execution` attributes, when their text is a canonical decimal integer. Every other value
//! is text (the evtx crate types some `EventData` values as numbers or booleans: Sigma compares a
//! number with its text, so rules see no difference).
//!
//! Text is kept as written: entity and character references are decoded and CDATA is taken as
//! text, but line ends and attribute whitespace are not normalised (Windows writes `\r\n` inside
//! values, and the evtx crate's JSON keeps it). Whitespace-only text between child elements is
//! indentation, not data. An unknown entity (`&foo;`) is kept as written, with a warning, as the
//! evtx crate keeps it. A record nesting elements more than 64 deep is reported, not read. This
//! module never panics on its input.
//!
//! Rendering: [`render`] writes one record as Windows renders it (one line, `<Event xmlns=...>`;
//! for the `Linux-Sysmon/Operational` channel as Sysmon for Linux writes it: no `xmlns`, `<Security
//! UserId=".."/>`), escaping `&`, `<`, `>` (and quotes in attributes), writing line breaks in
//! attributes and carriage returns as character references (so that no XML reader normalises them
//! away) and characters XML 1.0 cannot hold (other C0 controls, U+FFFE, U+FFFF) as character
//! references too, which this reader reads back exactly (Windows writes them as `_`).
//! [`render_evtx_json`] writes the same record in the evtx crate's JSON shape; both read back to
//! identical events.

use std::borrow::Cow;
use std::path::Path;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event as XmlEvent};
use quick_xml::name::QName;
use rustc_hash::FxHashMap as HashMap;
use serde_json::{json, Map, Value as Json};

use super::json::{event_from_j, J, MAX_DIAGNOSTICS};
use super::native::{WinData, WinRecord};
use super::read::ReadOutput;
use crate::diag::{Diagnostic, Location};

/// The event schema's namespace, on every Windows `<Event>`.
pub const EVENT_NS: &str = "http://schemas.microsoft.com/win/2004/08/events/event";
/// Sysmon for Linux's channel: its records have no `xmlns` and write `Security UserId`.
pub const LINUX_SYSMON_CHANNEL: &str = "Linux-Sysmon/Operational";

/// Elements nested deeper than this in one record make it unreadable (event XML nests a few
/// levels; the limit keeps the recursive conversion's stack small whatever the input).
const MAX_DEPTH: usize = 64;

/// The help line of record-framing diagnostics.
const FRAMING_HELP: &str = "event XML holds `<Event>` elements: one, several (one per line or \
concatenated, each optionally after `<?xml ...?>`), or several inside `<Events>`";

// ---------------------------------------------------------------------------------------------
// Reading: framing
// ---------------------------------------------------------------------------------------------

/// Reads event XML; see the module documentation.
pub fn read_text(text: &str, path: &Path, input: usize) -> ReadOutput {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader {
        text,
        lines: Lines::new(text),
        path,
        input,
        out: ReadOutput::default(),
        unreported: 0,
        rescanned: 0,
    };
    r.run();
    r.finish()
}

/// Byte offsets of line starts, to turn offsets into 1-based lines and columns.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Lines { starts }
    }

    fn index(&self, off: usize) -> usize {
        match self.starts.binary_search(&off) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// 1-based line and column (in characters) of byte `off` of `text`.
    fn line_col(&self, text: &str, off: usize) -> (usize, usize) {
        let li = self.index(off);
        let start = self.starts.get(li).copied().unwrap_or(0);
        let mut end = off.min(text.len());
        while end > start && !text.is_char_boundary(end) {
            end -= 1;
        }
        let col = text.get(start..end).map_or(0, |s| s.chars().count());
        (li + 1, col + 1)
    }
}

struct Reader<'t, 'p> {
    text: &'t str,
    lines: Lines,
    path: &'p Path,
    input: usize,
    out: ReadOutput,
    unreported: usize,
    /// Bytes that bad records were read over before their problem (reading goes on at the next
    /// `<Event>` after a bad record's start, so these may be read again).
    rescanned: usize,
}

/// How many times over a text may be read again after bad records before reading goes on after
/// each problem instead (records that each open a comment or CDATA section that never closes would
/// otherwise take time quadratic in the text's length).
const RESCAN_FACTOR: usize = 16;

/// Why a record could not be read.
struct Bad {
    /// Byte offset of the problem in the whole text.
    at: usize,
    message: String,
    /// Where reading goes on, when the problem says (another `<Event>` started inside this one).
    resume: Option<usize>,
}

/// Is `b[pos..]` the start of an element named `name` (`<name` then whitespace, `>` or `/`)?
fn is_tag(b: &[u8], pos: usize, name: &str) -> bool {
    let n = name.len();
    b.get(pos) == Some(&b'<')
        && b.get(pos + 1..pos + 1 + n) == Some(name.as_bytes())
        && matches!(
            b.get(pos + 1 + n),
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
        )
}

fn is_xml_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// The start of the next `<Event` tag at or after `from`.
fn next_event_tag(b: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while let Some(i) = b
        .get(pos..)
        .and_then(|t| memchr::memmem::find(t, b"<Event"))
    {
        if is_tag(b, pos + i, "Event") {
            return Some(pos + i);
        }
        pos += i + 1;
    }
    None
}

/// A short excerpt of the first line of `s` for messages (reads at most 31 characters).
fn excerpt(s: &str) -> String {
    let mut e: String = s
        .chars()
        .take_while(|c| !matches!(c, '\n' | '\r'))
        .take(31)
        .collect();
    if e.chars().count() > 30 {
        e.pop();
        e.push_str("...");
    }
    e.trim_end().to_string()
}

/// The first line of `s` (without its line break), or its first `max` bytes or so when it is
/// longer: only that much is read.
fn line_of(s: &str, max: usize) -> &str {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &s[..cut];
    head.find('\n').map_or(head, |i| &head[..i])
}

/// evtx_dump's separator line: `Record <n>`.
fn is_record_line(line: &str) -> bool {
    line.trim_end()
        .strip_prefix("Record ")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// A syslog prefix before a Sysmon for Linux record on the same line (`Mar 14 09:26:53 host
/// sysmon: `, `<134>... sysmon[812]: `).
fn is_syslog_prefix(prefix: &str) -> bool {
    let p = prefix.trim_end();
    !prefix.contains('\n')
        && p.ends_with(':')
        && p.rsplit(' ')
            .next()
            .is_some_and(|tag| tag.to_ascii_lowercase().starts_with("sysmon"))
}

impl Reader<'_, '_> {
    fn loc(&self, off: usize) -> Location {
        let (line, col) = self.lines.line_col(self.text, off);
        Location::new(self.path, line, col)
    }

    /// Adds a diagnostic at byte `at` (past the limit only counts it: its location is not
    /// worked out, which costs a scan of the line).
    fn report(&mut self, at: usize, make: impl FnOnce(Location) -> Diagnostic) {
        if self.out.diagnostics.len() < MAX_DIAGNOSTICS {
            let d = make(self.loc(at));
            self.out.diagnostics.push(d);
        } else {
            self.unreported += 1;
        }
    }

    fn finish(mut self) -> ReadOutput {
        if self.unreported > 0 {
            let d = Diagnostic::error(
                Location::file(self.path),
                format!(
                    "{} more problems in this file (not listed one by one)",
                    self.unreported
                ),
            );
            self.out.diagnostics.push(d);
        }
        self.out
    }

    /// Reports something at the top level that is not a record, counts it as skipped and returns
    /// where reading goes on (the next `<Event>`, or the end).
    fn stray(&mut self, pos: usize, message: String) -> usize {
        self.out.skipped += 1;
        self.report(pos, |l| {
            Diagnostic::error(l, message).with_help(FRAMING_HELP)
        });
        next_event_tag(self.text.as_bytes(), pos + 1).unwrap_or(self.text.len())
    }

    /// Skips markup that ends with `close` (a declaration, comment, ...); reports it when the
    /// input ends first.
    fn skip_markup(&mut self, pos: usize, close: &str, what: &str) -> usize {
        let b = self.text.as_bytes();
        match b
            .get(pos..)
            .and_then(|t| memchr::memmem::find(t, close.as_bytes()))
        {
            Some(i) => pos + i + close.len(),
            None => self.stray(
                pos,
                format!("expected `{close}` to close the {what}, found the end of the input"),
            ),
        }
    }

    fn run(&mut self) {
        let b = self.text.as_bytes();
        let mut pos = 0;
        let mut open_wrappers: Vec<usize> = Vec::new();
        loop {
            while b.get(pos).copied().is_some_and(is_xml_space) {
                pos += 1;
            }
            if pos >= b.len() {
                break;
            }
            let rest = self.text.get(pos..).unwrap_or("");
            pos = if is_tag(b, pos, "Event") {
                self.record(pos)
            } else if rest.starts_with("<?") {
                self.skip_markup(pos, "?>", "declaration")
            } else if rest.starts_with("<!--") {
                self.skip_markup(pos, "-->", "comment")
            } else if rest.starts_with("<!DOCTYPE") {
                self.skip_markup(pos, ">", "document type declaration")
            } else if is_tag(b, pos, "Events") {
                let end = self.skip_markup(pos, ">", "`<Events>` tag");
                if self.text.get(..end).is_some_and(|t| !t.ends_with("/>")) {
                    open_wrappers.push(pos);
                }
                end
            } else if rest.starts_with("</Events") && open_wrappers.pop().is_some() {
                self.skip_markup(pos, ">", "`</Events>` tag")
            } else if rest.starts_with("Record ") && is_record_line(line_of(rest, 64)) {
                pos + line_of(rest, 64).len()
            } else {
                match line_of(rest, 512).find("<Event") {
                    Some(i)
                        if is_tag(b, pos + i, "Event")
                            && is_syslog_prefix(rest.get(..i).unwrap_or("")) =>
                    {
                        pos + i
                    }
                    _ => {
                        let found = if rest.starts_with('<') {
                            let tag: String = rest
                                .chars()
                                .take_while(|c| !c.is_whitespace() && *c != '>')
                                .take(40)
                                .collect();
                            format!("`{}>`", tag.trim_end_matches('/'))
                        } else {
                            format!("`{}`", excerpt(rest))
                        };
                        self.stray(pos, format!("expected `<Event>`, found {found}"))
                    }
                }
            };
        }
        if let Some(&at) = open_wrappers.last() {
            self.report(at, |l| {
                Diagnostic::warning(
                    l,
                    "expected `</Events>` to close this `<Events>`, found the end of the input \
(the file may be cut short)",
                )
            });
        }
    }

    /// One `<Event>` at `start`; returns where reading goes on.
    fn record(&mut self, start: usize) -> usize {
        let mut warnings = Vec::new();
        match parse_record(self.text, start, &mut warnings) {
            Ok((root, end)) => {
                for (at, msg) in warnings {
                    self.report(at, |l| Diagnostic::warning(l, msg));
                }
                match event_json(&root) {
                    Ok(j) => {
                        let mut ev = event_from_j(&j);
                        ev.origin.input = self.input;
                        ev.origin.record = self.lines.index(start) as u64 + 1;
                        self.out.events.push(ev);
                    }
                    Err(message) => {
                        self.out.skipped += 1;
                        self.report(start, |l| Diagnostic::error(l, message));
                    }
                }
                end
            }
            Err(bad) => {
                self.out.skipped += 1;
                let start_line = self.lines.index(start) + 1;
                let mut message = bad.message;
                if self.lines.index(bad.at) + 1 != start_line {
                    message.push_str(&format!(" (in the record starting at line {start_line})"));
                }
                self.report(bad.at, |l| Diagnostic::error(l, message));
                self.rescanned += bad.at.saturating_sub(start);
                let from = if self.rescanned > RESCAN_FACTOR * self.text.len() + (1 << 20) {
                    bad.at.max(start + 1)
                } else {
                    start + 1
                };
                bad.resume.unwrap_or_else(|| {
                    next_event_tag(self.text.as_bytes(), from).unwrap_or(self.text.len())
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: one record to a tree
// ---------------------------------------------------------------------------------------------

/// An element of one record.
#[derive(Debug, Default)]
struct Elem {
    name: String,
    /// Attributes in order, values decoded.
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    /// Text (references decoded, CDATA included); `blank` when it is only literal whitespace
    /// (indentation between elements).
    Text {
        text: String,
        blank: bool,
    },
    Elem(Elem),
}

impl Elem {
    fn has_elements(&self) -> bool {
        self.children.iter().any(|n| matches!(n, Node::Elem(_)))
    }

    fn elements(&self) -> impl Iterator<Item = &Elem> {
        self.children.iter().filter_map(|n| match n {
            Node::Elem(e) => Some(e),
            Node::Text { .. } => None,
        })
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The element's text: all of it for a leaf, the text that is not indentation when it has
    /// child elements.
    fn text(&self) -> String {
        let leaf = !self.has_elements();
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text { text, blank } = n {
                if leaf || !blank {
                    s.push_str(text);
                }
            }
        }
        s
    }
}

/// Text being collected between two tags.
#[derive(Default)]
struct Run {
    text: String,
    blank: bool,
    any: bool,
}

impl Run {
    fn literal(&mut self, s: &str) {
        if !self.any {
            self.blank = true;
        }
        self.any = true;
        if !s.bytes().all(is_xml_space) {
            self.blank = false;
        }
        self.text.push_str(s);
    }

    fn decoded(&mut self, s: &str) {
        self.any = true;
        self.blank = false;
        self.text.push_str(s);
    }

    fn flush(&mut self, into: Option<&mut Elem>) {
        if self.any && !self.text.is_empty() {
            if let Some(e) = into {
                e.children.push(Node::Text {
                    text: std::mem::take(&mut self.text),
                    blank: self.blank,
                });
            }
        }
        *self = Run::default();
    }
}

/// Decodes one reference (the text between `&` and `;`): `Ok(None)` for an unknown entity.
fn decode_ref(name: &str) -> Result<Option<char>, String> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            Some(_) => None,
            None if !num.is_empty() && num.bytes().all(|c| c.is_ascii_digit()) => num.parse().ok(),
            None => None,
        };
        return code.and_then(char::from_u32).map(Some).ok_or_else(|| {
            format!(
                "expected a character reference (`&#65;`, `&#x41;`), found `&{}`",
                excerpt_ref(name)
            )
        });
    }
    Ok(match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    })
}

fn excerpt_ref(name: &str) -> String {
    let mut e: String = name.chars().take(12).collect();
    if e.len() < name.len() {
        e.push_str("...");
    }
    format!("{e};")
}

/// Decodes the references in an attribute value (as written between the quotes). Unknown entities
/// are kept as written and reported in `warnings` with `at` (the value's offset).
fn unescape_attr(raw: &str, at: usize, warnings: &mut Vec<(usize, String)>) -> Result<String, Bad> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(semi) = after.find(';') else {
            return Err(Bad {
                at: at + (raw.len() - rest.len()) + i,
                message: "expected a reference ending with `;` after `&` in an attribute value \
(a literal `&` is written `&amp;`)"
                    .to_string(),
                resume: None,
            });
        };
        let name = &after[..semi];
        match decode_ref(name) {
            Ok(Some(c)) => out.push(c),
            Ok(None) => {
                warnings.push((at, unknown_entity(name)));
                out.push('&');
                out.push_str(name);
                out.push(';');
            }
            Err(message) => {
                return Err(Bad {
                    at: at + (raw.len() - rest.len()) + i,
                    message,
                    resume: None,
                })
            }
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn unknown_entity(name: &str) -> String {
    format!(
        "unknown entity `&{}` kept as written (event XML uses only `&amp;`, `&lt;`, `&gt;`, \
`&quot;`, `&apos;` and character references)",
        excerpt_ref(name)
    )
}

/// What a quick-xml error says, as what was expected.
fn describe(e: &quick_xml::Error) -> String {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    use quick_xml::Error as E;
    match e {
        E::Syntax(s) => match s {
            SyntaxError::UnclosedTag => {
                "expected `>` to close the tag, found the end of the input".into()
            }
            SyntaxError::UnclosedCData => {
                "expected `]]>` to close the CDATA section, found the end of the input".into()
            }
            SyntaxError::UnclosedComment => {
                "expected `-->` to close the comment, found the end of the input".into()
            }
            SyntaxError::UnclosedPI | SyntaxError::UnclosedXmlDecl => {
                "expected `?>`, found the end of the input".into()
            }
            SyntaxError::UnclosedSingleQuotedAttributeValue => {
                "expected `'` to close the attribute value, found the end of the input".into()
            }
            SyntaxError::UnclosedDoubleQuotedAttributeValue => {
                "expected `\"` to close the attribute value, found the end of the input".into()
            }
            other => format!("invalid XML: {other}"),
        },
        E::IllFormed(i) => match i {
            IllFormedError::MismatchedEndTag { expected, found } => {
                format!("expected `</{expected}>`, found `</{found}>`")
            }
            IllFormedError::UnmatchedEndTag(found) => {
                format!("expected a start tag before `</{found}>`")
            }
            IllFormedError::UnclosedReference => {
                "expected a reference ending with `;` after `&` (a literal `&` is written `&amp;`)"
                    .into()
            }
            other => format!("invalid XML: {other}"),
        },
        E::InvalidAttr(a) => {
            use quick_xml::events::attributes::AttrError;
            match a {
                AttrError::ExpectedEq(_) => "expected `=` after an attribute name".into(),
                AttrError::ExpectedValue(_) => {
                    "expected an attribute value in quotes after `=`".into()
                }
                AttrError::UnquotedValue(_) => "expected the attribute value in quotes".into(),
                AttrError::ExpectedQuote(_, q) => {
                    format!("expected `{}` to close the attribute value", char::from(*q))
                }
                AttrError::Duplicated(_, _) => {
                    "expected each attribute once, found one repeated".into()
                }
            }
        }
        other => format!("invalid XML: {other}"),
    }
}

/// Position (in the tag) that an attribute error names.
fn attr_error_pos(e: &quick_xml::events::attributes::AttrError) -> usize {
    use quick_xml::events::attributes::AttrError;
    match e {
        AttrError::ExpectedEq(p)
        | AttrError::ExpectedValue(p)
        | AttrError::UnquotedValue(p)
        | AttrError::ExpectedQuote(p, _)
        | AttrError::Duplicated(p, _) => *p,
    }
}

/// Reads a start tag's name and attributes; `tag_at` is the offset of its `<`.
fn start_elem(
    e: &BytesStart<'_>,
    text: &str,
    tag_at: usize,
    warnings: &mut Vec<(usize, String)>,
) -> Result<Elem, Bad> {
    let name = e.name().0.to_string();
    let mut attrs = Vec::new();
    // Where the next attribute's value starts is found in the tag's text, for messages.
    let mut cursor = tag_at + 1 + name.len();
    for a in e.attributes() {
        match a {
            Ok(a) => {
                let key = a.key.0.to_string();
                let at = text
                    .get(cursor..)
                    .and_then(|t| t.find(['"', '\'']))
                    .map_or(cursor, |i| cursor + i + 1);
                cursor = at + a.value.len() + 1;
                let value = unescape_attr(&a.value, at, warnings)?;
                attrs.push((key, value));
            }
            Err(err) => {
                // quick-xml counts from the tag's name (after `<`).
                let at = (tag_at + 1 + attr_error_pos(&err)).min(text.len());
                return Err(Bad {
                    at,
                    message: describe(&quick_xml::Error::InvalidAttr(err)),
                    resume: None,
                });
            }
        }
    }
    Ok(Elem {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// Parses the `<Event>` element at `start` into a tree; returns it and the offset past its end.
fn parse_record(
    text: &str,
    start: usize,
    warnings: &mut Vec<(usize, String)>,
) -> Result<(Elem, usize), Bad> {
    let slice = text.get(start..).unwrap_or("");
    let mut rd = quick_xml::Reader::from_str(slice);
    let mut stack: Vec<Elem> = Vec::new();
    let mut run = Run::default();
    loop {
        let before = start + rd.buffer_position() as usize;
        let ev = match rd.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                let at = match &e {
                    quick_xml::Error::Syntax(_) => text.len(),
                    _ => start + rd.error_position() as usize,
                };
                return Err(Bad {
                    at: at.min(text.len()),
                    message: describe(&e),
                    resume: None,
                });
            }
        };
        match ev {
            XmlEvent::Start(e) | XmlEvent::Empty(e)
                if e.name().0 == "Event" && !stack.is_empty() =>
            {
                let open = stack.last().map_or("Event", |e| e.name.as_str());
                return Err(Bad {
                    at: before,
                    message: format!(
                        "expected `</{open}>`, found the start of another `<Event>` (the record \
is cut short)"
                    ),
                    resume: Some(before),
                });
            }
            XmlEvent::Start(e) => {
                run.flush(stack.last_mut());
                if stack.len() >= MAX_DEPTH {
                    return Err(Bad {
                        at: before,
                        message: format!(
                            "expected at most {MAX_DEPTH} nested elements in a record, found more"
                        ),
                        resume: None,
                    });
                }
                stack.push(start_elem(&e, text, before, warnings)?);
            }
            XmlEvent::Empty(e) => {
                run.flush(stack.last_mut());
                let el = start_elem(&e, text, before, warnings)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Elem(el)),
                    None => return Ok((el, start + rd.buffer_position() as usize)),
                }
            }
            XmlEvent::End(_) => {
                run.flush(stack.last_mut());
                let Some(el) = stack.pop() else {
                    return Err(Bad {
                        at: before,
                        message: "expected `<Event>`, found an end tag".into(),
                        resume: None,
                    });
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Elem(el)),
                    None => return Ok((el, start + rd.buffer_position() as usize)),
                }
            }
            XmlEvent::Text(t) => run.literal(&t),
            XmlEvent::CData(c) => run.decoded(&c),
            XmlEvent::GeneralRef(r) => match decode_ref(&r) {
                Ok(Some(c)) => run.decoded(c.encode_utf8(&mut [0; 4])),
                Ok(None) => {
                    warnings.push((before, unknown_entity(&r)));
                    run.decoded(&format!("&{};", &*r));
                }
                Err(message) => {
                    return Err(Bad {
                        at: before,
                        message,
                        resume: None,
                    })
                }
            },
            XmlEvent::Comment(_) | XmlEvent::PI(_) | XmlEvent::Decl(_) | XmlEvent::DocType(_) => {}
            XmlEvent::Eof => {
                let open = stack.last().map_or("Event", |e| e.name.as_str());
                return Err(Bad {
                    at: text.len(),
                    message: format!("expected `</{open}>`, found the end of the input"),
                    resume: None,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: the tree in the evtx crate's JSON shape
// ---------------------------------------------------------------------------------------------

/// Where a value is, for typing: only `System`'s values are numbers.
#[derive(Clone, Copy)]
enum Typing<'a> {
    Text,
    /// The `System` element: its children are typed by name.
    System,
    /// A child of `System`, by name.
    SystemChild(&'a str),
}

/// `System` children whose text the evtx crate writes as a JSON number.
fn numeric_system_text(element: &str) -> bool {
    matches!(
        element,
        "EventID" | "Version" | "Level" | "Task" | "Opcode" | "EventRecordID"
    )
}

/// `System` attributes the evtx crate writes as JSON numbers (event schema integer types).
fn numeric_system_attr(element: &str, attr: &str) -> bool {
    match element {
        "EventID" => attr == "Qualifiers",
        "Execution" => matches!(
            attr,
            "ProcessID"
                | "ThreadID"
                | "ProcessorID"
                | "SessionID"
                | "KernelTime"
                | "UserTime"
                | "ProcessorTime"
        ),
        _ => false,
    }
}

/// Text as a number when it is a canonical decimal integer, as the evtx crate writes integers.
fn number_or_text(s: String) -> J<'static> {
    let b = s.as_bytes();
    let canonical = !b.is_empty()
        && b.len() <= 19
        && b.iter().all(u8::is_ascii_digit)
        && (b.len() == 1 || b[0] != b'0');
    match (canonical, s.parse::<i64>()) {
        (true, Ok(i)) => J::Int(i),
        _ => J::Str(Cow::Owned(s)),
    }
}

fn scalar(s: String, typing: Typing<'_>) -> J<'static> {
    match typing {
        Typing::SystemChild(name) if numeric_system_text(name) => number_or_text(s),
        _ => J::Str(Cow::Owned(s)),
    }
}

fn key(name: &str, suffix: u32) -> Cow<'static, str> {
    if suffix == 0 {
        Cow::Owned(name.to_string())
    } else {
        Cow::Owned(format!("{name}_{suffix}"))
    }
}

/// Counts repeats of a name: 0 the first time, then 1, 2, ...
fn next_suffix<'n>(counts: &mut HashMap<&'n str, u32>, name: &'n str) -> u32 {
    let c = counts.entry(name).or_insert(0);
    *c += 1;
    *c - 1
}

fn is_data_container(name: &str) -> bool {
    name == "EventData" || name == "UserData"
}

/// The record as the evtx crate's JSON (`{"Event": {...}}`), or why it is not an event.
fn event_json(root: &Elem) -> Result<J<'static>, String> {
    let system = root.elements().find(|e| e.name == "System");
    match system {
        None => {
            return Err(
                "expected a `<System>` element in `<Event>` (with `<Provider>`, `<EventID>`, \
`<Channel>`, ...); the record was skipped"
                    .into(),
            )
        }
        Some(s) if !s.has_elements() => {
            return Err(
                "expected `<Provider>`, `<EventID>`, `<Channel>`, ... in `<System>`, found none; \
the record was skipped"
                    .into(),
            )
        }
        Some(_) => {}
    }
    let value = element_value(root, Typing::Text);
    Ok(J::Object(vec![(Cow::Borrowed("Event"), value)]))
}

/// An element's value (evtx `write_element_value`).
fn element_value(e: &Elem, typing: Typing<'_>) -> J<'static> {
    let has_elements = e.has_elements();
    let text = e.text();
    let has_attrs = e.attrs.iter().any(|(_, v)| !v.is_empty());
    if !has_elements && !has_attrs {
        return if text.is_empty() {
            J::Null
        } else {
            scalar(text, typing)
        };
    }
    element_body(e, is_data_container(&e.name), false, text, typing)
}

/// A `Data` element's value in a data container (evtx `render_data_element_value`): `""` when
/// empty.
fn data_value(e: &Elem) -> J<'static> {
    let text = e.text();
    if !e.has_elements() {
        return J::Str(Cow::Owned(text));
    }
    element_body(e, false, true, text, Typing::Text)
}

/// An element as an object (evtx `write_element_body_json`).
fn element_body(
    e: &Elem,
    in_data_container: bool,
    omit_attributes: bool,
    text: String,
    typing: Typing<'_>,
) -> J<'static> {
    let mut members: Vec<(Cow<'static, str>, J<'static>)> = Vec::new();
    if !omit_attributes {
        let attrs: Vec<_> = e
            .attrs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                let value = match typing {
                    Typing::SystemChild(el) if numeric_system_attr(el, k) => {
                        number_or_text(v.clone())
                    }
                    _ => J::Str(Cow::Owned(v.clone())),
                };
                (Cow::Owned(k.clone()), value)
            })
            .collect();
        if !attrs.is_empty() {
            members.push((Cow::Borrowed("#attributes"), J::Object(attrs)));
        }
    }
    if !text.is_empty() {
        members.push((Cow::Borrowed("#text"), scalar(text, typing)));
    }
    let children: Vec<&Elem> = e.elements().collect();
    let named = in_data_container
        && children
            .iter()
            .any(|c| c.name == "Data" && c.attr("Name").is_some_and(|n| !n.is_empty()));
    let mut counts: HashMap<&str, u32> = HashMap::default();
    let mut data_counts: HashMap<&str, u32> = HashMap::default();
    let mut positional_done = false;
    let mut i = 0;
    while let Some(&c) = children.get(i) {
        if in_data_container && c.name == "Data" {
            if named {
                let name = c.attr("Name").unwrap_or("");
                if name.is_empty() {
                    i += 1;
                    continue;
                }
                let run = 1 + children[i + 1..]
                    .iter()
                    .take_while(|d| d.name == "Data" && d.attr("Name") == Some(name))
                    .count();
                let suffix = next_suffix(&mut data_counts, name);
                let value = if run == 1 {
                    data_value(c)
                } else {
                    J::Array(children[i..i + run].iter().map(|d| data_value(d)).collect())
                };
                members.push((key(name, suffix), value));
                i += run;
            } else {
                if !positional_done {
                    positional_done = true;
                    let data: Vec<&Elem> = children
                        .iter()
                        .copied()
                        .filter(|d| d.name == "Data")
                        .collect();
                    let value = match data.as_slice() {
                        [one] => data_value(one),
                        many => J::Array(many.iter().map(|d| data_value(d)).collect()),
                    };
                    members.push((
                        Cow::Borrowed("Data"),
                        J::Object(vec![(Cow::Borrowed("#text"), value)]),
                    ));
                }
                i += 1;
            }
            continue;
        }
        let suffix = next_suffix(&mut counts, &c.name);
        let child_typing = match typing {
            Typing::System => Typing::SystemChild(&c.name),
            _ if c.name == "System" && e.name == "Event" => Typing::System,
            _ => Typing::Text,
        };
        members.push((key(&c.name, suffix), element_value(c, child_typing)));
        i += 1;
    }
    J::Object(members)
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// `s` escaped for XML text (`in_attribute`: for a double-quoted attribute value). Line breaks in
/// attributes, carriage returns and characters XML 1.0 does not allow are written as character
/// references, so that no XML reader normalises them away.
fn escape(s: &str, in_attribute: bool) -> Cow<'_, str> {
    let special = |c: char| match c {
        '&' | '<' | '>' => true,
        '"' | '\'' | '\t' | '\n' => in_attribute,
        '\r' | '\u{FFFE}' | '\u{FFFF}' => true,
        c => (c as u32) < 0x20 && c != '\t' && c != '\n',
    };
    if !s.chars().any(special) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            c if special(c) => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` as an XML element name: characters a name cannot have become `_` (an empty name is `_`).
/// UserData element and field names come from manifests and are always names; this only keeps
/// the output well-formed whatever a caller passes.
pub fn xml_name(s: &str) -> Cow<'_, str> {
    let ok = |i: usize, c: char| {
        c == '_' || c.is_alphabetic() || (i > 0 && (c.is_numeric() || c == '-' || c == '.'))
    };
    if !s.is_empty() && s.chars().enumerate().all(|(i, c)| ok(i, c)) {
        return Cow::Borrowed(s);
    }
    if s.is_empty() {
        return Cow::Borrowed("_");
    }
    Cow::Owned(
        s.chars()
            .enumerate()
            .map(|(i, c)| if ok(i, c) { c } else { '_' })
            .collect(),
    )
}

/// An XML writer for one record: one line, `<Tag />` for empty elements.
struct Out {
    w: quick_xml::Writer<Vec<u8>>,
}

impl Out {
    fn new() -> Self {
        let mut w = quick_xml::Writer::new(Vec::with_capacity(1024));
        w.config_mut().add_space_before_slash_in_empty_elements = true;
        Out { w }
    }

    /// A start tag with the attributes whose value is not empty (as Windows leaves them out).
    fn tag<'a>(name: &'a str, attrs: &[(&'a str, &'a str)]) -> BytesStart<'a> {
        let mut t = BytesStart::new(name);
        for (k, v) in attrs.iter().filter(|(_, v)| !v.is_empty()) {
            t.push_attribute(Attribute {
                key: QName(k),
                value: escape(v, true),
            });
        }
        t
    }

    fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> std::io::Result<()> {
        self.w.write_event(XmlEvent::Start(Self::tag(name, attrs)))
    }

    fn end(&mut self, name: &str) -> std::io::Result<()> {
        self.w.write_event(XmlEvent::End(BytesEnd::new(name)))
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> std::io::Result<()> {
        self.w.write_event(XmlEvent::Empty(Self::tag(name, attrs)))
    }

    /// `<name attrs>text</name>` (also when the text is empty, as Windows writes it).
    fn text_elem(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> std::io::Result<()> {
        self.start(name, attrs)?;
        if !text.is_empty() {
            self.w
                .write_event(XmlEvent::Text(BytesText::from_escaped(escape(text, false))))?;
        }
        self.end(name)
    }

    fn into_string(self) -> String {
        // Only `&str` pieces were written: always UTF-8.
        String::from_utf8(self.w.into_inner())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn is_linux_sysmon(r: &WinRecord) -> bool {
    r.channel == LINUX_SYSMON_CHANNEL
}

/// The attribute Sysmon for Linux / Windows writes the user in: `Security UserId` / `UserID`.
fn user_attr(r: &WinRecord) -> &'static str {
    if is_linux_sysmon(r) {
        "UserId"
    } else {
        "UserID"
    }
}

/// Renders one record as `<Event xmlns=...>...</Event>` on one line (no declaration, no line
/// break at the end); see the module documentation.
pub fn render(r: &WinRecord) -> String {
    let mut o = Out::new();
    // Writing to a Vec cannot fail; an error would only cut the output short.
    let _ = write_record(&mut o, r);
    o.into_string()
}

fn num<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write_record(o: &mut Out, r: &WinRecord) -> std::io::Result<()> {
    if is_linux_sysmon(r) {
        o.start("Event", &[])?;
    } else {
        o.start("Event", &[("xmlns", EVENT_NS)])?;
    }
    o.start("System", &[])?;
    o.empty(
        "Provider",
        &[
            ("Name", &r.provider_name),
            ("Guid", r.provider_guid.as_deref().unwrap_or("")),
        ],
    )?;
    o.text_elem("EventID", &[], &r.event_id.to_string())?;
    for (name, v) in [
        ("Version", r.version.map(u16::from)),
        ("Level", r.level.map(u16::from)),
        ("Task", r.task),
        ("Opcode", r.opcode.map(u16::from)),
    ] {
        if let Some(v) = v {
            o.text_elem(name, &[], &v.to_string())?;
        }
    }
    if let Some(k) = &r.keywords {
        o.text_elem("Keywords", &[], k)?;
    }
    o.empty("TimeCreated", &[("SystemTime", &r.time_created)])?;
    o.text_elem("EventRecordID", &[], &r.record_id.to_string())?;
    o.empty(
        "Correlation",
        &[
            (
                "ActivityID",
                r.correlation_activity_id.as_deref().unwrap_or(""),
            ),
            (
                "RelatedActivityID",
                r.correlation_related_activity_id.as_deref().unwrap_or(""),
            ),
        ],
    )?;
    if r.execution_pid.is_some() || r.execution_tid.is_some() {
        let (pid, tid) = (num(r.execution_pid), num(r.execution_tid));
        o.empty("Execution", &[("ProcessID", &pid), ("ThreadID", &tid)])?;
    }
    o.text_elem("Channel", &[], &r.channel)?;
    o.text_elem("Computer", &[], &r.computer)?;
    o.empty(
        "Security",
        &[(user_attr(r), r.user_sid.as_deref().unwrap_or(""))],
    )?;
    o.end("System")?;
    match &r.data {
        WinData::EventData(data) if data.is_empty() => o.empty("EventData", &[])?,
        WinData::EventData(data) => {
            o.start("EventData", &[])?;
            for (name, value) in data {
                o.text_elem("Data", &[("Name", name)], value)?;
            }
            o.end("EventData")?;
        }
        WinData::UserData {
            element,
            xmlns,
            fields,
        } => {
            let element = xml_name(element);
            let attrs = [("xmlns", xmlns.as_deref().unwrap_or(""))];
            o.start("UserData", &[])?;
            if fields.is_empty() {
                o.empty(&element, &attrs)?;
            } else {
                o.start(&element, &attrs)?;
                for (name, value) in fields {
                    o.text_elem(&xml_name(name), &[], value)?;
                }
                o.end(&element)?;
            }
            o.end("UserData")?;
        }
    }
    o.end("Event")
}

/// `{"#attributes": {..}}` for the attributes with a value, or `null` when none has one (as the
/// evtx crate writes an element without content).
fn attrs_json(attrs: Vec<(&str, Json)>) -> Json {
    let m: Map<String, Json> = attrs
        .into_iter()
        .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if m.is_empty() {
        Json::Null
    } else {
        json!({ "#attributes": m })
    }
}

/// A text element's JSON value: `null` when empty.
fn text_json(s: &str) -> Json {
    if s.is_empty() {
        Json::Null
    } else {
        Json::String(s.to_string())
    }
}

fn opt_str(s: &Option<String>) -> Json {
    s.as_ref().map_or(Json::Null, |s| Json::String(s.clone()))
}

/// Renders one record in the evtx crate's JSON shape (`{"Event": {"#attributes":.., "System":..,
/// "EventData":..}}`): `System` integers as JSON numbers, data values as strings; see the module
/// documentation for how elements map to JSON.
pub fn render_evtx_json(r: &WinRecord) -> Json {
    let mut sys = Map::new();
    sys.insert(
        "Provider".into(),
        attrs_json(vec![
            ("Name", Json::String(r.provider_name.clone())),
            ("Guid", opt_str(&r.provider_guid)),
        ]),
    );
    sys.insert("EventID".into(), json!(r.event_id));
    let small = [
        ("Version", r.version.map(u16::from)),
        ("Level", r.level.map(u16::from)),
        ("Task", r.task),
        ("Opcode", r.opcode.map(u16::from)),
    ];
    for (name, v) in small {
        if let Some(v) = v {
            sys.insert(name.into(), json!(v));
        }
    }
    if let Some(k) = &r.keywords {
        sys.insert("Keywords".into(), text_json(k));
    }
    sys.insert(
        "TimeCreated".into(),
        attrs_json(vec![("SystemTime", Json::String(r.time_created.clone()))]),
    );
    sys.insert("EventRecordID".into(), json!(r.record_id));
    sys.insert(
        "Correlation".into(),
        attrs_json(vec![
            ("ActivityID", opt_str(&r.correlation_activity_id)),
            (
                "RelatedActivityID",
                opt_str(&r.correlation_related_activity_id),
            ),
        ]),
    );
    if r.execution_pid.is_some() || r.execution_tid.is_some() {
        sys.insert(
            "Execution".into(),
            attrs_json(vec![
                (
                    "ProcessID",
                    r.execution_pid.map_or(Json::Null, |v| json!(v)),
                ),
                ("ThreadID", r.execution_tid.map_or(Json::Null, |v| json!(v))),
            ]),
        );
    }
    sys.insert("Channel".into(), text_json(&r.channel));
    sys.insert("Computer".into(), text_json(&r.computer));
    sys.insert(
        "Security".into(),
        attrs_json(vec![(user_attr(r), opt_str(&r.user_sid))]),
    );

    let mut event = Map::new();
    if !is_linux_sysmon(r) {
        event.insert("#attributes".into(), json!({ "xmlns": EVENT_NS }));
    }
    event.insert("System".into(), Json::Object(sys));
    match &r.data {
        WinData::EventData(data) => {
            event.insert("EventData".into(), event_data_json(data));
        }
        WinData::UserData {
            element,
            xmlns,
            fields,
        } => {
            event.insert(
                "UserData".into(),
                user_data_json(&xml_name(element), xmlns.as_deref().unwrap_or(""), fields),
            );
        }
    }
    json!({ "Event": Json::Object(event) })
}

/// Inserts `name` (numbered `name_N` when it repeats) into `m`.
fn insert_numbered(
    m: &mut Map<String, Json>,
    counts: &mut HashMap<String, u32>,
    name: &str,
    v: Json,
) {
    let c = counts.entry(name.to_string()).or_insert(0);
    let k = if *c == 0 {
        name.to_string()
    } else {
        format!("{name}_{c}")
    };
    *c += 1;
    m.insert(k, v);
}

/// `<EventData>` in the evtx crate's JSON: named `Data` as members (a run of one name as an
/// array, a later repeat numbered), or, when no `Data` has a name, `{"Data": {"#text": ..}}`.
fn event_data_json(data: &[(String, String)]) -> Json {
    if data.is_empty() {
        return Json::Null;
    }
    let mut m = Map::new();
    if data.iter().all(|(n, _)| n.is_empty()) {
        let values: Vec<Json> = data.iter().map(|(_, v)| Json::String(v.clone())).collect();
        let value = match values.as_slice() {
            [one] => one.clone(),
            _ => Json::Array(values),
        };
        m.insert("Data".into(), json!({ "#text": value }));
        return Json::Object(m);
    }
    let mut counts = HashMap::default();
    let mut i = 0;
    while let Some((name, value)) = data.get(i) {
        if name.is_empty() {
            i += 1;
            continue;
        }
        let run = 1 + data[i + 1..].iter().take_while(|(n, _)| n == name).count();
        let v = if run == 1 {
            Json::String(value.clone())
        } else {
            Json::Array(
                data[i..i + run]
                    .iter()
                    .map(|(_, v)| Json::String(v.clone()))
                    .collect(),
            )
        };
        insert_numbered(&mut m, &mut counts, name, v);
        i += run;
    }
    Json::Object(m)
}

/// `<UserData><element xmlns=..><Field>..</Field>...</element></UserData>` in the evtx crate's
/// JSON. `UserData` is a data container: an element named `Data` in it is positional data; an
/// element named `EventData`/`UserData` is a container for its own `Data` fields.
fn user_data_json(element: &str, xmlns: &str, fields: &[(String, String)]) -> Json {
    let container = element == "EventData" || element == "UserData";
    let mut body = Map::new();
    let as_data = element == "Data";
    if !xmlns.is_empty() && !as_data {
        body.insert("#attributes".into(), json!({ "xmlns": xmlns }));
    }
    let mut counts = HashMap::default();
    let mut positional_done = false;
    for (name, value) in fields {
        let name = xml_name(name);
        if container && name == "Data" {
            if !positional_done {
                positional_done = true;
                let values: Vec<Json> = fields
                    .iter()
                    .filter(|(n, _)| xml_name(n) == "Data")
                    .map(|(_, v)| Json::String(v.clone()))
                    .collect();
                let value = match values.as_slice() {
                    [one] => one.clone(),
                    _ => Json::Array(values),
                };
                body.insert("Data".into(), json!({ "#text": value }));
            }
            continue;
        }
        insert_numbered(&mut body, &mut counts, &name, text_json(value));
    }
    if as_data {
        // A `Data` child of the `UserData` container: positional data, its value `""` when empty.
        let v = if fields.is_empty() {
            Json::String(String::new())
        } else {
            Json::Object(body)
        };
        json!({ "Data": { "#text": v } })
    } else {
        let v = if body.is_empty() {
            Json::Null
        } else {
            Json::Object(body)
        };
        let mut m = Map::new();
        m.insert(element.to_string(), v);
        Json::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Value;

    fn read(t: &str) -> ReadOutput {
        read_text(t, Path::new("t.xml"), 0)
    }

    #[test]
    fn escape_and_names() {
        assert_eq!(escape("a<b>&c\"'", false), "a&lt;b&gt;&amp;c\"'");
        assert_eq!(escape("a\"'\t\n\r", true), "a&quot;&apos;&#x9;&#xA;&#xD;");
        assert_eq!(escape("\u{1}\r\n\t", false), "&#x1;&#xD;\n\t");
        assert_eq!(xml_name("Good.Name-1"), "Good.Name-1");
        assert_eq!(xml_name("1 bad<"), "__bad_");
        assert_eq!(xml_name(""), "_");
    }

    #[test]
    fn numbers_only_when_canonical() {
        assert_eq!(number_or_text("0".into()), J::Int(0));
        assert_eq!(number_or_text("4624".into()), J::Int(4624));
        for s in ["", "01", "+1", "-1", " 1", "0x10", "18446744073709551615"] {
            assert!(matches!(number_or_text(s.into()), J::Str(_)), "{s}");
        }
    }

    #[test]
    fn reads_a_record_with_typed_system_values() {
        let out = read(
            "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>\
<Provider Name='P' /><EventID Qualifiers='16384'>7036</EventID><Level>4</Level>\
<Channel>System</Channel><Execution ProcessID='4' ThreadID='08' /></System>\
<EventData><Data Name='param1'>a &amp; b</Data><Data Name='Level'>x</Data></EventData></Event>",
        );
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let ev = &out.events[0];
        assert_eq!(ev.get("EventID_Qualifiers"), Some(&Value::Int(16384)));
        assert_eq!(ev.get("EventID"), Some(&Value::Int(7036)));
        assert_eq!(ev.get("Level"), Some(&Value::Int(4)));
        assert_eq!(ev.get("Execution_ProcessID"), Some(&Value::Int(4)));
        // Not canonical: kept as text.
        assert_eq!(ev.get("Execution_ThreadID"), Some(&Value::Str("08".into())));
        assert_eq!(ev.get("param1"), Some(&Value::Str("a & b".into())));
        assert_eq!(ev.get("EventData.Level"), Some(&Value::Str("x".into())));
    }
}
