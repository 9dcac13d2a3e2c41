//! Compiled matchers for single values, and the per-event view they read.
//!
//! Input: [`Leaf`]s from the value stage. Output: [`LeafMatcher`]s, built once when rules are compiled
//! (needles lowercased once, literal shapes turned into exact/prefix/suffix/memchr searches, regexes
//! compiled with a size limit), and evaluated against an [`EventView`] that holds each event's texts,
//! already lowercased, so evaluation itself allocates nothing. Case-insensitive comparison folds
//! characters one by one (Unicode lowercase, final sigma folded to sigma), the same way for needles and
//! haystacks, so a literal found case-insensitively is also found by the literal pre-filter.

use super::value::{CmpOp, Leaf, Pattern, RefMode, TimeUnit, Tok};
use crate::telemetry::Value;
use memchr::memmem;

/// Largest compiled size of one `re` value; larger patterns are rejected when the rule loads.
pub const REGEX_SIZE_LIMIT: usize = 16 << 20;

/// Appends the case-folded form of `s` to `out`.
pub fn fold_into(s: &str, out: &mut String) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        // SAFETY-free: ASCII lowercasing keeps the buffer valid UTF-8.
        out[start..].make_ascii_lowercase();
        return;
    }
    for c in s.chars() {
        for l in c.to_lowercase() {
            out.push(if l == 'ς' { 'σ' } else { l });
        }
    }
}

/// The case-folded form of `s`.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(s, &mut out);
    out
}

/// A text's atom kind, kept so numbers and booleans compare as Sigma says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AtomKind {
    Str,
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// One scalar value of an event, with its original and folded text in the view's arenas.
#[derive(Debug, Clone, Copy)]
pub struct Atom {
    pub kind: AtomKind,
    pub orig: (u32, u32),
    pub lower: (u32, u32),
}

/// One field of an event as the matchers see it.
#[derive(Debug, Clone, Copy)]
pub struct FieldVal {
    /// The value is an explicit null.
    pub null: bool,
    /// Range of atoms (one for a scalar, one per element for a list).
    pub atoms: (u32, u32),
}

/// Per-event texts and fields. Built once per event by the engine and reused across events.
#[derive(Debug, Default)]
pub struct EventView {
    pub orig: String,
    pub lower: String,
    pub atoms: Vec<Atom>,
    pub fields: Vec<FieldVal>,
    /// Field id -> index into `fields` (`u32::MAX` = absent).
    pub slots: Vec<u32>,
    /// Atoms below this index belong to fields the sensor wrote (keywords search only those).
    pub original_atoms: u32,
}

pub const ABSENT: u32 = u32::MAX;

impl EventView {
    pub fn clear(&mut self) {
        self.orig.clear();
        self.lower.clear();
        self.atoms.clear();
        self.fields.clear();
        self.original_atoms = 0;
    }

    /// Adds a field value and returns its index in `fields`.
    pub fn push_value(&mut self, v: &Value) -> u32 {
        let start = self.atoms.len() as u32;
        let null = matches!(v, Value::Null);
        self.push_atoms(v);
        let end = self.atoms.len() as u32;
        self.fields.push(FieldVal {
            null,
            atoms: (start, end),
        });
        (self.fields.len() - 1) as u32
    }

    /// Adds a derived text value (from a field mapping) and returns its index in `fields`.
    pub fn push_text(&mut self, s: &str) -> u32 {
        let start = self.atoms.len() as u32;
        self.push_atom(AtomKind::Str, s);
        self.fields.push(FieldVal {
            null: false,
            atoms: (start, start + 1),
        });
        (self.fields.len() - 1) as u32
    }

    fn push_atoms(&mut self, v: &Value) {
        match v {
            Value::Null => {}
            Value::Str(s) => self.push_atom(AtomKind::Str, s),
            Value::Int(i) => {
                let mut b = itoa_buf(*i);
                self.push_atom(AtomKind::Int(*i), b.as_mut_str())
            }
            Value::Float(f) => {
                self.push_atom(AtomKind::Float(*f), &crate::telemetry::format_float(*f))
            }
            Value::Bool(b) => self.push_atom(AtomKind::Bool(*b), if *b { "true" } else { "false" }),
            Value::List(items) => {
                for it in items {
                    self.push_atoms(it);
                }
            }
            Value::Map(m) => {
                for (_, it) in m {
                    self.push_atoms(it);
                }
            }
        }
    }

    fn push_atom(&mut self, kind: AtomKind, s: &str) {
        let o0 = self.orig.len() as u32;
        self.orig.push_str(s);
        let o1 = self.orig.len() as u32;
        let l0 = self.lower.len() as u32;
        fold_into(s, &mut self.lower);
        let l1 = self.lower.len() as u32;
        // A separator no needle contains, so the pre-filter never matches across two values.
        self.lower.push('\u{0}');
        self.atoms.push(Atom {
            kind,
            orig: (o0, o1),
            lower: (l0, l1),
        });
    }

    #[inline]
    pub fn orig(&self, a: &Atom) -> &str {
        self.orig
            .get(a.orig.0 as usize..a.orig.1 as usize)
            .unwrap_or("")
    }

    #[inline]
    pub fn lower(&self, a: &Atom) -> &str {
        self.lower
            .get(a.lower.0 as usize..a.lower.1 as usize)
            .unwrap_or("")
    }

    #[inline]
    pub fn field(&self, id: u32) -> Option<&FieldVal> {
        let idx = *self.slots.get(id as usize)?;
        if idx == ABSENT {
            None
        } else {
            self.fields.get(idx as usize)
        }
    }

    /// The folded texts of field value `idx` (one per atom, separated by NUL), for the pre-filter.
    pub fn folded_text(&self, idx: u32) -> &str {
        let Some(f) = self.fields.get(idx as usize) else {
            return "";
        };
        let atoms = self.atoms_of(f);
        match (atoms.first(), atoms.last()) {
            (Some(a), Some(b)) => self
                .lower
                .get(a.lower.0 as usize..b.lower.1 as usize)
                .unwrap_or(""),
            _ => "",
        }
    }

    #[inline]
    pub fn atoms_of(&self, f: &FieldVal) -> &[Atom] {
        self.atoms
            .get(f.atoms.0 as usize..f.atoms.1 as usize)
            .unwrap_or(&[])
    }
}

/// Small stack buffer for integer text without allocation.
struct ItoaBuf {
    buf: [u8; 24],
    start: usize,
}

impl ItoaBuf {
    fn as_mut_str(&mut self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

fn itoa_buf(i: i64) -> ItoaBuf {
    let mut buf = [0u8; 24];
    let mut pos = buf.len();
    let neg = i < 0;
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        buf[pos] = b'-';
    }
    ItoaBuf { buf, start: pos }
}

/// A token of a general wildcard pattern.
#[derive(Debug, Clone)]
pub enum GTok {
    Lit(String),
    One,
}

/// How a Sigma string is matched, chosen from its shape.
#[derive(Debug, Clone)]
pub enum StrMatch {
    /// `*` alone: any text.
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(Box<memmem::Finder<'static>>),
    /// Anything else: segments between stars, matched leftmost-first.
    Glob {
        segments: Vec<Vec<GTok>>,
        anchored_start: bool,
        anchored_end: bool,
    },
}

/// A compiled Sigma string.
#[derive(Debug, Clone)]
pub struct StrMatcher {
    pub m: StrMatch,
    pub cased: bool,
}

impl StrMatcher {
    pub fn new(p: &Pattern, cased: bool) -> StrMatcher {
        let conv = |b: &[u8]| {
            let s = super::value::bytes_to_text(b);
            if cased {
                s
            } else {
                fold(&s)
            }
        };
        let t = &p.toks;
        let m = match t.as_slice() {
            [] => StrMatch::Exact(String::new()),
            [Tok::Star] => StrMatch::Any,
            [Tok::Lit(a)] => StrMatch::Exact(conv(a)),
            [Tok::Lit(a), Tok::Star] => StrMatch::Prefix(conv(a)),
            [Tok::Star, Tok::Lit(a)] => StrMatch::Suffix(conv(a)),
            [Tok::Star, Tok::Lit(a), Tok::Star] => StrMatch::Contains(Box::new(
                memmem::Finder::new(conv(a).as_bytes()).into_owned(),
            )),
            _ => {
                let mut segments = vec![Vec::new()];
                for tok in t {
                    match tok {
                        Tok::Star => segments.push(Vec::new()),
                        Tok::One => segments.last_mut().map_or((), |s| s.push(GTok::One)),
                        Tok::Lit(b) => segments
                            .last_mut()
                            .map_or((), |s| s.push(GTok::Lit(conv(b)))),
                    }
                }
                let anchored_start = t.first() != Some(&Tok::Star);
                let anchored_end = t.last() != Some(&Tok::Star);
                if !anchored_start {
                    segments.remove(0);
                }
                if !anchored_end {
                    segments.pop();
                }
                StrMatch::Glob {
                    segments,
                    anchored_start,
                    anchored_end,
                }
            }
        };
        StrMatcher { m, cased }
    }

    #[inline]
    pub fn is_match_text(&self, orig: &str, lower: &str) -> bool {
        let s = if self.cased { orig } else { lower };
        match &self.m {
            StrMatch::Any => true,
            StrMatch::Exact(n) => s == n,
            StrMatch::Prefix(n) => s.starts_with(n.as_str()),
            StrMatch::Suffix(n) => s.ends_with(n.as_str()),
            StrMatch::Contains(f) => f.find(s.as_bytes()).is_some(),
            StrMatch::Glob {
                segments,
                anchored_start,
                anchored_end,
            } => glob_match(segments, *anchored_start, *anchored_end, s),
        }
    }
}

/// Matches `seg` at byte position `pos` of `s`; returns the end position.
fn seg_at(seg: &[GTok], s: &str, mut pos: usize) -> Option<usize> {
    for t in seg {
        match t {
            GTok::Lit(l) => {
                if s.get(pos..)?.starts_with(l.as_str()) {
                    pos += l.len();
                } else {
                    return None;
                }
            }
            GTok::One => {
                let c = s.get(pos..)?.chars().next()?;
                pos += c.len_utf8();
            }
        }
    }
    Some(pos)
}

/// Length in bytes a segment needs at least (characters for `?` counted as one byte).
fn seg_min_len(seg: &[GTok]) -> usize {
    seg.iter()
        .map(|t| match t {
            GTok::Lit(l) => l.len(),
            GTok::One => 1,
        })
        .sum()
}

/// Leftmost match of `seg` in `s` at or after `from`; returns (start, end).
fn seg_find(seg: &[GTok], s: &str, from: usize) -> Option<(usize, usize)> {
    if let Some(GTok::Lit(first)) = seg.first() {
        let mut at = from;
        while at <= s.len() {
            let rel = memmem::find(s.as_bytes().get(at..)?, first.as_bytes())?;
            let start = at + rel;
            if let Some(end) = seg_at(seg, s, start) {
                return Some((start, end));
            }
            at = start + 1;
            while at < s.len() && !s.is_char_boundary(at) {
                at += 1;
            }
        }
        return None;
    }
    let mut start = from;
    loop {
        if let Some(end) = seg_at(seg, s, start) {
            return Some((start, end));
        }
        let c = s.get(start..)?.chars().next()?;
        start += c.len_utf8();
    }
}

fn glob_match(segments: &[Vec<GTok>], anchored_start: bool, anchored_end: bool, s: &str) -> bool {
    if anchored_start && anchored_end && segments.len() == 1 {
        return seg_at(&segments[0], s, 0) == Some(s.len());
    }
    let mut segs = segments;
    let mut pos = 0;
    let mut limit = s.len();
    if anchored_start {
        let Some((first, rest)) = segs.split_first() else {
            return true;
        };
        match seg_at(first, s, 0) {
            Some(end) => pos = end,
            None => return false,
        }
        segs = rest;
    }
    if anchored_end {
        let Some((last, rest)) = segs.split_last() else {
            return pos <= s.len();
        };
        // The last segment must end exactly at the end: find a start whose match ends there.
        let need = seg_min_len(last);
        if s.len() < pos + need {
            return false;
        }
        let mut found = None;
        let mut start = s.len().saturating_sub(need);
        // `?` may span multi-byte characters, so try starts back to `pos`.
        loop {
            if s.is_char_boundary(start) && seg_at(last, s, start) == Some(s.len()) {
                found = Some(start);
                break;
            }
            if start == pos {
                break;
            }
            start -= 1;
        }
        match found {
            Some(st) => limit = st,
            None => return false,
        }
        segs = rest;
    }
    for seg in segs {
        match seg_find(seg, s, pos) {
            Some((_, end)) if end <= limit => pos = end,
            _ => return false,
        }
    }
    pos <= limit
}

/// A compiled value test.
#[derive(Debug, Clone)]
pub enum LeafMatcher {
    Str(StrMatcher),
    Num(f64),
    Bool(bool),
    Null,
    Exists(bool),
    Regex(Box<regex::Regex>),
    Cidr(ipnet::IpNet),
    Cmp(CmpOp, f64),
    TimePart(TimeUnit, i64),
    FieldRef {
        field: u32,
        mode: RefMode,
        cased: bool,
    },
}

/// Why a leaf could not be compiled, and the 1-based line of its key (0 when not known).
#[derive(Debug, Clone)]
pub struct CompileError(pub String, pub usize);

impl LeafMatcher {
    /// Compiles a leaf; `field_id` interns the field names `fieldref` refers to.
    pub fn compile(
        leaf: &Leaf,
        field_id: &mut dyn FnMut(&str) -> u32,
    ) -> Result<LeafMatcher, CompileError> {
        Ok(match leaf {
            Leaf::Str { pat, cased } => LeafMatcher::Str(StrMatcher::new(pat, *cased)),
            Leaf::Num(n) => LeafMatcher::Num(*n),
            Leaf::Bool(b) => LeafMatcher::Bool(*b),
            Leaf::Null => LeafMatcher::Null,
            Leaf::Exists(b) => LeafMatcher::Exists(*b),
            Leaf::Regex {
                pattern,
                insensitive,
                multiline,
                dotall,
            } => {
                let re = regex::RegexBuilder::new(pattern)
                    .case_insensitive(*insensitive)
                    .multi_line(*multiline)
                    .dot_matches_new_line(*dotall)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT * 2)
                    .build()
                    .map_err(|e| match e {
                        regex::Error::CompiledTooBig(limit) => CompileError(
                            format!(
                                "regex too large: '{pattern}' compiles to more than {limit} bytes"
                            ),
                            0,
                        ),
                        e => {
                            let text = e.to_string();
                            let why = text.lines().last().unwrap_or("").trim_start_matches("error: ");
                            if why.contains("not supported") {
                                // Valid PCRE outside the linear-time engine's language.
                                CompileError(
                                    format!(
                                        "regex '{pattern}' uses a construct this engine does not evaluate: {why}"
                                    ),
                                    0,
                                )
                            } else {
                                CompileError(format!("invalid regex '{pattern}': {why}"), 0)
                            }
                        }
                    })?;
                LeafMatcher::Regex(Box::new(re))
            }
            Leaf::Cidr(net) => LeafMatcher::Cidr(*net),
            Leaf::Cmp(op, n) => LeafMatcher::Cmp(*op, *n),
            Leaf::TimePart(u, n) => LeafMatcher::TimePart(*u, *n),
            Leaf::FieldRef { field, mode, cased } => LeafMatcher::FieldRef {
                field: field_id(field),
                mode: *mode,
                cased: *cased,
            },
        })
    }

    /// Whether the leaf holds for a field (`None` = the event does not have it).
    #[inline]
    pub fn matches(&self, field: Option<&FieldVal>, view: &EventView) -> bool {
        match self {
            LeafMatcher::Null => field.is_none_or(|f| f.null),
            LeafMatcher::Exists(b) => field.is_some() == *b,
            _ => {
                let Some(f) = field else { return false };
                view.atoms_of(f).iter().any(|a| self.matches_atom(a, view))
            }
        }
    }

    /// Whether the leaf holds for one scalar value.
    #[inline]
    pub fn matches_atom(&self, a: &Atom, view: &EventView) -> bool {
        match self {
            LeafMatcher::Str(m) => m.is_match_text(view.orig(a), view.lower(a)),
            LeafMatcher::Num(n) => match a.kind {
                AtomKind::Int(i) => (i as f64) == *n,
                AtomKind::Float(f) => f == *n,
                AtomKind::Bool(_) => false,
                AtomKind::Str => parse_num(view.orig(a)).is_some_and(|x| x == *n),
            },
            LeafMatcher::Bool(b) => match a.kind {
                AtomKind::Bool(x) => x == *b,
                AtomKind::Str => view.lower(a) == if *b { "true" } else { "false" },
                _ => false,
            },
            LeafMatcher::Null | LeafMatcher::Exists(_) => false,
            LeafMatcher::Regex(re) => re.is_match(view.orig(a)),
            LeafMatcher::Cidr(net) => view
                .orig(a)
                .trim()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| net.contains(&ip)),
            LeafMatcher::Cmp(op, n) => {
                let x = match a.kind {
                    AtomKind::Int(i) => Some(i as f64),
                    AtomKind::Float(f) => Some(f),
                    AtomKind::Bool(_) => None,
                    AtomKind::Str => parse_num(view.orig(a)),
                };
                x.is_some_and(|x| match op {
                    CmpOp::Lt => x < *n,
                    CmpOp::Lte => x <= *n,
                    CmpOp::Gt => x > *n,
                    CmpOp::Gte => x >= *n,
                })
            }
            LeafMatcher::TimePart(unit, n) => {
                time_part(view.orig(a), *unit).is_some_and(|x| x == *n)
            }
            LeafMatcher::FieldRef { field, mode, cased } => {
                let Some(other) = view.field(*field) else {
                    return false;
                };
                let (mine, _) = if *cased {
                    (view.orig(a), ())
                } else {
                    (view.lower(a), ())
                };
                view.atoms_of(other).iter().any(|b| {
                    let theirs = if *cased { view.orig(b) } else { view.lower(b) };
                    match mode {
                        RefMode::Equal => mine == theirs,
                        RefMode::Contains => mine.contains(theirs),
                        RefMode::StartsWith => mine.starts_with(theirs),
                        RefMode::EndsWith => mine.ends_with(theirs),
                    }
                })
            }
        }
    }
}

/// A decimal number in text (surrounding spaces allowed); hex and other forms are not numbers.
pub(crate) fn parse_num(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    t.parse().ok()
}

/// Extracts a part of a timestamp written `YYYY-MM-DD`, optionally followed by `T` or a space and
/// `hh:mm`. Time zones are not converted (the specification says the modifiers do not).
pub fn time_part(s: &str, unit: TimeUnit) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let hm = || -> Option<(i64, i64)> {
        if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
            return None;
        }
        Some((num(11..13)?, num(14..16)?))
    };
    match unit {
        TimeUnit::Year => Some(y),
        TimeUnit::Month => Some(m),
        TimeUnit::Day => Some(d),
        TimeUnit::Week => Some(iso_week(y, m, d)),
        TimeUnit::Hour => hm().map(|(h, _)| h),
        TimeUnit::Minute => hm().map(|(_, mi)| mi),
    }
}

/// Days since 1970-01-01 (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// ISO 8601 week number.
fn iso_week(y: i64, m: i64, d: i64) -> i64 {
    let days = days_from_civil(y, m, d);
    // 1970-01-01 was a Thursday; ISO weekday 1 = Monday.
    let weekday = (days + 3).rem_euclid(7) + 1;
    let thursday = days - weekday + 4;
    // The ISO year is the year of that Thursday.
    let jan1 = |yy: i64| days_from_civil(yy, 1, 1);
    let mut iso_year = y;
    if thursday < jan1(y) {
        iso_year = y - 1;
    } else if thursday >= jan1(y + 1) {
        iso_year = y + 1;
    }
    (thursday - jan1(iso_year)) / 7 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        StrMatcher::new(&Pattern::parse(p), false).is_match_text(s, &fold(s))
    }

    #[test]
    fn wildcards_backtrack() {
        assert!(m("*a?c", "axabc"));
        assert!(m("a*b*c", "abxbc"));
        assert!(!m("a*b*c", "abxb"));
        assert!(m("a?", "aé"));
        assert!(!m("a?", "a"));
        assert!(m("*", ""));
        assert!(m("a*", "a"));
        assert!(m("*x*y*", "..x..y.."));
        assert!(!m("*x*y*", "..y..x.."));
        assert!(m("?*?", "ab"));
        assert!(!m("?*?", "a"));
        assert!(m("ab*ab", "abab"));
        assert!(!m("ab*ab", "aba"));
    }

    #[test]
    fn unicode_case_folding() {
        assert!(m("ÄRGER", "ärger"));
        assert!(m("*ΣΟΦΙΑ*", "σοφια"));
        assert!(m("ΟΔΟΣ", "οδος"));
        assert!(!StrMatcher::new(&Pattern::parse("ABC"), true).is_match_text("abc", "abc"));
    }

    #[test]
    fn time_parts_and_iso_weeks() {
        assert_eq!(time_part("2025-03-04T05:06:07Z", TimeUnit::Hour), Some(5));
        assert_eq!(
            time_part("2025-03-04 05:06:07.123", TimeUnit::Minute),
            Some(6)
        );
        assert_eq!(time_part("2021-01-03", TimeUnit::Week), Some(53));
        assert_eq!(time_part("2021-01-04", TimeUnit::Week), Some(1));
        assert_eq!(time_part("2024-12-30", TimeUnit::Week), Some(1));
        assert_eq!(time_part("nope", TimeUnit::Year), None);
    }
}
