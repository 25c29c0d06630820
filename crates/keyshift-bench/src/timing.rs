//! Timed batches of a hot-path operation: ns per operation per batch, summarised by the
//! median and the spread (min and max of the batches).

use std::time::Duration;

/// ns/op of each batch.
#[derive(Debug, Clone)]
pub struct Samples {
    /// One figure per batch, in ns per operation.
    pub ns_per_op: Vec<f64>,
}

impl Samples {
    /// Samples from batch durations of `ops` operations each.
    pub fn from_batches(batches: &[Duration], ops: u64) -> Samples {
        Samples {
            ns_per_op: batches.iter().map(|d| per_op(*d, ops)).collect(),
        }
    }

    /// The median batch.
    pub fn median(&self) -> f64 {
        let mut sorted = self.ns_per_op.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    /// The fastest batch.
    pub fn min(&self) -> f64 {
        self.ns_per_op.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// The slowest batch.
    pub fn max(&self) -> f64 {
        self.ns_per_op.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// `median (min to max, n batches of ops)` for the report.
    pub fn summary(&self, ops: u64) -> String {
        format!(
            "{:>9.1} ns/op  (min {:.1}, max {:.1}; {} batches of {} ops)",
            self.median(),
            self.min(),
            self.max(),
            self.ns_per_op.len(),
            ops
        )
    }
}

/// The spread of per-batch ratios `slow / fast` of two interleaved series: batch i of
/// each ran back to back, under the same load.
pub fn ratios(fast: &Samples, slow: &Samples) -> Samples {
    Samples {
        ns_per_op: fast
            .ns_per_op
            .iter()
            .zip(&slow.ns_per_op)
            .map(|(f, s)| s / f)
            .collect(),
    }
}

fn per_op(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        let odd = Samples {
            ns_per_op: vec![3.0, 1.0, 2.0],
        };
        assert_eq!((odd.median(), odd.min(), odd.max()), (2.0, 1.0, 3.0));
        let even = Samples {
            ns_per_op: vec![4.0, 1.0, 2.0, 3.0],
        };
        assert_eq!(even.median(), 2.5);
    }
}
