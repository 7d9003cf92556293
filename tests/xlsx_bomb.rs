//! XLSX zip bombs (issue 9, item 18): a 1 MiB upload that unpacks to a GiB is refused as too
//! large, and refusing it allocates a few MiB, not the GiB. Allocation is measured, not time: a
//! counting allocator records the peak bytes live on the test's own thread, and refuses (so the
//! test aborts instead of swapping the machine) past 768 MiB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use foodcheck::establishment::import::{self, ImportError};

#[path = "support/xlsx_bomb.rs"]
mod xlsx_bomb;
use xlsx_bomb::GIB;

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

const CAP: i64 = 768 << 20;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size() as i64;
        // try_with: the thread-local may already be gone while a thread shuts down.
        let over = LIVE
            .try_with(|l| {
                let now = l.get() + size;
                if now > CAP {
                    return true;
                }
                l.set(now);
                let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
                false
            })
            .unwrap_or(false);
        if over {
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as i64));
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated (above what was live before) by `f` on this thread.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, i64) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

const MIB: i64 = 1 << 20;

#[track_caller]
fn assert_refused(bytes: &[u8], what: &str) {
    assert!(bytes.len() < 4 << 20, "the bomb is {} bytes", bytes.len());
    assert_eq!(import::sniff(bytes).unwrap(), import::Format::Xlsx);
    let (result, peak) = peak_of(|| import::parse(bytes, 100_000));
    match result {
        Err(ImportError::TooLarge(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected TooLarge({what}), got {other:?}"),
    }
    assert!(peak < 16 * MIB, "refusing allocated {} MiB", peak / MIB);
}

#[test]
fn one_gib_cell_text_is_refused_with_flat_memory() {
    let bomb = xlsx_bomb::huge_cell_text(GIB);
    assert_refused(&bomb, "tag or text");
}

#[test]
fn one_gib_shared_strings_table_is_refused_with_flat_memory() {
    // Entries of 300 KiB: fine one by one, too many bytes together.
    let bomb = xlsx_bomb::huge_shared_strings(GIB, 300 * 1024);
    assert_refused(&bomb, "shared-strings table");
}

#[test]
fn millions_of_tiny_shared_strings_are_refused_with_flat_memory() {
    // `<si><t>字</t></si>`: 18 bytes each, so 60 million strings in a GiB.
    let bomb = xlsx_bomb::huge_shared_strings(GIB, 3);
    assert_refused(&bomb, "shared strings");
}
