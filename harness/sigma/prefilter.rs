//! The literal pre-filter: skip a rule when the event cannot contain any literal the rule needs.
//!
//! Input: compiled rules. Output: per rule, either "always evaluate" or a set of needles (a folded
//! literal and the field it must occur in, or any field for keywords) such that any event the rule
//! matches has at least one of them; and one Aho-Corasick automaton per field over that field's
//! needles (plus one for keywords over every value), run once per event on just those values. The
//! reasoning is per construct: an AND needs one of its children's sets, an OR needs all of them (their
//! union), a NOT, a regex, a number or a null test gives no requirement. The engine's tests compare
//! every result with the pre-filter switched off; this module must only ever skip rules that cannot
//! match.

use super::compile::{CItem, CSel, CompiledRule, Expr};
use super::matcher::fold;
use super::value::{Leaf, Linking};
use aho_corasick::AhoCorasick;
use rayon::prelude::*;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use std::collections::HashMap;

/// Shortest literal worth indexing; shorter ones make the requirement "always evaluate". A single
/// non-ASCII character (two bytes or more: the Cyrillic look-alikes rules search for) is rare enough
/// in Windows and Linux telemetry to be worth it too.
const MIN_NEEDLE: usize = 3;

/// Whether a folded literal is worth a needle (see [`MIN_NEEDLE`]).
fn indexable(lit: &str) -> bool {
    (lit.len() >= MIN_NEEDLE || lit.len() >= 2 && !lit.is_ascii()) && !lit.contains('\u{0}')
}

/// Largest needle set (count, total bytes) scanned with a DFA rather than an NFA: a DFA scans
/// fastest, but its size and build time grow with the needles' bytes.
const DFA_MAX_NEEDLES: (usize, usize) = (500, 32 << 10);

/// A literal and where it must occur: in field `Some(id)`, or (keywords) in any value.
type Needle = (Option<u32>, String);

/// One clause: any of these needles (`None`: no requirement).
type Req = Option<Vec<Needle>>;

/// Clauses that must all hold (each: any of its needles), strongest first; `None`: no requirement.
type Cnf = Option<Vec<Vec<Needle>>>;

/// Most clauses kept per requirement: the first admits a rule as a candidate, the others must also
/// hold before it is evaluated.
const MAX_CLAUSES: usize = 3;

/// One automaton and the global needle id of each of its patterns.
#[derive(Debug, Clone)]
struct Automaton {
    ac: AhoCorasick,
    /// For small sets, a packed (SIMD) searcher that tells at once whether any needle occurs: most
    /// values hold none, and the automaton's own prefilter can be a rare-byte scan that stops on
    /// every `:` or `\\` (ten times slower on event text, measured).
    quick: Option<aho_corasick::packed::Searcher>,
    ids: Vec<u32>,
}

impl Automaton {
    fn build(needles: Vec<(String, u32)>) -> Option<Automaton> {
        let (texts, ids): (Vec<String>, Vec<u32>) = needles.into_iter().unzip();
        let bytes: usize = texts.iter().map(String::len).sum();
        // `Searcher::new` gives `None` where no SIMD searcher exists (too many needles, or no
        // SSSE3/AVX2): the automaton alone is used then. With one, the automaton only runs on the
        // rare values that hold a needle, so it is the kind that builds fastest.
        let quick = aho_corasick::packed::Searcher::new(&texts);
        let kind =
            if quick.is_none() && texts.len() <= DFA_MAX_NEEDLES.0 && bytes <= DFA_MAX_NEEDLES.1 {
                aho_corasick::AhoCorasickKind::DFA
            } else {
                aho_corasick::AhoCorasickKind::ContiguousNFA
            };
        let ac = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .kind(Some(kind))
            .build(&texts)
            .ok()?;
        Some(Automaton { ac, quick, ids })
    }

    fn scan(&self, haystack: &str, seen: &mut [u32], list: &mut Vec<u32>, stamp: u32) {
        if let Some(q) = &self.quick {
            if q.find(haystack).is_none() {
                return;
            }
        }
        for m in self.ac.find_overlapping_iter(haystack) {
            let Some(&id) = self.ids.get(m.pattern().as_usize()) else {
                continue;
            };
            if let Some(s) = seen.get_mut(id as usize) {
                if *s != stamp {
                    *s = stamp;
                    list.push(id);
                }
            }
        }
    }
}

/// The pre-filter over a rule set.
#[derive(Debug, Clone)]
pub struct Prefilter {
    /// Keyword needles, searched in every value the sensor wrote (events no source takes).
    keywords: Option<Automaton>,
    /// Every keyword needle: (folded text, needle id).
    keyword_needles: Vec<(String, u32)>,
    /// Distinct per-source keyword needle sets: the automaton over one set's needles, and the sets
    /// (indices into this list) it includes, which need no scan of their own beside it.
    keyword_sets: Vec<(Automaton, Vec<u32>)>,
    /// Per source: its keyword needle set (the keyword needles of the rules that source serves).
    source_keywords: Vec<Option<u32>>,
    /// Per field id: the needles of items on that field, searched in that field's values only.
    by_field: Vec<Option<Automaton>>,
    /// Per rule: needle ids (any present = a candidate), or `None` = always evaluate.
    pub rule_needles: Vec<Option<Vec<u32>>>,
    /// Per rule: further clauses (needle ids, any present) that must all hold too: an AND of
    /// literals in different fields (`Image|contains` a common path and `CommandLine|contains` a
    /// rare word) needs both, whichever admitted it.
    rule_more: Vec<Vec<Vec<u32>>>,
    pub needle_count: usize,
}

impl Prefilter {
    pub fn build(rules: &[Option<&CompiledRule>]) -> Prefilter {
        let mut ids: HashMap<Needle, u32> = HashMap::new();
        let mut needles: Vec<Needle> = Vec::new();
        let mut rule_needles = Vec::with_capacity(rules.len());
        let mut rule_more: Vec<Vec<Vec<u32>>> = Vec::with_capacity(rules.len());
        let mut intern = |set: Vec<Needle>| -> Vec<u32> {
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
        };
        for r in rules {
            let mut clauses = r.and_then(rule_req).unwrap_or_default().into_iter();
            rule_needles.push(clauses.next().map(&mut intern));
            rule_more.push(clauses.map(&mut intern).collect());
        }
        let mut keyword_needles = Vec::new();
        let mut field_needles: Vec<Vec<(String, u32)>> = Vec::new();
        for (id, (field, text)) in needles.iter().enumerate() {
            let entry = (text.clone(), id as u32);
            match field {
                None => keyword_needles.push(entry),
                Some(f) => {
                    let f = *f as usize;
                    if field_needles.len() <= f {
                        field_needles.resize_with(f + 1, Vec::new);
                    }
                    field_needles[f].push(entry);
                }
            }
        }
        // The automata are independent: built in parallel (the largest take most of the time).
        let (keywords, by_field): (Option<Option<Automaton>>, Vec<Option<Option<Automaton>>>) =
            rayon::join(
                || (!keyword_needles.is_empty()).then(|| Automaton::build(keyword_needles.clone())),
                || {
                    field_needles
                        .into_par_iter()
                        .map(|n| (!n.is_empty()).then(|| Automaton::build(n)))
                        .collect()
                },
            );
        // `Some(None)`: needles whose automaton could not be built.
        let ok = keywords.as_ref().is_none_or(Option::is_some)
            && by_field
                .iter()
                .all(|a| a.as_ref().is_none_or(Option::is_some));
        let keywords = keywords.flatten();
        let by_field: Vec<Option<Automaton>> = by_field.into_iter().map(Option::flatten).collect();
        // Without every automaton some needle could never be confirmed: evaluate everything.
        if !ok {
            for r in rule_needles.iter_mut() {
                *r = None;
            }
            for r in rule_more.iter_mut() {
                r.clear();
            }
        }
        Prefilter {
            keywords,
            keyword_needles,
            keyword_sets: Vec::new(),
            source_keywords: Vec::new(),
            by_field,
            rule_needles,
            rule_more,
            needle_count: needles.len(),
        }
    }

    /// Gives each source (`buckets[s]`: the rules it serves) the keyword needles of its own rules,
    /// so an event is searched only for the keywords of the rules it is routed to: one rule for any
    /// Windows event (`product: windows` keywords) makes a handful of needles, not every keyword of
    /// every service. Sources with the same set share one automaton. Without this (or when an
    /// automaton cannot be built) events are searched for every keyword needle.
    pub fn split_keywords(&mut self, buckets: &[Vec<u32>]) {
        let is_keyword: HashMap<u32, &str> = self
            .keyword_needles
            .iter()
            .map(|(t, id)| (*id, t.as_str()))
            .collect();
        let mut sets: Vec<Vec<u32>> = Vec::new();
        let mut source_keywords = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let mut set: Vec<u32> = bucket
                .iter()
                .flat_map(|&r| {
                    let first = self.rule_needles.get(r as usize).and_then(Option::as_ref);
                    let more = self.rule_more.get(r as usize).into_iter().flatten();
                    first.into_iter().chain(more).flatten()
                })
                .copied()
                .filter(|id| is_keyword.contains_key(id))
                .collect();
            set.sort_unstable();
            set.dedup();
            if set.is_empty() {
                source_keywords.push(None);
                continue;
            }
            let k = match sets.iter().position(|s| *s == set) {
                Some(k) => k,
                None => {
                    sets.push(set);
                    sets.len() - 1
                }
            };
            source_keywords.push(Some(k as u32));
        }
        let built: Vec<Option<(Automaton, Vec<u32>)>> = sets
            .par_iter()
            .enumerate()
            .map(|(k, set)| {
                let needles = set
                    .iter()
                    .map(|id| (is_keyword[id].to_string(), *id))
                    .collect();
                let a = Automaton::build(needles)?;
                let included = (0..sets.len())
                    .filter(|&j| j != k && sets[j].iter().all(|id| set.binary_search(id).is_ok()))
                    .map(|j| j as u32)
                    .collect();
                Some((a, included))
            })
            .collect();
        let Some(keyword_sets) = built.into_iter().collect() else {
            return;
        };
        self.keyword_sets = keyword_sets;
        self.source_keywords = source_keywords;
    }

    /// Sizes the marks for this pre-filter's needles and starts a new event's list.
    pub fn start(&self, seen: &mut Vec<u32>, list: &mut Vec<u32>) {
        list.clear();
        if seen.len() < self.needle_count {
            seen.resize(self.needle_count, 0);
        }
    }

    /// Whether field `field` has needles of its own (its values are worth scanning).
    #[inline]
    pub fn has_field(&self, field: u32) -> bool {
        matches!(self.by_field.get(field as usize), Some(Some(_)))
    }

    /// Marks the needles of field `field` present in `haystack` (folded texts of one of its values)
    /// in `seen` with `stamp`, listing each one once in `list`.
    pub fn scan_field(
        &self,
        field: u32,
        haystack: &str,
        seen: &mut [u32],
        list: &mut Vec<u32>,
        stamp: u32,
    ) {
        if let Some(Some(a)) = self.by_field.get(field as usize) {
            a.scan(haystack, seen, list, stamp);
        }
    }

    /// Same for the keyword needles, over the folded texts of every value the sensor wrote: those
    /// of the rules of `sources` (the event's sources; empty: every keyword needle). `sets` is
    /// scratch space.
    pub fn scan_keywords(
        &self,
        haystack: &str,
        sources: &[u32],
        sets: &mut Vec<u32>,
        seen: &mut [u32],
        list: &mut Vec<u32>,
        stamp: u32,
    ) {
        if sources.is_empty() || self.source_keywords.is_empty() {
            if let Some(a) = &self.keywords {
                a.scan(haystack, seen, list, stamp);
            }
            return;
        }
        sets.clear();
        sets.extend(
            sources
                .iter()
                .filter_map(|&s| self.source_keywords.get(s as usize).copied().flatten()),
        );
        sets.sort_unstable();
        sets.dedup();
        for i in 0..sets.len() {
            let k = sets[i];
            let Some((a, _)) = self.keyword_sets.get(k as usize) else {
                continue;
            };
            // A set another of the event's sets includes is found by that set's scan. Sets are
            // distinct, so two cannot include each other and skip both; inclusion is transitive, so
            // the largest of a chain is scanned.
            let covered = sets.iter().any(|&j| {
                j != k
                    && self
                        .keyword_sets
                        .get(j as usize)
                        .is_some_and(|(_, inc)| inc.contains(&k))
            });
            if !covered {
                a.scan(haystack, seen, list, stamp);
            }
        }
    }

    /// Whether rule `r` must be evaluated given the needles seen.
    #[inline]
    pub fn admits(&self, r: usize, seen: &[u32], stamp: u32) -> bool {
        match self.rule_needles.get(r) {
            Some(Some(ids)) => any_seen(ids, seen, stamp) && self.rest_holds(r, seen, stamp),
            _ => true,
        }
    }

    /// Whether every further clause of rule `r` (beyond the one that made it a candidate) holds.
    #[inline]
    pub fn rest_holds(&self, r: usize, seen: &[u32], stamp: u32) -> bool {
        self.rule_more
            .get(r)
            .is_none_or(|more| more.iter().all(|ids| any_seen(ids, seen, stamp)))
    }
}

#[inline]
fn any_seen(ids: &[u32], seen: &[u32], stamp: u32) -> bool {
    ids.iter()
        .any(|&i| seen.get(i as usize).is_some_and(|&s| s == stamp))
}

/// A clause's strength: its shortest needle's length (longer is rarer), then fewer needles.
fn strength(v: &[Needle]) -> (usize, usize) {
    (
        v.iter().map(|s| s.1.len()).min().unwrap_or(0),
        usize::MAX - v.len(),
    )
}

/// Both requirements: their clauses together, the strongest [`MAX_CLAUSES`] kept, strongest first.
fn and(a: Cnf, b: Cnf) -> Cnf {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(mut x), Some(y)) => {
            x.extend(y);
            x.sort_by(|p, q| strength(q).cmp(&strength(p)).then_with(|| p.cmp(q)));
            x.dedup();
            x.truncate(MAX_CLAUSES);
            Some(x)
        }
    }
}

/// Either requirement: one clause, the union of each one's strongest clause (each implies its own).
fn any_of(reqs: impl IntoIterator<Item = Cnf>) -> Cnf {
    let mut out = Vec::new();
    for r in reqs {
        out.extend(r?.into_iter().next()?);
    }
    if out.is_empty() {
        return None;
    }
    out.sort();
    out.dedup();
    Some(vec![out])
}

fn clause(r: Req) -> Cnf {
    r.map(|c| vec![c])
}

fn rule_req(r: &CompiledRule) -> Cnf {
    expr_req(&r.expr, r)
}

fn expr_req(e: &Expr, r: &CompiledRule) -> Cnf {
    match e {
        Expr::Sel(i) => r.sels.get(*i as usize).and_then(sel_req),
        Expr::Not(_) => None,
        Expr::And(items) => items.iter().map(|x| expr_req(x, r)).fold(None, and),
        Expr::Or(items) => any_of(items.iter().map(|x| expr_req(x, r))),
    }
}

fn sel_req(s: &CSel) -> Cnf {
    match s {
        CSel::All(items) => items.iter().map(item_req).fold(None, and),
        CSel::Any(alts) => any_of(alts.iter().map(sel_req)),
    }
}

fn item_req(i: &CItem) -> Cnf {
    if i.negate {
        return None;
    }
    let groups = i
        .spec
        .groups
        .iter()
        .map(|g| any_of(g.iter().map(|l| leaf_req(i.field, l))));
    match i.linking {
        Linking::Any => any_of(groups),
        Linking::All => groups.fold(None, and),
    }
}

fn leaf_req(field: Option<u32>, l: &Leaf) -> Cnf {
    match l {
        Leaf::Str { pat, .. } => {
            let lit = fold(&pat.longest_literal()?);
            indexable(&lit).then(|| vec![vec![(field, lit)]])
        }
        Leaf::Regex {
            pattern,
            insensitive,
            multiline,
            dotall,
        } => {
            let hir = regex_syntax::ParserBuilder::new()
                .case_insensitive(*insensitive)
                .multi_line(*multiline)
                .dot_matches_new_line(*dotall)
                .build()
                .parse(pattern)
                .ok()?;
            // Every match starts with a prefix literal and ends with a suffix literal, and holds a
            // match of each part it cannot do without, which starts with one of that part's
            // prefix literals (`werfaultsecure\.exe` inside `\.exe\s+[^"]{0,64}werfaultsecure\.exe`).
            let mut parts = Vec::new();
            required_parts(&hir, &mut parts);
            let inner = parts
                .iter()
                .map(|part| clause(regex_literals(field, part, ExtractKind::Prefix)));
            [ExtractKind::Prefix, ExtractKind::Suffix]
                .map(|kind| clause(regex_literals(field, &hir, kind)))
                .into_iter()
                .chain(inner)
                .fold(None, and)
        }
        _ => None,
    }
}

/// Items of a concatenation a tail keeps: a match of the whole tail starts with a match of its first
/// items, so a shorter tail gives a valid (weaker) requirement, and literal extraction stops long
/// before 32 items anyway.
const TAIL_ITEMS: usize = 32;

/// Most tails taken from one regex: a long literal (a 20,000-letter case-insensitive word is 20,000
/// items) must not cost time or memory in proportion to its length squared.
const MAX_TAILS: usize = 256;

/// Parts of a regex every match contains a match of: tails of a concatenation (its items from any
/// one on, at most [`TAIL_ITEMS`] of them; a case-insensitive word is a run of one-letter classes, so
/// a literal inside it starts at an item) and, within the items, their own such parts, through groups
/// and repetitions of at least one. At most [`MAX_TAILS`] parts: fewer parts, fewer requirements,
/// never a wrong one.
fn required_parts(hir: &regex_syntax::hir::Hir, out: &mut Vec<regex_syntax::hir::Hir>) {
    use regex_syntax::hir::{Hir, HirKind};
    if out.len() >= MAX_TAILS {
        return;
    }
    match hir.kind() {
        HirKind::Concat(items) => {
            for (i, item) in items.iter().enumerate() {
                if out.len() >= MAX_TAILS {
                    return;
                }
                if i > 0 {
                    let end = items.len().min(i + TAIL_ITEMS);
                    out.push(Hir::concat(items[i..end].to_vec()));
                }
                required_parts(item, out);
            }
        }
        HirKind::Capture(c) => required_parts(&c.sub, out),
        HirKind::Repetition(r) if r.min >= 1 => required_parts(&r.sub, out),
        _ => {}
    }
}

/// Literals one of which every match of a regex starts with (`Prefix`) or ends with (`Suffix`),
/// folded: a match is a run of whole characters of the value, and folding goes character by
/// character, so the folded value contains the folded literal. `None` when the regex has no such
/// finite set, or one of its literals is too short to index once cut to whole characters.
/// Case-insensitive regexes give every case variant the regex engine accepts (`ſ` for `s`, the
/// Kelvin sign for `k`), and each is folded, so none is lost.
fn regex_literals(field: Option<u32>, hir: &regex_syntax::hir::Hir, kind: ExtractKind) -> Req {
    let mut ex = Extractor::new();
    ex.kind(kind.clone());
    let seq = ex.extract(hir);
    let lits = seq.literals()?;
    if lits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(lits.len());
    for l in lits {
        let b = l.as_bytes();
        // A literal cut to a byte limit can end (prefix) or start (suffix) inside a character.
        let text = match kind {
            ExtractKind::Suffix => (0..4.min(b.len() + 1))
                .find_map(|i| b.get(i..).and_then(|t| std::str::from_utf8(t).ok()))?,
            _ => match std::str::from_utf8(b) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(b.get(..e.valid_up_to())?).ok()?,
            },
        };
        let lit = fold(text);
        if !indexable(&lit) {
            return None;
        }
        out.push((field, lit));
    }
    out.sort();
    out.dedup();
    Some(out)
}
