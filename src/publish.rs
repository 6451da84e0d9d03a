//! The one place answer tables are swapped. A new table is built off the
//! fast path and published with one atomic store; each worker keeps a
//! cached pointer and sees the new table on its next packet. The old table
//! is freed when the last worker lets go of it. Readers never wait.

use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use crate::compile::AnswerTable;

/// The currently served table, shared by every worker and the slow path.
#[derive(Clone)]
pub struct Published(Arc<ArcSwap<AnswerTable>>);

impl Published {
    pub fn new(table: AnswerTable) -> Self {
        Published(Arc::new(ArcSwap::from_pointee(table)))
    }

    /// Makes `table` the one every reader sees from its next load on.
    pub fn publish(&self, table: AnswerTable) {
        self.0.store(Arc::new(table));
    }

    /// A per-thread reader: a cached `Arc` that costs one atomic load per
    /// packet to check for a newer table.
    pub fn reader(&self) -> TableReader {
        TableReader(Cache::new(Arc::clone(&self.0)))
    }
}

pub struct TableReader(Cache<Arc<ArcSwap<AnswerTable>>, Arc<AnswerTable>>);

impl TableReader {
    pub fn load(&mut self) -> &AnswerTable {
        self.0.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_a_new_table_on_their_next_load() {
        let published = Published::new(AnswerTable::default());
        let mut reader = published.reader();
        assert_eq!(reader.load().name_count(), 0);
        let zone = crate::zone::Zone {
            origin: vec![0],
            nodes: [(vec![0], vec![])].into_iter().collect(),
        };
        published.publish(crate::compile::compile(&[
            crate::compile::ZoneInput::Loaded(&zone),
        ]));
        assert_eq!(reader.load().name_count(), 1);
    }
}
