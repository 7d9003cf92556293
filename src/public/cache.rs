//! Rendered public list pages, kept per instance under the database's public version
//! (`public_version`, bumped by triggers on every write to list issues, entries, entry photos
//! and lifecycle updates) and the extract day. A page of a published issue is built once per
//! change instead of once per request: building one costs milliseconds of CPU (row decoding,
//! allocation, JSON escaping), and the public reads far more often than reviewers write.
//!
//! Correctness rests on the order of reads: a handler reads the version first and the data
//! after, so a page stored under version `v` holds data at least as new as `v`; a reader that
//! sees a later version never gets it. Memory is bounded by the byte cap: the oldest pages
//! go first, and every page of an older version goes as soon as a newer one is stored.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A strong ETag of a body: SHA-256, first 16 bytes, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub body: Bytes,
    pub etag: String,
}

impl Page {
    pub fn new(body: Bytes) -> Page {
        Page {
            etag: etag_of(&body),
            body,
        }
    }
}

#[derive(Default)]
struct Inner {
    version: i64,
    day: String,
    pages: HashMap<String, Page>,
    /// Insertion order, for eviction.
    order: VecDeque<String>,
    bytes: usize,
}

pub struct PageCache {
    cap_bytes: usize,
    inner: Mutex<Inner>,
}

impl PageCache {
    pub fn new(cap_bytes: usize) -> PageCache {
        PageCache {
            cap_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The page stored under `key` for exactly this version and day.
    pub fn get(&self, version: i64, day: &str, key: &str) -> Option<Page> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.version != version || inner.day != day {
            return None;
        }
        inner.pages.get(key).cloned()
    }

    /// Stores a page built from data read after `version` was read. A page of an older
    /// version or day than the cache holds is dropped (a newer write has committed since); a
    /// newer one empties the cache first.
    pub fn put(&self, version: i64, day: &str, key: String, page: Page) {
        let size = key.len() + page.body.len();
        if size > self.cap_bytes / 8 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let newer = (version, day) > (inner.version, inner.day.as_str());
        if newer {
            *inner = Inner {
                version,
                day: day.to_string(),
                ..Inner::default()
            };
        } else if (version, day) != (inner.version, inner.day.as_str()) {
            return;
        }
        if let Some(old) = inner.pages.insert(key.clone(), page) {
            inner.bytes -= key.len() + old.body.len();
        } else {
            inner.order.push_back(key);
        }
        inner.bytes += size;
        while inner.bytes > self.cap_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.pages.remove(&oldest) {
                inner.bytes -= oldest.len() + gone.body.len();
            }
        }
    }

    /// Bytes held (keys and bodies).
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn page(s: &str) -> Page {
        Page::new(Bytes::from(s.to_string()))
    }

    #[test]
    fn a_page_is_served_only_for_its_version_and_day() {
        let c = PageCache::new(1 << 20);
        c.put(3, "2026-12-02", "/a".into(), page("x"));
        assert_eq!(c.get(3, "2026-12-02", "/a"), Some(page("x")));
        assert_eq!(c.get(4, "2026-12-02", "/a"), None);
        assert_eq!(c.get(2, "2026-12-02", "/a"), None);
        assert_eq!(c.get(3, "2026-12-03", "/a"), None);
        assert_eq!(c.get(3, "2026-12-02", "/b"), None);
    }

    #[test]
    fn an_older_page_never_replaces_a_newer_one() {
        let c = PageCache::new(1 << 20);
        c.put(5, "2026-12-02", "/a".into(), page("new"));
        // A reader that read version 4 before the write committed stores late: dropped.
        c.put(4, "2026-12-02", "/a".into(), page("old"));
        assert_eq!(c.get(5, "2026-12-02", "/a"), Some(page("new")));
        assert_eq!(c.get(4, "2026-12-02", "/a"), None);
        // A newer version empties the cache.
        c.put(6, "2026-12-02", "/b".into(), page("b"));
        assert_eq!(c.get(6, "2026-12-02", "/a"), None);
        assert_eq!(c.bytes(), "/b".len() + 1);
    }

    #[test]
    fn the_etag_is_the_bodys() {
        assert_eq!(page("x").etag, etag_of(b"x"));
        assert_ne!(page("x").etag, page("y").etag);
        assert_eq!(page("x").etag.len(), 34);
    }

    proptest! {
        // Whatever the sequence of stores, the bytes held stay under the cap and match the pages.
        #[test]
        fn memory_stays_under_the_cap(ops in proptest::collection::vec((0u8..20, 0usize..300, 0i64..3), 1..200)) {
            let cap = 2_000;
            let c = PageCache::new(cap);
            for (k, len, v) in ops {
                c.put(v, "d", format!("/k{k}"), Page::new(Bytes::from(vec![b'a'; len])));
                let inner = c.inner.lock().unwrap();
                let held: usize = inner.pages.iter().map(|(k, p)| k.len() + p.body.len()).sum();
                prop_assert_eq!(held, inner.bytes);
                prop_assert!(inner.bytes <= cap);
                prop_assert_eq!(inner.order.len(), inner.pages.len());
            }
        }
    }
}
