//! JUnit XML for a benchmark: a test suite per section, a test case per check and subject.
//! FAIL is a failure; WARN (a person must look) and SKIP are skipped with the reason.

use crate::bench::{BenchReport, Status};
use crate::report::junit::{attr, text};

pub fn render(report: &BenchReport) -> String {
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    let mut suites = String::new();
    for section in &report.sections {
        let mut cases = String::new();
        let (mut suite_tests, mut suite_failures, mut suite_skipped) = (0, 0, 0);
        for check in report.checks.iter().filter(|c| c.meta.section == section.id) {
            for result in &check.results {
                suite_tests += 1;
                let name = format!("{} {} [{}]", check.meta.id, check.meta.title, result.subject);
                cases.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{}\"",
                    attr(&check.meta.id),
                    attr(&name)
                ));
                match result.status {
                    Status::Fail => {
                        suite_failures += 1;
                        cases.push_str(&format!(
                            ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                            attr(&result.evidence),
                            check.meta.severity.as_str(),
                            text(&format!("{}\n\nRemediation: {}", result.evidence, check.meta.remediation))
                        ));
                    }
                    Status::Warn | Status::Skip => {
                        suite_skipped += 1;
                        cases.push_str(&format!(
                            ">\n      <skipped message=\"{}: {}\"/>\n    </testcase>\n",
                            result.status.as_str(),
                            attr(&result.evidence)
                        ));
                    }
                    Status::Pass | Status::Info => {
                        cases.push_str(&format!(
                            ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                            text(&result.evidence)
                        ));
                    }
                }
            }
        }
        tests += suite_tests;
        failures += suite_failures;
        skipped += suite_skipped;
        suites.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{suite_tests}\" failures=\"{suite_failures}\" errors=\"0\" skipped=\"{suite_skipped}\">\n{cases}  </testsuite>\n",
            attr(&format!("{} {}", section.id, section.title))
        ));
    }
    // What could not be read: an error per kind (the run could not test what needed it).
    let errors = report.unread.len();
    if errors > 0 {
        let cases: String = report
            .unread
            .iter()
            .map(|u| {
                format!(
                    "    <testcase classname=\"unread\" name=\"{}\">\n      <error message=\"{}\" type=\"{}\"/>\n    </testcase>\n",
                    attr(&u.what),
                    attr(&u.message),
                    attr(&u.why)
                )
            })
            .collect();
        tests += errors;
        suites.push_str(&format!(
            "  <testsuite name=\"not read\" tests=\"{errors}\" failures=\"0\" errors=\"{errors}\" skipped=\"0\">\n{cases}  </testsuite>\n"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">\n{suites}</testsuites>\n",
        attr(&format!("{} v{}", report.benchmark, report.version))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compliance::fixtures;

    #[test]
    fn failures_and_skips_are_counted_per_section() {
        let xml = render(&fixtures::report());
        assert!(
            xml.contains(
                "<testsuite name=\"5 Container Runtime\" tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("<testsuites name=\"CIS Docker Benchmark v1.6.0\" tests=\"5\" failures=\"1\""), "{xml}");
        assert!(xml.contains("Remediation: Do not use `--privileged`."), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), xml.matches("</testcase>").count());
        assert!(!xml.contains("not read"));

        let mut partial = fixtures::report();
        partial.unread.push(crate::bench::Unread {
            what: "cronjobs.batch".into(),
            why: "not-served".into(),
            message: "HTTP 404: the server could not find the requested resource".into(),
        });
        let xml = render(&partial);
        assert!(xml.contains("tests=\"6\" failures=\"1\" errors=\"1\""), "{xml}");
        assert!(xml.contains("<testsuite name=\"not read\" tests=\"1\" failures=\"0\" errors=\"1\""), "{xml}");
        assert!(
            xml.contains(
                "<error message=\"HTTP 404: the server could not find the requested resource\" type=\"not-served\"/>"
            ),
            "{xml}"
        );
    }
}
