//! Finding the line of a key or list item in a scenario file's text, for diagnostics (the YAML
//! parser gives values, not positions).

/// A file's lines.
pub struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        Lines {
            lines: text.lines().collect(),
        }
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// The 1-based line of the first `key:` among 0-based lines `from..to`.
    pub fn key_line(&self, from: usize, to: usize, key: &str) -> Option<usize> {
        let to = to.min(self.lines.len());
        (from.min(to)..to)
            .find(|&i| has_key(self.lines[i], key))
            .map(|i| i + 1)
    }

    /// The 1-based lines where the items of the block list under the key on 1-based line `key_line`
    /// start (`- ` at the list's indentation).
    pub fn item_lines(&self, key_line: usize) -> Vec<usize> {
        let Some(head) = key_line.checked_sub(1).and_then(|i| self.lines.get(i)) else {
            return Vec::new();
        };
        let key_indent = indent(head);
        let mut out = Vec::new();
        let mut item_indent = None;
        for (i, l) in self.lines.iter().enumerate().skip(key_line) {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let ind = indent(l);
            if ind < key_indent || (ind == key_indent && !t.starts_with("- ") && t != "-") {
                break;
            }
            if t.starts_with("- ") || t == "-" {
                match item_indent {
                    None => {
                        item_indent = Some(ind);
                        out.push(i + 1);
                    }
                    Some(ii) if ii == ind => out.push(i + 1),
                    _ => {}
                }
            }
        }
        out
    }
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

fn has_key(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
    for q in ["", "'", "\""] {
        if let Some(rest) = t.strip_prefix(q).and_then(|r| r.strip_prefix(key)) {
            if let Some(rest) = rest.strip_prefix(q) {
                if rest.trim_start().starts_with(':') {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_keys() {
        let text = "id: x\ntelemetry:\n  - at: 0\n    sensor: sysmon\n  - at: 1\n    fields:\n      - nested\n    sensor: mde\nhost: h\n";
        let l = Lines::new(text);
        assert_eq!(l.item_lines(2), vec![3, 5]);
        assert_eq!(l.key_line(4, 9, "sensor"), Some(8));
        assert_eq!(l.key_line(0, 9, "host"), Some(9));
    }
}
