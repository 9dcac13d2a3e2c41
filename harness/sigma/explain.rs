//! Nearest-miss explanations: why a rule did not fire on a set of events.
//!
//! Input: a rule of the set, the events it was expected to fire on (or every event of a run), and,
//! for a correlation, the single-event hits of the run. Output: an [`Explanation`] naming the event the
//! rule came closest to matching and each requirement that failed there: the selection, the field and
//! modifiers as written, the values the rule wanted and the value the event had (or that it lacked the
//! field), or the filter that excluded it. "Closest" is the routed event with the fewest failed
//! requirements, then the most satisfied items, then the earliest. This is the slow path (a second
//! evaluation with bookkeeping); it runs only for expected-fire rules that stayed silent.

use super::compile::{CItem, CSel, CompiledRule, Expr};
use super::correlation::CorrType;
use super::matcher::EventView;
use super::value::Leaf;
use super::{Hit, RuleKind, RuleSet, RuleStatus};
use crate::telemetry::Event;
use serde::Serialize;

/// Why a rule did not fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The event (index in the events given) the rule came closest to matching; `None` when no
    /// event reached the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<usize>,
    /// One sentence: what failed.
    pub summary: String,
    /// Each failed requirement on that event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

/// One failed requirement of a rule on an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The selection (search identifier) the requirement belongs to.
    pub selection: String,
    /// `no_match`: a selection the condition needs did not match; `excluded`: a selection the
    /// condition negates (a filter) matched.
    pub kind: &'static str,
    /// The detection key as written (`CommandLine|contains|all`); empty for a keyword item.
    pub field: String,
    /// The values the item wanted (after modifiers), abbreviated.
    pub wanted: String,
    /// The event's value of the field (mapped as the rule sees it); `None` when it lacks the field.
    pub actual: Option<String>,
    /// The rule file line of the item (0 when unknown).
    pub line: usize,
}

/// Longest value text an explanation shows.
const MAX_TEXT: usize = 160;
/// Most values of one item an explanation lists.
const MAX_VALUES: usize = 4;

impl RuleSet {
    /// Explains why `rule` did not fire on `candidates` (indices into `events`; empty = every
    /// event). For a correlation, `hits` are the run's single-event hits (as [`RuleSet::evaluate`]
    /// returns them) and the explanation says what each referenced rule contributed.
    pub fn explain(
        &self,
        rule: usize,
        events: &[Event],
        candidates: &[usize],
        hits: &[Hit],
    ) -> Explanation {
        let Some(info) = self.rules.get(rule) else {
            return summary_only(format!("no rule {rule} in the set"));
        };
        match &info.status {
            RuleStatus::Ready => {}
            RuleStatus::Unsupported { reason, .. } => {
                return summary_only(format!("the engine cannot evaluate the rule: {reason}"))
            }
            RuleStatus::Invalid => return summary_only("the rule could not be loaded".into()),
        }
        if info.kind == RuleKind::Correlation {
            return self.explain_correlation(rule, events, hits);
        }
        let Some(Some(compiled)) = self.compiled.get(rule) else {
            return summary_only("the rule has nothing to evaluate".into());
        };
        let all: Vec<usize> = (0..events.len()).collect();
        let chosen = if candidates.is_empty() {
            &all[..]
        } else {
            candidates
        };
        let mut sc = self.scratch();
        let mut best = self.nearest(rule, compiled, events, chosen, &mut sc);
        let mut outside = false;
        if best.is_none() && chosen.len() < events.len() {
            best = self.nearest(rule, compiled, events, &all, &mut sc);
            outside = true;
        }
        let Some((event, failures)) = best else {
            return summary_only(format!(
                "no event reaches the rule's log source ({}); the events are from: {}",
                info.logsource,
                self.source_names(events, &mut sc).join(", ")
            ));
        };
        let mut summary = if failures.is_empty() {
            // Cannot happen for a silent rule; said plainly rather than hidden.
            format!("the rule matches event {event}")
        } else {
            let first = &failures[0];
            let what = match first.kind {
                "excluded" => format!("filter `{}` excluded it", first.selection),
                _ => match &first.actual {
                    Some(v) => format!(
                        "`{}` wanted {}, the event has `{}`",
                        first.field, first.wanted, v
                    ),
                    None if first.field.is_empty() => {
                        format!("no value of the event contains {}", first.wanted)
                    }
                    None => format!(
                        "`{}` wanted {}, the event lacks the field",
                        first.field, first.wanted
                    ),
                },
            };
            let more = if failures.len() > 1 {
                format!(" (+{} more)", failures.len() - 1)
            } else {
                String::new()
            };
            format!(
                "event {event}: selection `{}`: {what}{more}",
                first.selection
            )
        };
        if outside {
            summary
                .push_str("; none of the expected signal's events reaches the rule's log source");
        }
        Explanation {
            event: Some(event),
            summary,
            failures,
        }
    }

    /// The routed event among `chosen` with the fewest failures, and those failures.
    fn nearest(
        &self,
        rule: usize,
        compiled: &CompiledRule,
        events: &[Event],
        chosen: &[usize],
        sc: &mut super::Scratch,
    ) -> Option<(usize, Vec<Failure>)> {
        let mut best: Option<(usize, usize, Vec<Failure>)> = None;
        let mut out = Vec::new();
        for &e in chosen {
            let Some(ev) = events.get(e) else { continue };
            self.matches(ev, sc, &mut out);
            let Some(k) = self.routed_source(rule, sc) else {
                continue;
            };
            // Apply that source's derived fields, as evaluation does.
            let mut saved = Vec::new();
            if let Some(&(a, b)) = k.and_then(|k| sc.derived_ranges.get(k)) {
                for &(fid, idx) in &sc.derived[a..b] {
                    let slot = &mut sc.view.slots[fid as usize];
                    saved.push((fid, *slot));
                    *slot = idx;
                }
            }
            let b = Blame {
                rule: compiled,
                view: &sc.view,
                names: &self.fields.names,
            };
            let failures = b.expr(&compiled.expr, true);
            let passing = b.passing_items();
            for &(fid, old) in saved.iter().rev() {
                sc.view.slots[fid as usize] = old;
            }
            let better = match &best {
                None => true,
                Some((_, p, f)) => {
                    (failures.len(), std::cmp::Reverse(passing)) < (f.len(), std::cmp::Reverse(*p))
                }
            };
            if better {
                best = Some((e, passing, failures));
            }
        }
        best.map(|(e, _, f)| (e, f))
    }

    /// Whether the event in `sc` (after [`RuleSet::matches`]) reaches `rule`: `Some(Some(k))` through
    /// its `k`-th source, `Some(None)` as an unrouted rule, `None` not at all.
    fn routed_source(&self, rule: usize, sc: &super::Scratch) -> Option<Option<usize>> {
        for (k, s) in sc.sources.iter().enumerate() {
            if self
                .rule_sources
                .get(rule)
                .is_some_and(|v| v.binary_search(s).is_ok())
            {
                return Some(Some(k));
            }
        }
        let unrouted = sc.sources.is_empty() || !self.routing;
        (unrouted && self.rule_unrouted.get(rule).copied().unwrap_or(false)).then_some(None)
    }

    fn source_names(&self, events: &[Event], sc: &mut super::Scratch) -> Vec<String> {
        let mut names: Vec<String> = events
            .iter()
            .flat_map(|ev| {
                let s = self.sources_of(ev, sc);
                if s.is_empty() {
                    vec![format!(
                        "{} (no mapped log source)",
                        ev.sensor.as_deref().unwrap_or("unknown sensor")
                    )]
                } else {
                    s
                }
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn explain_correlation(&self, rule: usize, events: &[Event], hits: &[Hit]) -> Explanation {
        let Some(plan) = self.plans.iter().find(|p| p.rule == rule) else {
            return summary_only("the correlation is not evaluated".into());
        };
        let mut refs: Vec<(usize, usize)> = Vec::new();
        for (r, feeds) in self.feeds.iter().enumerate() {
            for &(p, s) in feeds {
                if self.plans.get(p as usize).is_some_and(|pl| pl.rule == rule) {
                    refs.push((s as usize, r));
                }
            }
        }
        refs.sort_unstable();
        let counts: Vec<String> = refs
            .iter()
            .map(|&(_, r)| {
                let n = hits.iter().filter(|h| h.rule == r).count();
                format!("`{}` matched {n} event(s)", self.rules[r].meta.title)
            })
            .collect();
        let cond = plan
            .cond
            .ops
            .iter()
            .map(|(op, v)| format!("{} {v}", super::correlation::op_name(*op)))
            .collect::<Vec<_>>()
            .join(" and ");
        let need = match plan.kind {
            CorrType::Temporal => "every referenced rule".to_string(),
            CorrType::TemporalOrdered => "every referenced rule, in order".to_string(),
            k => format!(
                "{} {cond}{}",
                super::correlation::type_name(k),
                if plan.cond.fields.is_empty() {
                    String::new()
                } else {
                    format!(" of {}", plan.cond.fields.join(", "))
                }
            ),
        };
        let group = if plan.group_by.is_empty() {
            String::new()
        } else {
            format!(" per {}", plan.group_by.join(", "))
        };
        let mut summary = format!(
            "correlation needs {need} within {} s{group}; {}",
            plan.timespan_ms as f64 / 1000.0,
            counts.join(", ")
        );
        // The first referenced rule that matched nothing is the first thing to fix.
        let silent = refs
            .iter()
            .find(|&&(_, r)| !hits.iter().any(|h| h.rule == r));
        if let Some(&(_, r)) = silent {
            let inner = self.explain(r, events, &[], hits);
            summary.push_str(&format!(
                "; `{}`: {}",
                self.rules[r].meta.title, inner.summary
            ));
            return Explanation {
                event: inner.event,
                summary,
                failures: inner.failures,
            };
        }
        summary_only(summary)
    }
}

fn summary_only(summary: String) -> Explanation {
    Explanation {
        event: None,
        summary,
        failures: Vec::new(),
    }
}

/// Walks a compiled condition on one event and names what failed.
struct Blame<'a> {
    rule: &'a CompiledRule,
    view: &'a EventView,
    names: &'a [String],
}

impl Blame<'_> {
    /// The failures that keep `e` from evaluating to `want`.
    fn expr(&self, e: &Expr, want: bool) -> Vec<Failure> {
        if self.eval(e) == want {
            return Vec::new();
        }
        match (e, want) {
            (Expr::Sel(i), true) => self.selection(*i as usize),
            (Expr::Sel(i), false) => self.excluded(*i as usize),
            (Expr::Not(inner), w) => self.expr(inner, !w),
            // Every part must hold (AND wanted true, OR wanted false): each failing one is blamed.
            (Expr::And(xs), true) | (Expr::Or(xs), false) => {
                xs.iter().flat_map(|x| self.expr(x, want)).collect()
            }
            // One part would do: the nearest one is blamed.
            (Expr::Or(xs), true) | (Expr::And(xs), false) => xs
                .iter()
                .map(|x| self.expr(x, want))
                .min_by_key(Vec::len)
                .unwrap_or_default(),
        }
    }

    fn eval(&self, e: &Expr) -> bool {
        match e {
            Expr::Sel(i) => self
                .rule
                .sels
                .get(*i as usize)
                .is_some_and(|s| s.eval(self.view)),
            Expr::Not(x) => !self.eval(x),
            Expr::And(xs) => xs.iter().all(|x| self.eval(x)),
            Expr::Or(xs) => xs.iter().any(|x| self.eval(x)),
        }
    }

    fn name(&self, i: usize) -> String {
        self.rule.names.get(i).cloned().unwrap_or_default()
    }

    /// Failures of a selection that did not match: its failing items (for a list of maps, those of
    /// the nearest map).
    fn selection(&self, i: usize) -> Vec<Failure> {
        let Some(sel) = self.rule.sels.get(i) else {
            return Vec::new();
        };
        let name = self.name(i);
        let mut out = Vec::new();
        self.failing(sel, &name, &mut out);
        out
    }

    fn failing(&self, sel: &CSel, name: &str, out: &mut Vec<Failure>) {
        match sel {
            CSel::All(items) => out.extend(
                items
                    .iter()
                    .filter(|it| !it.eval(self.view))
                    .map(|it| self.failure(it, name, "no_match")),
            ),
            CSel::Any(alts) => {
                let best = alts
                    .iter()
                    .map(|a| {
                        let mut v = Vec::new();
                        self.failing(a, name, &mut v);
                        v
                    })
                    .min_by_key(Vec::len)
                    .unwrap_or_default();
                out.extend(best);
            }
        }
    }

    /// A negated selection that matched: the items that made it match.
    fn excluded(&self, i: usize) -> Vec<Failure> {
        let Some(sel) = self.rule.sels.get(i) else {
            return Vec::new();
        };
        let name = self.name(i);
        let mut out = Vec::new();
        matching(sel, self.view, &mut |it| {
            out.push(self.failure(it, &name, "excluded"))
        });
        if out.is_empty() {
            out.push(Failure {
                selection: name,
                kind: "excluded",
                field: String::new(),
                wanted: String::new(),
                actual: None,
                line: 0,
            });
        }
        out
    }

    fn failure(&self, it: &CItem, selection: &str, kind: &'static str) -> Failure {
        let actual = it.field.and_then(|fid| {
            let f = self.view.field(fid)?;
            if f.null {
                return Some("null".to_string());
            }
            let texts: Vec<&str> = self
                .view
                .atoms_of(f)
                .iter()
                .map(|a| self.view.orig(a))
                .collect();
            Some(clip(&texts.join(", ")))
        });
        let field = match it.field {
            Some(fid) if it.key.is_empty() => {
                self.names.get(fid as usize).cloned().unwrap_or_default()
            }
            _ => it.key.clone(),
        };
        Failure {
            selection: selection.to_string(),
            kind,
            field,
            wanted: wanted(it),
            actual,
            line: it.spec.line,
        }
    }

    /// Items that hold in selections the condition needs (how near an event came).
    fn passing_items(&self) -> usize {
        self.rule
            .sels
            .iter()
            .map(|s| count_passing(s, self.view))
            .sum()
    }
}

fn count_passing(sel: &CSel, view: &EventView) -> usize {
    match sel {
        CSel::All(items) => items.iter().filter(|i| i.eval(view)).count(),
        CSel::Any(alts) => alts
            .iter()
            .map(|a| count_passing(a, view))
            .max()
            .unwrap_or(0),
    }
}

fn matching(sel: &CSel, view: &EventView, f: &mut dyn FnMut(&CItem)) {
    match sel {
        CSel::All(items) => items.iter().for_each(f),
        CSel::Any(alts) => {
            if let Some(a) = alts.iter().find(|a| a.eval(view)) {
                matching(a, view, f)
            }
        }
    }
}

/// The values an item wants, as written after modifiers: `'x' or 'y'`, `all of 'x', 'y'`.
fn wanted(it: &CItem) -> String {
    let groups: Vec<String> = it
        .spec
        .groups
        .iter()
        .map(|g| {
            let alts: Vec<String> = g.iter().take(2).map(leaf_text).collect();
            if g.len() > 2 {
                format!("{} (+{} forms)", alts.join(" or "), g.len() - 2)
            } else {
                alts.join(" or ")
            }
        })
        .collect();
    let shown: Vec<&str> = groups.iter().take(MAX_VALUES).map(String::as_str).collect();
    let mut s = match it.linking {
        super::value::Linking::All if groups.len() > 1 => format!("all of {}", shown.join(", ")),
        _ => shown.join(" or "),
    };
    if groups.len() > MAX_VALUES {
        s.push_str(&format!(" (+{} more)", groups.len() - MAX_VALUES));
    }
    if it.negate {
        s = format!("not {s}");
    }
    clip(&s)
}

fn leaf_text(l: &Leaf) -> String {
    match l {
        Leaf::Str { pat, .. } => format!("'{pat}'"),
        Leaf::Num(n) => n.to_string(),
        Leaf::Bool(b) => b.to_string(),
        Leaf::Null => "null".into(),
        Leaf::Exists(true) => "the field present".into(),
        Leaf::Exists(false) => "the field absent".into(),
        Leaf::Regex { pattern, .. } => format!("/{pattern}/"),
        Leaf::Cidr(n) => n.to_string(),
        Leaf::Cmp(op, v) => format!("{op:?} {v}").to_lowercase(),
        Leaf::TimePart(u, v) => format!("{u:?} {v}").to_lowercase(),
        Leaf::FieldRef { field, .. } => format!("the value of {field}"),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > MAX_TEXT {
        format!("{}...", s.chars().take(MAX_TEXT).collect::<String>())
    } else {
        s.to_string()
    }
}
