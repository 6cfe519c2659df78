//! Provider-assisted recording (PRODUCT.md §8): a provider's system records answers for its
//! patient, with the patient, through otv.
//!
//! - `token`: the enrolment token (inschrijftoken), a compact JWS with an `x5c` chain that
//!   proves the patient is enrolled at the provider.
//! - `emergency`: the raadplegersknop, a temporary permit for one consulting provider, as a
//!   direct API call and for the assisted portal.
//! - `handoff`: the one-time link that opens the portal in assisted mode.
//! - here: the modes, the professional, and what a citizen's lock settings refuse.
//!
//! Every assisted change is recorded with its provenance (channel, provider URA, professional's
//! UZI number and role) and the citizen is notified through the outbox.

pub mod api;
pub mod emergency;
pub mod handoff;
pub mod token;

use otv_core::{Actor, Channel, RoleCode, Ura, UziNumber};
use otv_store::CitizenSettings;

/// The settings of provider-assisted recording, shared by its parts.
#[derive(Debug, Default)]
pub struct Assisted {
    /// The hand-off links: the portal's public URL and their lifetime (helper B).
    pub hand_off: handoff::Settings,
    /// The trust anchors of enrolment tokens: UZI-card CAs and WID-issuer CAs (helper A).
    pub enrolment: token::TrustAnchors,
}

/// The flow through which a provider records answers (a hand-off's mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Patient and professional fill in the patient's choices together (needs an enrolment
    /// token).
    SamenNaarMijnmitz,
    /// Answers for this provider as the one holder (holder = its URA).
    Dossierhoudersknop,
    /// Emergency consent for this provider as the one consulter, at most 72 hours (needs an
    /// enrolment token).
    Raadplegersknop,
}

impl Mode {
    /// All modes.
    pub const ALL: [Mode; 3] = [
        Mode::SamenNaarMijnmitz,
        Mode::Dossierhoudersknop,
        Mode::Raadplegersknop,
    ];

    /// The channel its answers are recorded with.
    pub fn channel(self) -> Channel {
        match self {
            Mode::SamenNaarMijnmitz => Channel::SamenNaarMijnmitz,
            Mode::Dossierhoudersknop => Channel::Dossierhoudersknop,
            Mode::Raadplegersknop => Channel::Raadplegersknop,
        }
    }

    /// The wire code: the channel's code (`samen-naar-mijnmitz`, `dossierhoudersknop`,
    /// `raadplegersknop`).
    pub fn as_str(self) -> &'static str {
        self.channel().as_str()
    }

    /// Reads a wire code.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether this mode needs an enrolment token (PRODUCT.md §8).
    pub fn needs_enrolment_token(self) -> bool {
        !matches!(self, Mode::Dossierhoudersknop)
    }
}

/// The professional who acts, at the provider organisation `ura`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Professional {
    /// The responsible organisation.
    pub ura: Ura,
    /// The professional's UZI number.
    pub uzi: UziNumber,
    /// The professional's role.
    pub role: RoleCode,
    /// A mandated assistant acting for the professional.
    pub mandated: Option<UziNumber>,
}

impl Professional {
    /// The answers' provenance actor.
    pub fn actor(&self) -> Actor {
        Actor::Provider {
            ura: self.ura.clone(),
            uzi: Some(self.uzi.clone()),
            role: Some(self.role.clone()),
            mandated: self.mandated.clone(),
        }
    }
}

/// Why the citizen's own settings refuse an assisted change. The texts are for the
/// professional (Dutch B1 first, then English), and name no patient data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The citizen locked the profile against changes made with a provider.
    #[error(
        "De patiënt heeft de toestemmingen op slot gezet: een zorgverlener kan ze niet veranderen. De patiënt kan dit zelf aanpassen in het portaal. / The patient has locked their consent profile against changes made with a care provider; only the patient can change it, in the portal."
    )]
    ProfileLocked,
    /// The citizen refuses emergency consents.
    #[error(
        "De patiënt wil geen noodtoestemmingen: een noodtoestemming vastleggen kan niet. / The patient has chosen to refuse emergency consents; none can be recorded."
    )]
    EmergencyRefused,
}

impl Refusal {
    /// A short code for audit records and JSON problem types: `profile-locked`,
    /// `emergency-refused`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::ProfileLocked => "profile-locked",
            Refusal::EmergencyRefused => "emergency-refused",
        }
    }
}

/// Whether the citizen's settings allow a change through `mode`.
///
/// The lock (`lock_provider_changes`) refuses the flows in which a provider changes the
/// citizen's lasting choices: Samen-naar-MijnMitz and the dossierhoudersknop (and migration,
/// which is not a hand-off mode and checks the lock itself). An emergency consent is governed
/// by its own setting (`refuse_emergency`): the citizen may lock the profile and still want
/// to be helped in an emergency, or the other way round (PRODUCT.md §8: "separately").
pub fn allowed(settings: &CitizenSettings, mode: Mode) -> Result<(), Refusal> {
    match mode {
        Mode::Raadplegersknop if settings.refuse_emergency => Err(Refusal::EmergencyRefused),
        Mode::Raadplegersknop => Ok(()),
        Mode::SamenNaarMijnmitz | Mode::Dossierhoudersknop if settings.lock_provider_changes => {
            Err(Refusal::ProfileLocked)
        }
        Mode::SamenNaarMijnmitz | Mode::Dossierhoudersknop => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_refuses_changes_with_a_provider_and_emergency_has_its_own_setting() {
        let open = CitizenSettings::default();
        let locked = CitizenSettings {
            lock_provider_changes: true,
            ..CitizenSettings::default()
        };
        let no_emergency = CitizenSettings {
            refuse_emergency: true,
            ..CitizenSettings::default()
        };
        for mode in Mode::ALL {
            assert_eq!(allowed(&open, mode), Ok(()), "{mode:?}");
        }
        assert_eq!(
            allowed(&locked, Mode::SamenNaarMijnmitz),
            Err(Refusal::ProfileLocked)
        );
        assert_eq!(
            allowed(&locked, Mode::Dossierhoudersknop),
            Err(Refusal::ProfileLocked)
        );
        assert_eq!(allowed(&locked, Mode::Raadplegersknop), Ok(()));
        assert_eq!(
            allowed(&no_emergency, Mode::Raadplegersknop),
            Err(Refusal::EmergencyRefused)
        );
        assert_eq!(allowed(&no_emergency, Mode::SamenNaarMijnmitz), Ok(()));
    }

    #[test]
    fn modes_read_back_from_their_codes() {
        for mode in Mode::ALL {
            assert_eq!(Mode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(Mode::parse("portal"), None);
    }
}
