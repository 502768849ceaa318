//! Run reports in S3 (`REPORTS_BUCKET`), and their in-memory twin.

use std::future::Future;

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use tracing::instrument;

use super::StoreError;

/// Where reports and their pieces are kept (S3).
pub trait ReportStore: Send + Sync {
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Keys under `prefix`, sorted.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

#[derive(Debug, Clone)]
pub struct S3ReportStore {
    client: Client,
    bucket: String,
}

impl S3ReportStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

/// An S3 client for `config`; path-style addressing when an endpoint is
/// set, as a local S3 (moto) on loopback needs.
pub fn s3_client(config: &aws_config::SdkConfig) -> Client {
    let path_style = config.endpoint_url().is_some();
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build(),
    )
}

impl ReportStore for S3ReportStore {
    #[instrument(skip(self, body), fields(bucket = %self.bucket, bytes = body.len()))]
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StoreError::aws("PutObject", &self.bucket, e))?;
        Ok(())
    }

    #[instrument(skip(self), fields(bucket = %self.bucket))]
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(SdkError::ServiceError(se)) if matches!(se.err(), GetObjectError::NoSuchKey(_)) => {
                return Ok(None);
            }
            Err(e) => return Err(StoreError::aws("GetObject", &self.bucket, e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::aws("GetObject", &self.bucket, e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    #[instrument(skip(self), fields(bucket = %self.bucket))]
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StoreError::aws("ListObjectsV2", &self.bucket, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        Ok(keys)
    }
}

/// In-memory twin, for unit tests and the bench.
#[derive(Debug, Default)]
pub struct MemoryReportStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryReportStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).cloned()
    }
}

impl ReportStore for MemoryReportStore {
    async fn put(&self, key: &str, body: Vec<u8>, _content_type: &str) -> Result<(), StoreError> {
        self.lock().insert(key.to_string(), body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.object(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}
