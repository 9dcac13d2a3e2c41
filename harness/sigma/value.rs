//! Sigma values and value modifiers: from a YAML scalar and a modifier chain to the leaves a matcher
//! is compiled from.
//!
//! Input: one detection key (`field|mod|mod`) and its YAML value(s). Output: an [`ItemSpec`]: the
//! field, how values are linked, whether the item is negated, and per original value a group of
//! alternative [`Leaf`]s (expansions such as `windash` or `base64offset` stay OR-ed inside their group,
//! as pySigma's `SigmaExpansion` does). This module never looks at events.
//!
//! String values follow the specification's escaping rules exactly (pySigma's `SigmaString`
//! algorithm): `\*` and `\?` are literal, `\\` is one backslash, a backslash before any other character
//! stays a backslash, and unescaped `*` / `?` are wildcards.

use base64::Engine as _;
use std::fmt;

/// One token of a Sigma string after escape processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// Literal bytes (UTF-8 text, or UTF-16 bytes after an encoding modifier).
    Lit(Vec<u8>),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A Sigma string: literal runs and wildcards, adjacent literals merged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern {
    pub toks: Vec<Tok>,
}

impl Pattern {
    /// Parses a Sigma string value with the specification's escaping rules.
    pub fn parse(s: &str) -> Pattern {
        let mut p = Pattern::default();
        let mut chars = s.chars().peekable();
        let mut buf = [0u8; 4];
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek().copied() {
                    Some(n @ ('*' | '?' | '\\')) => {
                        chars.next();
                        p.push_lit(n.encode_utf8(&mut buf).as_bytes());
                    }
                    // A backslash before anything else (or at the end) is itself.
                    _ => p.push_lit(b"\\"),
                },
                '*' => p.push(Tok::Star),
                '?' => p.push(Tok::One),
                c => p.push_lit(c.encode_utf8(&mut buf).as_bytes()),
            }
        }
        p
    }

    /// A pattern matching exactly `s` (no wildcard interpretation).
    pub fn literal(s: &str) -> Pattern {
        let mut p = Pattern::default();
        p.push_lit(s.as_bytes());
        p
    }

    pub fn push(&mut self, t: Tok) {
        match t {
            Tok::Lit(b) => self.push_lit(&b),
            Tok::Star => {
                // `**` is the same as `*`.
                if self.toks.last() != Some(&Tok::Star) {
                    self.toks.push(Tok::Star)
                }
            }
            Tok::One => self.toks.push(Tok::One),
        }
    }

    pub fn push_lit(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if let Some(Tok::Lit(last)) = self.toks.last_mut() {
            last.extend_from_slice(b);
        } else {
            self.toks.push(Tok::Lit(b.to_vec()));
        }
    }

    /// The text of a wildcard-free pattern, `None` when it has wildcards.
    pub fn as_plain(&self) -> Option<String> {
        (!self.has_wildcards()).then(|| bytes_to_text(&self.plain_bytes()))
    }

    /// The longest literal run (as text), if any.
    pub fn longest_literal(&self) -> Option<String> {
        self.toks
            .iter()
            .filter_map(|t| match t {
                Tok::Lit(b) => Some(bytes_to_text(b)),
                _ => None,
            })
            .max_by_key(|s| s.len())
    }

    pub fn has_wildcards(&self) -> bool {
        self.toks.iter().any(|t| !matches!(t, Tok::Lit(_)))
    }

    fn starts_with_star(&self) -> bool {
        self.toks.first() == Some(&Tok::Star)
    }

    fn ends_with_star(&self) -> bool {
        self.toks.last() == Some(&Tok::Star)
    }

    fn with_leading_star(mut self) -> Pattern {
        if !self.starts_with_star() {
            self.toks.insert(0, Tok::Star);
        }
        self
    }

    fn with_trailing_star(mut self) -> Pattern {
        if !self.ends_with_star() {
            self.toks.push(Tok::Star);
        }
        self
    }

    /// Applies a byte transformation to every literal run, keeping wildcards.
    fn map_lits(&self, f: impl Fn(&[u8]) -> Vec<u8>) -> Pattern {
        let mut p = Pattern::default();
        for t in &self.toks {
            match t {
                Tok::Lit(b) => p.push_lit(&f(b)),
                t => p.push(t.clone()),
            }
        }
        p
    }

    /// The literal bytes of a wildcard-free pattern.
    fn plain_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for t in &self.toks {
            if let Tok::Lit(b) = t {
                out.extend_from_slice(b);
            }
        }
        out
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.toks {
            match t {
                Tok::Lit(b) => {
                    for ch in bytes_to_text(b).chars() {
                        if matches!(ch, '*' | '?' | '\\') {
                            write!(f, "\\")?;
                        }
                        write!(f, "{ch}")?;
                    }
                }
                Tok::Star => write!(f, "*")?,
                Tok::One => write!(f, "?")?,
            }
        }
        Ok(())
    }
}

/// Bytes produced by an encoding modifier as text: UTF-8 when valid, otherwise each byte as the
/// Latin-1 character of the same number (so `wide` on non-ASCII text still yields a searchable string).
pub fn bytes_to_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

/// Comparison operators of the numeric modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// Parts of a timestamp the time modifiers extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// How a `fieldref` compares the two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefMode {
    Equal,
    Contains,
    StartsWith,
    EndsWith,
}

/// A single testable value after all modifiers.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// A Sigma string; `cased` = compare case-sensitively.
    Str { pat: Pattern, cased: bool },
    /// A YAML number: matches a numeric field or a string holding the same number.
    Num(f64),
    /// A YAML boolean: matches a boolean field or the strings `true` / `false`.
    Bool(bool),
    /// `null` (or an empty list): the field is absent or null.
    Null,
    /// `|exists`: the field is present (`true`) or absent (`false`).
    Exists(bool),
    /// `|re` with its flags; matched as an unanchored search.
    Regex {
        pattern: String,
        insensitive: bool,
        multiline: bool,
        dotall: bool,
    },
    /// `|cidr`.
    Cidr(ipnet::IpNet),
    /// `|lt`, `|lte`, `|gt`, `|gte`.
    Cmp(CmpOp, f64),
    /// `|minute` ... `|year`: the part of a timestamp equals the number.
    TimePart(TimeUnit, i64),
    /// `|fieldref`: compare with another field of the same event.
    FieldRef {
        field: String,
        mode: RefMode,
        cased: bool,
    },
}

/// How the values of one detection item are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    Any,
    All,
}

/// One detection item (`field|mods: values`) after modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemSpec {
    /// `None` for keyword items.
    pub field: Option<String>,
    /// The key as written, for explanations.
    pub key: String,
    pub linking: Linking,
    /// `|neq`: the item holds when its values do NOT match.
    pub negate: bool,
    /// One group per original value; a group's leaves are alternatives (OR).
    pub groups: Vec<Vec<Leaf>>,
    /// 1-based file line of the key (0 when not known).
    pub line: usize,
}

/// A YAML scalar as the detection gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

/// Why a value could not be used. `Unsupported` means the rule is valid but cannot be evaluated
/// here (e.g. a placeholder without a value); everything else makes the rule unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    Invalid(String),
    Unsupported(String),
}

/// The modifiers of the specification (plus pySigma's aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Exists,
    Cased,
    Neq,
    Windash,
    Re,
    ReI,
    ReM,
    ReS,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Cmp(CmpOp),
    Time(TimeUnit),
    Cidr,
    Expand,
    FieldRef,
}

impl Modifier {
    pub fn parse(name: &str) -> Option<Modifier> {
        use Modifier::*;
        Some(match name {
            "contains" => Contains,
            "startswith" => StartsWith,
            "endswith" => EndsWith,
            "all" => All,
            "exists" => Exists,
            "cased" => Cased,
            "neq" => Neq,
            "windash" => Windash,
            "re" => Re,
            "i" | "ignorecase" => ReI,
            "m" | "multiline" => ReM,
            "s" | "dotall" => ReS,
            "base64" => Base64,
            "base64offset" => Base64Offset,
            "utf16le" | "wide" => Utf16Le,
            "utf16be" => Utf16Be,
            "utf16" => Utf16,
            "lt" => Cmp(CmpOp::Lt),
            "lte" => Cmp(CmpOp::Lte),
            "gt" => Cmp(CmpOp::Gt),
            "gte" => Cmp(CmpOp::Gte),
            "minute" => Time(TimeUnit::Minute),
            "hour" => Time(TimeUnit::Hour),
            "day" => Time(TimeUnit::Day),
            "week" => Time(TimeUnit::Week),
            "month" => Time(TimeUnit::Month),
            "year" => Time(TimeUnit::Year),
            "cidr" => Cidr,
            "expand" => Expand,
            "fieldref" => FieldRef,
            _ => return None,
        })
    }
}

/// Names accepted by [`Modifier::parse`], for the "unknown modifier" help line.
pub const MODIFIER_NAMES: &str = "contains, startswith, endswith, all, exists, cased, neq, windash, re, i, m, s, \
base64, base64offset, utf16le, utf16be, utf16, wide, lt, lte, gt, gte, minute, hour, day, week, month, year, \
cidr, expand, fieldref";

/// Placeholder values for `|expand`, by placeholder name (without the `%`).
pub type Placeholders = std::collections::BTreeMap<String, Vec<String>>;

/// Intermediate state of one value while modifiers are applied.
#[derive(Debug, Clone)]
enum Cur {
    Pat(Pattern),
    Num(f64, String),
    Bool(bool),
    Null,
    Re(String),
}

/// Builds an item from a key (`field|mod|...`) and its values.
pub fn build_item(
    key: &str,
    values: &[Scalar],
    placeholders: &Placeholders,
    warnings: &mut Vec<String>,
) -> Result<ItemSpec, ValueError> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default();
    let mut mods = Vec::new();
    for name in parts {
        match Modifier::parse(name) {
            Some(m) => mods.push(m),
            None => {
                return Err(ValueError::Invalid(format!(
                    "unknown modifier '{name}' in '{key}'"
                )))
            }
        }
    }
    let field = if field.is_empty() {
        None
    } else {
        Some(field.to_string())
    };
    let mut item = ItemSpec {
        field,
        key: key.to_string(),
        linking: Linking::Any,
        negate: false,
        groups: Vec::new(),
        line: 0,
    };
    if mods.contains(&Modifier::All) {
        item.linking = Linking::All;
        if values.len() == 1 {
            warnings.push(format!(
                "'{key}' uses 'all' with a single value (the specification does not allow it); treated as that value"
            ));
        }
    }
    item.negate = mods.contains(&Modifier::Neq);

    if mods.contains(&Modifier::Exists) {
        if item.field.is_none() {
            return Err(ValueError::Invalid(
                "'exists' applies to a field, not to keywords".into(),
            ));
        }
        if mods.len() != 1 {
            return Err(ValueError::Invalid(format!(
                "'exists' must be the only modifier in '{key}'"
            )));
        }
        for v in values {
            match v {
                Scalar::Bool(b) => item.groups.push(vec![Leaf::Exists(*b)]),
                _ => {
                    return Err(ValueError::Invalid(format!(
                        "'{key}' needs a boolean value (true or false)"
                    )))
                }
            }
        }
        return Ok(item);
    }

    if values.len() > 1 && values.contains(&Scalar::Null) {
        return Err(ValueError::Invalid(format!(
            "'{key}': null cannot be part of a list of values (write a separate selection with 'field: null')"
        )));
    }

    for v in values {
        item.groups
            .push(apply_modifiers(key, v, &mods, placeholders)?);
    }
    Ok(item)
}

fn apply_modifiers(
    key: &str,
    v: &Scalar,
    mods: &[Modifier],
    placeholders: &Placeholders,
) -> Result<Vec<Leaf>, ValueError> {
    use Modifier::*;
    let invalid = |m: String| Err(ValueError::Invalid(m));
    // Type modifiers that turn the value into something other than a string.
    let mut cased = false;
    let mut re_flags = (false, false, false);
    let mut ref_mode = None::<RefMode>;
    for m in mods {
        match m {
            Cased => cased = true,
            ReI => re_flags.0 = true,
            ReM => re_flags.1 = true,
            ReS => re_flags.2 = true,
            _ => {}
        }
    }
    let mut cur: Vec<Cur> = vec![match v {
        Scalar::Str(s) => {
            if mods.first() == Some(&Re) {
                Cur::Re(s.clone())
            } else {
                Cur::Pat(Pattern::parse(s))
            }
        }
        Scalar::Int(i) => Cur::Num(*i as f64, i.to_string()),
        Scalar::Float(f) => Cur::Num(*f, crate::telemetry::format_float(*f)),
        Scalar::Bool(b) => Cur::Bool(*b),
        Scalar::Null => Cur::Null,
    }];
    if matches!(cur[0], Cur::Null) && mods.iter().any(|m| !matches!(m, All | Neq)) {
        return invalid(format!("'{key}': null cannot be combined with modifiers"));
    }

    let mut final_kind: Option<Modifier> = None;
    for (pos, m) in mods.iter().enumerate() {
        match m {
            All | Neq | Cased | ReI | ReM | ReS | Exists => {}
            Re => {
                if pos != 0 {
                    return invalid(format!(
                        "'{key}': 're' must be the first modifier (it applies to the value as written)"
                    ));
                }
                if !matches!(v, Scalar::Str(_)) {
                    return invalid(format!("'{key}': 're' needs a string value"));
                }
                final_kind = Some(Re);
            }
            Contains | StartsWith | EndsWith => {
                if final_kind == Some(FieldRef) {
                    ref_mode = Some(match m {
                        Contains => RefMode::Contains,
                        StartsWith => RefMode::StartsWith,
                        _ => RefMode::EndsWith,
                    });
                    continue;
                }
                if final_kind == Some(Re) {
                    // A regex is already searched unanchored: wrapping it changes nothing.
                    continue;
                }
                for c in cur.iter_mut() {
                    let p = to_pattern(c);
                    *c = Cur::Pat(match m {
                        Contains => p.with_leading_star().with_trailing_star(),
                        StartsWith => p.with_trailing_star(),
                        _ => p.with_leading_star(),
                    });
                }
            }
            Windash => {
                let mut out = Vec::new();
                for c in &cur {
                    for p in windash(&to_pattern(c))? {
                        out.push(Cur::Pat(p));
                    }
                }
                cur = out;
            }
            Base64 | Base64Offset => {
                let mut out = Vec::new();
                for c in &cur {
                    let p = to_pattern(c);
                    if p.has_wildcards() {
                        return invalid(format!(
                            "'{key}': base64 encoding of a value with wildcards is not possible (escape '*' and '?' or use 'contains' after the encoding modifier)"
                        ));
                    }
                    let bytes = p.plain_bytes();
                    if *m == Base64 {
                        out.push(Cur::Pat(Pattern::literal(&b64(&bytes))));
                    } else {
                        for s in base64_offsets(&bytes) {
                            out.push(Cur::Pat(Pattern::literal(&s)));
                        }
                    }
                }
                cur = out;
            }
            Utf16Le | Utf16Be | Utf16 => {
                for c in cur.iter_mut() {
                    let p = to_pattern(c);
                    let enc = |b: &[u8]| -> Vec<u8> {
                        let s = String::from_utf8_lossy(b);
                        let mut out = Vec::new();
                        for u in s.encode_utf16() {
                            let bytes = if *m == Utf16Be {
                                u.to_be_bytes()
                            } else {
                                u.to_le_bytes()
                            };
                            out.extend_from_slice(&bytes);
                        }
                        out
                    };
                    let mut q = p.map_lits(enc);
                    if *m == Utf16 {
                        q.toks.insert(0, Tok::Lit(vec![0xFF, 0xFE]));
                        let merged = {
                            let mut r = Pattern::default();
                            for t in q.toks {
                                r.push(t);
                            }
                            r
                        };
                        q = merged;
                    }
                    *c = Cur::Pat(q);
                }
            }
            Expand => {
                let mut out = Vec::new();
                for c in &cur {
                    for p in expand(key, &to_pattern(c), placeholders)? {
                        out.push(Cur::Pat(p));
                    }
                }
                cur = out;
            }
            Cidr | FieldRef | Cmp(_) | Time(_) => {
                if final_kind.is_some() {
                    return invalid(format!(
                        "'{key}': '{}' cannot follow another type modifier",
                        modifier_name(*m)
                    ));
                }
                final_kind = Some(*m);
            }
        }
    }

    let mut leaves = Vec::new();
    for c in cur {
        let leaf = match final_kind {
            Some(Re) => {
                let Cur::Re(pattern) = c else {
                    return invalid(format!("'{key}': 're' needs a string value"));
                };
                Leaf::Regex {
                    pattern,
                    insensitive: re_flags.0,
                    multiline: re_flags.1,
                    dotall: re_flags.2,
                }
            }
            Some(Cidr) => {
                let text = cur_text(&c);
                match text.trim().parse::<ipnet::IpNet>() {
                    Ok(net) if net.trunc() == net => Leaf::Cidr(net),
                    Ok(net) => {
                        return invalid(format!(
                            "'{key}': invalid cidr '{text}': host bits are set (did you mean {}?)",
                            net.trunc()
                        ))
                    }
                    Err(e) => return invalid(format!("'{key}': invalid cidr '{text}': {e}")),
                }
            }
            Some(FieldRef) => {
                let text = cur_text(&c);
                if Pattern::parse(&text).has_wildcards() {
                    return invalid(format!(
                        "'{key}': a fieldref value is a field name and cannot hold wildcards"
                    ));
                }
                Leaf::FieldRef {
                    field: text,
                    mode: ref_mode.unwrap_or(RefMode::Equal),
                    cased,
                }
            }
            Some(Cmp(op)) => match c {
                Cur::Num(n, _) => Leaf::Cmp(op, n),
                other => match cur_text(&other).trim().parse::<f64>() {
                    Ok(n) => Leaf::Cmp(op, n),
                    Err(_) => {
                        return invalid(format!("'{key}': a comparison needs a numeric value"))
                    }
                },
            },
            Some(Time(unit)) => match c {
                Cur::Num(n, _) if n.fract() == 0.0 => Leaf::TimePart(unit, n as i64),
                _ => return invalid(format!("'{key}': a time modifier needs an integer value")),
            },
            _ => match c {
                Cur::Pat(pat) => Leaf::Str { pat, cased },
                Cur::Num(n, _) => Leaf::Num(n),
                Cur::Bool(b) => Leaf::Bool(b),
                Cur::Null => Leaf::Null,
                Cur::Re(s) => Leaf::Str {
                    pat: Pattern::parse(&s),
                    cased,
                },
            },
        };
        leaves.push(leaf);
    }
    Ok(leaves)
}

fn modifier_name(m: Modifier) -> &'static str {
    match m {
        Modifier::Cidr => "cidr",
        Modifier::FieldRef => "fieldref",
        Modifier::Cmp(_) => "lt/lte/gt/gte",
        Modifier::Time(_) => "minute/hour/day/week/month/year",
        _ => "modifier",
    }
}

fn cur_text(c: &Cur) -> String {
    match c {
        Cur::Pat(p) => bytes_to_text(&p.plain_bytes()),
        Cur::Num(_, s) => s.clone(),
        Cur::Bool(b) => b.to_string(),
        Cur::Null => String::new(),
        Cur::Re(s) => s.clone(),
    }
}

/// A string modifier on a number or boolean uses its text (pySigma rejects it; we accept and convert).
fn to_pattern(c: &Cur) -> Pattern {
    match c {
        Cur::Pat(p) => p.clone(),
        Cur::Num(_, s) => Pattern::literal(s),
        Cur::Bool(b) => Pattern::literal(&b.to_string()),
        Cur::Null => Pattern::default(),
        Cur::Re(s) => Pattern::parse(s),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The three `base64offset` variants: the value encoded at byte offsets 0, 1 and 2 inside a longer
/// stream, with the characters that depend on unknown neighbours cut off (pySigma's slicing).
pub fn base64_offsets(v: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    let mut out = Vec::new();
    for (i, start) in START.iter().enumerate() {
        let mut buf = vec![b' '; i];
        buf.extend_from_slice(v);
        let enc = b64(&buf);
        let end_cut: usize = match (v.len() + i) % 3 {
            0 => 0,
            1 => 3,
            _ => 2,
        };
        let end = enc.len().saturating_sub(end_cut);
        let start = (*start).min(end);
        out.push(enc[start..end].to_string());
    }
    out
}

/// The five dash characters `windash` permutes.
pub const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Most dash positions one value may expand (5^n variants); beyond it the rule is rejected.
const WINDASH_MAX_POSITIONS: usize = 5;

/// `windash`: every `-` or `/` that follows a non-word character (or the start of a literal run) and
/// precedes a word character is replaced by each of the five dashes; all combinations are produced.
fn windash(p: &Pattern) -> Result<Vec<Pattern>, ValueError> {
    // Split each literal run into segments around the expandable positions.
    enum Piece {
        Tok(Tok),
        Dash,
    }
    let mut pieces = Vec::new();
    let mut positions = 0;
    for t in &p.toks {
        let Tok::Lit(b) = t else {
            pieces.push(Piece::Tok(t.clone()));
            continue;
        };
        let s = bytes_to_text(b);
        let chars: Vec<char> = s.chars().collect();
        let mut run = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev_is_word = i > 0 && is_word(chars[i - 1]);
            let next_is_word = chars.get(i + 1).is_some_and(|&n| is_word(n));
            if (c == '-' || c == '/') && !prev_is_word && next_is_word {
                if !run.is_empty() {
                    pieces.push(Piece::Tok(Tok::Lit(std::mem::take(&mut run).into_bytes())));
                }
                pieces.push(Piece::Dash);
                positions += 1;
            } else {
                run.push(c);
            }
        }
        if !run.is_empty() {
            pieces.push(Piece::Tok(Tok::Lit(run.into_bytes())));
        }
    }
    if positions > WINDASH_MAX_POSITIONS {
        return Err(ValueError::Invalid(format!(
            "windash would expand {positions} dash positions into {} variants (at most {WINDASH_MAX_POSITIONS} positions are supported)",
            5usize.pow(positions as u32)
        )));
    }
    let mut out = vec![Pattern::default()];
    for piece in pieces {
        match piece {
            Piece::Tok(t) => {
                for p in out.iter_mut() {
                    p.push(t.clone());
                }
            }
            Piece::Dash => {
                let mut next = Vec::with_capacity(out.len() * 5);
                for p in &out {
                    for d in DASHES {
                        let mut q = p.clone();
                        let mut buf = [0u8; 4];
                        q.push_lit(d.encode_utf8(&mut buf).as_bytes());
                        next.push(q);
                    }
                }
                out = next;
            }
        }
    }
    Ok(out)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `expand`: replaces `%name%` in literal runs with each configured value (wildcards in the values are
/// wildcards). Several placeholders give every combination.
fn expand(key: &str, p: &Pattern, placeholders: &Placeholders) -> Result<Vec<Pattern>, ValueError> {
    let mut out = vec![Pattern::default()];
    for t in &p.toks {
        let Tok::Lit(b) = t else {
            for q in out.iter_mut() {
                q.push(t.clone());
            }
            continue;
        };
        let s = bytes_to_text(b);
        let mut rest = s.as_str();
        while let Some(start) = rest.find('%') {
            let after = &rest[start + 1..];
            let Some(len) = after.find('%') else { break };
            let name = &after[..len];
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                break;
            }
            let before = &rest[..start];
            for q in out.iter_mut() {
                q.push_lit(before.as_bytes());
            }
            let Some(values) = placeholders.get(name) else {
                return Err(ValueError::Unsupported(format!(
                    "'{key}' uses placeholder %{name}% and no value was given for it (supply it with --placeholders FILE)"
                )));
            };
            let mut next = Vec::new();
            for q in &out {
                for v in values {
                    let mut r = q.clone();
                    for vt in Pattern::parse(v).toks {
                        r.push(vt);
                    }
                    next.push(r);
                }
            }
            out = next;
            rest = &after[len + 1..];
        }
        for q in out.iter_mut() {
            q.push_lit(rest.as_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Tok {
        Tok::Lit(s.as_bytes().to_vec())
    }

    #[test]
    fn escaping_table_of_the_specification() {
        // research/sigma.md §1.4: each row of the conformance table.
        let cases: &[(&str, Vec<Tok>)] = &[
            (r"\rclone.exe", vec![lit(r"\rclone.exe")]),
            (r"C:\Windows\", vec![lit(r"C:\Windows\")]),
            (r"\\", vec![lit(r"\")]),
            (r"\\\\", vec![lit(r"\\")]),
            (r"\*", vec![lit("*")]),
            (r"\?", vec![lit("?")]),
            (r"\\*", vec![lit(r"\"), Tok::Star]),
            (r"\\\*", vec![lit(r"\*")]),
            (
                r"\\\\*\\*$",
                vec![lit(r"\\"), Tok::Star, lit(r"\"), Tok::Star, lit("$")],
            ),
            (
                r"\\\\\?\\GLOBALROOT\\Device\\",
                vec![lit(r"\\?\GLOBALROOT\Device\")],
            ),
            (r"\\C$\\temp\\log.zip", vec![lit(r"\C$\temp\log.zip")]),
            (
                r"\\WindowsPowerShell\\Modules\\*\.ps",
                vec![lit(r"\WindowsPowerShell\Modules\"), Tok::Star, lit(r"\.ps")],
            ),
            ("7z*.exe", vec![lit("7z"), Tok::Star, lit(".exe")]),
        ];
        for (input, want) in cases {
            assert_eq!(&Pattern::parse(input).toks, want, "parsing {input}");
        }
    }

    #[test]
    fn base64offset_matches_pysigma_slicing() {
        // 'http' at offsets 0, 1, 2 inside a base64 stream.
        assert_eq!(base64_offsets(b"http"), vec!["aHR0c", "h0dH", "odHRw"]);
    }

    #[test]
    fn windash_expands_only_flag_dashes() {
        let p = Pattern::parse(" -exec x-y");
        let v = windash(&p).unwrap();
        assert_eq!(v.len(), 5);
        assert!(v.iter().any(|q| q.to_string() == " /exec x-y"));
        assert!(v.iter().all(|q| q.to_string().ends_with("x-y")));
    }

    #[test]
    fn unknown_modifier_is_named() {
        let err = build_item(
            "a|contans",
            &[Scalar::Str("x".into())],
            &Placeholders::new(),
            &mut vec![],
        )
        .unwrap_err();
        assert!(matches!(err, ValueError::Invalid(m) if m.contains("contans")));
    }
}
