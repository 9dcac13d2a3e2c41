//! The condition language: text to a syntax tree, and the tree resolved against a rule's search
//! identifiers.
//!
//! Input: a `condition` string. Output: a [`Cond`] tree, or a [`CondError`] with the column where the
//! text went wrong. Precedence follows the specification (least to most binding): `or`, `and`, `not`,
//! `x of`, parentheses. Operators are lower case (pySigma's grammar); the deprecated pipe aggregation
//! (`| count() by x > 5`) is reported as [`CondError::Deprecated`] so the rule can be marked
//! unsupported, never silently evaluated without it.

use std::fmt;

/// `1 of` / `any of` versus `all of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    One,
    All,
}

/// What an `x of` selector ranges over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfTarget {
    Them,
    /// A name or a pattern with `*`.
    Pattern(String),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Ident(String),
    Of(Quant, OfTarget),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// Why a condition could not be parsed. Columns are 1-based, in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondError {
    Syntax {
        col: usize,
        message: String,
    },
    /// The obsolete pipe aggregation syntax.
    Deprecated {
        col: usize,
    },
}

impl fmt::Display for CondError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CondError::Syntax { col, message } => write!(f, "column {col}: {message}"),
            CondError::Deprecated { col } => write!(
                f,
                "column {col}: the pipe aggregation syntax ('| count() ...') is deprecated since Sigma 2.0; use a correlation rule"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<(Token, usize)>, CondError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((Token::Open, col));
            i += 1;
        } else if c == ')' {
            out.push((Token::Close, col));
            i += 1;
        } else if c == '|' {
            return Err(CondError::Deprecated { col });
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            out.push((Token::Word(chars[start..i].iter().collect()), col));
        } else {
            return Err(CondError::Syntax {
                col,
                message: format!("unexpected character '{c}'"),
            });
        }
    }
    Ok(out)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '.')
}

struct Parser {
    toks: Vec<(Token, usize)>,
    pos: usize,
    end_col: usize,
}

/// Parses a condition.
pub fn parse(s: &str) -> Result<Cond, CondError> {
    let toks = tokenize(s)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end_col: s.chars().count() + 1,
    };
    if p.toks.is_empty() {
        return Err(CondError::Syntax {
            col: 1,
            message: "the condition is empty".into(),
        });
    }
    let c = p.or()?;
    if let Some((t, col)) = p.toks.get(p.pos) {
        let what = match t {
            Token::Word(w) if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or") => {
                format!("'{w}': operators are lower case ('and', 'or', 'not')")
            }
            Token::Word(w) => format!("expected 'and' or 'or' before '{w}'"),
            Token::Close => "unbalanced ')'".to_string(),
            Token::Open => "expected 'and' or 'or' before '('".to_string(),
        };
        return Err(CondError::Syntax {
            col: *col,
            message: what,
        });
    }
    Ok(c)
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some((Token::Word(w), _)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |(_, c)| *c)
    }

    fn or(&mut self) -> Result<Cond, CondError> {
        let mut items = vec![self.and()?];
        while self.peek_word() == Some("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, CondError> {
        let mut items = vec![self.not()?];
        while self.peek_word() == Some("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, CondError> {
        if self.peek_word() == Some("not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, CondError> {
        let col = self.col();
        let Some((tok, _)) = self.toks.get(self.pos).cloned() else {
            return Err(CondError::Syntax {
                col,
                message: "the condition ends where an identifier was expected".into(),
            });
        };
        match tok {
            Token::Open => {
                self.pos += 1;
                let inner = self.or()?;
                match self.toks.get(self.pos) {
                    Some((Token::Close, _)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(CondError::Syntax {
                        col: self.col(),
                        message: "expected ')'".into(),
                    }),
                }
            }
            Token::Close => Err(CondError::Syntax {
                col,
                message: "expected an identifier before ')'".into(),
            }),
            Token::Word(w) => {
                self.pos += 1;
                let quant = match w.as_str() {
                    "1" | "any" => Some(Quant::One),
                    "all" => Some(Quant::All),
                    _ => None,
                };
                if let Some(q) = quant {
                    if self.peek_word() == Some("of") {
                        self.pos += 1;
                        let tcol = self.col();
                        return match self.toks.get(self.pos).cloned() {
                            Some((Token::Word(t), _)) if !is_keyword(&t) || t == "them" => {
                                self.pos += 1;
                                Ok(Cond::Of(
                                    q,
                                    if t == "them" {
                                        OfTarget::Them
                                    } else {
                                        OfTarget::Pattern(t)
                                    },
                                ))
                            }
                            _ => Err(CondError::Syntax {
                                col: tcol,
                                message: "expected an identifier, a pattern or 'them' after 'of'"
                                    .into(),
                            }),
                        };
                    }
                }
                if is_keyword(&w) {
                    return Err(CondError::Syntax {
                        col,
                        message: format!("unexpected '{w}'"),
                    });
                }
                if w.contains('*') {
                    return Err(CondError::Syntax {
                        col,
                        message: format!(
                            "'{w}': a pattern with '*' is only allowed after '1 of' or 'all of'"
                        ),
                    });
                }
                Ok(Cond::Ident(w))
            }
        }
    }
}

fn is_keyword(w: &str) -> bool {
    matches!(w, "and" | "or" | "not" | "of" | "them")
}

/// Whether a search identifier matches an `x of` pattern (`*` = any run; full match). Identifiers
/// starting with `_` are excluded unless the pattern itself starts with `_`.
pub fn pattern_matches(pattern: &str, ident: &str) -> bool {
    if ident.starts_with('_') && !pattern.starts_with('_') {
        return false;
    }
    glob(pattern.as_bytes(), ident.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Cond {
        Cond::Ident(s.into())
    }

    #[test]
    fn precedence_or_and_not() {
        assert_eq!(
            parse("a or b and not c").unwrap(),
            Cond::Or(vec![
                id("a"),
                Cond::And(vec![id("b"), Cond::Not(Box::new(id("c")))])
            ])
        );
        assert_eq!(
            parse("not a and b").unwrap(),
            Cond::And(vec![Cond::Not(Box::new(id("a"))), id("b")])
        );
    }

    #[test]
    fn selectors_and_parentheses() {
        assert_eq!(
            parse("all of sel_* and not (1 of filter_* or them_x)").unwrap(),
            Cond::And(vec![
                Cond::Of(Quant::All, OfTarget::Pattern("sel_*".into())),
                Cond::Not(Box::new(Cond::Or(vec![
                    Cond::Of(Quant::One, OfTarget::Pattern("filter_*".into())),
                    id("them_x")
                ])))
            ])
        );
        assert_eq!(
            parse("any of them").unwrap(),
            Cond::Of(Quant::One, OfTarget::Them)
        );
    }

    #[test]
    fn errors_name_the_column() {
        assert!(matches!(
            parse("sel | count() > 5"),
            Err(CondError::Deprecated { col: 5 })
        ));
        assert!(matches!(
            parse("a AND b"),
            Err(CondError::Syntax { col: 3, .. })
        ));
        assert!(matches!(parse("(a or b"), Err(CondError::Syntax { .. })));
        assert!(matches!(parse("a or"), Err(CondError::Syntax { .. })));
        assert!(matches!(parse(""), Err(CondError::Syntax { .. })));
    }

    #[test]
    fn patterns_exclude_underscore_identifiers() {
        assert!(pattern_matches("sel*", "selection"));
        assert!(!pattern_matches("sel*", "xsel"));
        assert!(!pattern_matches("*", "_hidden"));
        assert!(pattern_matches("_*", "_hidden"));
    }
}
