//! Age groups for consent (PRODUCT.md §10, terms of use §5d): under 12 a parent or guardian may
//! fill in the choices; from 12 to 15 the child's answers wait for a parent or guardian to
//! confirm them (`pending-guardian`); from 16 a citizen's own answers count at once.
//!
//! Pure: the date of the moment is an input.

use chrono::{Datelike, NaiveDate};

use crate::AnswerState;

/// A citizen's age group on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgeGroup {
    /// Younger than 12: a parent or guardian may record the choices.
    Under12,
    /// 12 to 15: the child's own answers need a parent's or guardian's confirmation.
    From12To15,
    /// 16 or older: the citizen decides alone.
    From16,
}

impl AgeGroup {
    /// The age group of someone born on `birth_date`, on the day `on`. A birth date after `on`
    /// counts as age 0.
    pub fn of(birth_date: NaiveDate, on: NaiveDate) -> AgeGroup {
        match age_in_years(birth_date, on) {
            0..=11 => AgeGroup::Under12,
            12..=15 => AgeGroup::From12To15,
            _ => AgeGroup::From16,
        }
    }

    /// The state of answers recorded for a citizen of this age group, by the citizen themself
    /// or (`by_representative`) by someone the identity provider says acts for them:
    /// - 16 or older: `active` (they decide alone);
    /// - under 12, recorded by a representative (a parent or guardian): `active`, because under
    ///   12 a parent or guardian may fill in the choices;
    /// - otherwise (a child under 16 in their own login, or a representative of a child of 12
    ///   to 15, where child and parent must both agree): `pending-guardian`, until a parent or
    ///   guardian confirms them. Pending answers decide nothing.
    pub fn state_of_answers(self, by_representative: bool) -> AnswerState {
        match self {
            AgeGroup::From16 => AnswerState::Active,
            AgeGroup::Under12 if by_representative => AnswerState::Active,
            AgeGroup::Under12 | AgeGroup::From12To15 => AnswerState::PendingGuardian,
        }
    }
}

/// Completed years between `birth_date` and `on` (0 when `on` is earlier). Someone born on
/// 29 February has a birthday on 1 March in years without it.
pub fn age_in_years(birth_date: NaiveDate, on: NaiveDate) -> u32 {
    if on <= birth_date {
        return 0;
    }
    let years = on.year() - birth_date.year();
    let had_birthday = (on.month(), on.day()) >= (birth_date.month(), birth_date.day());
    u32::try_from(if had_birthday { years } else { years - 1 }).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_groups_change_on_the_12th_and_16th_birthday() {
        let born = d("2010-06-15");
        assert_eq!(AgeGroup::of(born, d("2022-06-14")), AgeGroup::Under12);
        assert_eq!(AgeGroup::of(born, d("2022-06-15")), AgeGroup::From12To15);
        assert_eq!(AgeGroup::of(born, d("2026-06-14")), AgeGroup::From12To15);
        assert_eq!(AgeGroup::of(born, d("2026-06-15")), AgeGroup::From16);
        let own = |g: AgeGroup| g.state_of_answers(false);
        assert_eq!(own(AgeGroup::Under12), AnswerState::PendingGuardian);
        assert_eq!(own(AgeGroup::From12To15), AnswerState::PendingGuardian);
        assert_eq!(own(AgeGroup::From16), AnswerState::Active);
        let by_representative = |g: AgeGroup| g.state_of_answers(true);
        assert_eq!(by_representative(AgeGroup::Under12), AnswerState::Active);
        assert_eq!(
            by_representative(AgeGroup::From12To15),
            AnswerState::PendingGuardian
        );
        assert_eq!(by_representative(AgeGroup::From16), AnswerState::Active);
    }

    #[test]
    fn ages_count_completed_years() {
        assert_eq!(age_in_years(d("2000-02-29"), d("2016-02-28")), 15);
        assert_eq!(age_in_years(d("2000-02-29"), d("2016-02-29")), 16);
        assert_eq!(age_in_years(d("2000-02-29"), d("2017-02-28")), 16);
        assert_eq!(age_in_years(d("2000-02-29"), d("2017-03-01")), 17);
        assert_eq!(age_in_years(d("2030-01-01"), d("2026-01-01")), 0);
        assert_eq!(age_in_years(d("1950-12-31"), d("2026-12-30")), 75);
    }
}
