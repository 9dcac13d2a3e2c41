//! Logsource routing and field mapping.
//!
//! Input: the built-in mapping (`logsources.yaml`, embedded in the binary) plus any user mapping files
//! in the same format (documented in `docs/logsources.md`). Output: a [`Router`] that tells, for an
//! event, which sources it belongs to (each source a `(product, category, service)` tuple) and, per
//! source, which Sigma field names resolve to which event values (`Image` <- `NewProcessName` for
//! Security 4688). A rule sees an event when one of the event's sources has every logsource key the
//! rule sets. The router never changes an event: mapped names are an overlay that exists only while
//! rules of that source are evaluated.

use super::compile::{compile_selection, CSel, FieldTable};
use super::matcher::{fold, parse_num, AtomKind, EventView};
use super::rule::{selection_from_yaml, LogSource};
use super::value::Leaf;
use super::yaml::{parse_documents, Doc};
use crate::diag::{Diagnostic, Location};
use serde_norway::Value as Yaml;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The mapping that ships with purplecov.
pub const BUILTIN_MAPPING: &str = include_str!("logsources.yaml");

/// How a Sigma field gets its value in one source.
#[derive(Debug, Clone)]
pub enum FieldSource {
    /// Another field of the event, as it is.
    Rename(u32),
    /// A hexadecimal number (`0x1a2c`) turned into decimal text.
    Hex(u32),
    /// The text after the last `\` or `/`.
    Basename(u32),
    /// Lower-cased text.
    Lower(u32),
    /// A value table (keys compared case-insensitively) with an optional default.
    Table {
        from: u32,
        table: Vec<(String, String)>,
        default: Option<String>,
    },
    /// Fields `prefix0`, `prefix1`, ... joined by single spaces (auditd EXECVE argv).
    JoinArgs(Vec<u32>),
}

/// One source of the mapping.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub logsource: LogSource,
    pub sensor: Option<String>,
    pub when: Option<CSel>,
    pub unless: Option<CSel>,
    pub fields: Vec<(u32, FieldSource)>,
    pub location: Location,
}

/// All sources, with an index by the field value each source's `when` requires (`Channel`,
/// `Table`, `_path`, ...) so an event is tested only against sources that can apply.
#[derive(Debug, Clone, Default)]
pub struct Router {
    pub sources: Vec<Source>,
    /// Per indexed field: folded value -> sources whose `when` requires the field to equal it.
    by_text: Vec<(u32, HashMap<String, Vec<u32>>)>,
    /// Per indexed field: number (its bits) -> sources whose `when` requires the field to equal it.
    by_num: Vec<(u32, HashMap<u64, Vec<u32>>)>,
    /// Sources without such a requirement (tested on every event).
    always: Vec<u32>,
}

impl Router {
    /// Loads the built-in mapping and then each user file; a user source with the name of an earlier
    /// one replaces it.
    pub fn load(
        user_files: &[PathBuf],
        fields: &mut FieldTable,
        diags: &mut Vec<Diagnostic>,
    ) -> Router {
        let mut sources: Vec<Source> = Vec::new();
        let mut texts: Vec<(PathBuf, String)> = vec![(
            PathBuf::from("<built-in>/logsources.yaml"),
            BUILTIN_MAPPING.to_string(),
        )];
        for p in user_files {
            match std::fs::read(p) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(t) => texts.push((p.clone(), t)),
                    Err(_) => diags.push(Diagnostic::error(
                        Location::file(p),
                        "mapping file is not valid UTF-8",
                    )),
                },
                Err(e) => diags.push(Diagnostic::error(
                    Location::file(p),
                    format!("cannot read mapping file: {e}"),
                )),
            }
        }
        for (path, text) in &texts {
            for s in parse_mapping(path, text, fields, diags) {
                if let Some(old) = sources.iter_mut().find(|o| o.name == s.name) {
                    *old = s;
                } else {
                    sources.push(s);
                }
            }
        }
        Router::new(sources)
    }

    /// Builds the router over explicit sources.
    pub fn new(sources: Vec<Source>) -> Router {
        fn slot<K>(
            index: &mut Vec<(u32, HashMap<K, Vec<u32>>)>,
            field: u32,
        ) -> &mut HashMap<K, Vec<u32>> {
            let k = match index.iter().position(|(f, _)| *f == field) {
                Some(k) => k,
                None => {
                    index.push((field, HashMap::new()));
                    index.len() - 1
                }
            };
            &mut index[k].1
        }
        let mut by_text = Vec::new();
        let mut by_num = Vec::new();
        let mut always = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            match s.when.as_ref().and_then(required_values) {
                Some((field, Required::Text(values))) => {
                    let m = slot(&mut by_text, field);
                    for v in values {
                        m.entry(v).or_default().push(i as u32);
                    }
                }
                Some((field, Required::Num(values))) => {
                    let m = slot(&mut by_num, field);
                    for v in values {
                        m.entry(v).or_default().push(i as u32);
                    }
                }
                None => always.push(i as u32),
            }
        }
        Router {
            sources,
            by_text,
            by_num,
            always,
        }
    }

    /// The sources an event belongs to, in mapping order.
    pub fn route(&self, sensor: Option<&str>, view: &EventView, out: &mut Vec<u32>) {
        out.clear();
        let mut take = |list: &Vec<u32>| {
            out.extend(
                list.iter()
                    .copied()
                    .filter(|&i| self.applies(i, sensor, view)),
            )
        };
        for (field, index) in &self.by_text {
            if let Some(f) = view.field(*field) {
                for a in view.atoms_of(f) {
                    if let Some(list) = index.get(view.lower(a)) {
                        take(list);
                    }
                }
            }
        }
        for (field, index) in &self.by_num {
            if let Some(f) = view.field(*field) {
                for a in view.atoms_of(f) {
                    let n = match a.kind {
                        AtomKind::Int(i) => Some(i as f64),
                        AtomKind::Float(f) => Some(f),
                        AtomKind::Bool(_) => None,
                        AtomKind::Str => parse_num(view.orig(a)),
                    };
                    if let Some(list) = n.and_then(num_key).and_then(|k| index.get(&k)) {
                        take(list);
                    }
                }
            }
        }
        out.extend(
            self.always
                .iter()
                .copied()
                .filter(|&i| self.applies(i, sensor, view)),
        );
        out.sort_unstable();
        // A field holding a list can reach one source through two of its values.
        out.dedup();
    }

    fn applies(&self, i: u32, sensor: Option<&str>, view: &EventView) -> bool {
        let Some(s) = self.sources.get(i as usize) else {
            return false;
        };
        if let Some(want) = &s.sensor {
            if sensor.is_none_or(|have| !have.eq_ignore_ascii_case(want)) {
                return false;
            }
        }
        if let Some(w) = &s.when {
            if !w.eval(view) {
                return false;
            }
        }
        if let Some(u) = &s.unless {
            if u.eval(view) {
                return false;
            }
        }
        true
    }
}

/// Whether a rule's logsource is served by a source: every key the rule sets equals the source's.
pub fn covers(source: &LogSource, rule: &LogSource) -> bool {
    let eq = |r: &Option<String>, s: &Option<String>| match r {
        None => true,
        Some(rv) => s.as_ref().is_some_and(|sv| sv.eq_ignore_ascii_case(rv)),
    };
    eq(&rule.product, &source.product)
        && eq(&rule.category, &source.category)
        && eq(&rule.service, &source.service)
}

/// Values a field must equal: folded texts, or numbers (as [`num_key`]).
enum Required {
    Text(Vec<String>),
    Num(Vec<u64>),
}

/// The index key of a number: its bits, with `-0` as `0` (they are equal). `None` for NaN, which
/// equals nothing.
fn num_key(n: f64) -> Option<u64> {
    if n.is_nan() {
        None
    } else if n == 0.0 {
        Some(0.0f64.to_bits())
    } else {
        Some(n.to_bits())
    }
}

/// When a source's `when` is a map with an item that requires a field to equal one of some values
/// (plain case-insensitive strings, or numbers), that field and those values: every event the
/// source applies to has one of them, so the router looks the source up by them. Other fields are
/// preferred to `Channel` (many sources share a channel, `EventID` tells them apart), then the
/// first such item is taken. Otherwise `None`.
fn required_values(sel: &CSel) -> Option<(u32, Required)> {
    let CSel::All(items) = sel else { return None };
    let values = |item: &super::compile::CItem| -> Option<(u32, Required)> {
        let field = item.field?;
        if item.negate || item.groups.len() > 1 && item.linking == super::value::Linking::All {
            return None;
        }
        let leaves = || item.spec.groups.iter().flatten();
        let required = if leaves().all(|l| matches!(l, Leaf::Num(_))) {
            let nums = leaves().map(|l| match l {
                Leaf::Num(n) => num_key(*n),
                _ => None,
            });
            Required::Num(nums.collect::<Option<Vec<u64>>>()?)
        } else {
            let texts = leaves().map(|l| match l {
                Leaf::Str { pat, cased: false } => pat.as_plain().map(|p| fold(&p)),
                _ => None,
            });
            Required::Text(texts.collect::<Option<Vec<String>>>()?)
        };
        match &required {
            Required::Text(v) if v.is_empty() => None,
            Required::Num(v) if v.is_empty() => None,
            _ => Some((field, required)),
        }
    };
    let is_channel = |i: &&super::compile::CItem| i.spec.field.as_deref() == Some("Channel");
    let other = items.iter().filter(|i| !is_channel(i)).find_map(values);
    other.or_else(|| items.iter().filter(is_channel).find_map(values))
}

fn parse_mapping(
    path: &Path,
    text: &str,
    fields: &mut FieldTable,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Source> {
    let (docs, d) = parse_documents(path, text);
    diags.extend(d);
    let mut out = Vec::new();
    for doc in &docs {
        let Some(list) = doc
            .value
            .as_mapping()
            .and_then(|m| m.get(Yaml::String("sources".into())))
            .and_then(Yaml::as_sequence)
        else {
            diags.push(Diagnostic::error(
                Location::new(path, doc.first_line, 0),
                "a mapping file needs a top-level 'sources' list",
            ));
            continue;
        };
        let mut from_line = doc.first_line;
        for entry in list {
            if let Some(s) = parse_source(doc, path, entry, &mut from_line, fields, diags) {
                out.push(s);
            }
        }
    }
    out
}

fn text_of(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_source(
    doc: &Doc,
    path: &Path,
    entry: &Yaml,
    from_line: &mut usize,
    fields: &mut FieldTable,
    diags: &mut Vec<Diagnostic>,
) -> Option<Source> {
    let m = entry.as_mapping()?;
    let get = |k: &str| m.get(Yaml::String(k.into()));
    let name = get("name").and_then(text_of);
    // Locate this entry's line: the `name:` line after the previous entry.
    let line = name
        .as_deref()
        .and_then(|n| {
            doc.text
                .lines()
                .enumerate()
                .skip(from_line.saturating_sub(doc.first_line))
                .find(|(_, l)| l.contains("name:") && l.contains(n))
                .map(|(i, _)| doc.first_line + i)
        })
        .unwrap_or(*from_line);
    *from_line = line + 1;
    let loc = Location::new(path, line, 0);
    let Some(name) = name else {
        diags.push(Diagnostic::error(loc, "a source needs a 'name'"));
        return None;
    };
    let logsource = match get("logsource").and_then(Yaml::as_mapping) {
        Some(l) => LogSource {
            product: l.get(Yaml::String("product".into())).and_then(text_of),
            category: l.get(Yaml::String("category".into())).and_then(text_of),
            service: l.get(Yaml::String("service".into())).and_then(text_of),
        },
        None => {
            diags.push(Diagnostic::error(
                loc,
                format!("source '{name}' needs a 'logsource' mapping"),
            ));
            return None;
        }
    };
    // Diagnostics and item lines point at the source's line: a document without text says so
    // (and spares searching the whole mapping for each key).
    let at_source = Doc {
        value: Yaml::Null,
        text: String::new(),
        first_line: line,
        index: doc.index,
    };
    let mut sel = |key: &str| -> Result<Option<CSel>, ()> {
        let Some(v) = get(key) else { return Ok(None) };
        let (s, d) = selection_from_yaml(&at_source, path, &[&name, key], v);
        let failed = d.iter().any(|x| x.severity == crate::diag::Severity::Error);
        diags.extend(d.into_iter().map(|mut x| {
            x.location = loc.clone();
            x.message = format!("source '{name}', '{key}': {}", x.message);
            x
        }));
        match s {
            Some(s) if !failed => match compile_selection(&s, fields) {
                Ok(c) => Ok(Some(c)),
                Err(e) => {
                    diags.push(Diagnostic::error(
                        loc.clone(),
                        format!("source '{name}', '{key}': {}", e.0),
                    ));
                    Err(())
                }
            },
            _ => Err(()),
        }
    };
    let when = sel("when").ok()?;
    let unless = sel("unless").ok()?;
    let sensor = get("sensor").and_then(text_of);
    if when.is_none() && sensor.is_none() {
        diags.push(Diagnostic::error(
            loc,
            format!(
                "source '{name}' needs 'when' or 'sensor' (otherwise it would claim every event)"
            ),
        ));
        return None;
    }
    let mut mapped = Vec::new();
    if let Some(fm) = get("fields").and_then(Yaml::as_mapping) {
        for (k, v) in fm {
            let Some(sigma) = text_of(k) else { continue };
            match field_source(v, fields) {
                Ok(src) => mapped.push((fields.intern(&sigma), src)),
                Err(msg) => diags.push(Diagnostic::error(
                    loc.clone(),
                    format!("source '{name}', field '{sigma}': {msg}"),
                )),
            }
        }
    }
    Some(Source {
        name,
        logsource,
        sensor,
        when,
        unless,
        fields: mapped,
        location: loc,
    })
}

/// Most auditd arguments joined for `join_args`.
const MAX_ARGS: usize = 64;

fn field_source(v: &Yaml, fields: &mut FieldTable) -> Result<FieldSource, String> {
    if let Some(s) = text_of(v) {
        return Ok(FieldSource::Rename(fields.intern(&s)));
    }
    let m = v
        .as_mapping()
        .ok_or("expected a field name or a mapping with 'from'")?;
    let get = |k: &str| m.get(Yaml::String(k.into()));
    if let Some(prefix) = get("join_args").and_then(text_of) {
        return Ok(FieldSource::JoinArgs(
            (0..MAX_ARGS)
                .map(|i| fields.intern(&format!("{prefix}{i}")))
                .collect(),
        ));
    }
    let from = get("from")
        .and_then(text_of)
        .ok_or("expected 'from: <event field>' (or 'join_args')")?;
    let from = fields.intern(&from);
    if let Some(table) = get("map") {
        let table = table
            .as_mapping()
            .ok_or("'map' must be a mapping of event value to Sigma value")?
            .iter()
            .filter_map(|(a, b)| Some((fold(&text_of(a)?), text_of(b)?)))
            .collect();
        return Ok(FieldSource::Table {
            from,
            table,
            default: get("default").and_then(text_of),
        });
    }
    match get("convert").and_then(text_of).as_deref() {
        None => Ok(FieldSource::Rename(from)),
        Some("hex") => Ok(FieldSource::Hex(from)),
        Some("basename") => Ok(FieldSource::Basename(from)),
        Some("lower") => Ok(FieldSource::Lower(from)),
        Some(other) => Err(format!(
            "unknown convert '{other}' (expected hex, basename or lower)"
        )),
    }
}

/// Computes a mapped value from the view: either an existing field index or a new derived text
/// (written into the view's arenas; `buf` is reused, so this allocates nothing once warmed up).
pub fn resolve_field(src: &FieldSource, view: &mut EventView, buf: &mut String) -> Option<u32> {
    /// Copies the first text of a field into `buf`; false when the field is absent or empty.
    fn first_text(view: &EventView, fid: u32, buf: &mut String) -> bool {
        buf.clear();
        let Some(f) = view.field(fid) else {
            return false;
        };
        let Some(a) = view.atoms_of(f).first() else {
            return false;
        };
        buf.push_str(view.orig(a));
        true
    }
    match src {
        FieldSource::Rename(fid) => view
            .slots
            .get(*fid as usize)
            .copied()
            .filter(|&i| i != super::matcher::ABSENT),
        FieldSource::Hex(fid) => {
            if !first_text(view, *fid, buf) {
                return None;
            }
            let t = buf.trim();
            let digits = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
            let n = u64::from_str_radix(digits, 16).ok()?;
            buf.clear();
            use std::fmt::Write as _;
            let _ = write!(buf, "{n}");
            Some(view.push_text(buf))
        }
        FieldSource::Basename(fid) => {
            if !first_text(view, *fid, buf) {
                return None;
            }
            let start = buf.rfind(['\\', '/']).map_or(0, |i| i + 1);
            buf.drain(..start);
            Some(view.push_text(buf))
        }
        FieldSource::Lower(fid) => {
            if !first_text(view, *fid, buf) {
                return None;
            }
            let lowered = fold(buf);
            Some(view.push_text(&lowered))
        }
        FieldSource::Table {
            from,
            table,
            default,
        } => {
            let found = if first_text(view, *from, buf) {
                table
                    .iter()
                    .find(|(k, _)| {
                        if buf.is_ascii() {
                            k.eq_ignore_ascii_case(buf)
                        } else {
                            fold(buf) == *k
                        }
                    })
                    .map(|(_, v)| v.as_str())
            } else {
                None
            };
            let v = found.or(default.as_deref())?;
            Some(view.push_text(v))
        }
        FieldSource::JoinArgs(fids) => {
            let mut joined = std::mem::take(buf);
            joined.clear();
            let mut part = String::new();
            for fid in fids {
                if !first_text(view, *fid, &mut part) {
                    break;
                }
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(&part);
            }
            let r = (!joined.is_empty()).then(|| view.push_text(&joined));
            *buf = joined;
            r
        }
    }
}
