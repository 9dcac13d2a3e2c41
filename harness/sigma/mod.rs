//! The native Sigma engine: rule files in, compiled [`RuleSet`] out, hits per event.
//!
//! Input: rule files and folders (single- and multi-document YAML), optional placeholder values and
//! mapping files, then [`Event`]s. Output: an immutable [`RuleSet`] (every rule with its load status:
//! ready, unsupported with the reason, or invalid with located diagnostics) and, per event, the rules
//! that match. Stages: [`yaml`] (documents with lines) -> [`rule`] (checked rule description, values
//! through their modifiers in [`value`]) -> [`compile`] (matchers, resolved conditions) -> evaluation,
//! routed by [`logsource`] and pruned by the [`prefilter`]. Correlation rules ([`correlation`]) run
//! after that pass, over the hits of the rules they name, with their state in a
//! [`correlation::CorrelationState`] the caller owns.
//!
//! This module never treats a construct it cannot evaluate as a no-match (such a rule is reported
//! `Unsupported` and never evaluated), never reads files during evaluation and never mutates itself
//! after it is built: evaluation is a pure function of (`RuleSet`, `Event`), and per-thread buffers live
//! in a [`Scratch`] the caller owns.

pub mod compile;
pub mod condition;
pub mod correlation;
pub mod explain;
pub mod logsource;
pub mod matcher;
pub mod prefilter;
pub mod rule;
pub mod value;
pub mod yaml;

use crate::diag::{Diagnostic, Location, Severity};
use crate::telemetry::Event;
use compile::{compile_selection, resolve_conditions, CSel, CompiledRule, Expr, FieldTable};
use condition::CondError;
pub use correlation::CorrelationHit;
use correlation::{Correlation, CorrelationState, Plan};
use logsource::{covers, resolve_field, Router};
use matcher::{EventView, ABSENT};
use prefilter::Prefilter;
use rayon::prelude::*;
use rule::{parse_doc, DetectionRule, DocKind, FilterRule, LogSource, RuleMeta};
use std::path::{Path, PathBuf};
pub use value::Placeholders;

/// How a rule set is built.
#[derive(Debug, Clone)]
pub struct Options {
    /// Values for `|expand` placeholders.
    pub placeholders: Placeholders,
    /// Extra mapping files (same format as the built-in one), applied after it.
    pub mappings: Vec<PathBuf>,
    /// Route events by logsource (`false`: every rule sees every event; used by conformance tests).
    pub routing: bool,
    /// Use the literal pre-filter (`false` only to check that it changes nothing).
    pub prefilter: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            placeholders: Placeholders::new(),
            mappings: Vec::new(),
            routing: true,
            prefilter: true,
        }
    }
}

/// What kind of document a rule entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Detection,
    Correlation,
    Filter,
}

/// Whether a rule can be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStatus {
    /// Compiled and evaluated.
    Ready,
    /// Valid, but the engine cannot evaluate it; never matches, and says why.
    Unsupported { reason: String, location: Location },
    /// The rule could not be loaded; its diagnostics say why.
    Invalid,
}

/// A rule as reports show it.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub meta: RuleMeta,
    pub logsource: LogSource,
    pub kind: RuleKind,
    pub status: RuleStatus,
    /// Problems found in this rule (errors and warnings).
    pub diagnostics: Vec<Diagnostic>,
    /// How many mapping sources feed this rule (0 = it can never see an event).
    pub sources: usize,
}

impl RuleInfo {
    /// The rule's id, or its title when it has none.
    pub fn key(&self) -> &str {
        self.meta.id.as_deref().unwrap_or(&self.meta.title)
    }
}

/// One match: an event (index in the evaluated slice) and a rule (index in [`RuleSet::rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub event: usize,
    pub rule: usize,
}

/// A compiled, immutable set of rules.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<RuleInfo>,
    compiled: Vec<Option<CompiledRule>>,
    fields: FieldTable,
    router: Router,
    /// Per mapping source: indices of the ready rules it feeds.
    buckets: Vec<Vec<u32>>,
    /// Rules that see events no source claims (rules without logsource keys; all rules without routing).
    unrouted: Vec<u32>,
    prefilter: Option<Prefilter>,
    /// Per source: the rules of its bucket that the pre-filter cannot prune (evaluated on every event
    /// of that source). Without the pre-filter, the whole bucket.
    always: Vec<Vec<u32>>,
    /// The same for the unrouted bucket.
    unrouted_always: Vec<u32>,
    /// Per needle: the rules that need it (a rule is a candidate when one of its needles is present).
    postings: Vec<Vec<u32>>,
    /// Per rule: the sources that feed it, sorted.
    rule_sources: Vec<Vec<u32>>,
    /// Per rule: whether it is in the unrouted bucket.
    rule_unrouted: Vec<bool>,
    diagnostics: Vec<Diagnostic>,
    routing: bool,
    /// Ready correlations, inner before outer (a chained correlation after those it refers to).
    plans: Vec<Plan>,
    /// Per rule: the (plan, slot) pairs its hits feed.
    feeds: Vec<Vec<(u32, u32)>>,
    /// Per rule: whether its own hits are reported (false for a rule only correlations use,
    /// `generate: false`).
    reported: Vec<bool>,
}

/// Per-thread evaluation buffers, reused across events.
#[derive(Debug, Default)]
pub struct Scratch {
    view: EventView,
    touched: Vec<u32>,
    sources: Vec<u32>,
    derived: Vec<(u32, u32)>,
    derived_ranges: Vec<(usize, usize)>,
    saved: Vec<(u32, u32)>,
    seen: Vec<u32>,
    seen_list: Vec<u32>,
    keyword_sets: Vec<u32>,
    cands: Vec<u32>,
    cand_stamp: Vec<u32>,
    fired: Vec<u32>,
    stamp: u32,
    buf: String,
}

/// Rule files under a path: the file itself, or every `.yml` / `.yaml` below a folder, sorted.
pub fn rule_files(path: &Path, out: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            // (path, is a folder): the entry's own type, free from the listing; a link is followed.
            let mut entries: Vec<(PathBuf, bool)> = match std::fs::read_dir(path) {
                Ok(rd) => rd
                    .filter_map(|e| {
                        let e = e.ok()?;
                        let p = e.path();
                        let dir = match e.file_type() {
                            Ok(t) if !t.is_symlink() => t.is_dir(),
                            _ => p.is_dir(),
                        };
                        Some((p, dir))
                    })
                    .collect(),
                Err(e) => {
                    diags.push(Diagnostic::error(
                        Location::file(path),
                        format!("cannot read folder: {e}"),
                    ));
                    return;
                }
            };
            // Entries of one folder differ only in their names: comparing the names' bytes gives
            // the order comparing whole paths gives, without parsing every path's components.
            entries.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
            for (e, dir) in entries {
                if dir {
                    rule_files(&e, out, diags);
                } else if matches!(e.extension().and_then(|x| x.to_str()), Some("yml" | "yaml")) {
                    out.push(e);
                }
            }
        }
        Ok(_) => out.push(path.to_path_buf()),
        Err(e) => diags.push(Diagnostic::error(
            Location::file(path),
            format!("cannot read rules: {e}"),
        )),
    }
}

/// Reads a rule file as UTF-8 text, with a located diagnostic when it cannot be used.
fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error(Location::file(path), format!("cannot read file: {e}")))?;
    if bytes.len() > yaml::MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            Location::file(path),
            format!(
                "file is {} bytes; rule files larger than {} bytes are not read",
                bytes.len(),
                yaml::MAX_FILE_BYTES
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        Diagnostic::error(
            Location::new(path, line, 0),
            "file is not valid UTF-8 (Sigma rules are UTF-8 YAML)",
        )
    })
}

impl RuleSet {
    /// Loads every rule under `paths` (files or folders).
    pub fn load(paths: &[PathBuf], opts: &Options) -> RuleSet {
        let mut files = Vec::new();
        let mut diags = Vec::new();
        for p in paths {
            let before = files.len();
            rule_files(p, &mut files, &mut diags);
            if files.len() == before && p.is_dir() {
                diags.push(Diagnostic::warning(
                    Location::file(p),
                    "no rule files (.yml or .yaml) in this folder",
                ));
            }
        }
        let texts: Vec<(PathBuf, Result<String, Diagnostic>)> = files
            .par_iter()
            .map(|p| (p.clone(), read_text(p)))
            .collect();
        let mut set = RuleSet::from_texts(texts, opts);
        diags.append(&mut set.diagnostics);
        set.diagnostics = diags;
        set
    }

    /// Builds a rule set from rule texts (path used for diagnostics and reports).
    pub fn from_texts(
        texts: Vec<(PathBuf, Result<String, Diagnostic>)>,
        opts: &Options,
    ) -> RuleSet {
        let mut diagnostics = Vec::new();
        let parsed: Vec<(Vec<rule::ParsedDoc>, Vec<Diagnostic>)> = texts
            .par_iter()
            .map(|(path, text)| match text {
                Err(d) => (Vec::new(), vec![d.clone()]),
                Ok(text) => {
                    // A UTF-8 byte-order mark (Windows editors write one) is not content.
                    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
                    let (docs, d) = yaml::parse_documents(path, text);
                    let parsed = docs
                        .iter()
                        .map(|doc| parse_doc(doc, path, &opts.placeholders))
                        .collect();
                    (parsed, d)
                }
            })
            .collect();

        let mut fields = FieldTable::default();
        let mut rules = Vec::new();
        let mut compiled = Vec::new();
        let mut filters: Vec<FilterRule> = Vec::new();
        let mut correlations: Vec<(usize, Correlation)> = Vec::new();
        for (docs, file_diags) in parsed {
            diagnostics.extend(file_diags);
            for pd in docs {
                match pd.kind {
                    DocKind::Filter(f) => {
                        let bad = pd.diagnostics.iter().any(|d| d.severity == Severity::Error);
                        diagnostics.extend(pd.diagnostics.iter().cloned());
                        let status = if bad {
                            RuleStatus::Invalid
                        } else {
                            filters.push(f.clone());
                            RuleStatus::Ready
                        };
                        rules.push(RuleInfo {
                            meta: f.meta,
                            logsource: f.logsource,
                            kind: RuleKind::Filter,
                            status,
                            diagnostics: pd.diagnostics,
                            sources: 0,
                        });
                        compiled.push(None);
                    }
                    DocKind::Correlation(meta, corr) => {
                        diagnostics.extend(pd.diagnostics.iter().cloned());
                        let status = match corr {
                            Some(c) => {
                                correlations.push((rules.len(), c));
                                // Settled by resolve_correlations once every rule is loaded.
                                RuleStatus::Ready
                            }
                            None => RuleStatus::Invalid,
                        };
                        rules.push(RuleInfo {
                            meta,
                            logsource: LogSource::default(),
                            kind: RuleKind::Correlation,
                            status,
                            diagnostics: pd.diagnostics,
                            sources: 0,
                        });
                        compiled.push(None);
                    }
                    DocKind::Broken(meta) => {
                        diagnostics.extend(pd.diagnostics.iter().cloned());
                        rules.push(RuleInfo {
                            meta,
                            logsource: LogSource::default(),
                            kind: RuleKind::Detection,
                            status: RuleStatus::Invalid,
                            diagnostics: pd.diagnostics,
                            sources: 0,
                        });
                        compiled.push(None);
                    }
                    DocKind::Rule(r) => {
                        let (info, c) =
                            compile_rule(r, pd.diagnostics, pd.unsupported, &mut fields);
                        diagnostics.extend(info.diagnostics.iter().cloned());
                        rules.push(info);
                        compiled.push(c);
                    }
                }
            }
        }

        apply_filters(
            &filters,
            &mut rules,
            &mut compiled,
            &mut fields,
            &mut diagnostics,
        );

        let (plans, feeds, reported) =
            resolve_correlations(&mut rules, correlations, &mut diagnostics);

        let router = if opts.routing {
            Router::load(&opts.mappings, &mut fields, &mut diagnostics)
        } else {
            Router::new(Vec::new())
        };
        let mut buckets = vec![Vec::new(); router.sources.len()];
        let mut unrouted = Vec::new();
        // The sources serving each distinct logsource (a few hundred among thousands of rules).
        let mut served: std::collections::BTreeMap<LogSource, Vec<u32>> = Default::default();
        for (i, info) in rules.iter_mut().enumerate() {
            if compiled[i].is_none() {
                continue;
            }
            let ls = &info.logsource;
            let no_keys = ls.product.is_none() && ls.category.is_none() && ls.service.is_none();
            if !opts.routing || no_keys {
                unrouted.push(i as u32);
            }
            if opts.routing {
                let sources = served.entry(ls.clone()).or_insert_with(|| {
                    let all = router.sources.iter().enumerate();
                    all.filter(|(_, src)| covers(&src.logsource, ls))
                        .map(|(s, _)| s as u32)
                        .collect()
                });
                for &s in sources.iter() {
                    buckets[s as usize].push(i as u32);
                }
                info.sources += sources.len();
                if info.sources == 0 && !no_keys {
                    let d = Diagnostic::warning(
                        Location::new(&info.meta.path, info.meta.line, 0),
                        format!(
                            "no mapped source provides logsource {}: the rule cannot see any event",
                            info.logsource
                        ),
                    )
                    .with_help("add a source for it in a mapping file (--mapping FILE, see docs/logsources.md)");
                    info.diagnostics.push(d.clone());
                    diagnostics.push(d);
                }
            }
        }
        let prefilter = opts.prefilter.then(|| {
            let refs: Vec<Option<&CompiledRule>> = compiled.iter().map(|c| c.as_ref()).collect();
            let mut pf = Prefilter::build(&refs);
            if opts.routing {
                pf.split_keywords(&buckets);
            }
            pf
        });
        let needled = |r: u32| {
            prefilter
                .as_ref()
                .is_some_and(|pf| matches!(pf.rule_needles.get(r as usize), Some(Some(_))))
        };
        let always: Vec<Vec<u32>> = buckets
            .iter()
            .map(|b| b.iter().copied().filter(|&r| !needled(r)).collect())
            .collect();
        let unrouted_always: Vec<u32> = unrouted.iter().copied().filter(|&r| !needled(r)).collect();
        let mut postings: Vec<Vec<u32>> = Vec::new();
        if let Some(pf) = &prefilter {
            postings = vec![Vec::new(); pf.needle_count];
            for (r, ids) in pf.rule_needles.iter().enumerate() {
                for &id in ids.iter().flatten() {
                    postings[id as usize].push(r as u32);
                }
            }
        }
        let mut rule_sources = vec![Vec::new(); rules.len()];
        for (s, b) in buckets.iter().enumerate() {
            for &r in b {
                rule_sources[r as usize].push(s as u32);
            }
        }
        let mut rule_unrouted = vec![false; rules.len()];
        for &r in &unrouted {
            rule_unrouted[r as usize] = true;
        }
        RuleSet {
            always,
            unrouted_always,
            postings,
            rule_sources,
            rule_unrouted,
            rules,
            compiled,
            fields,
            router,
            buckets,
            unrouted,
            prefilter,
            diagnostics,
            routing: opts.routing,
            plans,
            feeds,
            reported,
        }
    }

    /// Builds a rule set from one YAML text (tests, small tools).
    pub fn from_yaml_str(name: &str, text: &str, opts: &Options) -> RuleSet {
        RuleSet::from_texts(vec![(PathBuf::from(name), Ok(text.to_string()))], opts)
    }

    /// The index of the rule whose `id` (or, failing that, `name`) is `key`.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.meta.id.as_deref() == Some(key) || r.meta.name.as_deref() == Some(key))
    }

    /// Every rule, filter and correlation loaded, in load order.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// Every problem found while loading, in load order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The mapping sources in use.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Fresh evaluation buffers for one thread.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            view: EventView {
                slots: vec![ABSENT; self.fields.names.len()],
                ..EventView::default()
            },
            fired: vec![0; self.rules.len()],
            cand_stamp: vec![0; self.rules.len()],
            ..Scratch::default()
        }
    }

    /// The rules (indices, ascending) that match `ev`.
    pub fn matches(&self, ev: &Event, sc: &mut Scratch, out: &mut Vec<usize>) {
        out.clear();
        sc.stamp = sc.stamp.wrapping_add(1);
        if sc.stamp == 0 {
            sc.seen.iter_mut().for_each(|s| *s = 0);
            sc.fired.iter_mut().for_each(|s| *s = 0);
            sc.cand_stamp.iter_mut().for_each(|s| *s = 0);
            sc.stamp = 1;
        }
        let stamp = sc.stamp;
        if sc.view.slots.len() < self.fields.names.len() {
            sc.view.slots.resize(self.fields.names.len(), ABSENT);
        }
        if sc.fired.len() < self.rules.len() {
            sc.fired.resize(self.rules.len(), 0);
            sc.cand_stamp.resize(self.rules.len(), 0);
        }
        // 1. The event's own fields.
        for fid in sc.touched.drain(..) {
            sc.view.slots[fid as usize] = ABSENT;
        }
        sc.view.clear();
        for (name, v) in &ev.fields {
            let idx = sc.view.push_value(v);
            if let Some(&fid) = self.fields.ids.get(name.as_str()) {
                sc.view.slots[fid as usize] = idx;
                sc.touched.push(fid);
            }
        }
        sc.view.original_atoms = sc.view.atoms.len() as u32;

        // 2. Its sources, and the values their field mappings derive.
        self.router
            .route(ev.sensor.as_deref(), &sc.view, &mut sc.sources);
        sc.derived.clear();
        sc.derived_ranges.clear();
        for &s in &sc.sources {
            let start = sc.derived.len();
            if let Some(src) = self.router.sources.get(s as usize) {
                for (fid, fs) in &src.fields {
                    if let Some(idx) = resolve_field(fs, &mut sc.view, &mut sc.buf) {
                        sc.derived.push((*fid, idx));
                    }
                }
            }
            sc.derived_ranges.push((start, sc.derived.len()));
        }

        // 3. Literals present anywhere in the event, and the rules that need one of them.
        sc.cands.clear();
        if let Some(pf) = &self.prefilter {
            pf.start(&mut sc.seen, &mut sc.seen_list);
            let original_end = sc
                .view
                .atoms
                .get(sc.view.original_atoms as usize)
                .map_or(sc.view.lower.len(), |a| a.lower.0 as usize);
            let sources: &[u32] = if self.routing { &sc.sources } else { &[] };
            pf.scan_keywords(
                sc.view.lower.get(..original_end).unwrap_or(""),
                sources,
                &mut sc.keyword_sets,
                &mut sc.seen,
                &mut sc.seen_list,
                stamp,
            );
            let own = sc
                .touched
                .iter()
                .map(|&fid| (fid, sc.view.slots[fid as usize]));
            for (fid, idx) in own.chain(sc.derived.iter().copied()) {
                if pf.has_field(fid) {
                    let text = sc.view.folded_text(idx);
                    pf.scan_field(fid, text, &mut sc.seen, &mut sc.seen_list, stamp);
                }
            }
            for &id in &sc.seen_list {
                for &r in self
                    .postings
                    .get(id as usize)
                    .map_or(&[][..], |v| v.as_slice())
                {
                    if sc.cand_stamp[r as usize] != stamp {
                        sc.cand_stamp[r as usize] = stamp;
                        if pf.rest_holds(r as usize, &sc.seen, stamp) {
                            sc.cands.push(r);
                        }
                    }
                }
            }
        }

        // 4. Rules of each source, through that source's field mapping: those the pre-filter cannot
        // prune, and the candidates this source feeds.
        let n_sources = sc.sources.len();
        let unrouted = n_sources == 0 || !self.routing;
        for k in 0..n_sources {
            let s = sc.sources[k];
            let (a, b) = sc.derived_ranges[k];
            sc.saved.clear();
            for &(fid, idx) in &sc.derived[a..b] {
                let slot = &mut sc.view.slots[fid as usize];
                sc.saved.push((fid, *slot));
                *slot = idx;
            }
            let always = self
                .always
                .get(s as usize)
                .map_or(&[][..], |v| v.as_slice());
            for &r in always {
                self.try_rule(r, sc, stamp, out);
            }
            for i in 0..sc.cands.len() {
                let r = sc.cands[i];
                if self.rule_sources[r as usize].binary_search(&s).is_ok() {
                    self.try_rule(r, sc, stamp, out);
                }
            }
            for &(fid, old) in sc.saved.iter().rev() {
                sc.view.slots[fid as usize] = old;
            }
        }
        if unrouted {
            for &r in &self.unrouted_always {
                self.try_rule(r, sc, stamp, out);
            }
            for i in 0..sc.cands.len() {
                let r = sc.cands[i];
                if self.rule_unrouted[r as usize] {
                    self.try_rule(r, sc, stamp, out);
                }
            }
        }
        out.sort_unstable();
    }

    /// The rules (indices, ascending) whose logsource the event is routed to, whether or not they
    /// match: what the event is checked against before any literal pre-filter.
    pub fn routed(&self, ev: &Event, sc: &mut Scratch) -> Vec<usize> {
        let mut out = Vec::new();
        self.matches(ev, sc, &mut out);
        let mut routed: Vec<usize> = Vec::new();
        if sc.sources.is_empty() || !self.routing {
            routed.extend(self.unrouted.iter().map(|&r| r as usize));
        }
        for &s in &sc.sources {
            if let Some(b) = self.buckets.get(s as usize) {
                routed.extend(b.iter().map(|&r| r as usize));
            }
        }
        routed.sort_unstable();
        routed.dedup();
        routed
    }

    /// Totals over `events` of (rules routed, rules the pre-filter admits, rules matched): how much
    /// work routing and the pre-filter save. For benchmarks and tuning.
    pub fn prefilter_stats(&self, events: &[Event]) -> (usize, usize, usize) {
        let mut sc = self.scratch();
        let (mut routed, mut admitted, mut matched) = (0, 0, 0);
        for ev in events {
            let r = self.routed(ev, &mut sc);
            routed += r.len();
            matched += sc.fired.iter().filter(|&&s| s == sc.stamp).count();
            admitted += r
                .iter()
                .filter(|&&ri| {
                    self.prefilter
                        .as_ref()
                        .is_none_or(|pf| pf.admits(ri, &sc.seen, sc.stamp))
                })
                .count();
        }
        (routed, admitted, matched)
    }

    /// Per rule, the nanoseconds spent evaluating it (after routing and the pre-filter) over
    /// `events`, most expensive first. For tuning only.
    pub fn rule_costs(&self, events: &[Event]) -> Vec<(usize, u128)> {
        let mut sc = self.scratch();
        let mut out = Vec::new();
        let mut cost = vec![0u128; self.rules.len()];
        for ev in events {
            let routed = self.routed(ev, &mut sc);
            self.matches(ev, &mut sc, &mut out);
            for r in routed {
                let admitted = self
                    .prefilter
                    .as_ref()
                    .is_none_or(|pf| pf.admits(r, &sc.seen, sc.stamp));
                if let (true, Some(Some(c))) = (admitted, self.compiled.get(r)) {
                    let t = std::time::Instant::now();
                    std::hint::black_box(c.eval(&sc.view));
                    cost[r] += t.elapsed().as_nanos();
                }
            }
        }
        let mut v: Vec<(usize, u128)> = cost.into_iter().enumerate().filter(|x| x.1 > 0).collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        v
    }

    /// Names of the mapping sources an event belongs to.
    pub fn sources_of(&self, ev: &Event, sc: &mut Scratch) -> Vec<String> {
        let mut out = Vec::new();
        self.matches(ev, sc, &mut out);
        sc.sources
            .iter()
            .filter_map(|&s| self.router.sources.get(s as usize).map(|x| x.name.clone()))
            .collect()
    }

    #[inline]
    fn try_rule(&self, r: u32, sc: &mut Scratch, stamp: u32, out: &mut Vec<usize>) {
        let ri = r as usize;
        if sc.fired[ri] == stamp {
            return;
        }
        if let Some(Some(c)) = self.compiled.get(ri) {
            if c.eval(&sc.view) {
                sc.fired[ri] = stamp;
                out.push(ri);
            }
        }
    }

    /// Evaluates events in parallel; hits come out ordered by event, then rule, whatever the thread
    /// count.
    pub fn evaluate(&self, events: &[Event]) -> Vec<Hit> {
        const CHUNK: usize = 512;
        let per_chunk: Vec<Vec<Hit>> = events
            .par_chunks(CHUNK)
            .enumerate()
            .map_init(
                || (self.scratch(), Vec::new()),
                |(sc, out), (ci, chunk)| {
                    let mut hits = Vec::new();
                    for (j, ev) in chunk.iter().enumerate() {
                        self.matches(ev, sc, out);
                        let event = ci * CHUNK + j;
                        hits.extend(out.iter().map(|&rule| Hit { event, rule }));
                    }
                    hits
                },
            )
            .collect();
        per_chunk.into_iter().flatten().collect()
    }
}

fn located(meta: &RuleMeta, line: usize) -> Location {
    Location::new(&meta.path, if line > 0 { line } else { meta.line }, 0)
}

/// Compiles one detection rule, deciding its status.
fn compile_rule(
    r: DetectionRule,
    mut diags: Vec<Diagnostic>,
    unsupported: Vec<(String, Location)>,
    fields: &mut FieldTable,
) -> (RuleInfo, Option<CompiledRule>) {
    let mut status = RuleStatus::Ready;
    let mut compiled = None;
    if diags.iter().any(|d| d.severity == Severity::Error) {
        status = RuleStatus::Invalid;
    } else {
        let conds: Vec<String> = r.detection.conditions.iter().map(|c| c.0.clone()).collect();
        let cond_line = r.detection.conditions.first().map_or(0, |c| c.1);
        // A column inside the condition text, as a column of the file line.
        let file_col = |col: usize| {
            if col > 0 && r.detection.condition_col > 0 && r.detection.conditions.len() == 1 {
                r.detection.condition_col + col - 1
            } else {
                col
            }
        };
        match resolve_conditions(&conds, &r.detection.identifiers, 0) {
            Err(compile::ResolveError::Parse(CondError::Deprecated { col })) => {
                status = RuleStatus::Unsupported {
                    reason: "the condition uses the deprecated pipe aggregation syntax ('| count() ...'); rewrite it as a correlation rule".into(),
                    location: Location::new(&r.meta.path, cond_line, file_col(col)),
                };
            }
            Err(e) => {
                let col = match &e {
                    compile::ResolveError::Parse(CondError::Syntax { col, .. }) => *col,
                    _ => 0,
                };
                let mut d = Diagnostic::error(
                    Location::new(&r.meta.path, cond_line, file_col(col)),
                    e.to_string(),
                );
                if let compile::ResolveError::Undefined(_) = e {
                    let names: Vec<&str> = r
                        .detection
                        .identifiers
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect();
                    d = d.with_help(format!("identifiers defined: {}", names.join(", ")));
                }
                diags.push(d);
                status = RuleStatus::Invalid;
            }
            Ok(expr) => {
                let mut sels = Vec::new();
                let mut names = Vec::new();
                let mut ok = true;
                let mut unsupported = unsupported;
                for ident in &r.detection.identifiers {
                    match compile_selection(&ident.selection, fields) {
                        Ok(s) => sels.push(s),
                        // Valid PCRE that Rust's regex engine does not implement: the rule is
                        // fine, this engine cannot evaluate it.
                        Err(e) if e.0.contains("not supported") => {
                            unsupported.push((
                                e.0,
                                located(&r.meta, if e.1 > 0 { e.1 } else { ident.line }),
                            ));
                            sels.push(CSel::All(vec![]));
                        }
                        Err(e) => {
                            diags.push(Diagnostic::error(
                                located(&r.meta, if e.1 > 0 { e.1 } else { ident.line }),
                                e.0,
                            ));
                            ok = false;
                            sels.push(CSel::All(vec![]));
                        }
                    }
                    names.push(ident.name.clone());
                }
                if !ok {
                    status = RuleStatus::Invalid;
                } else if let Some((reason, location)) = unsupported.into_iter().next() {
                    status = RuleStatus::Unsupported { reason, location };
                } else {
                    compiled = Some(CompiledRule { sels, names, expr });
                }
            }
        }
    }
    (
        RuleInfo {
            meta: r.meta,
            logsource: r.logsource,
            kind: RuleKind::Detection,
            status,
            diagnostics: diags,
            sources: 0,
        },
        compiled,
    )
}

/// Applies meta filters: each listed rule whose logsource the filter covers becomes
/// `(rule) and (filter condition)`.
fn apply_filters(
    filters: &[FilterRule],
    rules: &mut [RuleInfo],
    compiled: &mut [Option<CompiledRule>],
    fields: &mut FieldTable,
    diags: &mut Vec<Diagnostic>,
) {
    for f in filters {
        let floc = Location::new(&f.meta.path, f.meta.line, 0);
        let conds: Vec<String> = f.detection.conditions.iter().map(|c| c.0.clone()).collect();
        for target in &f.rules {
            let mut found = false;
            for (i, info) in rules.iter_mut().enumerate() {
                if info.kind != RuleKind::Detection {
                    continue;
                }
                let named = info.meta.id.as_deref() == Some(target.as_str())
                    || info.meta.name.as_deref() == Some(target.as_str());
                if !named {
                    continue;
                }
                found = true;
                if !covers(&info.logsource, &f.logsource) {
                    continue;
                }
                let Some(rule) = compiled[i].as_mut() else {
                    continue;
                };
                let base = rule.sels.len() as u32;
                let fexpr = match resolve_conditions(&conds, &f.detection.identifiers, base) {
                    Ok(e) => e,
                    Err(e) => {
                        diags.push(Diagnostic::error(floc.clone(), format!("filter: {e}")));
                        break;
                    }
                };
                let mut ok = true;
                let mut new_sels = Vec::new();
                for ident in &f.detection.identifiers {
                    match compile_selection(&ident.selection, fields) {
                        Ok(s) => new_sels.push(s),
                        Err(e) => {
                            diags.push(Diagnostic::error(floc.clone(), format!("filter: {}", e.0)));
                            ok = false;
                        }
                    }
                }
                if !ok {
                    break;
                }
                for (s, ident) in new_sels.into_iter().zip(&f.detection.identifiers) {
                    rule.sels.push(s);
                    rule.names.push(format!("{}:{}", f.meta.title, ident.name));
                }
                let old = std::mem::replace(&mut rule.expr, Expr::Or(vec![]));
                rule.expr = Expr::And(vec![old, fexpr]);
            }
            if !found {
                diags.push(Diagnostic::warning(
                    floc.clone(),
                    format!(
                        "filter '{}' names rule '{target}', which is not loaded",
                        f.meta.title
                    ),
                ));
            }
        }
    }
}

/// Plans (inner first), per rule the (plan, slot) pairs it feeds, per rule whether it reports.
type Resolved = (Vec<Plan>, Vec<Vec<(u32, u32)>>, Vec<bool>);

/// Resolves every correlation's rule references (by id or name, across all loaded files), finds
/// cycles, orders the correlations inner before outer and settles their status. Returns the plans,
/// per rule the (plan, slot) pairs its hits feed, and per rule whether its own hits are reported.
fn resolve_correlations(
    rules: &mut [RuleInfo],
    correlations: Vec<(usize, Correlation)>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Resolved {
    use std::collections::BTreeMap;
    let mut by_ref: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        if r.kind == RuleKind::Filter {
            continue;
        }
        for k in [r.meta.id.as_deref(), r.meta.name.as_deref()]
            .into_iter()
            .flatten()
        {
            let v = by_ref.entry(k).or_default();
            if !v.contains(&i) {
                v.push(i);
            }
        }
    }
    // Per correlation: per slot, the rules it names.
    let mut targets: Vec<Vec<Vec<usize>>> = Vec::new();
    let mut invalid = vec![false; correlations.len()];
    let mut new_diags: Vec<(usize, Diagnostic)> = Vec::new();
    for (ci, (ri, c)) in correlations.iter().enumerate() {
        let path = rules[*ri].meta.path.clone();
        let mut slots = Vec::new();
        for (name, line) in &c.rules {
            let t = by_ref.get(name.as_str()).cloned().unwrap_or_default();
            if t.is_empty() {
                new_diags.push((
                    *ri,
                    Diagnostic::error(
                        Location::new(&path, *line, 0),
                        format!("correlation refers to rule '{name}', which is not loaded"),
                    )
                    .with_help("name a rule by its 'id' or 'name'; the rule's file must be among the rules given"),
                ));
                invalid[ci] = true;
            }
            slots.push(t);
        }
        targets.push(slots);
    }
    // Correlation rule index -> position in `correlations`.
    let pos: BTreeMap<usize, usize> = correlations
        .iter()
        .enumerate()
        .map(|(ci, (ri, _))| (*ri, ci))
        .collect();
    let deps = |ci: usize| -> Vec<usize> {
        let mut d: Vec<usize> = targets[ci]
            .iter()
            .flatten()
            .filter_map(|t| pos.get(t).copied())
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    };
    // Kahn's algorithm: inner correlations first.
    let n = correlations.len();
    let mut indeg = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (ci, deg) in indeg.iter_mut().enumerate() {
        for d in deps(ci) {
            *deg += 1;
            users[d].push(ci);
        }
    }
    let mut order = Vec::new();
    let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&c| indeg[c] == 0).collect();
    while let Some(c) = ready.pop_front() {
        order.push(c);
        for &u in &users[c] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.push_back(u);
            }
        }
    }
    let mut in_order = vec![false; n];
    for &c in &order {
        in_order[c] = true;
    }
    for ci in (0..n).filter(|&c| !in_order[c]) {
        // On a cycle when it can reach itself.
        let mut seen = vec![false; n];
        let mut stack = deps(ci);
        let mut on_cycle = false;
        while let Some(x) = stack.pop() {
            if x == ci {
                on_cycle = true;
                break;
            }
            if !std::mem::replace(&mut seen[x], true) {
                stack.extend(deps(x));
            }
        }
        let (ri, c) = &correlations[ci];
        let msg = if on_cycle {
            "correlation rules refer to each other in a cycle; a chain must end in detection rules"
        } else {
            "correlation depends on a correlation cycle"
        };
        new_diags.push((
            *ri,
            Diagnostic::error(Location::new(&rules[*ri].meta.path, c.rules_line, 0), msg),
        ));
        invalid[ci] = true;
    }
    for (ri, d) in new_diags {
        diagnostics.push(d.clone());
        rules[ri].diagnostics.push(d);
    }
    for (ci, (ri, _)) in correlations.iter().enumerate() {
        if invalid[ci] {
            rules[*ri].status = RuleStatus::Invalid;
        }
    }
    // Plans in dependency order; a correlation over a rule that cannot be evaluated cannot be
    // evaluated either.
    let mut plans = Vec::new();
    let mut feeds: Vec<Vec<(u32, u32)>> = vec![Vec::new(); rules.len()];
    let mut generated = vec![false; rules.len()];
    let mut used = vec![false; rules.len()];
    for &ci in &order {
        let (ri, c) = &correlations[ci];
        if invalid[ci] {
            continue;
        }
        let bad = targets[ci]
            .iter()
            .flatten()
            .find(|&&t| rules[t].status != RuleStatus::Ready);
        if let Some(&t) = bad {
            rules[*ri].status = RuleStatus::Unsupported {
                reason: format!(
                    "refers to rule '{}', which cannot be evaluated",
                    rules[t].key()
                ),
                location: Location::new(&rules[*ri].meta.path, c.rules_line, 0),
            };
            continue;
        }
        let p = plans.len() as u32;
        let mut slots = Vec::new();
        for (s, (name, _)) in c.rules.iter().enumerate() {
            let names: Vec<&str> = std::iter::once(name.as_str())
                .chain(targets[ci][s].iter().flat_map(|&t| {
                    [rules[t].meta.name.as_deref(), rules[t].meta.id.as_deref()]
                        .into_iter()
                        .flatten()
                }))
                .collect();
            let field = |g: &String| -> String {
                c.aliases
                    .get(g)
                    .and_then(|per| names.iter().find_map(|n| per.get(*n)))
                    .cloned()
                    .unwrap_or_else(|| g.clone())
            };
            slots.push(correlation::Slot {
                group_fields: c.group_by.iter().map(field).collect(),
                value_fields: c.condition.fields.clone(),
            });
            for &t in &targets[ci][s] {
                if !feeds[t].contains(&(p, s as u32)) {
                    feeds[t].push((p, s as u32));
                }
                used[t] = true;
                generated[t] |= c.generate;
            }
        }
        plans.push(Plan {
            rule: *ri,
            kind: c.kind,
            cond: c.condition.clone(),
            timespan_ms: c.timespan_ms,
            group_by: c.group_by.clone(),
            slots,
        });
    }
    let reported = (0..rules.len()).map(|r| !used[r] || generated[r]).collect();
    (plans, feeds, reported)
}

/// What the correlation pass found.
#[derive(Debug, Clone, Default)]
pub struct CorrelationOutput {
    /// Hits, ordered by their last event, then correlation, then group.
    pub hits: Vec<CorrelationHit>,
    /// Warnings: entries dropped at the state cap, events without a readable time.
    pub diagnostics: Vec<Diagnostic>,
}

impl RuleSet {
    /// Whether any correlation can be evaluated.
    pub fn has_correlations(&self) -> bool {
        !self.plans.is_empty()
    }

    /// Whether `rule`'s own hits are reported: false for a rule that only correlations use
    /// (`generate: false`, the default); true for every other rule.
    pub fn reports(&self, rule: usize) -> bool {
        self.reported.get(rule).copied().unwrap_or(true)
    }

    /// Empty correlation state for this rule set (the caller owns it).
    pub fn correlation_state(&self) -> CorrelationState {
        CorrelationState::new(self.plans.len(), correlation::MAX_ENTRIES)
    }

    /// Records what event `event` (`ev`, on which the rules `fired` matched) contributes to the
    /// correlations. Costs nothing for rules no correlation uses.
    pub fn observe(&self, st: &mut CorrelationState, event: usize, ev: &Event, fired: &[usize]) {
        let mut time = None;
        for &r in fired {
            let Some(feeds) = self.feeds.get(r) else {
                continue;
            };
            for &(p, s) in feeds {
                let t = *time.get_or_insert_with(|| correlation::event_time(ev));
                let p = p as usize;
                let Some(t) = t else {
                    if let Some(u) = st.untimed.get_mut(p) {
                        *u += 1;
                    }
                    continue;
                };
                if let Some(e) = self
                    .plans
                    .get(p)
                    .and_then(|pl| pl.entry(s as usize, event, ev, t))
                {
                    st.push(p, e);
                }
            }
        }
    }

    /// Runs every correlation over the state (inner before outer; a chained correlation sees the
    /// hits of those it refers to).
    pub fn correlate(&self, st: CorrelationState) -> CorrelationOutput {
        let mut st = st;
        let mut out = CorrelationOutput::default();
        for (p, plan) in self.plans.iter().enumerate() {
            let entries = st
                .entries
                .get_mut(p)
                .map(std::mem::take)
                .unwrap_or_default();
            let hits = plan.hits(entries);
            if let Some(feeds) = self.feeds.get(plan.rule) {
                for h in &hits {
                    for &(q, s) in feeds {
                        if let Some(e) = self
                            .plans
                            .get(q as usize)
                            .and_then(|pl| pl.chained_entry(s as usize, h))
                        {
                            st.push(q as usize, e);
                        }
                    }
                }
            }
            out.hits.extend(hits);
        }
        for (p, plan) in self.plans.iter().enumerate() {
            let info = &self.rules[plan.rule];
            let loc = Location::new(&info.meta.path, info.meta.line, 0);
            if let Some(&d) = st.dropped.get(p).filter(|&&d| d > 0) {
                out.diagnostics.push(Diagnostic::warning(
                    loc.clone(),
                    format!(
                        "correlation '{}': state cap of {} entries reached; {d} later hits of its rules were not counted",
                        info.meta.title, st.cap
                    ),
                ));
            }
            if let Some(&u) = st.untimed.get(p).filter(|&&u| u > 0) {
                out.diagnostics.push(Diagnostic::warning(
                    loc,
                    format!(
                        "correlation '{}': {u} hits of its rules are on events without a readable timestamp and were not counted",
                        info.meta.title
                    ),
                ));
            }
        }
        // By last event, then inner correlations before those chained on them, then group.
        let mut plan_of = vec![usize::MAX; self.rules.len()];
        for (p, plan) in self.plans.iter().enumerate() {
            if let Some(x) = plan_of.get_mut(plan.rule) {
                *x = p;
            }
        }
        let pos = |r: usize| plan_of.get(r).copied().unwrap_or(usize::MAX);
        out.hits.sort_by(|a, b| {
            (a.events.last(), pos(a.rule), &a.group, &a.events).cmp(&(
                b.events.last(),
                pos(b.rule),
                &b.group,
                &b.events,
            ))
        });
        out
    }

    /// The correlation pass over events already evaluated: `hits` are [`RuleSet::evaluate`]'s.
    pub fn correlate_events(&self, events: &[Event], hits: &[Hit]) -> CorrelationOutput {
        self.correlate_events_capped(events, hits, correlation::MAX_ENTRIES)
    }

    /// [`RuleSet::correlate_events`] with another state cap (tests).
    pub fn correlate_events_capped(
        &self,
        events: &[Event],
        hits: &[Hit],
        cap: usize,
    ) -> CorrelationOutput {
        let mut st = self.correlation_state().with_cap(cap);
        self.observe_hits(&mut st, events, hits);
        self.correlate(st)
    }

    /// Feeds the single-event hits of `events` (sorted by event, as [`RuleSet::evaluate`] returns
    /// them) into a correlation state; event numbers are positions in `events`.
    pub fn observe_hits(&self, st: &mut CorrelationState, events: &[Event], hits: &[Hit]) {
        let mut i = 0;
        let mut fired = Vec::new();
        while i < hits.len() {
            let ev = hits[i].event;
            fired.clear();
            while i < hits.len() && hits[i].event == ev {
                fired.push(hits[i].rule);
                i += 1;
            }
            if let Some(e) = events.get(ev) {
                self.observe(st, ev, e, &fired);
            }
        }
    }
}
