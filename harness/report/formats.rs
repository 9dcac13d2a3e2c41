//! The report's other formats: JUnit XML (a test case per scenario and per expected rule) and
//! Markdown for pull-request comments and `$GITHUB_STEP_SUMMARY` (failures first, then the matrix).

use super::{GroupHit, Outcome, Report, Verdict};
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
        // Expected rules, and rules that fired on a control without being a known false positive.
        for rr in s
            .rules
            .iter()
            .filter(|x| x.expected.is_some() || x.verdict == Verdict::Unexpected)
        {
            let mut msg = match rr.expected {
                Some(e) => format!(
                    "{} expected to {e}, {}: {}",
                    title(rr),
                    if rr.fired { "fired" } else { "stayed silent" },
                    rr.reason
                ),
                None => format!(
                    "{} fired on a control and is not a recorded known false positive",
                    title(rr)
                ),
            };
            if let (Verdict::Missed, Some(e)) = (rr.verdict, &rr.explanation) {
                msg.push_str(&format!(" (nearest miss: {})", e.summary));
            }
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

fn title(rr: &super::RuleResult) -> &str {
    if rr.title.is_empty() {
        &rr.rule
    } else {
        &rr.title
    }
}

/// A correlation hit as text: `Computer=WS1, User=-: events 3, 7`.
pub fn group_text(g: &GroupHit) -> String {
    let key: Vec<String> = g
        .group
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("-")))
        .collect();
    let events: Vec<String> = g.events.iter().map(|e| e.to_string()).collect();
    if key.is_empty() {
        format!("events {}", events.join(", "))
    } else {
        format!("{}: events {}", key.join(", "), events.join(", "))
    }
}

fn pct(t: &super::TechniqueCoverage) -> String {
    format!(
        "{}/{} ({:.0}%)",
        t.detected,
        t.scenarios,
        t.coverage * 100.0
    )
}

/// Markdown for a pull-request comment or `$GITHUB_STEP_SUMMARY`: a summary line, the failures
/// (with the nearest miss of each missed rule), coverage per technique by all rules and by each
/// rule set, the scenario matrix, the controls, each rule's reach and false-positive exposure, and
/// the recorded coverage gaps with why each rule stays silent.
pub fn markdown(r: &Report) -> String {
    let mut out = String::from("# purplecov coverage\n\n");
    let attack: Vec<&super::ScenarioReport> = r.scenarios.iter().filter(|s| !s.control).collect();
    let controls: Vec<&super::ScenarioReport> = r.scenarios.iter().filter(|s| s.control).collect();
    let count = |o: Outcome| attack.iter().filter(|s| s.outcome == o).count();
    out.push_str(&format!(
        "{} attack scenarios: {} detected, {} partial, {} logged only, {} missed, {} error.",
        attack.len(),
        count(Outcome::Detected),
        count(Outcome::Partial),
        count(Outcome::LoggedOnly),
        count(Outcome::Missed),
        count(Outcome::Error),
    ));
    let noisy = controls
        .iter()
        .filter(|s| s.rules.iter().any(|x| x.fired))
        .count();
    if !controls.is_empty() {
        out.push_str(&format!(
            " {} controls: {noisy} with a rule firing.",
            controls.len()
        ));
    }
    out.push_str("\n\n");

    let mut failures = Vec::new();
    for s in &r.scenarios {
        for e in &s.errors {
            failures.push(format!("| {} | - | - | - | error | {} |", s.id, cell(e)));
        }
        for rr in &s.rules {
            if !matches!(
                rr.verdict,
                Verdict::Missed | Verdict::Unexpected | Verdict::Error
            ) {
                continue;
            }
            let mut why = match (rr.expected, rr.reason.is_empty()) {
                (None, _) => "fired on a control; not a recorded known false positive".to_string(),
                (_, false) => format!("recorded: {}", rr.reason),
                _ => String::new(),
            };
            if let Some(e) = &rr.explanation {
                why.push_str(&format!("<br>nearest miss: {}", e.summary));
            }
            failures.push(format!(
                "| {} | {} | {} | {} | {} | {} |",
                s.id,
                cell(title(rr)),
                rr.expected.unwrap_or("-"),
                if rr.fired { "yes" } else { "no" },
                name(&rr.verdict),
                cell(&why)
            ));
        }
    }
    if failures.is_empty() {
        out.push_str("No failures: every expectation holds.\n\n");
    } else {
        out.push_str(&format!("## Failures ({})\n\n| Scenario | Rule | Expected | Fired | Result | Why |\n|---|---|---|---|---|---|\n", failures.len()));
        for f in failures {
            out.push_str(&f);
            out.push('\n');
        }
        out.push('\n');
    }

    out.push_str("## Coverage per technique\n\n| Technique | All rules |");
    for set in &r.summary.sets {
        out.push_str(&format!(" {} |", cell(&set.set)));
    }
    out.push_str(&format!(
        "\n|---|---|{}\n",
        "---|".repeat(r.summary.sets.len())
    ));
    for t in &r.summary.techniques {
        out.push_str(&format!("| {} | {} |", t.technique, pct(t)));
        for set in &r.summary.sets {
            let c = set.techniques.iter().find(|x| x.technique == t.technique);
            out.push_str(&format!(" {} |", c.map_or("-".into(), pct)));
        }
        out.push('\n');
    }
    if !controls.is_empty() {
        out.push_str(&format!(
            "| Controls fired on | {noisy}/{} |",
            controls.len()
        ));
        for set in &r.summary.sets {
            out.push_str(&format!(
                " {}/{} |",
                set.controls_fired.len(),
                controls.len()
            ));
        }
        out.push('\n');
    }

    let fired_list = |s: &super::ScenarioReport| {
        let mut fired: Vec<String> = s
            .rules
            .iter()
            .filter(|x| x.fired)
            .map(|x| {
                // A correlation names the groups it fired for and the events that made each hit.
                let groups: Vec<String> = x.groups.iter().map(group_text).collect();
                if groups.is_empty() {
                    cell(title(x))
                } else {
                    format!("{} ({})", cell(title(x)), cell(&groups.join("; ")))
                }
            })
            .collect();
        fired.sort();
        if fired.is_empty() {
            "-".to_string()
        } else {
            fired.join("<br>")
        }
    };
    out.push_str("\n## Scenarios\n\n| Scenario | Outcome | Category | Signals | Rules fired |\n|---|---|---|---|---|\n");
    for s in &attack {
        out.push_str(&format!(
            "| {} | {} | {} | {}/{} | {} |\n",
            s.id,
            name(&s.outcome),
            name(&s.category),
            s.signals.iter().filter(|x| x.found).count(),
            s.signals.len(),
            fired_list(s)
        ));
    }
    if !controls.is_empty() {
        out.push_str("\n## Controls (benign look-alikes)\n\n| Control | Name | Rules fired (false positives) |\n|---|---|---|\n");
        for s in &controls {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                s.id,
                cell(&s.name),
                fired_list(s)
            ));
        }
    }

    out.push_str("\n## Rules\n\n| Set | Rule | Level | Fires on | False positives (controls) |\n|---|---|---|---|---|\n");
    for x in &r.rules {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&x.set),
            cell(&x.title),
            x.level.as_deref().unwrap_or("-"),
            if x.untested {
                "untested".to_string()
            } else {
                list(&x.fired_on)
            },
            list(&x.false_positives)
        ));
    }

    let defects: Vec<&super::RuleReport> = r
        .rules
        .iter()
        .filter(|x| !x.source_gaps.is_empty())
        .collect();
    if !defects.is_empty() {
        out.push_str("\n## Source defects\n\nWhat a published query uses that its platform does not have (the translation keeps it).\n\n| Rule | Defect |\n|---|---|\n");
        for x in defects {
            out.push_str(&format!(
                "| {} | {} |\n",
                cell(&x.title),
                cell(&x.source_gaps.join(" "))
            ));
        }
    }

    let gaps: Vec<String> = attack
        .iter()
        .flat_map(|s| {
            s.rules
                .iter()
                .filter(|x| x.expected == Some("silent") && !x.fired)
                .map(move |x| {
                    format!(
                        "| {} | {} | {} | {} |",
                        s.id,
                        cell(title(x)),
                        cell(&x.reason),
                        cell(x.explanation.as_ref().map_or("", |e| e.summary.as_str()))
                    )
                })
        })
        .collect();
    if !gaps.is_empty() {
        out.push_str(&format!("\n<details><summary>Coverage gaps: rules recorded as silent on attack scenarios ({})</summary>\n\n| Scenario | Rule | Recorded reason | Nearest miss |\n|---|---|---|---|\n", gaps.len()));
        for g in gaps {
            out.push_str(&g);
            out.push('\n');
        }
        out.push_str("\n</details>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{group_text, GroupHit};

    #[test]
    fn group_text_names_the_key_and_events() {
        let g = GroupHit {
            group: [
                ("Computer".to_string(), Some("WS1".to_string())),
                ("User".to_string(), None),
            ]
            .into_iter()
            .collect(),
            events: vec![3, 7],
        };
        assert_eq!(group_text(&g), "Computer=WS1, User=-: events 3, 7");
        let g = GroupHit {
            group: Default::default(),
            events: vec![1],
        };
        assert_eq!(group_text(&g), "events 1");
    }
}
