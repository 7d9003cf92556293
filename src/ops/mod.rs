//! Use cases: every state change runs here, in one write transaction that also records its
//! typed audit events. Shared by the HTTP edge, the CLI and background work.

mod access;
mod error;
pub use crate::audit::Ctx;
pub use error::{Error, Result};

pub mod accounts;
pub mod announcements;
pub mod audit;
pub mod checklists;
pub mod demo;
pub mod establishments;
pub mod exports;
pub mod followup;
pub mod inspection_flags;
pub mod jobs;
pub mod lab;
pub mod list_photos;
pub mod lists;
pub mod photos;
pub mod plans;
pub mod review;
pub mod sample_attachments;
pub mod sample_facts;
pub mod sample_sync;
pub mod sampling;
pub mod sampling_plans;
pub mod stats;
pub mod sync;
mod sync_pull;
pub mod tasks;
mod templates;
pub mod uploads;

pub use establishments::{
    import as import_establishments, ImportFailure, ImportReport, MAX_IMPORT_ROWS,
};
pub use plans::draw_plan;
