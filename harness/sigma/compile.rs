//! Compilation of parsed rules into immutable matchers, and their evaluation on an [`EventView`].
//!
//! Input: [`Selection`]s and condition text from the rule stage. Output: [`CompiledRule`]s whose
//! selections hold compiled [`LeafMatcher`]s and whose condition is an expression over selection
//! indices (`x of` patterns already resolved to identifiers). Evaluation is a pure function of the
//! compiled rule and the view; it short-circuits and allocates nothing. Field names are interned into
//! a [`FieldTable`] so an event's fields are looked up once per event, not once per rule.

use super::condition::{self, Cond, CondError, OfTarget, Quant};
use super::matcher::{CompileError, EventView, LeafMatcher};
use super::rule::{Identifier, Selection};
use super::value::{ItemSpec, Leaf, Linking, Pattern, Tok};
use rustc_hash::FxHashMap as HashMap;

/// Field names used by any rule or by the logsource mapping, each with a small integer id.
#[derive(Debug, Default, Clone)]
pub struct FieldTable {
    pub ids: HashMap<String, u32>,
    pub names: Vec<String>,
}

impl FieldTable {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }
}

/// A compiled detection item.
#[derive(Debug, Clone)]
pub struct CItem {
    /// `None` = keyword search over every value the sensor wrote.
    pub field: Option<u32>,
    pub key: String,
    pub negate: bool,
    pub linking: Linking,
    pub groups: Vec<Vec<LeafMatcher>>,
    /// For an OR over many values: the same leaves as literal sets (one Aho-Corasick automaton for
    /// the `contains` values, one hash set for the whole-value ones), so a value is searched once,
    /// not once per rule value.
    pub any: Option<Box<AnySet>>,
    /// The items as written (for the pre-filter and explanations).
    pub spec: ItemSpec,
}

/// Fewest leaves in an OR for which literal sets pay.
const ANY_SET_MIN: usize = 4;

/// A set of `contains` needles: whether a text holds any of them.
#[derive(Debug, Clone)]
enum Needles {
    /// A packed (SIMD) searcher, for sets small enough: far faster on event text than the
    /// automaton, whose own prefilter can be a rare-byte scan that stops on every `\\` or `:`.
    Packed(aho_corasick::packed::Searcher),
    Automaton(aho_corasick::AhoCorasick),
}

impl Needles {
    fn build(needles: &[String]) -> Option<Needles> {
        // (An empty needle is in every text; the automaton says so, the packed searcher is not
        // asked.)
        if needles.iter().all(|n| !n.is_empty()) {
            if let Some(p) = aho_corasick::packed::Searcher::new(needles) {
                return Some(Needles::Packed(p));
            }
        }
        aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .build(needles)
            .ok()
            .map(Needles::Automaton)
    }

    #[inline]
    fn is_match(&self, text: &str) -> bool {
        match self {
            Needles::Packed(p) => p.find(text).is_some(),
            Needles::Automaton(a) => a.is_match(text),
        }
    }
}

/// The leaves of an OR-linked item, sorted into literal sets and the rest.
#[derive(Debug, Clone)]
pub struct AnySet {
    /// Per case mode (`false` = case-insensitive, folded; `true` = cased).
    contains: [Option<Needles>; 2],
    exact: [rustc_hash::FxHashSet<String>; 2],
    rest: Vec<LeafMatcher>,
}

impl AnySet {
    fn build(leaves: Vec<LeafMatcher>) -> Option<AnySet> {
        use super::matcher::StrMatch;
        let mut needles: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        let mut exact: [rustc_hash::FxHashSet<String>; 2] = Default::default();
        let mut rest = Vec::new();
        for l in leaves {
            match &l {
                LeafMatcher::Str(m) => {
                    let c = m.cased as usize;
                    match &m.m {
                        StrMatch::Contains(f) => {
                            needles[c].push(String::from_utf8_lossy(f.needle()).into_owned())
                        }
                        StrMatch::Exact(e) => {
                            exact[c].insert(e.clone());
                        }
                        _ => rest.push(l),
                    }
                }
                _ => rest.push(l),
            }
        }
        let mut contains: [Option<Needles>; 2] = [None, None];
        for c in 0..2 {
            if needles[c].is_empty() {
                continue;
            }
            contains[c] = Some(Needles::build(&needles[c])?);
        }
        Some(AnySet {
            contains,
            exact,
            rest,
        })
    }

    #[inline]
    fn matches_atom(&self, a: &super::matcher::Atom, view: &EventView) -> bool {
        let lower = view.lower(a);
        let orig = view.orig(a);
        (!self.exact[0].is_empty() && self.exact[0].contains(lower))
            || (!self.exact[1].is_empty() && self.exact[1].contains(orig))
            || self.contains[0].as_ref().is_some_and(|n| n.is_match(lower))
            || self.contains[1].as_ref().is_some_and(|n| n.is_match(orig))
    }

    #[inline]
    fn matches(&self, f: Option<&super::matcher::FieldVal>, view: &EventView) -> bool {
        if self.rest.iter().any(|l| l.matches(f, view)) {
            return true;
        }
        match f {
            Some(f) => view.atoms_of(f).iter().any(|a| self.matches_atom(a, view)),
            None => false,
        }
    }

    #[inline]
    fn matches_any_atom(&self, atoms: &[super::matcher::Atom], view: &EventView) -> bool {
        atoms.iter().any(|a| {
            self.matches_atom(a, view) || self.rest.iter().any(|l| l.matches_atom(a, view))
        })
    }
}

/// A compiled search identifier.
#[derive(Debug, Clone)]
pub enum CSel {
    All(Vec<CItem>),
    Any(Vec<CSel>),
}

/// A condition over selection indices.
#[derive(Debug, Clone)]
pub enum Expr {
    Sel(u32),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// One rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub sels: Vec<CSel>,
    /// Selection names, parallel to `sels`.
    pub names: Vec<String>,
    pub expr: Expr,
}

/// Compiles one item.
pub fn compile_item(item: &ItemSpec, fields: &mut FieldTable) -> Result<CItem, CompileError> {
    let mut intern = |n: &str| fields.intern(n);
    let keyword = item.field.is_none();
    let mut groups = Vec::with_capacity(item.groups.len());
    for g in &item.groups {
        let mut alts = Vec::with_capacity(g.len());
        for leaf in g {
            // Keywords are searched inside values (an implicit `contains`).
            let leaf = match leaf {
                Leaf::Str { pat, cased } if keyword => Leaf::Str {
                    pat: wrap_contains(pat),
                    cased: *cased,
                },
                l => l.clone(),
            };
            alts.push(
                LeafMatcher::compile(&leaf, &mut intern)
                    .map_err(|e| CompileError(e.0, item.line))?,
            );
        }
        groups.push(alts);
    }
    let field = item.field.as_deref().map(|f| fields.intern(f));
    let n_leaves: usize = groups.iter().map(Vec::len).sum();
    let any = (item.linking == Linking::Any && n_leaves >= ANY_SET_MIN)
        .then(|| AnySet::build(groups.iter().flatten().cloned().collect()))
        .flatten()
        .map(Box::new);
    Ok(CItem {
        field,
        key: item.key.clone(),
        negate: item.negate,
        linking: item.linking,
        groups,
        any,
        spec: item.clone(),
    })
}

fn wrap_contains(p: &Pattern) -> Pattern {
    let mut q = Pattern::default();
    if p.toks.first() != Some(&Tok::Star) {
        q.push(Tok::Star);
    }
    for t in &p.toks {
        q.push(t.clone());
    }
    q.push(Tok::Star);
    q
}

/// Compiles a selection.
pub fn compile_selection(sel: &Selection, fields: &mut FieldTable) -> Result<CSel, CompileError> {
    Ok(match sel {
        Selection::All(items) => CSel::All(
            items
                .iter()
                .map(|i| compile_item(i, fields))
                .collect::<Result<_, _>>()?,
        ),
        Selection::Any(alts) => CSel::Any(
            alts.iter()
                .map(|s| compile_selection(s, fields))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Why a condition could not be resolved.
#[derive(Debug, Clone)]
pub enum ResolveError {
    Parse(CondError),
    Undefined(String),
    EmptyPattern(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Parse(e) => write!(f, "invalid condition: {e}"),
            ResolveError::Undefined(n) => write!(
                f,
                "the condition uses '{n}', which is not a search identifier of this detection"
            ),
            ResolveError::EmptyPattern(p) => write!(
                f,
                "'{p}' in the condition matches no search identifier (identifiers starting with '_' are only matched by patterns starting with '_')"
            ),
        }
    }
}

/// Resolves condition texts (OR-ed) against identifiers; `base` is the index of the first identifier
/// in the rule's selection list.
pub fn resolve_conditions(
    conditions: &[String],
    idents: &[Identifier],
    base: u32,
) -> Result<Expr, ResolveError> {
    let mut exprs = Vec::new();
    for c in conditions {
        let ast = condition::parse(c).map_err(ResolveError::Parse)?;
        exprs.push(resolve(&ast, idents, base)?);
    }
    Ok(if exprs.len() == 1 {
        exprs.remove(0)
    } else {
        Expr::Or(exprs)
    })
}

fn resolve(c: &Cond, idents: &[Identifier], base: u32) -> Result<Expr, ResolveError> {
    Ok(match c {
        Cond::Ident(name) => match idents.iter().position(|i| &i.name == name) {
            Some(p) => Expr::Sel(base + p as u32),
            None => return Err(ResolveError::Undefined(name.clone())),
        },
        Cond::Not(inner) => Expr::Not(Box::new(resolve(inner, idents, base)?)),
        Cond::And(items) => Expr::And(
            items
                .iter()
                .map(|i| resolve(i, idents, base))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Or(items) => Expr::Or(
            items
                .iter()
                .map(|i| resolve(i, idents, base))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Of(q, target) => {
            let picked: Vec<Expr> = idents
                .iter()
                .enumerate()
                .filter(|(_, i)| match target {
                    OfTarget::Them => !i.name.starts_with('_'),
                    OfTarget::Pattern(p) => condition::pattern_matches(p, &i.name),
                })
                .map(|(n, _)| Expr::Sel(base + n as u32))
                .collect();
            if picked.is_empty() {
                return Err(ResolveError::EmptyPattern(match target {
                    OfTarget::Them => "them".into(),
                    OfTarget::Pattern(p) => p.clone(),
                }));
            }
            match q {
                Quant::One => Expr::Or(picked),
                Quant::All => Expr::And(picked),
            }
        }
    })
}

impl CItem {
    /// Evaluates the item on the view.
    #[inline]
    pub fn eval(&self, view: &EventView) -> bool {
        let r = match (self.field, &self.any) {
            (Some(fid), Some(any)) => any.matches(view.field(fid), view),
            (None, Some(any)) => any.matches_any_atom(
                view.atoms
                    .get(..view.original_atoms as usize)
                    .unwrap_or(&[]),
                view,
            ),
            (Some(fid), None) => {
                let f = view.field(fid);
                let group = |g: &Vec<LeafMatcher>| g.iter().any(|l| l.matches(f, view));
                match self.linking {
                    Linking::Any => self.groups.iter().any(group),
                    Linking::All => self.groups.iter().all(group),
                }
            }
            (None, None) => {
                let atoms = view
                    .atoms
                    .get(..view.original_atoms as usize)
                    .unwrap_or(&[]);
                let group = |g: &Vec<LeafMatcher>| {
                    atoms
                        .iter()
                        .any(|a| g.iter().any(|l| l.matches_atom(a, view)))
                };
                match self.linking {
                    Linking::Any => self.groups.iter().any(group),
                    Linking::All => self.groups.iter().all(group),
                }
            }
        };
        r != self.negate
    }
}

impl CSel {
    #[inline]
    pub fn eval(&self, view: &EventView) -> bool {
        match self {
            CSel::All(items) => items.iter().all(|i| i.eval(view)),
            CSel::Any(alts) => alts.iter().any(|s| s.eval(view)),
        }
    }
}

impl CompiledRule {
    #[inline]
    pub fn eval(&self, view: &EventView) -> bool {
        self.eval_expr(&self.expr, view)
    }

    fn eval_expr(&self, e: &Expr, view: &EventView) -> bool {
        match e {
            Expr::Sel(i) => self.sels.get(*i as usize).is_some_and(|s| s.eval(view)),
            Expr::Not(inner) => !self.eval_expr(inner, view),
            Expr::And(items) => items.iter().all(|x| self.eval_expr(x, view)),
            Expr::Or(items) => items.iter().any(|x| self.eval_expr(x, view)),
        }
    }
}
