//! The coordinator's own durable records, beside the rollup state: every sealed batch with
//! its chunk witnesses, the proofs received so far and its L1 fate, and the index from
//! transaction hash to batch (so a redelivered transaction is recognised, not re-applied).

use std::path::Path;

use pulse_circuits::circuit::ChunkWitness;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("coordinator.batches");
const TXS: TableDefinition<&[u8], u64> = TableDefinition::new("coordinator.txs");
const META: TableDefinition<&str, u64> = TableDefinition::new("coordinator.meta");
const REBUILT_THROUGH: &str = "rebuilt_through";

/// Where a batch is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Jobs are out; proofs are coming in.
    Proving,
    /// Every chunk is proven; publishing and committing.
    Committing,
    /// Final on L1.
    Committed,
    /// L1 refused it; an operator must look (the state and L1 disagree).
    Failed,
}

impl BatchStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proving => "proving",
            Self::Committing => "committing",
            Self::Committed => "committed",
            Self::Failed => "failed",
        }
    }
}

/// One sealed batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchRecord {
    /// The batch number (L1's numbering).
    pub number: u64,
    /// Status.
    pub status: BatchStatus,
    /// The batch time (unix seconds).
    pub timestamp: u64,
    /// Hashes of its transactions, in order (`0x…`).
    pub tx_hashes: Vec<String>,
    /// The chunk witnesses.
    pub chunks: Vec<ChunkWitness>,
    /// Proof artifacts (JSON) received and checked, per chunk.
    pub proofs: Vec<Option<String>>,
    /// The worker that proved each chunk.
    pub provers: Vec<Option<String>>,
    /// Job generation: bumped whenever jobs are published again (retries, restarts).
    pub generation: u32,
    /// The CID of the batch's public data on IPFS.
    pub data_cid: Option<String>,
    /// The L1 transaction that committed it.
    pub l1_tx: Option<String>,
    /// Gas used by the commit.
    pub l1_gas: Option<u64>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Unix milliseconds: first transaction received, sealed, proven, committed.
    pub first_received_ms: u64,
    /// Sealed.
    pub sealed_ms: u64,
    /// Every proof in.
    pub proven_ms: Option<u64>,
    /// Final on L1.
    pub committed_ms: Option<u64>,
}

/// Errors of the coordinator store.
#[derive(Debug, thiserror::Error)]
#[error("coordinator store: {0}; check the disk and the state directory's permissions")]
pub struct StoreError(String);

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError(e.to_string()) }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

/// The store.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(BATCHES)?;
        txn.open_table(TXS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// Writes a batch record (and indexes its transactions).
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn put(&self, b: &BatchRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut batches = txn.open_table(BATCHES)?;
            batches.insert(b.number, serde_json::to_vec(b)?.as_slice())?;
            let mut txs = txn.open_table(TXS)?;
            for h in &b.tx_hashes {
                txs.insert(h.as_bytes(), b.number)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Deletes a batch record and its transaction index (a batch sealed but never applied
    /// to the state, found at restart).
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn delete(&self, b: &BatchRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(BATCHES)?.remove(b.number)?;
            let mut txs = txn.open_table(TXS)?;
            for h in &b.tx_hashes {
                txs.remove(h.as_bytes())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// A batch by number.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure or a record that does not parse.
    pub fn get(&self, number: u64) -> Result<Option<BatchRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BATCHES)?;
        match t.get(number)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Indexes transactions as sequenced into batch `number` (those already indexed keep
    /// their batch): a store rebuilt from L1, which has no signed transactions, learns them
    /// from the journal.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn remember(&self, number: u64, hashes: &[String]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut txs = txn.open_table(TXS)?;
            for h in hashes {
                if txs.get(h.as_bytes())?.is_none() {
                    txs.insert(h.as_bytes(), number)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The batch a transaction was sequenced into.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn batch_of(&self, tx_hash: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(TXS)?;
        Ok(t.get(tx_hash.as_bytes())?.map(|v| v.value()))
    }

    /// The highest batch number stored.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn last_number(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BATCHES)?;
        Ok(t.last()?.map(|(k, _)| k.value()))
    }

    /// The last `n` batches, newest first.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn recent(&self, n: usize) -> Result<Vec<BatchRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BATCHES)?;
        let mut out = Vec::new();
        for item in t.iter()?.rev().take(n) {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Batches not yet committed (or failed), oldest first.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn unfinished(&self) -> Result<Vec<BatchRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BATCHES)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            let b: BatchRecord = serde_json::from_slice(v.value())?;
            if matches!(b.status, BatchStatus::Proving | BatchStatus::Committing) {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// A counter.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn counter(&self, name: &str) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(META)?;
        Ok(t.get(name)?.map(|v| v.value()).unwrap_or(0))
    }

    /// Adds one to a counter and returns the new value.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn bump(&self, name: &str) -> Result<u64, StoreError> {
        let txn = self.db.begin_write()?;
        let v;
        {
            let mut t = txn.open_table(META)?;
            v = t.get(name)?.map(|v| v.value()).unwrap_or(0) + 1;
            t.insert(name, v)?;
        }
        txn.commit()?;
        Ok(v)
    }

    /// The last batch a rebuild from L1 and IPFS ([`crate::rebuild`]) brought the state to:
    /// the store holds no records of it and the batches before, only the state does.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn rebuilt_through(&self) -> Result<u64, StoreError> {
        self.counter(REBUILT_THROUGH)
    }

    /// Records that the state was rebuilt through batch `n` ([`Store::rebuilt_through`]).
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn set_rebuilt_through(&self, n: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(META)?.insert(REBUILT_THROUGH, n)?;
        txn.commit()?;
        Ok(())
    }

    /// The last batch number this coordinator knows: its last record, or the batch its
    /// state was rebuilt through.
    ///
    /// # Errors
    /// [`StoreError`] on a storage failure.
    pub fn last_known(&self) -> Result<u64, StoreError> {
        Ok(self
            .last_number()?
            .unwrap_or(0)
            .max(self.rebuilt_through()?))
    }
}
