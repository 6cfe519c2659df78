//! The time as otv's handlers see it.
//!
//! Every rule that depends on the moment (the decision's validity windows, the 72-hour
//! emergency consent, hand-off and token lifetimes) takes the moment from [`AppState::clock`]
//! (`crate::AppState::clock`), never from the system directly, so that tests can stand at a
//! given second and step over a boundary. The binary always runs on [`Clock::system`].

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

/// The system clock, or (tests only) a clock that stands still until it is moved.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that stands at `at` until [`Clock::set`] or [`Clock::advance`] moves it.
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock {
            fixed: Some(Arc::new(Mutex::new(at))),
        }
    }

    /// The moment now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.fixed {
            None => Utc::now(),
            Some(at) => *at.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Moves a fixed clock to `at` (and every clone of it). Does nothing to the system clock.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(fixed) = &self.fixed {
            *fixed.lock().unwrap_or_else(|e| e.into_inner()) = at;
        }
    }

    /// Moves a fixed clock forward by `by`. Does nothing to the system clock.
    pub fn advance(&self, by: TimeDelta) {
        if let Some(fixed) = &self.fixed {
            let mut at = fixed.lock().unwrap_or_else(|e| e.into_inner());
            *at += by;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_all_clones_move_together() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::fixed(at);
        let clone = clock.clone();
        assert_eq!(clone.now(), at);
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(clone.now(), at + TimeDelta::seconds(1));
        clone.set(at);
        assert_eq!(clock.now(), at);
    }

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        let before = Utc::now();
        clock.set(before - TimeDelta::days(365));
        assert!(clock.now() >= before);
    }
}
