//! Stripe's list pagination, once for every list: `limit` (1 to 100, default 10),
//! `starting_after`, `ending_before` and `created[gt|gte|lt|lte]` in, and
//! `{object: "list", url, data, has_more}` out.
//!
//! A list runs newest first by the order rows were stored in (SQLite's `rowid`, PostgreSQL's
//! identity `seq`), never by `created`: many rows share a second, and a cursor names one row,
//! so a page after it holds exactly the rows stored before it, however many arrive meanwhile.
//!
//! A handler extracts [`ListQuery`] (with [`crate::api::QueryParams`]), turns it into a [`Page`]
//! with [`ListQuery::page`], hands the page to its store method (which fetches
//! [`Page::fetch`] rows, see there), and answers [`Page::finish`] of what came back.

use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use crate::error::{ApiCode, ApiError};

/// The query parameters of every list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    starting_after: Option<String>,
    ending_before: Option<String>,
    created: Option<CreatedQuery>,
}

/// `created[gt]`, `created[gte]`, `created[lt]`, `created[lte]`, Unix seconds.
#[derive(Debug, Default, Deserialize)]
struct CreatedQuery {
    gt: Option<String>,
    gte: Option<String>,
    lt: Option<String>,
    lte: Option<String>,
}

/// Which way a page runs from its cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// The newest rows.
    First,
    /// The rows stored before this id's (`starting_after`), newest first.
    After(String),
    /// The rows stored after this id's (`ending_before`): fetched oldest first, answered
    /// newest first.
    Before(String),
}

/// A checked page request, for a store method.
#[derive(Clone, Debug)]
pub struct Page {
    /// 1 to 100.
    pub limit: usize,
    /// Where the page starts.
    pub cursor: Cursor,
    /// Only rows created at or after this second.
    pub created_gte: Option<i64>,
    /// Only rows created at or before this second.
    pub created_lte: Option<i64>,
}

fn invalid(param: &'static str, message: &'static str) -> ApiError {
    ApiError::invalid_request(ApiCode::ParameterInvalid, message).param(param)
}

fn seconds(v: Option<&str>, param: &'static str) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        s.parse::<i64>()
            .map_err(|_| invalid(param, "created bounds are Unix seconds."))
    })
    .transpose()
}

impl ListQuery {
    /// Checks the parameters; `prefix` is the listed ids' (`ch_`), which a cursor must have.
    pub fn page(&self, prefix: &str) -> Result<Page, ApiError> {
        let limit = match self.limit.as_deref() {
            None => 10,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| invalid("limit", "limit must be between 1 and 100."))?,
        };
        let cursor_id = |id: &str, param| {
            if crate::ids::is_id(id, prefix) {
                Ok(id.to_owned())
            } else {
                Err(invalid(param, "The cursor must be an id from this list."))
            }
        };
        let cursor = match (&self.starting_after, &self.ending_before) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "ending_before",
                    "Send starting_after or ending_before, not both.",
                ));
            }
            (Some(id), None) => Cursor::After(cursor_id(id, "starting_after")?),
            (None, Some(id)) => Cursor::Before(cursor_id(id, "ending_before")?),
            (None, None) => Cursor::First,
        };
        let c = self.created.as_ref();
        let bound = |v: Option<&String>, param| seconds(v.map(String::as_str), param);
        let gt = bound(c.and_then(|c| c.gt.as_ref()), "created[gt]")?;
        let gte = bound(c.and_then(|c| c.gte.as_ref()), "created[gte]")?;
        let lt = bound(c.and_then(|c| c.lt.as_ref()), "created[lt]")?;
        let lte = bound(c.and_then(|c| c.lte.as_ref()), "created[lte]")?;
        // The tighter of each pair; `gt n` is `gte n + 1` for whole seconds.
        let created_gte = [gt.map(|v| v.saturating_add(1)), gte]
            .into_iter()
            .flatten()
            .max();
        let created_lte = [lt.map(|v| v.saturating_sub(1)), lte]
            .into_iter()
            .flatten()
            .min();
        Ok(Page {
            limit,
            cursor,
            created_gte,
            created_lte,
        })
    }

    /// The parameters for an operation's OpenAPI `params(…)`.
    pub fn parameters() -> Vec<Parameter> {
        let int = |min: Option<f64>, max: Option<f64>| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(min)
                .maximum(max)
                .build()
        };
        let string = || ObjectBuilder::new().schema_type(Type::String).build();
        let p = |name: &str, description: &str, schema: utoipa::openapi::Object| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        vec![
            p(
                "limit",
                "1 to 100, default 10.",
                int(Some(1.0), Some(100.0)),
            ),
            p(
                "starting_after",
                "An id from this list: the page of older objects after it.",
                string(),
            ),
            p(
                "ending_before",
                "An id from this list: the page of newer objects before it.",
                string(),
            ),
            p(
                "created[gt]",
                "Only objects created after this Unix second.",
                int(None, None),
            ),
            p(
                "created[gte]",
                "Only objects created at or after this Unix second.",
                int(None, None),
            ),
            p(
                "created[lt]",
                "Only objects created before this Unix second.",
                int(None, None),
            ),
            p(
                "created[lte]",
                "Only objects created at or before this Unix second.",
                int(None, None),
            ),
        ]
    }
}

impl utoipa::IntoParams for ListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        Self::parameters()
    }
}

impl Page {
    /// How many rows a store method fetches: one more than the page, to learn `has_more`.
    /// It fetches them newest first from the cursor, except for [`Cursor::Before`]: oldest
    /// first from the cursor (the rows nearest to it).
    pub fn fetch(&self) -> usize {
        self.limit + 1
    }

    /// Whether the store fetches oldest first.
    pub fn ascending(&self) -> bool {
        matches!(self.cursor, Cursor::Before(_))
    }

    /// The `starting_after` id, if any.
    pub fn after(&self) -> Option<&str> {
        match &self.cursor {
            Cursor::After(id) => Some(id),
            _ => None,
        }
    }

    /// The `ending_before` id, if any.
    pub fn before(&self) -> Option<&str> {
        match &self.cursor {
            Cursor::Before(id) => Some(id),
            _ => None,
        }
    }

    /// The page out of what the store fetched, newest first, and whether there is more
    /// beyond it (in the direction the page runs).
    pub fn finish<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool) {
        let has_more = rows.len() > self.limit;
        rows.truncate(self.limit);
        if self.ascending() {
            rows.reverse();
        }
        (rows, has_more)
    }
}

/// A page of a list, as Stripe answers one. `data` is any serializable member; a member
/// stored as JSON text is sent as it is with [`serde_json::value::RawValue`].
#[derive(Debug, Serialize)]
pub struct List<T> {
    /// Always `list`.
    pub object: &'static str,
    /// The list's path, such as `/v1/charges`.
    pub url: String,
    /// The members, newest first.
    pub data: Vec<T>,
    /// Whether more members lie beyond this page.
    pub has_more: bool,
}

impl<T> List<T> {
    /// The answer for `page` out of the rows its store method fetched.
    pub fn new(page: &Page, url: impl Into<String>, rows: Vec<T>) -> Self {
        let (data, has_more) = page.finish(rows);
        List {
            object: "list",
            url: url.into(),
            data,
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<Page, ApiError> {
        crate::api::parse_form::<ListQuery>(q.as_bytes())
            .map_err(|()| invalid("q", "bad"))?
            .page("ch_")
    }

    #[test]
    fn checks_parameters() {
        let p = query("").unwrap();
        assert_eq!((p.limit, p.cursor.clone()), (10, Cursor::First));
        assert_eq!(query("limit=100").unwrap().limit, 100);
        for bad in ["limit=0", "limit=101", "limit=x", "limit=-1"] {
            assert_eq!(query(bad).unwrap_err().param, Some("limit"), "{bad}");
        }
        let p = query("created%5Bgte%5D=10&created[lt]=20&created[lte]=30").unwrap();
        assert_eq!((p.created_gte, p.created_lte), (Some(10), Some(19)));
        assert_eq!(
            query("created[gte]=soon").unwrap_err().param,
            Some("created[gte]")
        );
        assert!(query("starting_after=ch_1&ending_before=ch_2").is_err());
        assert_eq!(
            query("starting_after=tok_1").unwrap_err().param,
            Some("starting_after")
        );
    }

    #[test]
    fn finishes_pages_newest_first() {
        let page = |cursor| Page {
            limit: 2,
            cursor,
            created_gte: None,
            created_lte: None,
        };
        assert_eq!(
            page(Cursor::First).finish(vec![5, 4, 3]),
            (vec![5, 4], true)
        );
        assert_eq!(page(Cursor::First).finish(vec![5, 4]), (vec![5, 4], false));
        // Fetched oldest first from the cursor, answered newest first.
        assert_eq!(
            page(Cursor::Before("ch_x".into())).finish(vec![2, 3, 4]),
            (vec![3, 2], true)
        );
    }
}
