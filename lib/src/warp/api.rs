//! What the rest of the crate needs of WARP, as a port: the client
//! implements it, and the domain's tests drive it with in-memory doubles.

use std::future::Future;

use serde_json::{Map, Value};

use super::{Customer, WarpClient, WarpError};

pub trait WarpApi: Send + Sync {
    fn get(&self, id: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send;
    fn by_ban(&self, ban: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send;
    fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Customer, WarpError>> + Send;
}

/// One client shared by several owners (the model's consumer and
/// reconciler, tests' instances) is the client.
impl<T: WarpApi> WarpApi for std::sync::Arc<T> {
    fn get(&self, id: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        T::get(self, id)
    }

    fn by_ban(&self, ban: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        T::by_ban(self, ban)
    }

    fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        T::update(self, id, body, if_match)
    }
}

impl WarpApi for WarpClient {
    fn get(&self, id: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        WarpClient::get(self, id)
    }

    fn by_ban(&self, ban: &str) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        WarpClient::by_ban(self, ban)
    }

    fn update(
        &self,
        id: &str,
        body: &Map<String, Value>,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Customer, WarpError>> + Send {
        WarpClient::update(self, id, body, if_match)
    }
}
