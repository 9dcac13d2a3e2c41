//! YAML documents with their place in the file.
//!
//! Input: the text of a rule file. Output: one [`Doc`] per YAML document (`---` separated) with the line
//! it starts on, so later stages can name the line of a key that is wrong; a document that is not valid
//! YAML becomes a located diagnostic and the other documents still load. serde_norway parses; this
//! module only splits documents and finds lines, it never interprets Sigma.

use crate::diag::{Diagnostic, Location};
use serde_norway::Value as Yaml;
use std::path::Path;

/// Largest rule file read (bytes); larger files are reported, not parsed.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Doc {
    pub value: Yaml,
    /// The document's own text.
    pub text: String,
    /// 1-based line in the file where the document's text starts.
    pub first_line: usize,
    /// 0-based index of the document in the file.
    pub index: usize,
}

impl Doc {
    /// The 1-based file line of a nested key (`["detection", "selection", "Image|endswith"]`), found by
    /// walking the text for each key in turn; falls back to the deepest key found, then the document's
    /// first line.
    pub fn line_of(&self, keys: &[&str]) -> usize {
        // One pass: each key is searched after the line of the one before.
        let mut lines = self.text.lines().enumerate();
        let mut found = None;
        for key in keys {
            match lines.find(|(_, l)| line_has_key(l, key)) {
                Some((i, _)) => found = Some(i),
                None => break,
            }
        }
        self.first_line + found.unwrap_or(0)
    }
}

fn line_has_key(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
    for q in ["", "'", "\""] {
        if let Some(rest) = t.strip_prefix(q) {
            if let Some(rest) = rest.strip_prefix(key) {
                if let Some(rest) = rest.strip_prefix(q) {
                    if rest.trim_start().starts_with(':') {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// Splits a file into documents and parses each.
pub fn parse_documents(path: &Path, text: &str) -> (Vec<Doc>, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    for (index, (first_line, chunk)) in split_documents(text).into_iter().enumerate() {
        if chunk
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        match serde_norway::from_str::<Yaml>(&chunk) {
            Ok(Yaml::Null) => {}
            Ok(value) => docs.push(Doc {
                value,
                text: chunk,
                first_line,
                index,
            }),
            Err(e) => {
                let (line, col) = e
                    .location()
                    .map(|l| (first_line + l.line().saturating_sub(1), l.column()))
                    .unwrap_or((first_line, 0));
                let msg = e.to_string();
                // serde_norway appends "at line X column Y" relative to the document; drop it.
                let msg = msg
                    .split(" at line ")
                    .next()
                    .unwrap_or(msg.as_str())
                    .to_string();
                diags.push(Diagnostic::error(
                    Location::new(path, line, col),
                    format!("invalid YAML: {msg}"),
                ));
            }
        }
    }
    (docs, diags)
}

/// Splits on lines that are exactly a document marker (`---`, optionally followed by a comment or
/// content, or `...`). Returns `(first line, text)` per document.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        let is_start = t == "---" || t.starts_with("--- ");
        let is_end = t == "...";
        if is_start || is_end {
            if !cur.is_empty() {
                out.push((start, std::mem::take(&mut cur)));
            }
            start = i + 2;
            if is_start {
                // Content after `--- ` on the same line belongs to the new document.
                let rest = t[3..].trim();
                if !rest.is_empty() && !rest.starts_with('#') {
                    cur.push_str(rest);
                    cur.push('\n');
                    start = i + 1;
                }
            }
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_lines() {
        let text = "title: a\n---\n# c\ntitle: b\ndetection:\n  sel:\n    X|foo: 1\n";
        let (docs, diags) = parse_documents(Path::new("f.yml"), text);
        assert!(diags.is_empty());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].first_line, 3);
        assert_eq!(docs[1].line_of(&["detection", "sel", "X|foo"]), 7);
    }

    #[test]
    fn a_bad_document_does_not_hide_the_others() {
        let text = "title: a\n---\ntitle: [unclosed\n---\ntitle: c\n";
        let (docs, diags) = parse_documents(Path::new("f.yml"), text);
        assert_eq!(docs.len(), 2);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].location.line >= 3, "{}", diags[0]);
    }
}
