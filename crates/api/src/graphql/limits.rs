//! Bounds on the work one GraphQL request may cause, checked before anything runs.
//!
//! async-graphql's depth and complexity limits measure a query as written: a fragment spread
//! twice counts once, so a kilobyte of fragments that each spread the next one twice asks for
//! millions of fields, and even their recursion-depth check walks every spread. [`RequestLimits`]
//! measures the document after fragment expansion as soon as it is parsed, before any of those
//! checks, validation or execution, and puts a time limit on every execution.

use flash_core::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, Response, ServerError, ServerResult};

use crate::error::ApiError;

/// Most selections (fields, fragment spreads, inline fragments) a request may make once every
/// fragment spread is expanded.
pub(crate) const EXPANDED_FIELDS_MAX: u64 = 2_000;
/// Most fragment definitions in one document.
pub(crate) const FRAGMENTS_MAX: usize = 100;
/// Most operations in one document.
pub(crate) const OPERATIONS_MAX: usize = 20;
/// Longest a query or mutation may run. Above the rails' own bounds (a Lightning payment gives
/// up after 30 s), so it only stops work that no bound inside the bank would end.
pub(crate) const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The extension that enforces the limits above on a schema.
pub(crate) struct RequestLimits;

impl ExtensionFactory for RequestLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestLimitsExtension)
    }
}

struct RequestLimitsExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for RequestLimitsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Measured here, before async-graphql's own recursion-depth check, which follows every
        // spread as written. A query that does not parse goes on to be refused by the parser.
        if let Ok(document) = request.parsed_query() {
            check_expanded_size(document)?;
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match tokio::time::timeout(REQUEST_TIME_LIMIT, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => Response::from_errors(vec![ApiError::new(
                ErrorCode::Timeout,
                format!(
                    "the request ran longer than {} s and was stopped",
                    REQUEST_TIME_LIMIT.as_secs()
                ),
            )
            .to_server_error()]),
        }
    }
}

fn too_complex(message: String) -> ServerError {
    ApiError::new(ErrorCode::QueryTooComplex, message).to_server_error()
}

/// Refuses a document whose operations, expanded, make more than [`EXPANDED_FIELDS_MAX`]
/// selections. Runs in time linear in the document: each fragment's size is computed once.
pub(crate) fn check_expanded_size(document: &ExecutableDocument) -> ServerResult<()> {
    if document.fragments.len() > FRAGMENTS_MAX {
        return Err(too_complex(format!(
            "the query defines {} fragments; at most {FRAGMENTS_MAX} are allowed",
            document.fragments.len()
        )));
    }
    let mut sizer = Sizer {
        document,
        sizes: HashMap::new(),
    };
    let total = match &document.operations {
        DocumentOperations::Single(op) => sizer.selection_set(&op.node.selection_set.node)?,
        DocumentOperations::Multiple(ops) => {
            if ops.len() > OPERATIONS_MAX {
                return Err(too_complex(format!(
                    "the query defines {} operations; at most {OPERATIONS_MAX} are allowed",
                    ops.len()
                )));
            }
            let mut total = 0u64;
            for op in ops.values() {
                total = total.saturating_add(sizer.selection_set(&op.node.selection_set.node)?);
            }
            total
        }
    };
    if total > EXPANDED_FIELDS_MAX {
        return Err(too_complex(format!(
            "the query makes {} selections once its fragments are expanded; at most {EXPANDED_FIELDS_MAX} are allowed",
            if total == u64::MAX {
                "too many".to_string()
            } else {
                total.to_string()
            }
        )));
    }
    Ok(())
}

/// A fragment's size while it is being measured, or once it is known.
#[derive(Clone, Copy)]
enum FragmentSize {
    InProgress,
    Known(u64),
}

struct Sizer<'a> {
    document: &'a ExecutableDocument,
    sizes: HashMap<&'a str, FragmentSize>,
}

impl<'a> Sizer<'a> {
    /// Selections made by `set`, fragments expanded; saturates instead of overflowing.
    fn selection_set(&mut self, set: &'a SelectionSet) -> ServerResult<u64> {
        let mut total = 0u64;
        for item in &set.items {
            let size = match &item.node {
                Selection::Field(field) => 1u64.saturating_add(self.selection_set(&field.node.selection_set.node)?),
                Selection::InlineFragment(inline) => {
                    1u64.saturating_add(self.selection_set(&inline.node.selection_set.node)?)
                }
                Selection::FragmentSpread(spread) => {
                    1u64.saturating_add(self.fragment(spread.node.fragment_name.node.as_str())?)
                }
            };
            total = total.saturating_add(size);
        }
        Ok(total)
    }

    /// Selections made by the named fragment (unknown fragments count nothing: validation
    /// refuses them with a precise message).
    fn fragment(&mut self, name: &'a str) -> ServerResult<u64> {
        match self.sizes.get(name) {
            Some(FragmentSize::Known(size)) => return Ok(*size),
            Some(FragmentSize::InProgress) => {
                return Err(
                    ApiError::new(ErrorCode::InvalidInput, format!("fragment {name} spreads itself")).to_server_error(),
                )
            }
            None => {}
        }
        let Some((key, definition)) = self.document.fragments.get_key_value(name) else {
            return Ok(0);
        };
        self.sizes.insert(key.as_str(), FragmentSize::InProgress);
        let size = self.selection_set(&definition.node.selection_set.node)?;
        self.sizes.insert(key.as_str(), FragmentSize::Known(size));
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("query parses")
    }

    /// `levels` fragments, each spreading the next one twice: 2^levels fields in 1 KB.
    fn doubling(levels: usize) -> String {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..levels {
            q.push_str(&format!(
                "fragment F{i} on PublicQuery {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        q.push_str(&format!("fragment F{levels} on PublicQuery {{ me {{ id }} }}\n"));
        q
    }

    fn code(e: &ServerError) -> String {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn ordinary_queries_pass() {
        let q = "query { me { id defaultAccount { wallets { id balance } } } me { id } }";
        assert!(check_expanded_size(&parse(q)).is_ok());
        assert!(check_expanded_size(&parse(&doubling(5))).is_ok(), "127 selections");
    }

    #[test]
    fn doubling_fragments_are_measured_after_expansion() {
        // 10 levels: 2^11 - 2 spreads, 2^10 × 2 fields and the root spread = 4095.
        let e = check_expanded_size(&parse(&doubling(10))).expect_err("refused");
        assert_eq!(code(&e), "\"QUERY_TOO_COMPLEX\"", "{e:?}");
        assert!(e.message.contains("4095"), "{}", e.message);
        for levels in [30, 64, 99] {
            let e = check_expanded_size(&parse(&doubling(levels))).expect_err("refused");
            assert_eq!(code(&e), "\"QUERY_TOO_COMPLEX\"", "{levels}: {e:?}");
        }
    }

    #[test]
    fn fragment_and_operation_counts_are_bounded() {
        let mut q = String::from("query { me { id } }\n");
        for i in 0..=FRAGMENTS_MAX {
            q.push_str(&format!("fragment G{i} on User {{ id }}\n"));
        }
        let e = check_expanded_size(&parse(&q)).expect_err("refused");
        assert!(e.message.contains("fragments"), "{}", e.message);

        let mut q = String::new();
        for i in 0..=OPERATIONS_MAX {
            q.push_str(&format!("query Q{i} {{ me {{ id }} }}\n"));
        }
        let e = check_expanded_size(&parse(&q)).expect_err("refused");
        assert!(e.message.contains("operations"), "{}", e.message);
    }

    #[test]
    fn fragment_cycles_are_refused_not_followed() {
        let q = "query { ...A } fragment A on PublicQuery { ...B } fragment B on PublicQuery { ...A }";
        let e = check_expanded_size(&parse(q)).expect_err("refused");
        assert_eq!(code(&e), "\"INVALID_INPUT\"", "{e:?}");
    }
}
