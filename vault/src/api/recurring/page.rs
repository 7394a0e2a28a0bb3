//! The recurring charges list reads its query with the one list parser of the vault
//! ([`crate::pagination::ListQuery`], as the charges and refunds lists do) and hands the store
//! a [`RecurringPage`].

use crate::error::ApiError;
use crate::pagination::ListQuery;
use crate::store::RecurringPage;

/// The page to read, asking one row more than the limit (to learn `has_more`), and the limit;
/// or the first parameter that does not parse.
pub(crate) fn parse(query: &ListQuery) -> Result<(RecurringPage, usize), ApiError> {
    let page = query.page("rc_")?;
    Ok((
        RecurringPage {
            limit: page.fetch(),
            starting_after: page.after().map(str::to_owned),
            ending_before: page.before().map(str::to_owned),
            created_gte: page.created_gte,
            created_lte: page.created_lte,
        },
        page.limit,
    ))
}
