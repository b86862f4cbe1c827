//! The `when` of a step: whether it applies, decided from parameters and values
//! captured by earlier steps. A value that was never set (its step was skipped)
//! counts as empty and equals nothing.

/// A condition on named values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Equals { var: String, value: String },
    NotEquals { var: String, value: String },
    Empty { var: String },
    NotEmpty { var: String },
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

impl Condition {
    /// Evaluates against `lookup`.
    pub fn holds<'a>(&self, lookup: &impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Condition::Equals { var, value } => lookup(var) == Some(value.as_str()),
            Condition::NotEquals { var, value } => lookup(var) != Some(value.as_str()),
            Condition::Empty { var } => lookup(var).is_none_or(|v| v.trim().is_empty()),
            Condition::NotEmpty { var } => lookup(var).is_some_and(|v| !v.trim().is_empty()),
            Condition::All(cs) => cs.iter().all(|c| c.holds(lookup)),
            Condition::Any(cs) => cs.iter().any(|c| c.holds(lookup)),
        }
    }

    /// Every name the condition reads.
    pub fn variables(&self) -> Vec<&str> {
        match self {
            Condition::Equals { var, .. }
            | Condition::NotEquals { var, .. }
            | Condition::Empty { var }
            | Condition::NotEmpty { var } => vec![var.as_str()],
            Condition::All(cs) | Condition::Any(cs) => {
                cs.iter().flat_map(|c| c.variables()).collect()
            }
        }
    }

    /// The condition in words, for the wizard and the run report.
    pub fn describe(&self) -> String {
        match self {
            Condition::Equals { var, value } => format!("{var} is \"{value}\""),
            Condition::NotEquals { var, value } => format!("{var} is not \"{value}\""),
            Condition::Empty { var } => format!("{var} is empty"),
            Condition::NotEmpty { var } => format!("{var} is not empty"),
            Condition::All(cs) => cs
                .iter()
                .map(|c| c.describe())
                .collect::<Vec<_>>()
                .join(" and "),
            Condition::Any(cs) => format!(
                "({})",
                cs.iter()
                    .map(|c| c.describe())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn eval(c: &Condition, pairs: &[(&'static str, &'static str)]) -> bool {
        let m: HashMap<&str, &str> = pairs.iter().copied().collect();
        c.holds(&|n: &str| m.get(n).copied())
    }

    #[test]
    fn branches_of_procedure_2() {
        let absent = Condition::Equals {
            var: "cluman_instance".into(),
            value: "absent".into(),
        };
        assert!(eval(&absent, &[("cluman_instance", "absent")]));
        assert!(!eval(&absent, &[("cluman_instance", "present")]));
        assert!(!eval(&absent, &[]));
    }

    #[test]
    fn svn_sync_check_of_procedure_5() {
        let unsynced = Condition::Empty {
            var: "sync_from".into(),
        };
        assert!(eval(&unsynced, &[]));
        assert!(eval(&unsynced, &[("sync_from", "  \n")]));
        assert!(!eval(
            &unsynced,
            &[("sync_from", "http://pcrfclient02/repos")]
        ));
        assert!(eval(
            &Condition::NotEmpty {
                var: "sync_from".into()
            },
            &[("sync_from", "x")]
        ));
    }

    #[test]
    fn all_and_any() {
        let c = Condition::All(vec![
            Condition::Equals {
                var: "a".into(),
                value: "1".into(),
            },
            Condition::Any(vec![
                Condition::NotEquals {
                    var: "b".into(),
                    value: "2".into(),
                },
                Condition::NotEmpty { var: "c".into() },
            ]),
        ]);
        assert!(eval(&c, &[("a", "1"), ("b", "3")]));
        assert!(!eval(&c, &[("a", "1"), ("b", "2")]));
        assert!(eval(&c, &[("a", "1"), ("b", "2"), ("c", "x")]));
        assert_eq!(c.variables(), ["a", "b", "c"]);
        assert_eq!(
            c.describe(),
            "a is \"1\" and (b is not \"2\" or c is not empty)"
        );
    }
}
