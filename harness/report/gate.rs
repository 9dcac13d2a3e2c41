//! The CI gate: fail-on states and regressions against a baseline report.
//!
//! Input: the new report (and, for a baseline, the old one as JSON). Output: the states that trip the
//! gate, the regressions (a scenario's outcome or a rule's verdict got worse, a scenario or expected
//! rule disappeared) and a readable diff of every change. The CLI turns a non-empty result into exit 1.

use serde_json::Value as Json;
use std::collections::BTreeMap;

/// States `--fail-on` accepts: outcomes and verdicts by their report names.
pub const STATES: &[&str] = &[
    "detected",
    "partial",
    "logged_only",
    "missed",
    "skipped",
    "unsupported",
    "error",
    "pass",
    "unexpected",
    "unrecorded",
];

/// The default `--fail-on`.
pub const DEFAULT_FAIL_ON: &[&str] = &["missed", "unexpected", "error"];

/// How bad a state is (higher is worse), for regression checks.
fn rank(state: &str) -> u8 {
    match state {
        "detected" | "pass" | "unrecorded" => 0,
        "partial" => 1,
        "logged_only" => 2,
        "missed" | "unexpected" => 3,
        "skipped" | "unsupported" => 4,
        _ => 5,
    }
}

/// The comparable lines of a report: `scenario <id>: <outcome>`, `signal <id>/<name>: found|missing`
/// and `rule <id>/<rule>: <verdict>`, keyed and sorted.
pub fn lines(report: &Json) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in report["scenarios"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let id = s["id"].as_str().unwrap_or("?");
        out.insert(
            format!("scenario {id}"),
            s["outcome"].as_str().unwrap_or("?").to_string(),
        );
        for sig in s["signals"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            out.insert(
                format!("signal {id}/{}", sig["name"].as_str().unwrap_or("?")),
                if sig["found"] == true {
                    "found"
                } else {
                    "missing"
                }
                .to_string(),
            );
        }
        for r in s["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            // A rule that fired on an attack scenario without an expectation is listed, not judged.
            if r["verdict"] == "unrecorded" {
                continue;
            }
            out.insert(
                format!("rule {id}/{}", r["rule"].as_str().unwrap_or("?")),
                r["verdict"].as_str().unwrap_or("?").to_string(),
            );
        }
    }
    out
}

/// What changed between two reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Changes that make the new report worse, one readable line each.
    pub regressions: Vec<String>,
    /// A unified diff of every comparable line.
    pub diff: String,
}

/// Compares a baseline report with a new one.
pub fn compare(old: &Json, new: &Json) -> Changes {
    let a = lines(old);
    let b = lines(new);
    let mut regressions = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None if !k.starts_with("signal ") => {
                regressions.push(format!("{k}: was {v}, now absent"))
            }
            None => {}
            Some(w) => {
                let worse = if k.starts_with("signal ") {
                    v == "found" && w == "missing"
                } else {
                    rank(w) > rank(v)
                };
                if worse {
                    regressions.push(format!("{k}: {v} -> {w}"));
                }
            }
        }
    }
    let text = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect::<String>()
    };
    let (ta, tb) = (text(&a), text(&b));
    let diff = similar::TextDiff::from_lines(&ta, &tb)
        .unified_diff()
        .context_radius(0)
        .header("baseline", "this run")
        .to_string();
    Changes { regressions, diff }
}

/// The lines of `report` in a `--fail-on` state.
pub fn tripped(report: &Json, fail_on: &[String]) -> Vec<String> {
    lines(report)
        .into_iter()
        .filter(|(k, v)| !k.starts_with("signal ") && fail_on.iter().any(|f| f == v))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: &str, verdict: &str, found: bool) -> Json {
        serde_json::json!({"scenarios": [{"id": "T1-1", "outcome": outcome,
            "signals": [{"name": "s", "found": found}],
            "rules": [{"rule": "r1", "expected": "fire", "verdict": verdict},
                      {"rule": "r2", "expected": null, "verdict": "unrecorded"}]}]})
    }

    #[test]
    fn worse_outcomes_verdicts_and_lost_signals_are_regressions() {
        let old = report("detected", "pass", true);
        assert!(compare(&old, &old).regressions.is_empty());
        assert!(compare(&old, &old).diff.is_empty());
        let c = compare(&old, &report("partial", "missed", false));
        assert_eq!(
            c.regressions,
            [
                "rule T1-1/r1: pass -> missed",
                "scenario T1-1: detected -> partial",
                "signal T1-1/s: found -> missing"
            ]
        );
        for line in [
            "-scenario T1-1: detected\n",
            "+scenario T1-1: partial\n",
            "-rule T1-1/r1: pass\n",
            "+rule T1-1/r1: missed\n",
        ] {
            assert!(c.diff.contains(line), "{line:?} not in\n{}", c.diff);
        }
        assert!(
            !c.diff.contains("r2"),
            "unexpected-free rules are not compared"
        );
        // Better is not a regression.
        assert!(compare(&report("partial", "missed", false), &old)
            .regressions
            .is_empty());
        // A scenario that disappears is.
        let gone = serde_json::json!({"scenarios": []});
        assert_eq!(compare(&old, &gone).regressions.len(), 2);
    }

    #[test]
    fn fail_on_states() {
        let r = report("partial", "missed", true);
        let f = |s: &[&str]| tripped(&r, &s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(f(&["missed"]), ["rule T1-1/r1: missed"]);
        assert_eq!(f(&["partial", "missed"]).len(), 2);
        assert!(f(&["error"]).is_empty());
    }
}
