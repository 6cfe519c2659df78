//! The consent catalogue (PRODUCT.md §3): holder categories, consulting categories, data
//! categories with their hierarchy, the options, and which organisation types belong where.
//!
//! The catalogue is data. [`Catalogue::from_toml`] reads and validates a catalogue file; a broken
//! file is refused with an error that names the entry. [`Catalogue::default_catalogue`] is the
//! file shipped with otv (`catalogue/default.toml`).

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use crate::ids::{CategoryCode, DataCategory, OrgType};

/// The catalogue file shipped with otv.
pub const DEFAULT_CATALOGUE_TOML: &str = include_str!("../catalogue/default.toml");

/// A catalogue file that cannot be used. Names the entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// The file is not valid TOML or lacks a required field.
    #[error("catalogue file is not readable: {0}")]
    Syntax(String),
    /// One entry is wrong.
    #[error("catalogue entry {entry}: {problem}")]
    Entry {
        /// The entry, e.g. `holder_category[2] (DH-APO)`.
        entry: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// One category of dossier holders (dossierhouders), e.g. "Apotheken".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderCategory {
    /// otv's own code, e.g. `DH-APO`.
    pub code: CategoryCode,
    /// Dutch name as shown to citizens.
    pub name: String,
    /// English name, where the catalogue gives one (`name_en`).
    pub name_en: Option<String>,
    /// The organisation types that belong to this category.
    pub organisation_types: Vec<OrgType>,
    /// The data category that holders of this category make available.
    pub data_category: DataCategory,
}

/// One category of consulting providers (raadplegers), e.g. `RPZAC005` Apotheken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsultingCategory {
    /// The RPZAC code.
    pub code: CategoryCode,
    /// Dutch name as shown to citizens.
    pub name: String,
    /// English name, where the catalogue gives one (`name_en`).
    pub name_en: Option<String>,
    /// The organisation types that belong to this category.
    pub organisation_types: Vec<OrgType>,
    /// Asked on its own and never implied by "all my providers" (the EU category).
    pub separate: bool,
}

/// One data category (gegevenscategorie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCategoryEntry {
    /// The GGC code.
    pub code: DataCategory,
    /// Dutch name.
    pub name: String,
    /// English name, where the catalogue gives one (`name_en`).
    pub name_en: Option<String>,
    /// The category that contains this one, if any.
    pub parent: Option<DataCategory>,
}

/// One consent option: a question the citizen answers with yes or no.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsentOption {
    /// Holder category.
    pub holder: CategoryCode,
    /// Data category made available.
    pub data_category: DataCategory,
    /// Consulting category.
    pub consulter: CategoryCode,
}

/// A validated catalogue with the lookups the decision needs.
#[derive(Debug, Clone)]
pub struct Catalogue {
    version: String,
    organisation_types: Vec<(OrgType, String)>,
    data_categories: Vec<DataCategoryEntry>,
    holder_categories: Vec<HolderCategory>,
    consulting_categories: Vec<ConsultingCategory>,
    options: Vec<ConsentOption>,
    holder_by_type: HashMap<OrgType, usize>,
    consulter_by_type: HashMap<OrgType, usize>,
    /// For each data category: itself and all its ancestors.
    covered_by: HashMap<DataCategory, Vec<DataCategory>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    version: String,
    #[serde(default)]
    organisation_type: Vec<RawOrgType>,
    #[serde(default)]
    data_category: Vec<RawDataCategory>,
    #[serde(default)]
    holder_category: Vec<RawHolderCategory>,
    #[serde(default)]
    consulting_category: Vec<RawConsultingCategory>,
    #[serde(default)]
    option: Vec<RawOption>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrgType {
    code: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataCategory {
    code: String,
    name: String,
    name_en: Option<String>,
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHolderCategory {
    code: String,
    name: String,
    name_en: Option<String>,
    organisation_types: Vec<String>,
    data_category: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsultingCategory {
    code: String,
    name: String,
    name_en: Option<String>,
    organisation_types: Vec<String>,
    #[serde(default)]
    separate: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    holder: String,
    data_category: String,
    consulter: String,
}

fn entry_err(entry: impl Into<String>, problem: impl Into<String>) -> CatalogueError {
    CatalogueError::Entry {
        entry: entry.into(),
        problem: problem.into(),
    }
}

impl Catalogue {
    /// The catalogue shipped with otv. It is checked by the test suite, so this cannot fail.
    pub fn default_catalogue() -> Catalogue {
        Catalogue::from_toml(DEFAULT_CATALOGUE_TOML).expect("the shipped catalogue is valid")
    }

    /// Reads and validates a catalogue file.
    pub fn from_toml(text: &str) -> Result<Catalogue, CatalogueError> {
        let raw: RawCatalogue =
            toml::from_str(text).map_err(|e| CatalogueError::Syntax(e.message().to_owned()))?;
        Self::validate(raw)
    }

    fn validate(raw: RawCatalogue) -> Result<Catalogue, CatalogueError> {
        if raw.version.trim().is_empty() {
            return Err(entry_err("version", "must not be empty"));
        }

        let mut organisation_types = Vec::new();
        for (i, t) in raw.organisation_type.iter().enumerate() {
            let entry = format!("organisation_type[{i}] ({})", t.code);
            let code = OrgType::parse(&t.code).map_err(|e| entry_err(&entry, e.to_string()))?;
            if organisation_types.iter().any(|(c, _)| c == &code) {
                return Err(entry_err(entry, "duplicate organisation type"));
            }
            organisation_types.push((code, t.name.clone()));
        }
        let known_type = |code: &str, entry: &str| -> Result<OrgType, CatalogueError> {
            let t = OrgType::parse(code).map_err(|e| entry_err(entry, e.to_string()))?;
            if organisation_types.iter().any(|(c, _)| c == &t) {
                Ok(t)
            } else {
                Err(entry_err(
                    entry,
                    format!("organisation type `{code}` is not listed under [[organisation_type]]"),
                ))
            }
        };

        let mut data_categories: Vec<DataCategoryEntry> = Vec::new();
        for (i, d) in raw.data_category.iter().enumerate() {
            let entry = format!("data_category[{i}] ({})", d.code);
            let code =
                DataCategory::parse(&d.code).map_err(|e| entry_err(&entry, e.to_string()))?;
            if data_categories.iter().any(|c| c.code == code) {
                return Err(entry_err(entry, "duplicate data category"));
            }
            let parent = d
                .parent
                .as_deref()
                .map(|p| DataCategory::parse_field(p, "parent"))
                .transpose()
                .map_err(|e| entry_err(&entry, e.to_string()))?;
            data_categories.push(DataCategoryEntry {
                code,
                name: d.name.clone(),
                name_en: d.name_en.clone(),
                parent,
            });
        }
        let mut covered_by = HashMap::new();
        for (i, d) in data_categories.iter().enumerate() {
            let entry = format!("data_category[{i}] ({})", d.code);
            let mut chain = vec![d.code.clone()];
            let mut next = d.parent.clone();
            while let Some(p) = next {
                if chain.contains(&p) {
                    return Err(entry_err(
                        entry,
                        format!("parent chain has a cycle through `{p}`"),
                    ));
                }
                let Some(parent) = data_categories.iter().find(|c| c.code == p) else {
                    return Err(entry_err(
                        entry,
                        format!("parent `{p}` is not a data category in this file"),
                    ));
                };
                chain.push(p);
                next = parent.parent.clone();
            }
            covered_by.insert(d.code.clone(), chain);
        }
        let known_category = |code: &str, entry: &str| -> Result<DataCategory, CatalogueError> {
            let c = DataCategory::parse(code).map_err(|e| entry_err(entry, e.to_string()))?;
            if covered_by.contains_key(&c) {
                Ok(c)
            } else {
                Err(entry_err(
                    entry,
                    format!("data category `{code}` is not listed under [[data_category]]"),
                ))
            }
        };

        let mut holder_categories: Vec<HolderCategory> = Vec::new();
        let mut holder_by_type = HashMap::new();
        for (i, h) in raw.holder_category.iter().enumerate() {
            let entry = format!("holder_category[{i}] ({})", h.code);
            let code =
                CategoryCode::parse(&h.code).map_err(|e| entry_err(&entry, e.to_string()))?;
            if holder_categories.iter().any(|c| c.code == code) {
                return Err(entry_err(entry, "duplicate holder category"));
            }
            let mut types = Vec::new();
            for t in &h.organisation_types {
                let t = known_type(t, &entry)?;
                if holder_by_type.insert(t.clone(), i).is_some() {
                    return Err(entry_err(
                        entry,
                        format!(
                            "organisation type `{t}` already belongs to another holder category"
                        ),
                    ));
                }
                types.push(t);
            }
            let data_category = known_category(&h.data_category, &entry)?;
            holder_categories.push(HolderCategory {
                code,
                name: h.name.clone(),
                name_en: h.name_en.clone(),
                organisation_types: types,
                data_category,
            });
        }

        let mut consulting_categories: Vec<ConsultingCategory> = Vec::new();
        let mut consulter_by_type = HashMap::new();
        for (i, k) in raw.consulting_category.iter().enumerate() {
            let entry = format!("consulting_category[{i}] ({})", k.code);
            let code =
                CategoryCode::parse(&k.code).map_err(|e| entry_err(&entry, e.to_string()))?;
            if consulting_categories.iter().any(|c| c.code == code) {
                return Err(entry_err(entry, "duplicate consulting category"));
            }
            let mut types = Vec::new();
            for t in &k.organisation_types {
                let t = known_type(t, &entry)?;
                if consulter_by_type.insert(t.clone(), i).is_some() {
                    return Err(entry_err(
                        entry,
                        format!(
                            "organisation type `{t}` already belongs to another consulting category"
                        ),
                    ));
                }
                types.push(t);
            }
            consulting_categories.push(ConsultingCategory {
                code,
                name: k.name.clone(),
                name_en: k.name_en.clone(),
                organisation_types: types,
                separate: k.separate,
            });
        }

        for (t, _) in &organisation_types {
            if !holder_by_type.contains_key(t) {
                return Err(entry_err(
                    format!("organisation_type ({t})"),
                    "belongs to no holder category",
                ));
            }
            if !consulter_by_type.contains_key(t) {
                return Err(entry_err(
                    format!("organisation_type ({t})"),
                    "belongs to no consulting category",
                ));
            }
        }

        let mut options = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, o) in raw.option.iter().enumerate() {
            let entry = format!(
                "option[{i}] ({} {} {})",
                o.holder, o.data_category, o.consulter
            );
            let holder = holder_categories
                .iter()
                .find(|h| h.code.as_str() == o.holder)
                .ok_or_else(|| {
                    entry_err(
                        &entry,
                        format!("holder category `{}` is not defined", o.holder),
                    )
                })?;
            let data_category = known_category(&o.data_category, &entry)?;
            let consulter = consulting_categories
                .iter()
                .find(|k| k.code.as_str() == o.consulter)
                .ok_or_else(|| {
                    entry_err(
                        &entry,
                        format!("consulting category `{}` is not defined", o.consulter),
                    )
                })?;
            let option = ConsentOption {
                holder: holder.code.clone(),
                data_category,
                consulter: consulter.code.clone(),
            };
            if !seen.insert(option.clone()) {
                return Err(entry_err(entry, "duplicate option"));
            }
            options.push(option);
        }
        if options.is_empty() {
            return Err(entry_err("option", "the catalogue has no options"));
        }

        Ok(Catalogue {
            version: raw.version,
            organisation_types,
            data_categories,
            holder_categories,
            consulting_categories,
            options,
            holder_by_type,
            consulter_by_type,
            covered_by,
        })
    }

    /// The version stamped on every decision and notification.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Known organisation types with their Dutch names.
    pub fn organisation_types(&self) -> &[(OrgType, String)] {
        &self.organisation_types
    }

    /// All data categories.
    pub fn data_categories(&self) -> &[DataCategoryEntry] {
        &self.data_categories
    }

    /// All holder categories.
    pub fn holder_categories(&self) -> &[HolderCategory] {
        &self.holder_categories
    }

    /// All consulting categories.
    pub fn consulting_categories(&self) -> &[ConsultingCategory] {
        &self.consulting_categories
    }

    /// All options, in file order.
    pub fn options(&self) -> &[ConsentOption] {
        &self.options
    }

    /// The holder category of an organisation type; `None` when the type is unknown.
    pub fn holder_category_of(&self, t: &OrgType) -> Option<&HolderCategory> {
        self.holder_by_type
            .get(t)
            .map(|&i| &self.holder_categories[i])
    }

    /// The consulting category of an organisation type; `None` when the type is unknown.
    pub fn consulting_category_of(&self, t: &OrgType) -> Option<&ConsultingCategory> {
        self.consulter_by_type
            .get(t)
            .map(|&i| &self.consulting_categories[i])
    }

    /// Whether the catalogue defines this data category.
    pub fn knows_data_category(&self, c: &DataCategory) -> bool {
        self.covered_by.contains_key(c)
    }

    /// Whether an answer for `answered` applies to a question about `asked`: the same category
    /// or an ancestor of it (GGC002 covers GGC012 and GGC013, never the reverse).
    pub fn covers(&self, answered: &DataCategory, asked: &DataCategory) -> bool {
        answered == asked
            || self
                .covered_by
                .get(asked)
                .is_some_and(|chain| chain.contains(answered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc(s: &str) -> DataCategory {
        DataCategory::parse(s).unwrap()
    }

    #[test]
    fn the_shipped_catalogue_has_the_initial_contents_of_product_md() {
        let c = Catalogue::default_catalogue();
        assert_eq!(c.holder_categories().len(), 7);
        assert_eq!(c.consulting_categories().len(), 7);
        assert_eq!(c.options().len(), 49);
        assert!(c.covers(&dc("GGC002"), &dc("GGC012")));
        assert!(c.covers(&dc("GGC002"), &dc("GGC013")));
        assert!(!c.covers(&dc("GGC013"), &dc("GGC002")));
        assert!(!c.covers(&dc("GGC012"), &dc("GGC013")));
        let apo = c
            .holder_category_of(&OrgType::parse("K9").unwrap())
            .unwrap();
        assert_eq!(
            (apo.code.as_str(), apo.data_category.as_str()),
            ("DH-APO", "GGC013")
        );
        let lab = c
            .consulting_category_of(&OrgType::parse("L1").unwrap())
            .unwrap();
        assert_eq!(lab.code.as_str(), "RPZAC104");
        let eu: Vec<_> = c
            .consulting_categories()
            .iter()
            .filter(|k| k.separate)
            .map(|k| k.code.as_str())
            .collect();
        assert_eq!(eu, ["RPZAC200"]);
        assert!(
            c.holder_category_of(&OrgType::parse("Q9").unwrap())
                .is_none()
        );
    }

    /// Each broken catalogue is refused with an error naming the entry.
    #[test]
    fn the_shipped_catalogue_names_every_category_in_english_too() {
        let c = Catalogue::default_catalogue();
        let missing: Vec<String> = c
            .holder_categories()
            .iter()
            .filter(|h| h.name_en.is_none())
            .map(|h| h.code.to_string())
            .chain(
                c.consulting_categories()
                    .iter()
                    .filter(|k| k.name_en.is_none())
                    .map(|k| k.code.to_string()),
            )
            .chain(
                c.data_categories()
                    .iter()
                    .filter(|d| d.name_en.is_none())
                    .map(|d| d.code.to_string()),
            )
            .collect();
        assert!(missing.is_empty(), "no English name: {missing:?}");
        let apo = c
            .holder_categories()
            .iter()
            .find(|h| h.code.as_str() == "DH-APO")
            .unwrap();
        assert_eq!(
            (apo.name.as_str(), apo.name_en.as_deref()),
            ("Apotheken", Some("Pharmacies"))
        );
        // An operator's catalogue may leave English names out: the Dutch name is then shown.
        let without = DEFAULT_CATALOGUE_TOML.replace("name_en = \"Pharmacies\"\n", "");
        let c = Catalogue::from_toml(&without).unwrap();
        assert!(
            c.holder_categories()
                .iter()
                .any(|h| h.code.as_str() == "DH-APO" && h.name_en.is_none())
        );
    }

    #[test]
    fn broken_catalogues_name_the_entry() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "name_en = \"Test results\"\nparent = \"GGC002\"",
                "name_en = \"Test results\"\nparent = \"GGC099\"",
                "data_category[1] (GGC012): parent `GGC099` is not a data category",
            ),
            (
                "name = \"Behandelgegevens\"",
                "name = \"Behandelgegevens\"\nparent = \"GGC013\"",
                "parent chain has a cycle",
            ),
            (
                "organisation_types = [\"J8\", \"K9\"]",
                "organisation_types = [\"J8\", \"K9\", \"Q1\"]",
                "holder_category[1] (DH-APO): organisation type `Q1` is not listed",
            ),
            (
                "organisation_types = [\"J8\", \"K9\"]\ndata_category",
                "organisation_types = [\"J8\", \"K9\", \"Z3\"]\ndata_category",
                "`Z3` already belongs to another holder category",
            ),
            (
                "code = \"DH-LAB\"",
                "code = \"DH-APO\"",
                "holder_category[3] (DH-APO): duplicate holder category",
            ),
            (
                "consulter = \"RPZAC200\"\n",
                "consulter = \"RPZAC201\"\n",
                "consulting category `RPZAC201` is not defined",
            ),
            (
                "holder = \"DH-HA\"\ndata_category = \"GGC002\"\nconsulter = \"RPZAC003\"",
                "holder = \"DH-HA\"\ndata_category = \"GGC002\"\nconsulter = \"RPZAC001\"",
                "option[1] (DH-HA GGC002 RPZAC001): duplicate option",
            ),
            (
                "code = \"G3\"",
                "code = \"g3\"",
                "organisation_type[16] (g3): field `organisation_type`",
            ),
            (
                "version = \"otv-2026.1\"",
                "version = \"\"",
                "version: must not be empty",
            ),
            ("version = \"otv-2026.1\"", "versie = 1", "not readable"),
            (
                "organisation_types = [\"G3\"]\ndata_category",
                "organisation_types = []\ndata_category",
                "organisation_type (G3): belongs to no holder category",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(
                DEFAULT_CATALOGUE_TOML.contains(from),
                "fixture text {from:?} not in the catalogue"
            );
            let broken = DEFAULT_CATALOGUE_TOML.replacen(from, to, 1);
            let err = Catalogue::from_toml(&broken)
                .expect_err(expected)
                .to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }
}
