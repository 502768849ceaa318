//! The one way this project writes a WARP customer: a `PUT` with `If-Match`
//! on the ETag the decision was made from. A 412 means someone changed the
//! customer in between, so it is read again and the decision made again on
//! what WARP now holds, once; a second 412 gives up (the caller retries
//! later or reports it). The consumer, the nightly run, `hubwarp undo` and
//! `hubwarp conflicts resolve` all write through here.

use std::convert::Infallible;
use std::future::Future;

use serde_json::{Map, Value};

use super::{Customer, WarpApi, WarpError};

/// What one write-back came to.
#[derive(Debug)]
pub struct WriteBack<D> {
    /// The customer as last read: what `decision` was made on.
    pub customer: Customer,
    /// The decision made on `customer`.
    pub decision: D,
    /// `Ok(None)`: the decision wrote nothing; `Ok(Some(after))`: WARP's
    /// answer to the `PUT`.
    pub written: Result<Option<Customer>, WriteError>,
    /// `PUT`s sent (one, or two after a 412).
    pub puts: u32,
    /// Reads after a 412 (zero or one): the caller logs them with its ids.
    pub rereads: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The `PUT` failed other than with a 412.
    #[error("{0}")]
    Put(WarpError),
    /// The read after a 412 failed.
    #[error("reading the customer again after a 412: {0}")]
    Reread(WarpError),
    #[error("WARP customer kept changing under the update (412 twice)")]
    Contended,
}

impl WriteError {
    /// Worth trying again later: WARP down or slow, or a customer edited
    /// twice under the write.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Put(e) | Self::Reread(e) => e.is_transient(),
            Self::Contended => true,
        }
    }

    /// WARP's own error, when there is one.
    pub fn warp_error(&self) -> Option<&WarpError> {
        match self {
            Self::Put(e) | Self::Reread(e) => Some(e),
            Self::Contended => None,
        }
    }
}

/// Decides on `customer` (a body to write and whatever the caller keeps of
/// the decision) and writes the body with `If-Match`; on a 412 reads the
/// customer again and decides again, once. An empty body writes nothing.
pub async fn update_if_match<W, D>(
    warp: &W,
    customer: Customer,
    mut decide: impl FnMut(&Customer) -> (Map<String, Value>, D),
) -> WriteBack<D>
where
    W: WarpApi + ?Sized,
{
    let decided = update_if_match_with(warp, customer, |customer| {
        let (body, decision) = decide(&customer);
        std::future::ready(Ok::<_, Infallible>((customer, body, decision)))
    })
    .await;
    match decided {
        Ok(w) => w,
        Err(never) => match never {},
    }
}

/// As [`update_if_match`], for a decision that reads something of its own
/// first (the consumer reads the field state again after a 412: whoever
/// changed WARP may have moved the baseline too). A failure of that read
/// ends the write-back with it.
pub async fn update_if_match_with<W, D, E, F, Fut>(
    warp: &W,
    customer: Customer,
    mut decide: F,
) -> Result<WriteBack<D>, E>
where
    W: WarpApi + ?Sized,
    F: FnMut(Customer) -> Fut,
    Fut: Future<Output = Result<(Customer, Map<String, Value>, D), E>>,
{
    let mut customer = customer;
    let (mut puts, mut rereads) = (0, 0);
    loop {
        let (decided_on, body, decision) = decide(customer).await?;
        customer = decided_on;
        let written = if body.is_empty() {
            Ok(None)
        } else {
            puts += 1;
            match warp.update(&customer.id, &body, Some(&customer.etag)).await {
                Ok(after) => Ok(Some(after)),
                Err(WarpError::PreconditionFailed) if rereads == 0 => {
                    rereads += 1;
                    match warp.get(&customer.id).await {
                        Ok(fresh) => {
                            customer = fresh;
                            continue;
                        }
                        Err(e) => Err(WriteError::Reread(e)),
                    }
                }
                Err(WarpError::PreconditionFailed) => Err(WriteError::Contended),
                Err(e) => Err(WriteError::Put(e)),
            }
        };
        return Ok(WriteBack {
            customer,
            decision,
            written,
            puts,
            rereads,
        });
    }
}

#[cfg(test)]
mod tests;
