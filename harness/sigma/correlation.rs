//! Correlation rules (sigma-correlation-rules-specification.md 2.1): parsing, and the sliding-window
//! evaluation over the hits of the rules they refer to.
//!
//! Input: a correlation document (parsed here into a [`Correlation`]), then the base rules' hits as
//! [`Entry`] values (event index, event time, group key, aggregated value) collected by the caller in a
//! [`CorrelationState`]. Output: [`CorrelationHit`]s, each naming its group key and the events that made
//! it. It never reads files, never looks at an event beyond the fields a correlation names, and keeps
//! every piece of state in the caller-owned [`CorrelationState`] (bounded by [`MAX_ENTRIES`]).
//!
//! Decisions (docs/sigma-engine.md, "Correlations", says why):
//! - windows slide: at each arriving entry of a group, the window is every entry of that group with
//!   `t - timespan <= time <= t`, both ends inclusive (two events exactly `timespan` apart are in one
//!   window, one second more and they are not);
//! - entries are ordered by (time, event index, referenced rule), so input out of time order gives the
//!   same answer as sorted input, and ties keep input order;
//! - when the condition holds the correlation fires once and the group's window is emptied (its
//!   entries are consumed): one event contributes to at most one hit of a correlation;
//! - a missing group-by field is a null group value (its own group, shown as `null`), like pySigma;
//! - an event without a readable timestamp cannot be placed in a window: it is not counted, and a
//!   warning says how many were skipped.

use super::yaml::Doc;
use crate::diag::{Diagnostic, Location};
use crate::telemetry::{Event, Value};
use serde_norway::Value as Yaml;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// At most this many entries are kept per correlation; more are dropped with a warning.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Correlation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
    ValuePercentile,
    /// pySigma extension (not in the specification): the 50th percentile.
    ValueMedian,
}

impl CorrType {
    fn parse(s: &str) -> Option<CorrType> {
        Some(match s {
            "event_count" => CorrType::EventCount,
            "value_count" => CorrType::ValueCount,
            "temporal" => CorrType::Temporal,
            "temporal_ordered" => CorrType::TemporalOrdered,
            "value_sum" => CorrType::ValueSum,
            "value_avg" => CorrType::ValueAvg,
            "value_percentile" => CorrType::ValuePercentile,
            "value_median" => CorrType::ValueMedian,
            _ => return None,
        })
    }
    fn needs_field(self) -> bool {
        matches!(
            self,
            CorrType::ValueCount
                | CorrType::ValueSum
                | CorrType::ValueAvg
                | CorrType::ValuePercentile
                | CorrType::ValueMedian
        )
    }
    fn is_temporal(self) -> bool {
        matches!(self, CorrType::Temporal | CorrType::TemporalOrdered)
    }
}

/// A comparison operator of a correlation condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Op {
    fn holds(self, x: f64, v: f64) -> bool {
        match self {
            Op::Gt => x > v,
            Op::Gte => x >= v,
            Op::Lt => x < v,
            Op::Lte => x <= v,
            Op::Eq => x == v,
            Op::Neq => x != v,
        }
    }
}

/// A condition: every operator must hold (a range is two of them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    pub ops: Vec<(Op, f64)>,
    /// `field`: one name, or several whose values form a tuple (value_count).
    pub fields: Vec<String>,
    /// `percentile` (pySigma extension) for value_percentile; 50 when absent.
    pub percentile: Option<f64>,
}

impl Condition {
    /// Whether `x` satisfies every operator.
    pub fn holds(&self, x: f64) -> bool {
        self.ops.iter().all(|&(op, v)| op.holds(x, v))
    }
}

/// A parsed correlation section.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    pub kind: CorrType,
    /// Referenced rules (id or name) with the line each is written on.
    pub rules: Vec<(String, usize)>,
    pub group_by: Vec<String>,
    /// Window length in milliseconds.
    pub timespan_ms: i64,
    pub condition: Condition,
    /// `aliases`: alias -> (rule name -> field in that rule's events).
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// `generate`: the referenced rules also report their own hits.
    pub generate: bool,
    /// Line of the `rules` key (for cycle and reference diagnostics).
    pub rules_line: usize,
}

/// A timespan (`Xs`, `Xm`, `Xh`, `Xd`, and pySigma's `Xw`, `XM` = 2,629,746 s, `Xy` = 31,556,952 s) in
/// milliseconds.
pub fn parse_timespan(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let unit = s.chars().last().ok_or("empty timespan")?;
    let secs: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        'M' => 2_629_746,
        'y' => 31_556_952,
        _ => {
            return Err(format!(
                "timespan '{s}' must be a positive whole number followed by one unit letter: s, m, h, d (or w, M, y), e.g. 5m"
            ))
        }
    };
    let num = &s[..s.len() - unit.len_utf8()];
    let n: i64 = num
        .parse()
        .ok()
        .filter(|n: &i64| *n > 0 && num.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!("timespan '{s}' must be a positive whole number followed by one unit letter: s, m, h, d (or w, M, y), e.g. 5m")
        })?;
    n.checked_mul(secs)
        .and_then(|x| x.checked_mul(1000))
        .ok_or_else(|| format!("timespan '{s}' is too long"))
}

fn get<'a>(m: &'a serde_norway::Mapping, key: &str) -> Option<&'a Yaml> {
    m.get(Yaml::String(key.to_string()))
}

fn text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses the `correlation` section of a document (and its top-level `generate`). Every problem is
/// a diagnostic at the line of the offending key; `None` when the correlation cannot be used.
pub fn parse_correlation(
    doc: &Doc,
    path: &Path,
    m: &serde_norway::Mapping,
    diags: &mut Vec<Diagnostic>,
) -> Option<Correlation> {
    let before = diags.len();
    let loc = |keys: &[&str]| Location::new(path, doc.line_of(keys), 0);
    let mut err = |keys: &[&str], msg: String| diags.push(Diagnostic::error(loc(keys), msg));
    let Some(Yaml::Mapping(c)) = get(m, "correlation") else {
        err(
            &["correlation"],
            "'correlation' must be a mapping (type, rules, group-by, timespan, condition)".into(),
        );
        return None;
    };
    let kind = match get(c, "type").and_then(text) {
        Some(t) => match CorrType::parse(&t) {
            Some(k) => Some(k),
            None => {
                err(&["correlation", "type"], format!("unknown correlation type '{t}' (expected event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile or value_median)"));
                None
            }
        },
        None => {
            err(&["correlation"], "correlation needs a 'type'".into());
            None
        }
    };
    let rules_line = doc.line_of(&["correlation", "rules"]);
    let mut rules = Vec::new();
    match get(c, "rules") {
        Some(Yaml::Sequence(s)) if !s.is_empty() => {
            for (i, r) in s.iter().enumerate() {
                match text(r) {
                    Some(t) => {
                        // The line of the i-th list item after `rules:`.
                        let line = doc
                            .text
                            .lines()
                            .enumerate()
                            .skip(rules_line.saturating_sub(doc.first_line) + 1)
                            .filter(|(_, l)| l.trim_start().starts_with("- "))
                            .nth(i)
                            .map_or(rules_line, |(n, _)| doc.first_line + n);
                        rules.push((t, line));
                    }
                    None => err(
                        &["correlation", "rules"],
                        "each entry of 'rules' must be a rule id or name".into(),
                    ),
                }
            }
        }
        Some(Yaml::String(s)) => rules.push((s.clone(), rules_line)),
        Some(_) => err(
            &["correlation", "rules"],
            "'rules' must list at least one rule id or name".into(),
        ),
        None => err(
            &["correlation"],
            "correlation needs 'rules' (the ids or names of the rules it correlates)".into(),
        ),
    }
    let group_by: Vec<String> = match get(c, "group-by") {
        Some(Yaml::Sequence(s)) => s.iter().filter_map(text).collect(),
        Some(Yaml::Null) | None => Vec::new(),
        Some(v) => text(v).into_iter().collect(),
    };
    let timespan_ms = match get(c, "timespan").and_then(text) {
        Some(t) => match parse_timespan(&t) {
            Ok(ms) => Some(ms),
            Err(e) => {
                err(&["correlation", "timespan"], e);
                None
            }
        },
        None => {
            err(
                &["correlation"],
                "correlation needs a 'timespan' (e.g. 5m)".into(),
            );
            None
        }
    };
    let mut aliases = BTreeMap::new();
    match get(c, "aliases") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Mapping(a)) => {
            for (k, v) in a {
                let (Some(alias), Yaml::Mapping(per)) = (text(k), v) else {
                    err(
                        &["correlation", "aliases"],
                        "each alias must map rule names to field names".into(),
                    );
                    continue;
                };
                let mut map = BTreeMap::new();
                for (r, f) in per {
                    match (text(r), text(f)) {
                        (Some(r), Some(f)) => {
                            map.insert(r, f);
                        }
                        _ => err(
                            &["correlation", "aliases", &alias],
                            format!("alias '{alias}': each entry must be 'rule_name: field'"),
                        ),
                    }
                }
                aliases.insert(alias, map);
            }
        }
        Some(_) => err(
            &["correlation", "aliases"],
            "'aliases' must be a mapping alias -> {rule name: field}".into(),
        ),
    }
    let mut condition = Condition::default();
    match get(c, "condition") {
        None => {}
        Some(Yaml::Mapping(cm)) => {
            for (k, v) in cm {
                let key = text(k).unwrap_or_default();
                let op = match key.as_str() {
                    "gt" => Op::Gt,
                    "gte" => Op::Gte,
                    "lt" => Op::Lt,
                    "lte" => Op::Lte,
                    "eq" => Op::Eq,
                    "neq" => Op::Neq,
                    "field" => {
                        match v {
                            Yaml::Sequence(s) => {
                                condition.fields = s.iter().filter_map(text).collect()
                            }
                            other => condition.fields = text(other).into_iter().collect(),
                        }
                        if condition.fields.is_empty() {
                            err(
                                &["correlation", "condition", "field"],
                                "'field' names no field".into(),
                            );
                        }
                        continue;
                    }
                    "percentile" => {
                        match v.as_f64().filter(|p| (0.0..=100.0).contains(p)) {
                            Some(p) => condition.percentile = Some(p),
                            None => err(
                                &["correlation", "condition", "percentile"],
                                "'percentile' must be a number from 0 to 100".into(),
                            ),
                        }
                        continue;
                    }
                    other => {
                        err(&["correlation", "condition", other], format!("unknown condition operator '{other}' (expected gt, gte, lt, lte, eq, neq, field)"));
                        continue;
                    }
                };
                match v.as_f64() {
                    Some(x) => condition.ops.push((op, x)),
                    None => err(
                        &["correlation", "condition", &key],
                        format!("'{key}' must be a number"),
                    ),
                }
            }
            if let Some(msg) = conflict(&condition.ops) {
                err(&["correlation", "condition"], msg);
            }
        }
        Some(_) => err(
            &["correlation", "condition"],
            "'condition' must be a mapping such as {gte: 10}".into(),
        ),
    }
    let generate = match get(m, "generate") {
        None => false,
        Some(Yaml::Bool(b)) => *b,
        Some(_) => {
            err(&["generate"], "'generate' must be true or false".into());
            false
        }
    };
    let kind = kind?;
    if kind.needs_field() && condition.fields.is_empty() {
        err(
            &["correlation", "condition"],
            format!(
                "a {} correlation needs 'field' in its condition",
                type_name(kind)
            ),
        );
    }
    if kind.needs_field() && condition.fields.len() > 1 && kind != CorrType::ValueCount {
        err(
            &["correlation", "condition", "field"],
            "only value_count takes several fields".into(),
        );
    }
    if condition.ops.is_empty() {
        if kind.is_temporal() {
            condition.ops.push((Op::Gte, rules.len() as f64));
        } else if get(c, "condition").is_some()
            || kind == CorrType::EventCount
            || kind.needs_field()
        {
            err(
                &[
                    "correlation",
                    if get(c, "condition").is_some() {
                        "condition"
                    } else {
                        "type"
                    },
                ],
                "the condition needs an operator (gt, gte, lt, lte, eq or neq)".into(),
            );
        }
    }
    if kind.is_temporal() && rules.len() < 2 && !rules.is_empty() {
        diags.push(Diagnostic::warning(
            loc(&["correlation", "rules"]),
            "a temporal correlation over one rule fires on every hit of that rule",
        ));
    }
    if diags[before..]
        .iter()
        .any(|d| d.severity == crate::diag::Severity::Error)
    {
        return None;
    }
    Some(Correlation {
        kind,
        rules,
        group_by,
        timespan_ms: timespan_ms?,
        condition,
        aliases,
        generate,
        rules_line,
    })
}

/// Why the operators cannot all hold at once, or that two bound the same side.
fn conflict(ops: &[(Op, f64)]) -> Option<String> {
    let lower: Vec<_> = ops
        .iter()
        .filter(|o| matches!(o.0, Op::Gt | Op::Gte))
        .collect();
    let upper: Vec<_> = ops
        .iter()
        .filter(|o| matches!(o.0, Op::Lt | Op::Lte))
        .collect();
    let eqs: Vec<_> = ops.iter().filter(|o| o.0 == Op::Eq).collect();
    if lower.len() > 1 || upper.len() > 1 || eqs.len() > 1 {
        return Some("conflicting operators: the condition sets the same bound twice".into());
    }
    if let (Some(&&(lo, l)), Some(&&(hi, h))) = (lower.first(), upper.first()) {
        if l > h || (l == h && (lo == Op::Gt || hi == Op::Lt)) {
            return Some(format!(
                "conflicting operators: no count is {} {l} and {} {h}",
                op_name(lo),
                op_name(hi)
            ));
        }
    }
    if let Some(&&(_, e)) = eqs.first() {
        if !ops.iter().all(|&(op, v)| op.holds(e, v)) {
            return Some(format!(
                "conflicting operators: eq {e} contradicts the other operators"
            ));
        }
    }
    None
}

pub(crate) fn op_name(op: Op) -> &'static str {
    match op {
        Op::Gt => "gt",
        Op::Gte => "gte",
        Op::Lt => "lt",
        Op::Lte => "lte",
        Op::Eq => "eq",
        Op::Neq => "neq",
    }
}

pub(crate) fn type_name(k: CorrType) -> &'static str {
    match k {
        CorrType::EventCount => "event_count",
        CorrType::ValueCount => "value_count",
        CorrType::Temporal => "temporal",
        CorrType::TemporalOrdered => "temporal_ordered",
        CorrType::ValueSum => "value_sum",
        CorrType::ValueAvg => "value_avg",
        CorrType::ValuePercentile => "value_percentile",
        CorrType::ValueMedian => "value_median",
    }
}

/// An event's time in milliseconds since the Unix epoch, from [`Event::timestamp`]: RFC 3339 text
/// (`2024-05-01T10:00:00.123Z`, any offset), a date and time without zone (`2024-05-01 10:00:00.123`,
/// Sysmon `UtcTime`; read as UTC), or epoch seconds (Zeek `ts`, auditd `1773480413.120:42`; a number
/// above 10^11 is read as milliseconds).
pub fn event_time(ev: &Event) -> Option<i64> {
    for k in crate::telemetry::TIME_FIELDS {
        let t = match ev.get(k) {
            Some(Value::Int(i)) => epoch(*i as f64),
            Some(Value::Float(f)) => epoch(*f),
            Some(Value::Str(s)) => parse_time(s),
            _ => None,
        };
        if t.is_some() {
            return t;
        }
    }
    None
}

fn epoch(x: f64) -> Option<i64> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let ms = if x > 1e11 { x } else { x * 1000.0 };
    (ms < 1e16).then_some(ms.round() as i64)
}

/// Parses a time text (see [`event_time`]).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = s.split(':').next().unwrap_or(s);
    if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        if let Ok(x) = num.parse::<f64>() {
            return epoch(x);
        }
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// A referenced rule's hit as one correlation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position of the referenced rule in the correlation's `rules`.
    pub slot: u32,
    /// Event time (ms since the epoch); for a chained hit, its last event's.
    pub time: i64,
    /// The earliest time this entry covers (a chained hit's first event's; else `time`).
    pub start: i64,
    /// The event (or, for a chained correlation's hit, its first event).
    pub event: usize,
    /// The other events of a chained correlation's hit.
    pub more: Vec<usize>,
    /// Group-by values, in `group-by` order (`None`: the field is missing).
    pub key: Box<[Option<String>]>,
    /// The condition field's value(s) (value_* types), `None` when missing.
    pub value: Option<Box<[Option<String>]>>,
}

/// Correlation state: what the base rules' hits contributed so far, per correlation. Owned by the
/// caller; bounded by [`MAX_ENTRIES`] per correlation.
#[derive(Debug, Clone, Default)]
pub struct CorrelationState {
    pub(crate) entries: Vec<Vec<Entry>>,
    pub(crate) dropped: Vec<usize>,
    pub(crate) untimed: Vec<usize>,
    pub(crate) cap: usize,
}

impl CorrelationState {
    pub(crate) fn new(n: usize, cap: usize) -> Self {
        CorrelationState {
            entries: vec![Vec::new(); n],
            dropped: vec![0; n],
            untimed: vec![0; n],
            cap,
        }
    }

    /// Sets the per-correlation cap (tests; the default is [`MAX_ENTRIES`]).
    pub fn with_cap(mut self, cap: usize) -> Self {
        self.cap = cap;
        self
    }

    pub(crate) fn push(&mut self, plan: usize, e: Entry) {
        let (Some(v), Some(d)) = (self.entries.get_mut(plan), self.dropped.get_mut(plan)) else {
            return;
        };
        if v.len() >= self.cap {
            *d += 1;
        } else {
            v.push(e);
        }
    }

    /// Appends another part's state, its event indexes shifted by `offset`.
    pub fn merge(&mut self, other: CorrelationState, offset: usize) {
        for (p, v) in other.entries.into_iter().enumerate() {
            for mut e in v {
                e.event += offset;
                e.more.iter_mut().for_each(|x| *x += offset);
                self.push(p, e);
            }
        }
        for (p, d) in other.dropped.into_iter().enumerate() {
            if let Some(x) = self.dropped.get_mut(p) {
                *x += d;
            }
        }
        for (p, d) in other.untimed.into_iter().enumerate() {
            if let Some(x) = self.untimed.get_mut(p) {
                *x += d;
            }
        }
    }

    /// Whether nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|v| v.is_empty())
    }
}

/// One correlation match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CorrelationHit {
    /// The correlation (index in `RuleSet::rules`).
    pub rule: usize,
    /// Group-by names and values (`None`: the field was missing).
    pub group: Vec<(String, Option<String>)>,
    /// The events that made the hit, ascending.
    pub events: Vec<usize>,
    /// Time of the first and the last of them (ms since the epoch).
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Numeric reading of a value text (sums, averages, percentiles).
fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    let x = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()? as f64
    } else {
        s.parse::<f64>().ok()?
    };
    x.is_finite().then_some(x)
}

/// Evaluates one correlation over its entries; returns (group key, entries consumed) per firing.
pub(crate) fn run(
    kind: CorrType,
    cond: &Condition,
    timespan_ms: i64,
    n_rules: usize,
    mut entries: Vec<Entry>,
) -> Vec<Vec<Entry>> {
    entries.sort_by_key(|e| (e.time, e.event, e.slot));
    // Groups in first-seen order (deterministic given the sort).
    let mut groups: HashMap<Box<[Option<String>]>, Vec<Entry>> = HashMap::new();
    let mut order: Vec<Box<[Option<String>]>> = Vec::new();
    for e in entries {
        match groups.get_mut(&e.key) {
            Some(v) => v.push(e),
            None => {
                order.push(e.key.clone());
                groups.insert(e.key.clone(), vec![e]);
            }
        }
    }
    let mut fired = Vec::new();
    for k in order {
        let Some(list) = groups.remove(&k) else {
            continue;
        };
        run_group(kind, cond, timespan_ms, n_rules, list, &mut fired);
    }
    fired
}

/// Sliding window over one group's entries (sorted by time).
fn run_group(
    kind: CorrType,
    cond: &Condition,
    span: i64,
    n_rules: usize,
    list: Vec<Entry>,
    fired: &mut Vec<Vec<Entry>>,
) {
    let mut start = 0usize;
    // Incremental aggregates over list[start..=i].
    let mut per_slot = vec![0usize; n_rules];
    let mut distinct: HashMap<&[Option<String>], usize> = HashMap::new();
    let mut sum = 0.0f64;
    let mut n_num = 0usize;
    let nums: Vec<Option<f64>> = list
        .iter()
        .map(|e| match e.value.as_deref() {
            Some([Some(v)]) => number(v),
            _ => None,
        })
        .collect();
    let mut consumed_to = 0usize; // entries before this were consumed by a hit
    for i in 0..list.len() {
        let t = list[i].time;
        // Add i.
        add(
            &list[i],
            nums[i],
            &mut per_slot,
            &mut distinct,
            &mut sum,
            &mut n_num,
            1,
        );
        // Evict entries older than t - span (inclusive boundary: time >= t - span stays).
        while start < i && list[start].time < t.saturating_sub(span) {
            add(
                &list[start],
                nums[start],
                &mut per_slot,
                &mut distinct,
                &mut sum,
                &mut n_num,
                -1,
            );
            start += 1;
        }
        let start_eff = start.max(consumed_to);
        let window = &list[start_eff..=i];
        let x: Option<f64> = match kind {
            CorrType::EventCount => Some(window.len() as f64),
            CorrType::ValueCount => Some(distinct.len() as f64),
            CorrType::Temporal => Some(per_slot.iter().filter(|&&c| c > 0).count() as f64),
            CorrType::TemporalOrdered => {
                // Greedy: the longest prefix of `rules` seen in order within the window, ending
                // with the current entry's rule is not required (a shorter check suffices: any
                // ordered chain in the window).
                let mut next = 0usize;
                for e in window {
                    if next < n_rules && e.slot as usize == next {
                        next += 1;
                    }
                }
                Some(next as f64)
            }
            CorrType::ValueSum => (n_num > 0).then_some(sum),
            CorrType::ValueAvg => (n_num > 0).then(|| sum / n_num as f64),
            CorrType::ValuePercentile | CorrType::ValueMedian => {
                let p = if kind == CorrType::ValueMedian {
                    50.0
                } else {
                    cond.percentile.unwrap_or(50.0)
                };
                let mut v: Vec<f64> = nums[start_eff..=i].iter().flatten().copied().collect();
                if v.is_empty() {
                    None
                } else {
                    v.sort_by(f64::total_cmp);
                    // Nearest rank.
                    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
                    v.get(rank.clamp(1, v.len()) - 1).copied()
                }
            }
        };
        if x.is_some_and(|x| cond.holds(x)) {
            fired.push(window.to_vec());
            // Consume: reset the aggregates to an empty window starting after i.
            for j in start..=i {
                add(
                    &list[j],
                    nums[j],
                    &mut per_slot,
                    &mut distinct,
                    &mut sum,
                    &mut n_num,
                    -1,
                );
            }
            start = i + 1;
            consumed_to = i + 1;
            sum = 0.0;
        }
    }
}

fn add<'a>(
    e: &'a Entry,
    num: Option<f64>,
    per_slot: &mut [usize],
    distinct: &mut HashMap<&'a [Option<String>], usize>,
    sum: &mut f64,
    n_num: &mut usize,
    sign: i32,
) {
    if let Some(c) = per_slot.get_mut(e.slot as usize) {
        *c = if sign > 0 {
            *c + 1
        } else {
            c.saturating_sub(1)
        };
    }
    if let Some(v) = e.value.as_deref() {
        if v.iter().all(|x| x.is_some()) {
            if sign > 0 {
                *distinct.entry(v).or_insert(0) += 1;
            } else if let Some(c) = distinct.get_mut(v) {
                *c -= 1;
                if *c == 0 {
                    distinct.remove(v);
                }
            }
        }
    }
    if let Some(x) = num {
        if sign > 0 {
            *sum += x;
            *n_num += 1;
        } else {
            *sum -= x;
            *n_num = n_num.saturating_sub(1);
        }
    }
}

/// A resolved correlation, ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The correlation's index in `RuleSet::rules`.
    pub rule: usize,
    pub kind: CorrType,
    pub cond: Condition,
    pub timespan_ms: i64,
    pub group_by: Vec<String>,
    pub slots: Vec<Slot>,
}

/// One entry of a correlation's `rules`, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// Per group-by name, the field read from this rule's events (aliases applied).
    pub group_fields: Vec<String>,
    /// The condition field(s) (value_* types; empty otherwise).
    pub value_fields: Vec<String>,
}

impl Plan {
    /// The entry one event contributes through `slot`, or `None` when it has no time.
    pub(crate) fn entry(&self, slot: usize, event: usize, ev: &Event, time: i64) -> Option<Entry> {
        let s = self.slots.get(slot)?;
        let read = |f: &String| ev.get(f).and_then(value_text);
        Some(Entry {
            slot: slot as u32,
            time,
            start: time,
            event,
            more: Vec::new(),
            key: s.group_fields.iter().map(read).collect(),
            value: (!s.value_fields.is_empty()).then(|| s.value_fields.iter().map(read).collect()),
        })
    }

    /// The entry an inner correlation's hit contributes through `slot` (chaining): its time is
    /// its last event's, its group values are taken by name from the inner hit's group key.
    pub(crate) fn chained_entry(&self, slot: usize, hit: &CorrelationHit) -> Option<Entry> {
        let s = self.slots.get(slot)?;
        let read = |f: &String| {
            hit.group
                .iter()
                .find(|(n, _)| n == f)
                .and_then(|(_, v)| v.clone())
        };
        let (first, more) = hit.events.split_first()?;
        Some(Entry {
            slot: slot as u32,
            time: hit.last_ms,
            start: hit.first_ms,
            event: *first,
            more: more.to_vec(),
            key: s.group_fields.iter().map(read).collect(),
            value: (!s.value_fields.is_empty()).then(|| s.value_fields.iter().map(read).collect()),
        })
    }

    /// Runs the window over this correlation's entries.
    pub(crate) fn hits(&self, entries: Vec<Entry>) -> Vec<CorrelationHit> {
        run(
            self.kind,
            &self.cond,
            self.timespan_ms,
            self.slots.len(),
            entries,
        )
        .into_iter()
        .filter_map(|w| {
            let first = w.first()?;
            let mut events: Vec<usize> = w
                .iter()
                .flat_map(|e| std::iter::once(e.event).chain(e.more.iter().copied()))
                .collect();
            events.sort_unstable();
            events.dedup();
            Some(CorrelationHit {
                rule: self.rule,
                group: self
                    .group_by
                    .iter()
                    .cloned()
                    .zip(first.key.iter().cloned())
                    .collect(),
                first_ms: w.iter().map(|e| e.start).min().unwrap_or(first.start),
                last_ms: w.iter().map(|e| e.time).max().unwrap_or(first.time),
                events,
            })
        })
        .collect()
    }
}

/// A field value as a group or aggregation value: its text; lists and maps as JSON; null as missing.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        other => Some(match other.as_text() {
            Some(t) => t.into_owned(),
            None => other.to_json().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("5m"), Ok(300_000));
        assert_eq!(parse_timespan("1h"), Ok(3_600_000));
        assert_eq!(parse_timespan("2d"), Ok(172_800_000));
        assert_eq!(parse_timespan("1w"), Ok(604_800_000));
        assert_eq!(parse_timespan("1M"), Ok(2_629_746_000));
        assert_eq!(parse_timespan("1y"), Ok(31_556_952_000));
        assert_eq!(parse_timespan("30s"), Ok(30_000));
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "-5m",
            "0m",
            "1.5h",
            "5 m",
            "99999999999999999y",
        ] {
            assert!(parse_timespan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time("1970-01-01T00:00:01.5+00:00"), Some(1500));
        assert_eq!(parse_time("1970-01-01 00:00:02.250"), Some(2250));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("1773480413.120:42"), Some(1_773_480_413_120));
        assert_eq!(parse_time("1773480413"), Some(1_773_480_413_000));
        assert_eq!(parse_time("1773480413120"), Some(1_773_480_413_120));
        assert_eq!(
            parse_time("2024-01-01T00:00:00.1234567Z").map(|x| x % 1000),
            Some(123)
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn conflicts() {
        assert!(conflict(&[(Op::Gt, 100.0), (Op::Lte, 200.0)]).is_none());
        assert!(conflict(&[(Op::Gt, 10.0), (Op::Lt, 5.0)]).is_some());
        assert!(conflict(&[(Op::Gt, 5.0), (Op::Lt, 5.0)]).is_some());
        assert!(conflict(&[(Op::Gte, 5.0), (Op::Lte, 5.0)]).is_none());
        assert!(conflict(&[(Op::Eq, 5.0), (Op::Gt, 5.0)]).is_some());
        assert!(conflict(&[(Op::Gt, 1.0), (Op::Gte, 2.0)]).is_some());
    }
}
