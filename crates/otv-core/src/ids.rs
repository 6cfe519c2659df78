//! Identifiers and codes (PRODUCT.md §2) as newtypes that can only be built valid.
//!
//! Every constructor names the field and the rule it broke, so an interface can report
//! "field `holder_ura`: must be 8 digits" in its own format. A [`Bsn`] never shows its
//! number: not in `Debug`, not in error texts, and it has no `Display`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An identifier or code that broke a rule. Names the field and the rule, never the value of a BSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {rule}")]
pub struct IdError {
    /// The field that is wrong, in the words of the interface that read it.
    pub field: &'static str,
    /// The rule that the value broke.
    pub rule: &'static str,
}

impl IdError {
    /// The same error, reported against another field name (an interface's own name for it).
    pub fn for_field(self, field: &'static str) -> Self {
        IdError { field, ..self }
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Citizen service number (burgerservicenummer): 9 digits that pass the 11-test.
///
/// Deliberately has no `Display`; `Debug` prints `Bsn(<redacted>)`. Use [`Bsn::expose`] only where
/// the number itself is needed (pseudonymisation, encryption, wire formats to the holder).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bsn([u8; 9]);

impl Bsn {
    /// Reads a BSN for the field `bsn`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Self::parse_field(s, "bsn")
    }

    /// Reads a BSN, naming `field` in the error.
    pub fn parse_field(s: &str, field: &'static str) -> Result<Self, IdError> {
        let err = |rule| IdError { field, rule };
        if s.len() != 9 || !all_digits(s) {
            return Err(err("a BSN is 9 digits"));
        }
        let digits: [u8; 9] = s.as_bytes().try_into().expect("length checked");
        if digits.iter().all(|&d| d == b'0') {
            return Err(err("a BSN cannot be all zeros"));
        }
        // The 11-test: weights 9..2 for the first eight digits, -1 for the last.
        let sum: i32 = digits
            .iter()
            .zip([9, 8, 7, 6, 5, 4, 3, 2, -1])
            .map(|(&d, w)| i32::from(d - b'0') * w)
            .sum();
        if sum % 11 != 0 {
            return Err(err("a BSN must pass the 11-test"));
        }
        Ok(Bsn(digits))
    }

    /// The number itself. Never log or display the result.
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII digits")
    }
}

impl fmt::Debug for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bsn(<redacted>)")
    }
}

/// Defines a code newtype over a `String` with a validity check, `Display`, `FromStr` and serde.
macro_rules! code_newtype {
    ($(#[$doc:meta])* $name:ident, field = $field:literal, rule = $rule:literal, check = $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Reads the value for its usual field name.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                Self::parse_field(s, $field)
            }

            /// Reads the value, naming `field` in the error.
            pub fn parse_field(s: &str, field: &'static str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(IdError { field, rule: $rule })
                }
            }

            /// The code as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

code_newtype!(
    /// Provider organisation number (UZI-register abonneenummer, URA): 8 digits.
    Ura, field = "ura", rule = "a URA is 8 digits",
    check = |s| s.len() == 8 && all_digits(s)
);

code_newtype!(
    /// Professional's UZI number: 1 to 12 digits.
    UziNumber, field = "uzi", rule = "a UZI number is 1 to 12 digits",
    check = |s| (1..=12).contains(&s.len()) && all_digits(s)
);

code_newtype!(
    /// Organisation type (zorgaanbiedertype), e.g. `Z3`: one capital letter and one digit.
    /// Whether the catalogue knows the type is a separate question, answered by the catalogue.
    OrgType, field = "organisation_type",
    rule = "an organisation type is a capital letter and a digit, e.g. Z3",
    check = |s| matches!(s.as_bytes(), [l, d] if l.is_ascii_uppercase() && d.is_ascii_digit())
);

code_newtype!(
    /// Professional role (RoleCodeNL), e.g. `01.015`: two digits, a dot, three digits.
    RoleCode, field = "role", rule = "a role code is two digits, a dot and three digits, e.g. 01.015",
    check = |s| matches!(s.as_bytes(), [a, b, b'.', c, d, e]
        if [a, b, c, d, e].iter().all(|x| x.is_ascii_digit()))
);

code_newtype!(
    /// Data category (gegevenscategorie), e.g. `GGC002`: `GGC` and three digits.
    DataCategory, field = "data_category",
    rule = "a data category is GGC followed by three digits, e.g. GGC002",
    check = |s| s.len() == 6 && s.starts_with("GGC") && all_digits(&s[3..])
);

code_newtype!(
    /// Code of a holder category or consulting category in the catalogue, e.g. `RPZAC001`:
    /// 2 to 16 capital letters, digits or hyphens.
    CategoryCode, field = "category",
    rule = "a category code is 2 to 16 capital letters, digits or hyphens",
    check = |s| (2..=16).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
);

/// Purpose of use: treatment or continuity of care. Nothing else is valid (PRODUCT.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Purpose {
    /// `TREAT`: treatment, explicit consent.
    #[serde(rename = "TREAT")]
    Treat,
    /// `COC`: continuity of care.
    #[serde(rename = "COC")]
    Coc,
}

impl Purpose {
    /// Reads `TREAT` or `COC` for the field `purpose`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "TREAT" => Ok(Purpose::Treat),
            "COC" => Ok(Purpose::Coc),
            _ => Err(IdError {
                field: "purpose",
                rule: "the purpose of use is TREAT or COC",
            }),
        }
    }

    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Treat => "TREAT",
            Purpose::Coc => "COC",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsn_accepts_the_test_numbers_and_applies_the_11_test() {
        assert!(Bsn::parse("900203638").is_ok());
        assert!(Bsn::parse("900203651").is_ok());
        let e = Bsn::parse("900203639").unwrap_err();
        assert_eq!(e.to_string(), "field `bsn`: a BSN must pass the 11-test");
        for bad in [
            "",
            "12345678",
            "1234567890",
            "90020363a",
            "000000000",
            " 90020363",
        ] {
            assert!(Bsn::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn bsn_never_shows_its_number() {
        let b = Bsn::parse("900203638").unwrap();
        assert_eq!(format!("{b:?}"), "Bsn(<redacted>)");
        assert_eq!(format!("{:?}", Some(&b)), "Some(Bsn(<redacted>))");
        let e = Bsn::parse_field("900203639", "patient").unwrap_err();
        assert!(!e.to_string().contains("900203639"));
        assert_eq!(e.field, "patient");
    }

    #[test]
    fn codes_are_checked_and_name_their_field() {
        assert!(Ura::parse("00000123").is_ok());
        assert_eq!(
            Ura::parse("1234567").unwrap_err().to_string(),
            "field `ura`: a URA is 8 digits"
        );
        assert_eq!(
            Ura::parse_field("x", "holder_ura").unwrap_err().field,
            "holder_ura"
        );
        assert!(UziNumber::parse("900000001").is_ok());
        assert!(UziNumber::parse("").is_err());
        assert!(OrgType::parse("Z3").is_ok());
        for bad in ["z3", "Z", "Z33", "3Z"] {
            assert!(OrgType::parse(bad).is_err(), "{bad}");
        }
        assert!(RoleCode::parse("01.015").is_ok());
        for bad in ["01015", "1.015", "01.01a"] {
            assert!(RoleCode::parse(bad).is_err(), "{bad}");
        }
        assert!(DataCategory::parse("GGC002").is_ok());
        for bad in ["GGC02", "GGX002", "ggc002", "GGC0022"] {
            assert!(DataCategory::parse(bad).is_err(), "{bad}");
        }
        assert!(CategoryCode::parse("RPZAC001").is_ok());
        assert!(CategoryCode::parse("dh").is_err());
        assert_eq!(Purpose::parse("COC"), Ok(Purpose::Coc));
        assert_eq!(Purpose::parse("treat").unwrap_err().field, "purpose");
    }
}
