//! What every DynamoDB adapter here needs: attribute values from Rust
//! values and back, and one wrapper for the SDK's errors that names the
//! operation and the table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::StoreError;

/// One DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute (DynamoDB carries numbers as text).
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute of `item`, if it is one.
pub(crate) fn get_s(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

/// A number attribute of `item` as an integer, if it is one.
pub(crate) fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl StoreError {
    /// An AWS call that failed: which operation, on which table (or
    /// bucket), and the SDK's error as the source.
    pub(crate) fn aws<E>(operation: &'static str, table: &str, e: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Aws {
            operation,
            table: table.to_string(),
            source: Box::new(e),
        }
    }
}

/// Every item `query` selects, page after page (the SDK's paginator).
pub(crate) async fn query_all(
    table: &str,
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut pages = query.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| StoreError::aws("Query", table, e))?;
        items.extend(page.items.unwrap_or_default());
    }
    Ok(items)
}

/// Every item `scan` reads, page after page (the SDK's paginator).
pub(crate) async fn scan_all(
    table: &str,
    scan: aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut pages = scan.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| StoreError::aws("Scan", table, e))?;
        items.extend(page.items.unwrap_or_default());
    }
    Ok(items)
}
