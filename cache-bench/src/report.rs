//! What a measuring process hands back: named rows, as one JSON line on its
//! standard output, which the process printing the tables parses.

use serde::{Deserialize, Serialize};

use crate::stats::Latency;

/// The marker before the JSON line of a [`Report`] on a child's stdout.
pub const MARKER: &str = "MEMOCACHE_BENCH_REPORT ";

/// One measurement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Row {
    /// A stable name, like `redis.hit.raw`, which the tables look up.
    pub id: String,
    /// What was measured, for people.
    pub label: String,
    /// Timings, in nanoseconds.
    pub latency: Option<Latency>,
    /// Calls per second.
    pub rate: Option<f64>,
    /// Any other number (bytes, seconds, keys), with its unit in the label.
    pub value: Option<f64>,
}

/// The rows of one process, plus remarks for the reader.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The measurements.
    pub rows: Vec<Row>,
    /// Things the reader should know (a peer that failed, a check that fired).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds timings.
    pub fn latency(&mut self, id: &str, label: &str, latency: Latency) {
        self.push(Row {
            id: id.to_owned(),
            label: label.to_owned(),
            latency: Some(latency),
            ..Row::default()
        });
    }

    /// Adds a rate (calls per second).
    pub fn rate(&mut self, id: &str, label: &str, rate: f64) {
        self.push(Row {
            id: id.to_owned(),
            label: label.to_owned(),
            rate: Some(rate),
            ..Row::default()
        });
    }

    /// Adds a plain number.
    pub fn value(&mut self, id: &str, label: &str, value: f64) {
        self.push(Row {
            id: id.to_owned(),
            label: label.to_owned(),
            value: Some(value),
            ..Row::default()
        });
    }

    /// Adds a remark.
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    fn push(&mut self, row: Row) {
        self.rows.retain(|r| r.id != row.id);
        self.rows.push(row);
    }

    /// Appends another report's rows and notes.
    pub fn merge(&mut self, other: Report) {
        for row in other.rows {
            self.push(row);
        }
        self.notes.extend(other.notes);
    }

    /// The row named `id`.
    pub fn get(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// The timings of `id`.
    pub fn lat(&self, id: &str) -> Option<Latency> {
        self.get(id)?.latency
    }

    /// The rate of `id`.
    pub fn rate_of(&self, id: &str) -> Option<f64> {
        self.get(id)?.rate
    }

    /// The number of `id`.
    pub fn value_of(&self, id: &str) -> Option<f64> {
        self.get(id)?.value
    }

    /// The JSON line a child prints.
    pub fn to_line(&self) -> String {
        format!(
            "{MARKER}{}",
            serde_json::to_string(self).expect("a report serializes")
        )
    }

    /// The report in a child's output, if it printed one.
    pub fn from_output(stdout: &str) -> Option<Report> {
        stdout
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(MARKER))
            .and_then(|json| serde_json::from_str(json).ok())
    }
}

/// Nanoseconds as µs with two decimals.
pub fn us(ns: f64) -> String {
    format!("{:.2}", ns / 1_000.0)
}

/// A ratio with two decimals and an `x`.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_line() {
        let mut r = Report::default();
        r.rate("a", "A", 2.0);
        r.rate("a", "A again", 3.0);
        let line = format!("noise\n{}\n", r.to_line());
        let back = Report::from_output(&line).unwrap();
        assert_eq!(back.rows.len(), 1);
        assert_eq!(back.rate_of("a"), Some(3.0));
    }
}
