//! Rule documents: YAML to a checked rule description.
//!
//! Input: one YAML [`Doc`] of a rule file. Output: a [`ParsedDoc`]: a detection rule, a meta filter or a
//! correlation, with its metadata, its search identifiers (values already passed through their modifier
//! chains) and its condition text, plus every problem found, each with the line of the key it concerns.
//! It never compiles matchers and never looks at events.

use super::value::{build_item, ItemSpec, Placeholders, Scalar, ValueError, MODIFIER_NAMES};
use super::yaml::Doc;
use crate::diag::{Diagnostic, Location};
use serde_norway::Value as Yaml;
use std::path::{Path, PathBuf};

/// The metadata keys of a rule that reports show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleMeta {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub level: Option<String>,
    pub author: Option<String>,
    pub description: Option<String>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    /// `source_gaps` (a purplecov custom key, Sigma allows custom keys): what the published query
    /// this rule translates uses that its platform does not have, so the report can show it.
    pub source_gaps: Vec<String>,
    pub date: Option<String>,
    pub modified: Option<String>,
    pub license: Option<String>,
    /// `taxonomy` (default `sigma`).
    pub taxonomy: Option<String>,
    /// `related`: (id, type) pairs.
    pub related: Vec<(String, String)>,
    /// `fields` worth showing with a match.
    pub fields: Vec<String>,
    /// `scope`.
    pub scope: Vec<String>,
    pub path: PathBuf,
    /// 1-based line where the document starts.
    pub line: usize,
}

/// `logsource` of a rule or filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogSource {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = &self.product {
            parts.push(format!("product: {p}"));
        }
        if let Some(c) = &self.category {
            parts.push(format!("category: {c}"));
        }
        if let Some(s) = &self.service {
            parts.push(format!("service: {s}"));
        }
        write!(f, "{{{}}}", parts.join(", "))
    }
}

/// A search identifier's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// A map: all items hold (keywords are items without a field).
    All(Vec<ItemSpec>),
    /// A list of maps (or mixed values): any element holds.
    Any(Vec<Selection>),
}

/// A search identifier with the line it is defined on.
#[derive(Debug, Clone, PartialEq)]
pub struct Identifier {
    pub name: String,
    pub selection: Selection,
    pub line: usize,
}

/// A detection section: identifiers and conditions (several conditions are OR-ed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detection {
    pub identifiers: Vec<Identifier>,
    pub conditions: Vec<(String, usize)>,
    /// 1-based file column where a one-line condition's text starts (0 when not known), so a
    /// column inside the condition can be given as a file column.
    pub condition_col: usize,
}

/// A detection rule.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionRule {
    pub meta: RuleMeta,
    pub logsource: LogSource,
    pub detection: Detection,
}

/// A meta filter (sigma-filters-specification.md).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterRule {
    pub meta: RuleMeta,
    pub logsource: LogSource,
    /// Rule ids or names it applies to.
    pub rules: Vec<String>,
    pub detection: Detection,
}

/// What a document is.
#[derive(Debug, Clone, PartialEq)]
pub enum DocKind {
    Rule(DetectionRule),
    Filter(FilterRule),
    /// A correlation rule; `None` when its correlation section has errors (the diagnostics say which).
    Correlation(RuleMeta, Option<super::correlation::Correlation>),
    /// The document could not be used at all; `meta` holds what could be read of it.
    Broken(RuleMeta),
}

/// One parsed document with its problems.
#[derive(Debug, Clone)]
pub struct ParsedDoc {
    pub kind: DocKind,
    /// Errors make the document unusable; warnings do not.
    pub diagnostics: Vec<Diagnostic>,
    /// Reasons the rule cannot be evaluated although it is valid (with their location).
    pub unsupported: Vec<(String, Location)>,
}

struct Ctx<'a> {
    doc: &'a Doc,
    path: &'a Path,
    diags: Vec<Diagnostic>,
    unsupported: Vec<(String, Location)>,
}

impl Ctx<'_> {
    fn loc(&self, keys: &[&str]) -> Location {
        Location::new(self.path, self.doc.line_of(keys), 0)
    }
    fn error(&mut self, keys: &[&str], msg: impl Into<String>) {
        let l = self.loc(keys);
        self.diags.push(Diagnostic::error(l, msg));
    }
    fn warn(&mut self, keys: &[&str], msg: impl Into<String>) {
        let l = self.loc(keys);
        self.diags.push(Diagnostic::warning(l, msg));
    }
}

fn get<'a>(m: &'a serde_norway::Mapping, key: &str) -> Option<&'a Yaml> {
    m.get(Yaml::String(key.to_string()))
}

fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::Sequence(s) => s.iter().filter_map(scalar_text).collect(),
        other => scalar_text(other).into_iter().collect(),
    }
}

/// Parses one document.
pub fn parse_doc(doc: &Doc, path: &Path, placeholders: &Placeholders) -> ParsedDoc {
    let mut cx = Ctx {
        doc,
        path,
        diags: Vec::new(),
        unsupported: Vec::new(),
    };
    let mut meta = RuleMeta {
        path: path.to_path_buf(),
        line: doc.first_line,
        ..RuleMeta::default()
    };
    let Yaml::Mapping(m) = &doc.value else {
        cx.error(
            &[],
            "expected a rule (a YAML mapping with title, logsource and detection)",
        );
        return finish(cx, DocKind::Broken(meta));
    };
    read_meta(&mut cx, m, &mut meta);

    let kind = if get(m, "correlation").is_some() {
        let c = super::correlation::parse_correlation(doc, path, m, &mut cx.diags);
        DocKind::Correlation(meta, c)
    } else if let Some(f) = get(m, "filter") {
        match parse_filter(&mut cx, m, f, placeholders) {
            Some((logsource, rules, detection)) => DocKind::Filter(FilterRule {
                meta,
                logsource,
                rules,
                detection,
            }),
            None => DocKind::Broken(meta),
        }
    } else {
        let logsource = read_logsource(&mut cx, m, true);
        let detection = match get(m, "detection") {
            Some(Yaml::Mapping(d)) => Some(parse_detection(&mut cx, d, "detection", placeholders)),
            Some(_) => {
                cx.error(
                    &["detection"],
                    "'detection' must be a mapping of search identifiers and a condition",
                );
                None
            }
            None => {
                cx.error(
                    &[],
                    "missing 'detection' (a Sigma rule needs title, logsource and detection)",
                );
                None
            }
        };
        match (logsource, detection) {
            (Some(logsource), Some(detection)) => DocKind::Rule(DetectionRule {
                meta,
                logsource,
                detection,
            }),
            _ => DocKind::Broken(meta),
        }
    };
    finish(cx, kind)
}

fn finish(cx: Ctx<'_>, kind: DocKind) -> ParsedDoc {
    ParsedDoc {
        kind,
        diagnostics: cx.diags,
        unsupported: cx.unsupported,
    }
}

const RELATED_TYPES: [&str; 5] = ["derived", "obsolete", "merged", "renamed", "similar"];

fn is_iso_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&d[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d[8..10].parse::<u32>().unwrap_or(0))
}

const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];
const STATUSES: [&str; 5] = [
    "stable",
    "test",
    "experimental",
    "deprecated",
    "unsupported",
];

fn read_meta(cx: &mut Ctx<'_>, m: &serde_norway::Mapping, meta: &mut RuleMeta) {
    match get(m, "title") {
        Some(Yaml::String(s)) => meta.title = s.clone(),
        Some(v) => {
            meta.title = scalar_text(v).unwrap_or_default();
            cx.error(&["title"], "'title' must be a string");
        }
        None => cx.error(&[], "missing 'title'"),
    }
    let opt = |k: &str| get(m, k).and_then(scalar_text);
    meta.id = opt("id");
    meta.name = opt("name");
    meta.status = opt("status");
    meta.level = opt("level");
    meta.description = opt("description");
    meta.date = opt("date");
    meta.modified = opt("modified");
    meta.license = opt("license");
    meta.author = match get(m, "author") {
        Some(Yaml::Sequence(s)) => Some(
            s.iter()
                .filter_map(scalar_text)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Some(v) => scalar_text(v),
        None => None,
    };
    meta.taxonomy = opt("taxonomy");
    meta.fields = get(m, "fields").map(string_list).unwrap_or_default();
    meta.scope = get(m, "scope").map(string_list).unwrap_or_default();
    if let Some(rel) = get(m, "related") {
        match rel {
            Yaml::Sequence(items) => {
                for it in items {
                    let id = it.get("id").and_then(scalar_text);
                    let ty = it.get("type").and_then(scalar_text);
                    match (id, ty) {
                        (Some(id), Some(ty)) => {
                            if !RELATED_TYPES.contains(&ty.as_str()) {
                                cx.warn(
                                    &["related"],
                                    format!(
                                        "related type '{ty}' is not one of {}",
                                        RELATED_TYPES.join(", ")
                                    ),
                                );
                            }
                            meta.related.push((id, ty));
                        }
                        _ => cx.warn(&["related"], "each 'related' entry needs 'id' and 'type'"),
                    }
                }
            }
            _ => cx.warn(&["related"], "'related' must be a list of {id, type}"),
        }
    }
    for key in ["date", "modified"] {
        if let Some(d) = get(m, key).and_then(scalar_text) {
            if !is_iso_date(&d) {
                cx.warn(
                    &[key],
                    format!("{key} '{d}' is not a date written YYYY-MM-DD (Sigma 2.0 dropped YYYY/MM/DD)"),
                );
            }
        }
    }
    meta.references = get(m, "references").map(string_list).unwrap_or_default();
    meta.tags = get(m, "tags").map(string_list).unwrap_or_default();
    meta.falsepositives = get(m, "falsepositives")
        .map(string_list)
        .unwrap_or_default();
    meta.source_gaps = get(m, "source_gaps").map(string_list).unwrap_or_default();
    if let Some(l) = &meta.level {
        if !LEVELS.contains(&l.as_str()) {
            let l = l.clone();
            cx.warn(
                &["level"],
                format!("level '{l}' is not one of {}", LEVELS.join(", ")),
            );
        }
    }
    if let Some(s) = &meta.status {
        if !STATUSES.contains(&s.as_str()) {
            let s = s.clone();
            cx.warn(
                &["status"],
                format!("status '{s}' is not one of {}", STATUSES.join(", ")),
            );
        }
    }
}

fn read_logsource(
    cx: &mut Ctx<'_>,
    m: &serde_norway::Mapping,
    required: bool,
) -> Option<LogSource> {
    match get(m, "logsource") {
        Some(Yaml::Mapping(l)) => Some(LogSource {
            product: get(l, "product").and_then(scalar_text),
            category: get(l, "category").and_then(scalar_text),
            service: get(l, "service").and_then(scalar_text),
        }),
        Some(_) => {
            cx.error(
                &["logsource"],
                "'logsource' must be a mapping (product, category, service)",
            );
            None
        }
        None if required => {
            cx.error(&[], "missing 'logsource'");
            None
        }
        None => Some(LogSource::default()),
    }
}

fn parse_filter(
    cx: &mut Ctx<'_>,
    m: &serde_norway::Mapping,
    f: &Yaml,
    placeholders: &Placeholders,
) -> Option<(LogSource, Vec<String>, Detection)> {
    let logsource = read_logsource(cx, m, true)?;
    let Yaml::Mapping(fm) = f else {
        cx.error(
            &["filter"],
            "'filter' must be a mapping with rules, selections and a condition",
        );
        return None;
    };
    let rules = match get(fm, "rules") {
        Some(v) => string_list(v),
        None => {
            cx.error(
                &["filter"],
                "a filter needs 'rules' (the ids or names it applies to)",
            );
            return None;
        }
    };
    if rules.is_empty() {
        cx.error(&["filter", "rules"], "'rules' lists no rule");
        return None;
    }
    let mut d = fm.clone();
    d.remove(Yaml::String("rules".into()));
    Some((
        logsource,
        rules,
        parse_detection(cx, &d, "filter", placeholders),
    ))
}

fn parse_detection(
    cx: &mut Ctx<'_>,
    d: &serde_norway::Mapping,
    section: &str,
    placeholders: &Placeholders,
) -> Detection {
    let mut det = Detection::default();
    for (k, v) in d {
        let Some(name) = scalar_text(k) else {
            cx.error(&[section], "a search identifier must be a name");
            continue;
        };
        match name.as_str() {
            "condition" => {
                let line = cx.doc.line_of(&[section, "condition"]);
                match v {
                    Yaml::Sequence(items) => {
                        for it in items {
                            match scalar_text(it) {
                                Some(s) => det.conditions.push((s, line)),
                                None => cx.error(
                                    &[section, "condition"],
                                    "each condition in the list must be a string",
                                ),
                            }
                        }
                    }
                    other => match scalar_text(other) {
                        Some(s) => {
                            det.condition_col = condition_column(cx.doc, line, &s);
                            det.conditions.push((s, line))
                        }
                        None => cx.error(&[section, "condition"], "'condition' must be a string"),
                    },
                }
            }
            "timeframe" => cx.warn(
                &[section, "timeframe"],
                "'timeframe' in a detection belongs to the deprecated aggregation syntax and is ignored",
            ),
            _ => {
                let line = cx.doc.line_of(&[section, &name]);
                if let Some(selection) = parse_selection(cx, v, &[section, &name], placeholders) {
                    det.identifiers.push(Identifier {
                        name,
                        selection,
                        line,
                    });
                }
            }
        }
    }
    if det.conditions.is_empty() {
        cx.error(&[section], format!("'{section}' has no 'condition'"));
    }
    det
}

/// The 1-based column where `cond` starts on file line `line` (0 if it is not on that line).
fn condition_column(doc: &Doc, line: usize, cond: &str) -> usize {
    let Some(text) = doc.text.lines().nth(line.saturating_sub(doc.first_line)) else {
        return 0;
    };
    let Some(after) = text.find("condition:").map(|i| i + "condition:".len()) else {
        return 0;
    };
    match text[after..].find(cond) {
        Some(i) => text[..after + i].chars().count() + 1,
        None => 0,
    }
}

fn to_scalar(v: &Yaml) -> Option<Scalar> {
    Some(match v {
        Yaml::String(s) => Scalar::Str(s.clone()),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Scalar::Int(i)
            } else {
                Scalar::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Yaml::Bool(b) => Scalar::Bool(*b),
        Yaml::Null => Scalar::Null,
        _ => return None,
    })
}

fn parse_selection(
    cx: &mut Ctx<'_>,
    v: &Yaml,
    keys: &[&str],
    placeholders: &Placeholders,
) -> Option<Selection> {
    match v {
        Yaml::Mapping(map) => {
            let mut items = Vec::new();
            let mut ok = true;
            for (k, val) in map {
                let Some(key) = scalar_text(k) else {
                    cx.error(keys, "a field name must be a string");
                    ok = false;
                    continue;
                };
                let mut path: Vec<&str> = keys.to_vec();
                path.push(&key);
                let values: Vec<Scalar> = match val {
                    Yaml::Sequence(s) if s.is_empty() => vec![Scalar::Null],
                    Yaml::Sequence(s) => {
                        let vals: Option<Vec<Scalar>> = s.iter().map(to_scalar).collect();
                        match vals {
                            Some(v) => v,
                            None => {
                                cx.error(
                                    &path,
                                    format!("'{key}': a value list may only hold plain values (strings, numbers, booleans)"),
                                );
                                ok = false;
                                continue;
                            }
                        }
                    }
                    other => match to_scalar(other) {
                        Some(s) => vec![s],
                        None => {
                            cx.error(
                                &path,
                                format!("'{key}': expected a value or a list of values, found a mapping"),
                            );
                            ok = false;
                            continue;
                        }
                    },
                };
                let mut warnings = Vec::new();
                match build_item(&key, &values, placeholders, &mut warnings) {
                    Ok(mut item) => {
                        item.line = cx.doc.line_of(&path);
                        items.push(item)
                    }
                    Err(ValueError::Invalid(msg)) => {
                        let l = cx.loc(&path);
                        let mut d = Diagnostic::error(l, msg.clone());
                        if msg.starts_with("unknown modifier") {
                            d = d.with_help(format!("known modifiers: {MODIFIER_NAMES}"));
                        }
                        cx.diags.push(d);
                        ok = false;
                    }
                    Err(ValueError::Unsupported(msg)) => {
                        let l = cx.loc(&path);
                        cx.unsupported.push((msg, l));
                    }
                }
                for w in warnings {
                    cx.warn(&path, w);
                }
            }
            ok.then_some(Selection::All(items))
        }
        Yaml::Sequence(seq) => {
            if seq.is_empty() {
                cx.error(keys, "a search identifier cannot be an empty list");
                return None;
            }
            if seq
                .iter()
                .all(|x| !matches!(x, Yaml::Mapping(_) | Yaml::Sequence(_)))
            {
                let values: Vec<Scalar> = seq.iter().filter_map(to_scalar).collect();
                return keyword_selection(cx, keys, &values, placeholders);
            }
            let mut alts = Vec::new();
            for x in seq {
                match x {
                    Yaml::Mapping(_) => alts.push(parse_selection(cx, x, keys, placeholders)?),
                    Yaml::Sequence(_) => {
                        cx.error(keys, "a list inside a selection list is not valid Sigma");
                        return None;
                    }
                    other => {
                        let values: Vec<Scalar> = to_scalar(other).into_iter().collect();
                        alts.push(keyword_selection(cx, keys, &values, placeholders)?)
                    }
                }
            }
            Some(Selection::Any(alts))
        }
        Yaml::Null => {
            cx.error(keys, "a search identifier has no value");
            None
        }
        other => {
            let values: Vec<Scalar> = to_scalar(other).into_iter().collect();
            keyword_selection(cx, keys, &values, placeholders)
        }
    }
}

fn keyword_selection(
    cx: &mut Ctx<'_>,
    keys: &[&str],
    values: &[Scalar],
    placeholders: &Placeholders,
) -> Option<Selection> {
    if values.contains(&Scalar::Null) {
        cx.error(keys, "a keyword list cannot hold null");
        return None;
    }
    // Keywords are text searched inside values, so a YAML number or boolean is its text.
    let values: Vec<Scalar> = values
        .iter()
        .map(|v| match v {
            Scalar::Int(i) => Scalar::Str(i.to_string()),
            Scalar::Float(f) => Scalar::Str(crate::telemetry::format_float(*f)),
            Scalar::Bool(b) => Scalar::Str(b.to_string()),
            other => other.clone(),
        })
        .collect();
    let mut warnings = Vec::new();
    match build_item("", &values, placeholders, &mut warnings) {
        Ok(item) => Some(Selection::All(vec![item])),
        Err(ValueError::Invalid(m)) => {
            cx.error(keys, m);
            None
        }
        Err(ValueError::Unsupported(m)) => {
            let l = cx.loc(keys);
            cx.unsupported.push((m, l));
            Some(Selection::All(vec![]))
        }
    }
}

/// Parses a selection outside a rule (used by the logsource mapping for its `when` / `unless`
/// conditions). Returns the selection, or the diagnostics that explain why there is none.
pub fn selection_from_yaml(
    doc: &Doc,
    path: &Path,
    keys: &[&str],
    v: &Yaml,
) -> (Option<Selection>, Vec<Diagnostic>) {
    let mut cx = Ctx {
        doc,
        path,
        diags: Vec::new(),
        unsupported: Vec::new(),
    };
    let sel = parse_selection(&mut cx, v, keys, &Placeholders::new());
    for (msg, loc) in cx.unsupported.drain(..) {
        cx.diags.push(Diagnostic::error(loc, msg));
    }
    (sel, cx.diags)
}
