//! What a load step records (latency histogram, counts) and the arithmetic of its report: percentiles, rates,
//! medians over runs and kf/baseline ratios.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::sys::median;

/// Latencies are recorded in microseconds, up to an hour, with 3 significant digits.
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// What the generator's connections record during one step. Times are microseconds since the generator's
/// origin; a message counts when its due time falls in the measurement window.
#[derive(Debug)]
pub struct Recorder {
    /// The measurement window `[start, end)`.
    pub window: (u64, u64),
    /// Delivery time at the other side minus due time, of the window's messages.
    pub latency: Histogram<u64>,
    /// Send time minus due time (the generator's own lateness), of the window's messages.
    pub lag: Histogram<u64>,
    /// Messages of the window delivered to the other side.
    pub delivered: u64,
    /// Deliveries (of any message) whose delivery time fell in the window: the throughput.
    pub delivered_during: u64,
    /// Acknowledgements received.
    pub acks: u64,
    /// `error` frames received.
    pub errors: u64,
    /// Events at or below the connection's cursor (repeated, or out of order).
    pub duplicates: u64,
    /// Connections that ended while the load ran.
    pub disconnects: u64,
}

impl Recorder {
    /// An empty recorder for the window `[start, end)`.
    pub fn new(start: u64, end: u64) -> Recorder {
        Recorder {
            window: (start, end),
            latency: histogram(),
            lag: histogram(),
            delivered: 0,
            delivered_during: 0,
            acks: 0,
            errors: 0,
            duplicates: 0,
            disconnects: 0,
        }
    }

    fn in_window(&self, t: u64) -> bool {
        (self.window.0..self.window.1).contains(&t)
    }

    /// A message due at `due` was delivered at `now`.
    pub fn delivered(&mut self, due: u64, now: u64) {
        if self.in_window(now) {
            self.delivered_during += 1;
        }
        if self.in_window(due) {
            self.delivered += 1;
            self.latency.saturating_record(now.saturating_sub(due).max(1));
        }
    }

    /// A message due at `due` was written to the socket at `now`.
    pub fn sent(&mut self, due: u64, now: u64) {
        if self.in_window(due) {
            self.lag.saturating_record(now.saturating_sub(due).max(1));
        }
    }

    /// `count` messages of the window were not delivered by `now`: each is counted with the latency it had
    /// at least (`now` minus the window's end).
    pub fn undelivered(&mut self, count: u64, now: u64) {
        if count > 0 {
            let at_least = now.saturating_sub(self.window.1).max(1);
            let _ = self.latency.record_n(at_least.min(MAX_MICROS), count);
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds; all zero when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

/// CPU time a process used between two readings, as a percentage of one core.
pub fn cpu_percent(ticks_before: u64, ticks_after: u64, ticks_per_second: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || ticks_per_second == 0 {
        return 0.0;
    }
    ticks_after.saturating_sub(ticks_before) as f64 / ticks_per_second as f64 / secs * 100.0
}

/// The median over runs of kf's figure divided by the baseline's figure of the same run (runs that pair up; a
/// zero baseline figure is skipped).
pub fn paired_ratio(kf: &[f64], baseline: &[f64]) -> f64 {
    let ratios: Vec<f64> = kf
        .iter()
        .zip(baseline)
        .filter(|(_, b)| **b != 0.0)
        .map(|(k, b)| k / b)
        .collect();
    median(&ratios)
}

/// The least-squares slope of `y` over `x` (`NaN` with fewer than two distinct x).
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return f64::NAN;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx == 0.0 { f64::NAN } else { sxy / sxx }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_the_window_and_measures_from_the_due_time() {
        let mut recorder = Recorder::new(1_000, 2_000);
        recorder.delivered(500, 1_100); // due before the window: throughput only
        recorder.delivered(1_000, 1_250);
        recorder.delivered(1_999, 2_500); // delivered after the window: latency only
        recorder.delivered(2_000, 2_100); // due at the window's end: outside
        assert_eq!(recorder.delivered, 2);
        assert_eq!(recorder.delivered_during, 2);
        assert_eq!(recorder.latency.len(), 2);
        assert_eq!(recorder.latency.min(), 250);
        assert_eq!(recorder.latency.max(), 501);
    }

    #[test]
    fn undelivered_messages_count_as_late_as_the_end_of_the_drain() {
        let mut recorder = Recorder::new(0, 1_000_000);
        for due in 0..98 {
            recorder.delivered(due * 10_000, due * 10_000 + 1_000);
        }
        recorder.undelivered(2, 6_000_000);
        let p = Percentiles::of(&recorder.latency);
        assert!((p.p50 - 1.0).abs() < 0.01, "{p:?}");
        assert!(p.p99 >= 4_990.0, "the two lost messages are the top 2%: {p:?}");
    }

    #[test]
    fn percentiles_in_milliseconds() {
        let mut histogram = histogram();
        for micros in 1..=1000 {
            histogram.record(micros).unwrap();
        }
        let p = Percentiles::of(&histogram);
        assert!((p.p50 - 0.5).abs() < 0.001, "{p:?}");
        assert!((p.p99 - 0.99).abs() < 0.001, "{p:?}");
        assert!((p.max - 1.0).abs() < 0.001, "{p:?}");
        assert_eq!(Percentiles::of(&histogram_empty()), Percentiles::default());
    }

    fn histogram_empty() -> Histogram<u64> {
        histogram()
    }

    #[test]
    fn cpu_is_a_percentage_of_one_core() {
        assert_eq!(cpu_percent(100, 150, 100, Duration::from_secs(1)), 50.0);
        assert_eq!(cpu_percent(0, 300, 100, Duration::from_secs(2)), 150.0);
        assert_eq!(cpu_percent(10, 10, 100, Duration::ZERO), 0.0);
    }

    #[test]
    fn ratios_pair_the_runs() {
        assert_eq!(paired_ratio(&[2.0, 9.0, 4.0], &[1.0, 3.0, 4.0]), 2.0);
        assert_eq!(paired_ratio(&[2.0, 3.0], &[0.0, 1.0]), 3.0);
        assert!(paired_ratio(&[], &[]).is_nan());
    }

    #[test]
    fn slope_of_a_line() {
        let points: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 * x as f64 + 1.0)).collect();
        assert!((slope(&points) - 3.0).abs() < 1e-9);
        assert!(slope(&[(1.0, 1.0)]).is_nan());
    }
}
