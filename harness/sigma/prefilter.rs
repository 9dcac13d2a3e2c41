//! The literal pre-filter: skip a rule when the event cannot contain any literal the rule needs.
//!
//! Input: compiled rules. Output: per rule, either "always evaluate" or a set of needles (folded
//! literals) such that any event the rule matches contains at least one of them somewhere in its
//! folded values; and one Aho-Corasick automaton over all needles, run once per event. The reasoning is
//! per construct: an AND needs one of its children's sets, an OR needs all of them (their union), a
//! NOT, a regex, a number or a null test gives no requirement. The engine's tests compare every result
//! with the pre-filter switched off; this module must only ever skip rules that cannot match.

use super::compile::{CItem, CSel, CompiledRule, Expr};
use super::matcher::fold;
use super::value::{Leaf, Linking};
use aho_corasick::AhoCorasick;
use std::collections::HashMap;

/// Shortest literal worth indexing; shorter ones make the requirement "always evaluate".
const MIN_NEEDLE: usize = 3;

type Req = Option<Vec<String>>;

/// The pre-filter over a rule set.
#[derive(Debug, Clone)]
pub struct Prefilter {
    ac: Option<AhoCorasick>,
    /// Per rule: needle ids (any present = evaluate), or `None` = always evaluate.
    pub rule_needles: Vec<Option<Vec<u32>>>,
    pub needle_count: usize,
}

impl Prefilter {
    pub fn build(rules: &[Option<&CompiledRule>]) -> Prefilter {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut needles: Vec<String> = Vec::new();
        let mut rule_needles = Vec::with_capacity(rules.len());
        for r in rules {
            let req = r.and_then(rule_req);
            rule_needles.push(req.map(|set| {
                let mut v: Vec<u32> = set
                    .into_iter()
                    .map(|n| {
                        *ids.entry(n.clone()).or_insert_with(|| {
                            needles.push(n);
                            (needles.len() - 1) as u32
                        })
                    })
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }));
        }
        let ac = if needles.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::Standard)
                .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                .build(&needles)
                .ok()
        };
        // Without an automaton no needle can be confirmed: evaluate everything.
        if ac.is_none() {
            for r in rule_needles.iter_mut() {
                *r = None;
            }
        }
        Prefilter {
            ac,
            rule_needles,
            needle_count: needles.len(),
        }
    }

    /// Marks the needles present in `haystack` (folded event texts) in `seen` with `stamp`.
    /// Marks the needles present in `haystack` (folded event texts) in `seen` with `stamp`, and lists
    /// each one once in `list`.
    pub fn scan(&self, haystack: &str, seen: &mut Vec<u32>, list: &mut Vec<u32>, stamp: u32) {
        list.clear();
        let Some(ac) = &self.ac else { return };
        if seen.len() < self.needle_count {
            seen.resize(self.needle_count, 0);
        }
        for m in ac.find_overlapping_iter(haystack) {
            let id = m.pattern().as_u32();
            if let Some(s) = seen.get_mut(id as usize) {
                if *s != stamp {
                    *s = stamp;
                    list.push(id);
                }
            }
        }
    }

    /// Whether rule `r` must be evaluated given the needles seen.
    #[inline]
    pub fn admits(&self, r: usize, seen: &[u32], stamp: u32) -> bool {
        match self.rule_needles.get(r) {
            Some(Some(ids)) => ids
                .iter()
                .any(|&i| seen.get(i as usize).is_some_and(|&s| s == stamp)),
            _ => true,
        }
    }
}

/// Picks the stronger of two requirements: the one whose shortest needle is longest, then fewer needles.
fn best(a: Req, b: Req) -> Req {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) => {
            let score = |v: &Vec<String>| {
                (
                    v.iter().map(|s| s.len()).min().unwrap_or(0),
                    usize::MAX - v.len(),
                )
            };
            if score(&y) > score(&x) {
                Some(y)
            } else {
                Some(x)
            }
        }
    }
}

fn union(reqs: impl IntoIterator<Item = Req>) -> Req {
    let mut out = Vec::new();
    for r in reqs {
        out.extend(r?);
    }
    if out.is_empty() {
        return None;
    }
    out.sort();
    out.dedup();
    Some(out)
}

fn rule_req(r: &CompiledRule) -> Req {
    expr_req(&r.expr, r)
}

fn expr_req(e: &Expr, r: &CompiledRule) -> Req {
    match e {
        Expr::Sel(i) => r.sels.get(*i as usize).and_then(sel_req),
        Expr::Not(_) => None,
        Expr::And(items) => items.iter().map(|x| expr_req(x, r)).fold(None, best),
        Expr::Or(items) => union(items.iter().map(|x| expr_req(x, r))),
    }
}

fn sel_req(s: &CSel) -> Req {
    match s {
        CSel::All(items) => items.iter().map(item_req).fold(None, best),
        CSel::Any(alts) => union(alts.iter().map(sel_req)),
    }
}

fn item_req(i: &CItem) -> Req {
    if i.negate {
        return None;
    }
    let groups = i.spec.groups.iter().map(|g| union(g.iter().map(leaf_req)));
    match i.linking {
        Linking::Any => union(groups),
        Linking::All => groups.fold(None, best),
    }
}

fn leaf_req(l: &Leaf) -> Req {
    match l {
        Leaf::Str { pat, .. } => {
            let lit = fold(&pat.longest_literal()?);
            (lit.len() >= MIN_NEEDLE && !lit.contains('\u{0}')).then(|| vec![lit])
        }
        _ => None,
    }
}
