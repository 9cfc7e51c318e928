//! The search for the highest rate that still meets a latency goal: step up by a factor until a rate fails,
//! then bisect between the highest pass and the lowest failure until they are close.

/// The state of a step-and-bisect search over rates.
#[derive(Clone, Debug)]
pub struct RateSearch {
    start: f64,
    factor: f64,
    precision: f64,
    max_steps: usize,
    steps: usize,
    pass: Option<f64>,
    fail: Option<f64>,
}

impl RateSearch {
    /// Starts at `start`; multiplies (or divides, while nothing passed) by `factor` (> 1) until the goal
    /// flips; then bisects until `(fail - pass) / pass <= precision`, or `max_steps` rates were tried.
    pub fn new(start: f64, factor: f64, precision: f64, max_steps: usize) -> RateSearch {
        assert!(start > 0.0 && factor > 1.0 && precision > 0.0);
        RateSearch {
            start,
            factor,
            precision,
            max_steps,
            steps: 0,
            pass: None,
            fail: None,
        }
    }

    /// The next rate to try, or `None` when the search is over.
    pub fn next(&self) -> Option<f64> {
        if self.steps >= self.max_steps {
            return None;
        }
        match (self.pass, self.fail) {
            (None, None) => Some(self.start),
            (Some(pass), None) => Some(pass * self.factor),
            (None, Some(fail)) => {
                let lower = fail / self.factor;
                (lower >= 1.0).then_some(lower)
            }
            (Some(pass), Some(fail)) => {
                ((fail - pass) / pass > self.precision).then_some((pass + fail) / 2.0)
            }
        }
    }

    /// Records whether `rate` met the goal.
    pub fn record(&mut self, rate: f64, passed: bool) {
        self.steps += 1;
        if passed {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// The highest rate that met the goal so far, and the lowest that failed.
    #[cfg(test)]
    fn bounds(&self) -> (Option<f64>, Option<f64>) {
        (self.pass, self.fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(limit: f64, start: f64) -> (Option<f64>, Vec<f64>) {
        let mut search = RateSearch::new(start, 2.0, 0.05, 30);
        let mut tried = Vec::new();
        while let Some(rate) = search.next() {
            tried.push(rate);
            search.record(rate, rate <= limit);
        }
        (search.bounds().0, tried)
    }

    #[test]
    fn steps_up_then_bisects_to_within_the_precision() {
        let (best, tried) = search(37_000.0, 1_000.0);
        assert_eq!(&tried[..7], &[1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 64e3]);
        let best = best.unwrap();
        assert!((37_000.0 / 1.05..=37_000.0).contains(&best), "{best}");
    }

    #[test]
    fn steps_down_when_the_start_fails() {
        let (best, tried) = search(700.0, 5_000.0);
        assert_eq!(&tried[..4], &[5000.0, 2500.0, 1250.0, 625.0]);
        let best = best.unwrap();
        assert!((700.0 / 1.05..=700.0).contains(&best), "{best}");
    }

    #[test]
    fn gives_up_after_max_steps() {
        let mut search = RateSearch::new(100.0, 2.0, 0.01, 3);
        let mut n = 0;
        while let Some(rate) = search.next() {
            search.record(rate, true);
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(search.bounds(), (Some(400.0), None));
    }
}
