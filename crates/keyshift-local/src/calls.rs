//! The AWS calls the function made, per invocation: counted on the wire by the counting
//! proxy between the function and moto's server, with one invocation in flight at a
//! time, so that each call belongs to exactly one invocation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What made an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The engine driver (createSecret, setSecret, testSecret, finishSecret).
    Engine,
    /// The scheduler driver, delivering a follow-up.
    FollowUp,
    /// The driver's malformed or wrong invocations, each refused.
    Refused,
    /// An operator's request (a status report), outside any rotation's totals.
    Operator,
}

/// One invocation and the calls it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The rotation it belongs to (by its token), if any.
    pub rotation: Option<usize>,
    /// The event's step (`?` when it has none).
    pub step: String,
    /// Who invoked it.
    pub origin: Origin,
    /// Calls by operation.
    pub calls: BTreeMap<String, u64>,
}

/// Every invocation's calls, in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTable {
    /// One row per invocation.
    pub rows: Vec<Row>,
    /// Every request the proxy counted from the function during the run.
    pub counted: u64,
}

fn add(into: &mut BTreeMap<String, u64>, calls: &BTreeMap<String, u64>) {
    for (op, n) in calls {
        *into.entry(op.clone()).or_default() += n;
    }
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

impl CallTable {
    /// The operations any invocation called: the table's columns.
    pub fn operations(&self) -> BTreeSet<&str> {
        self.rows
            .iter()
            .flat_map(|r| r.calls.keys().map(String::as_str))
            .collect()
    }

    /// The calls of the rows that `keep` selects, by operation.
    pub fn sum(&self, keep: impl Fn(&Row) -> bool) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for row in self.rows.iter().filter(|r| keep(r)) {
            add(&mut out, &row.calls);
        }
        out
    }

    /// Every row's calls together.
    pub fn total(&self) -> u64 {
        total(&self.sum(|_| true))
    }

    /// The four engine steps of `rotation`.
    pub fn engine_steps(&self, rotation: usize) -> BTreeMap<String, u64> {
        self.sum(|r| r.rotation == Some(rotation) && r.origin == Origin::Engine)
    }

    /// The engine steps and the follow-ups of `rotation`.
    pub fn whole_rotation(&self, rotation: usize) -> BTreeMap<String, u64> {
        self.sum(|r| r.rotation == Some(rotation) && matches!(r.origin, Origin::Engine | Origin::FollowUp))
    }

    /// The table: a row per invocation (grouped by rotation, in order), the engine steps'
    /// and the whole rotation's totals after each rotation; columns: the operations, then
    /// the total.
    pub fn render(&self) -> String {
        let ops: Vec<&str> = self.operations().into_iter().collect();
        let label = |r: &Row| match r.origin {
            Origin::Engine => r.step.clone(),
            Origin::FollowUp => format!("{} (follow-up)", r.step),
            Origin::Refused => format!("refused: {}", r.step),
            Origin::Operator => format!("operator: {}", r.step),
        };
        let mut lines: Vec<(Option<usize>, String, BTreeMap<String, u64>)> = Vec::new();
        let mut rotations: Vec<Option<usize>> = self.rows.iter().map(|r| r.rotation).collect();
        rotations.sort();
        rotations.dedup();
        for n in rotations {
            for row in self.rows.iter().filter(|r| r.rotation == n) {
                lines.push((n, label(row), row.calls.clone()));
            }
            if let Some(n) = n {
                lines.push((Some(n), "= engine steps".into(), self.engine_steps(n)));
                lines.push((Some(n), "= whole rotation".into(), self.whole_rotation(n)));
            }
        }
        // The grand total has no rotation column; "-" marks rows of no rotation.
        let mut table: Vec<Vec<String>> = vec![
            ["rotation", "step"]
                .into_iter()
                .chain(ops.iter().copied())
                .chain(["total"])
                .map(str::to_owned)
                .collect(),
        ];
        let cells = |rotation: String, step: String, calls: &BTreeMap<String, u64>| {
            let counts = ops.iter().map(|op| match calls.get(*op) {
                Some(n) if *n > 0 => n.to_string(),
                _ => "-".to_owned(),
            });
            [rotation, step]
                .into_iter()
                .chain(counts)
                .chain([total(calls).to_string()])
                .collect::<Vec<String>>()
        };
        for (n, step, calls) in &lines {
            let rotation = n.map_or("-".to_owned(), |n| n.to_string());
            table.push(cells(rotation, step.clone(), calls));
        }
        table.push(cells(
            String::new(),
            "= all invocations".into(),
            &self.sum(|_| true),
        ));

        let widths: Vec<usize> = (0..table[0].len())
            .map(|i| table.iter().map(|line| line[i].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for line in &table {
            let text: Vec<String> = line
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    if i < 2 {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", text.join("  ").trim_end());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rotation: Option<usize>, step: &str, origin: Origin, calls: &[(&str, u64)]) -> Row {
        Row {
            rotation,
            step: step.into(),
            origin,
            calls: calls.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect(),
        }
    }

    #[test]
    fn totals_and_the_rendered_table() {
        let table = CallTable {
            rows: vec![
                row(None, "rotateEverything", Origin::Refused, &[]),
                row(None, "createSecret", Origin::Refused, &[("DescribeSecret", 1)]),
                row(
                    Some(0),
                    "createSecret",
                    Origin::Engine,
                    &[("DescribeSecret", 2), ("PutSecretValue", 1)],
                ),
                row(
                    Some(0),
                    "finishSecret",
                    Origin::Engine,
                    &[("DescribeSecret", 3), ("CreateSchedule", 2)],
                ),
                row(Some(0), "swapPending", Origin::FollowUp, &[("DescribeSecret", 2)]),
            ],
            counted: 11,
        };
        assert_eq!(table.total(), 11);
        assert_eq!(
            table.engine_steps(0),
            BTreeMap::from([
                ("CreateSchedule".to_owned(), 2),
                ("DescribeSecret".to_owned(), 5),
                ("PutSecretValue".to_owned(), 1)
            ])
        );
        assert_eq!(total(&table.whole_rotation(0)), 10);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 5 + 2 + 1, "{text}");
        assert!(lines[0].starts_with("rotation  step"), "{text}");
        assert!(
            lines[0].ends_with("CreateSchedule  DescribeSecret  PutSecretValue  total"),
            "{text}"
        );
        assert!(
            lines[1].contains("refused: rotateEverything") && lines[1].ends_with("-      0"),
            "{text}"
        );
        assert!(lines[5].contains("swapPending (follow-up)"), "{text}");
        assert!(
            lines[6].contains("= engine steps") && lines[6].ends_with("    8"),
            "{text}"
        );
        assert!(
            lines[7].contains("= whole rotation") && lines[7].ends_with("   10"),
            "{text}"
        );
        assert!(
            lines[8].contains("= all invocations") && lines[8].ends_with("   11"),
            "{text}"
        );
    }
}
