//! The report's other formats: JUnit XML (a test case per scenario and per expected rule) and
//! Markdown for pull-request comments and `$GITHUB_STEP_SUMMARY` (failures first, then the matrix).

use super::{Outcome, Report, Verdict};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|x| x.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn failure(kind: NonSuccessKind, message: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(kind);
    s.set_message(message);
    s
}

/// JUnit XML: one suite per technique (controls in their own suite); per scenario a case for its
/// outcome (failure for partial and missed, error for error, skipped for skipped and unsupported),
/// and per expected rule a case for its verdict (failure for missed and unexpected, error for
/// error). Case names are unique: `<scenario id>` and `<scenario id> / <rule id>`.
pub fn junit(r: &Report) -> String {
    let mut report = quick_junit::Report::new("purplecov");
    let mut suites: std::collections::BTreeMap<String, TestSuite> = Default::default();
    for s in &r.scenarios {
        let suite_name = if s.control {
            format!("{} controls", s.technique)
        } else {
            s.technique.clone()
        };
        let suite = suites
            .entry(suite_name.clone())
            .or_insert_with(|| TestSuite::new(suite_name.clone()));
        let status = match s.outcome {
            Outcome::Detected | Outcome::LoggedOnly => TestCaseStatus::success(),
            Outcome::Partial | Outcome::Missed => failure(
                NonSuccessKind::Failure,
                format!("{}: {}", s.id, name(&s.outcome)),
            ),
            Outcome::Error => failure(NonSuccessKind::Error, s.errors.join("; ")),
            Outcome::Skipped | Outcome::Unsupported => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(name(&s.outcome));
                st
            }
        };
        let mut case = TestCase::new(s.id.clone(), status);
        case.set_classname(format!("{}.{}", suite_name, s.id));
        suite.add_test_case(case);
        for rr in s.rules.iter().filter(|x| x.expected.is_some()) {
            let msg = format!(
                "{} expected to {}, {}: {}",
                if rr.title.is_empty() {
                    &rr.rule
                } else {
                    &rr.title
                },
                rr.expected.unwrap_or("-"),
                if rr.fired { "fired" } else { "stayed silent" },
                rr.reason
            );
            let status = match rr.verdict {
                Verdict::Pass | Verdict::Unrecorded => TestCaseStatus::success(),
                Verdict::Missed | Verdict::Unexpected => failure(NonSuccessKind::Failure, msg),
                Verdict::Error => failure(NonSuccessKind::Error, msg),
            };
            let mut case = TestCase::new(format!("{} / {}", s.id, rr.rule), status);
            case.set_classname(format!("{}.{}", suite_name, s.id));
            suite.add_test_case(case);
        }
    }
    report.add_test_suites(suites.into_values());
    report.to_string().unwrap_or_default()
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown: a summary line, the failures (missed, unexpected, error verdicts; partial, missed and
/// error outcomes), then the scenario matrix and coverage per technique.
pub fn markdown(r: &Report) -> String {
    let mut out = String::from("# purplecov coverage\n\n");
    let count = |o: Outcome| r.summary.outcomes.get(&o).copied().unwrap_or(0);
    out.push_str(&format!(
        "{} scenarios: {} detected, {} partial, {} logged only, {} missed, {} error.\n\n",
        r.summary.scenarios,
        count(Outcome::Detected),
        count(Outcome::Partial),
        count(Outcome::LoggedOnly),
        count(Outcome::Missed),
        count(Outcome::Error),
    ));
    let mut failures = Vec::new();
    for s in &r.scenarios {
        for rr in &s.rules {
            if matches!(
                rr.verdict,
                Verdict::Missed | Verdict::Unexpected | Verdict::Error
            ) {
                failures.push(format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    s.id,
                    cell(if rr.title.is_empty() {
                        &rr.rule
                    } else {
                        &rr.title
                    }),
                    rr.expected.unwrap_or("-"),
                    if rr.fired { "yes" } else { "no" },
                    name(&rr.verdict),
                    cell(&rr.reason)
                ));
            }
        }
        for e in &s.errors {
            failures.push(format!("| {} | - | - | - | error | {} |", s.id, cell(e)));
        }
    }
    if failures.is_empty() {
        out.push_str("No failures.\n\n");
    } else {
        out.push_str("## Failures\n\n| Scenario | Rule | Expected | Fired | Result | Reason |\n|---|---|---|---|---|---|\n");
        for f in failures {
            out.push_str(&f);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str("## Scenarios\n\n| Scenario | Outcome | Category | Signals | Rules fired |\n|---|---|---|---|---|\n");
    for s in &r.scenarios {
        let found = s.signals.iter().filter(|x| x.found).count();
        let mut fired: Vec<String> = s
            .rules
            .iter()
            .filter(|x| x.fired)
            .map(|x| cell(&x.title))
            .collect();
        fired.sort();
        out.push_str(&format!(
            "| {}{} | {} | {} | {}/{} | {} |\n",
            s.id,
            if s.control { " (control)" } else { "" },
            name(&s.outcome),
            name(&s.category),
            found,
            s.signals.len(),
            if fired.is_empty() {
                "-".to_string()
            } else {
                fired.join("<br>")
            }
        ));
    }
    out.push_str("\n## Coverage per technique\n\n| Technique | Scenarios | Detected | Coverage |\n|---|---|---|---|\n");
    for t in &r.summary.techniques {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0}% |\n",
            t.technique,
            t.scenarios,
            t.detected,
            t.coverage * 100.0
        ));
    }
    out
}
