//! Sign-in lookups coalesced: requests that need their session row at the same moment share one
//! query (`WHERE s.id IN (...)`) instead of one round trip each.
//!
//! Every signed-in request reads its session, its user and its account's data revision
//! ([`Store::auth_session`]); a kept list page (`admin::list_cache`) costs nothing else, so on a
//! busy replica that one indexed query, with its round trip to the database and the hand-offs
//! around it, was most of the work a request did. Here the lookups of one moment wait in a
//! queue while at most [`IN_FLIGHT`] batch queries run; when a slot frees, everything queued
//! (up to [`MAX_BATCH`] session ids) goes in the next query. Alone, a lookup is its own batch
//! of one and waits for nothing.
//!
//! Freshness is what it was: a batch's query starts after every lookup in it was queued, so
//! each answer reads the database as of a moment after its request arrived, exactly like a
//! query of its own. A sign-out, a deactivation or a new revision committed before a request
//! came in is always seen by it.
//!
//! When anything goes wrong in the shared path (the batch query fails, the dispatcher's
//! runtime has gone), each lookup runs its own query, so errors are reported as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::AnyPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::auth::{AuthSession, auth_session_sql};

/// Batch queries of one process running at once: enough that a slow one does not hold up the
/// rest, few enough that lookups queue behind them and share the next query.
pub(crate) const IN_FLIGHT: usize = 2;
/// Session ids in one query. Batches are padded up to a power of two, so a connection prepares
/// at most six statements for this.
pub(crate) const MAX_BATCH: usize = 32;
/// Lookups waiting for a slot; more wait for room in the queue (each is one request's).
const QUEUE: usize = 1024;

/// A batch's answer for one lookup; `None` when the batch failed and the lookup must query on
/// its own.
type Reply = Option<Option<AuthSession>>;
type Waiter = (String, oneshot::Sender<Reply>);

/// The queue of one store (shared by its clones), and the dispatcher draining it.
#[derive(Default)]
pub(crate) struct SignIns {
    /// Started on the first lookup, on the runtime that made it; started again if that runtime
    /// has ended (tests run one runtime per test).
    queue: Mutex<Option<mpsc::Sender<Waiter>>>,
}

impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIns").finish_non_exhaustive()
    }
}

impl SignIns {
    /// The session `id` with its user and revision through a shared query, or `None` when the
    /// caller must run the query itself.
    pub(crate) async fn lookup(&self, pool: &AnyPool, id: &str) -> Option<Option<AuthSession>> {
        let sender = self.sender(pool)?;
        let (reply, answer) = oneshot::channel();
        sender.send((id.to_owned(), reply)).await.ok()?;
        answer.await.ok().flatten()
    }

    fn sender(&self, pool: &AnyPool) -> Option<mpsc::Sender<Waiter>> {
        let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = queue.as_ref().filter(|s| !s.is_closed()) {
            return Some(sender.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        runtime.spawn(dispatch(pool.clone(), receiver));
        *queue = Some(sender.clone());
        Some(sender)
    }
}

/// Takes what is queued whenever a slot is free and answers it with one query. Ends when every
/// store handle is gone.
async fn dispatch(pool: AnyPool, mut queue: mpsc::Receiver<Waiter>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(waiter) => batch.push(waiter),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            answer(&pool, batch).await;
            drop(slot);
        });
    }
}

async fn answer(pool: &AnyPool, batch: Vec<Waiter>) {
    let found = match fetch(pool, &batch).await {
        Ok(found) => found,
        Err(error) => {
            tracing::debug!(%error, "batched sign-in lookup failed; each request queries on its own");
            for (_, reply) in batch {
                let _ = reply.send(None);
            }
            return;
        }
    };
    for (id, reply) in batch {
        let _ = reply.send(Some(found.get(&id).cloned()));
    }
}

async fn fetch(pool: &AnyPool, batch: &[Waiter]) -> crate::Result<HashMap<String, AuthSession>> {
    let mut ids: Vec<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let padded = ids.len().next_power_of_two();
    let sql = auth_session_sql(&format!("s.id IN ({})", crate::db::placeholders(1, padded)));
    let mut query = sqlx::query(&sql);
    for i in 0..padded {
        // Repeating an id pads the list to a size a connection has prepared before.
        query = query.bind(ids[i.min(ids.len() - 1)]);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(|row| AuthSession::from_row(row).map(|s| (s.id.clone(), s))).collect()
}
