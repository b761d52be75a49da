//! Decides, before each round trip, whether it is warm-up, measured, or not to happen.
//!
//! Everything runs on one thread (a current-thread runtime), so plain `Cell`s suffice.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::args::Limit;

/// What the next round trip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the warm-up ends: performed but not counted.
    Warmup,
    /// Performed and counted.
    Measured,
    /// The run is over: start no more round trips.
    Stop,
}

/// The run's timeline and, with `--total`, its budget of round trips.
#[derive(Debug)]
pub struct Schedule {
    warmup_end: Instant,
    limit: ScheduleLimit,
    claimed: Cell<u64>,
}

#[derive(Debug)]
enum ScheduleLimit {
    Until(Instant),
    Total(u64),
}

impl Schedule {
    /// A schedule starting at `start`: `warmup` uncounted, then `limit`.
    pub fn new(start: Instant, warmup: Duration, limit: Limit) -> Self {
        let warmup_end = start + warmup;
        let limit = match limit {
            Limit::Duration(duration) => ScheduleLimit::Until(warmup_end + duration),
            Limit::Total(total) => ScheduleLimit::Total(total),
        };
        Schedule {
            warmup_end,
            limit,
            claimed: Cell::new(0),
        }
    }

    /// When measurement begins.
    pub fn warmup_end(&self) -> Instant {
        self.warmup_end
    }

    /// Decides the round trip about to start at `now`. A `Measured` answer under `--total`
    /// takes one round trip from the budget, so exactly `total` are performed.
    pub fn next(&self, now: Instant) -> Phase {
        if now < self.warmup_end {
            return Phase::Warmup;
        }
        match self.limit {
            ScheduleLimit::Until(end) if now < end => Phase::Measured,
            ScheduleLimit::Until(_) => Phase::Stop,
            ScheduleLimit::Total(total) => {
                let claimed = self.claimed.get();
                if claimed < total {
                    self.claimed.set(claimed + 1);
                    Phase::Measured
                } else {
                    Phase::Stop
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_schedule() {
        let start = Instant::now();
        let s = Schedule::new(
            start,
            Duration::from_secs(1),
            Limit::Duration(Duration::from_secs(2)),
        );
        assert_eq!(s.next(start), Phase::Warmup);
        assert_eq!(s.next(start + Duration::from_millis(999)), Phase::Warmup);
        assert_eq!(s.next(start + Duration::from_secs(1)), Phase::Measured);
        assert_eq!(s.next(start + Duration::from_millis(2999)), Phase::Measured);
        assert_eq!(s.next(start + Duration::from_secs(3)), Phase::Stop);
    }

    #[test]
    fn total_schedule_hands_out_exactly_total() {
        let start = Instant::now();
        let s = Schedule::new(start, Duration::from_secs(1), Limit::Total(3));
        assert_eq!(s.next(start), Phase::Warmup);
        let later = start + Duration::from_secs(5);
        assert_eq!(s.next(later), Phase::Measured);
        assert_eq!(s.next(later), Phase::Measured);
        assert_eq!(s.next(later), Phase::Measured);
        assert_eq!(s.next(later), Phase::Stop);
        assert_eq!(s.next(later), Phase::Stop);
    }

    #[test]
    fn no_warmup() {
        let start = Instant::now();
        let s = Schedule::new(start, Duration::ZERO, Limit::Total(1));
        assert_eq!(s.next(start), Phase::Measured);
        assert_eq!(s.next(start), Phase::Stop);
    }
}
