//! Record categories: what a record is about, and what a consent scope may cover.
//!
//! One list for the whole product: a record carries exactly one category (bound into its
//! encryption AAD, `docs/records.md`), and a consent token's scope is a set of categories
//! (`docs/reader-client.md`). The wire form is the lower-case name (`"labs"`), everywhere.

use std::fmt;
use std::str::FromStr;

/// A record category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Patient summary (problems, diagnoses, key facts).
    Summary,
    /// Allergies and intolerances.
    Allergies,
    /// Current and past medications.
    Medications,
    /// Laboratory results.
    Labs,
    /// Imaging reports and images.
    Imaging,
    /// Clinical notes.
    Notes,
}

/// A category name that is not one of [`Category::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown record category {got:?}: expected one of summary, allergies, medications, labs, imaging, notes")]
pub struct UnknownCategory {
    /// What was given.
    pub got: String,
}

impl Category {
    /// Every category, in wire order.
    pub const ALL: [Category; 6] =
        [Category::Summary, Category::Allergies, Category::Medications, Category::Labs, Category::Imaging, Category::Notes];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Summary => "summary",
            Category::Allergies => "allergies",
            Category::Medications => "medications",
            Category::Labs => "labs",
            Category::Imaging => "imaging",
            Category::Notes => "notes",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownCategory { got: s.to_owned() })
    }
}

/// Parses a comma-separated list (`"labs,allergies"`), refusing unknown names; sorted, no duplicates.
pub fn parse_list(s: &str) -> Result<Vec<Category>, UnknownCategory> {
    let mut out = s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::parse).collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// The comma-separated wire form of a list (inverse of [`parse_list`]).
#[must_use]
pub fn join(list: &[Category]) -> String {
    list.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_category_round_trips_through_its_name() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
        }
    }

    #[test]
    fn unknown_and_differently_cased_names_are_refused() {
        assert!("Labs".parse::<Category>().is_err());
        assert!("x-ray".parse::<Category>().is_err());
        assert!(parse_list("labs,bogus").is_err());
    }

    #[test]
    fn list_is_sorted_and_deduplicated() {
        assert_eq!(parse_list("notes, labs,labs"), Ok(vec![Category::Labs, Category::Notes]));
        assert_eq!(join(&[Category::Labs, Category::Notes]), "labs,notes");
    }
}
