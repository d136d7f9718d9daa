//! The index options (`WITH (strategy = ..., lists = n, substrings = m)`): their bounds and
//! what a combination of them asks for. The extension parses them from the catalog.

pub use crate::strategy::Requested;
pub use crate::substrings::plan::MAX_SUBSTRINGS;

/// Most lists a lists index has (the `lists` option's bound and the default's cap).
pub const MAX_LISTS: u32 = 4096;

/// The options of one index, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub strategy: Requested,
    /// Lists of the lists strategy (0: about the square root of the rows).
    pub lists: usize,
    /// Substrings of the substring strategy (0: chosen from the code length and row count).
    pub substrings: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            strategy: Requested::Auto,
            lists: 0,
            substrings: 0,
        }
    }
}

/// An option given with the other strategy than the one named (each option is named like
/// the strategy it belongs to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub option: &'static str,
    pub strategy: &'static str,
}

impl Options {
    /// The options as given (`strategy` `None`: not given, or `auto`): a named strategy wins;
    /// else `lists = n` alone means lists and `substrings = m` alone substring tables (the
    /// options of one strategy imply it); else auto. An option of the strategy not named is
    /// an error.
    pub fn resolve(
        strategy: Option<Requested>,
        lists: i32,
        substrings: i32,
    ) -> Result<Options, Mismatch> {
        let (has_lists, has_substrings) = (lists > 0, substrings > 0);
        let strategy = match strategy {
            Some(Requested::Lists) if has_substrings => {
                return Err(Mismatch {
                    option: "substrings",
                    strategy: "lists",
                })
            }
            Some(Requested::Substrings) if has_lists => {
                return Err(Mismatch {
                    option: "lists",
                    strategy: "substrings",
                })
            }
            Some(s @ (Requested::Lists | Requested::Substrings)) => s,
            _ => match (has_lists, has_substrings) {
                (true, false) => Requested::Lists,
                (false, true) => Requested::Substrings,
                _ => Requested::Auto,
            },
        };
        Ok(Options {
            strategy,
            lists: lists.max(0) as usize,
            substrings: substrings.max(0) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_of_one_strategy_imply_it_and_the_other_strategys_are_refused() {
        use Requested::*;
        let ok = |s, l, m| Options::resolve(s, l, m).map(|o| o.strategy);
        assert_eq!(ok(None, 0, 0), Ok(Auto));
        assert_eq!(ok(Some(Auto), 5, 0), Ok(Lists));
        assert_eq!(ok(None, 0, 4), Ok(Substrings));
        assert_eq!(ok(None, 5, 4), Ok(Auto));
        assert_eq!(ok(Some(Lists), 5, 0), Ok(Lists));
        assert_eq!(ok(Some(Substrings), 0, 0), Ok(Substrings));
        assert_eq!(
            Options::resolve(Some(Lists), 0, 2).unwrap_err().option,
            "substrings"
        );
        assert_eq!(
            Options::resolve(Some(Substrings), 2, 0).unwrap_err().option,
            "lists"
        );
        assert_eq!(
            Options::resolve(None, -1, 3).unwrap(),
            Options {
                strategy: Substrings,
                lists: 0,
                substrings: 3
            }
        );
    }
}
