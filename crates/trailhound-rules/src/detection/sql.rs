//! A compiled detection as a SQL condition (see `crate::sql`): its selections, its condition
//! tree and the Sigma filters attached to it.

use super::{Detection, Selection};
use crate::condition::Cond;
use crate::sql;

impl Detection {
    /// The detection as a condition over the CloudTrail table, or why it has none.
    pub(crate) fn sql(&self) -> Result<sql::Cond, String> {
        let mut all = vec![self.condition_sql(&self.condition)?];
        for filter in &self.filters {
            all.push(
                filter
                    .sql()
                    .map_err(|reason| format!("a filter applied to it: {reason}"))?,
            );
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            sql::Cond::And(all)
        })
    }

    fn condition_sql(&self, cond: &Cond) -> Result<sql::Cond, String> {
        Ok(match cond {
            Cond::Selection(index) => match self.selections.get(*index) {
                Some(selection) => selection_sql(selection)?,
                None => sql::Cond::Const(false),
            },
            Cond::Not(inner) => sql::Cond::Not(Box::new(self.condition_sql(inner)?)),
            Cond::And(items) => sql::Cond::And(items.iter().map(|c| self.condition_sql(c)).collect::<Result<_, _>>()?),
            Cond::Or(items) => sql::Cond::Or(items.iter().map(|c| self.condition_sql(c)).collect::<Result<_, _>>()?),
        })
    }
}

fn selection_sql(selection: &Selection) -> Result<sql::Cond, String> {
    let map = |matchers: &[crate::matcher::FieldMatcher]| -> Result<sql::Cond, String> {
        Ok(sql::Cond::And(
            matchers.iter().map(|m| m.sql()).collect::<Result<_, _>>()?,
        ))
    };
    Ok(match selection {
        Selection::All(matchers) => map(matchers)?,
        Selection::Any(maps) => sql::Cond::Or(maps.iter().map(|m| map(m)).collect::<Result<_, _>>()?),
    })
}
